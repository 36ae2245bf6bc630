"""The token redemption page (/kms/redeem) in Chromium, and its answers over https.

- A person redeems a mailed token in the browser with a request file made
  by `openssl req` (or the request pasted) and a password typed twice; the
  download is `<mail>.p12`, which `openssl pkcs12` opens with that password
  and which holds the person's encryption key and both certificates.
- Refusals (an unknown token, passwords that differ, no request, a request
  the CA refuses, an empty password) show the form again with the reason,
  status 400, the token kept and the passwords blank; the token still
  works afterwards, so nothing changed.
- A POST without the form's CSRF token is 403 and redeems nothing.
"""

from __future__ import annotations

import http.client
import re
import ssl
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By

from tests.e2e.conftest import Browser, World, signing_csr

P12_PASSWORD = "bundle pässword"


def token_for(world: World, mail: str) -> str:
    return world.cli("kms", "enroll-user", "--mail", mail).strip()


def pkcs12_contents(bundle: bytes, password: str) -> str:
    shown = subprocess.run(["openssl", "pkcs12", "-passin", f"pass:{password}", "-nodes",
                            "-info"], input=bundle, capture_output=True, check=True)
    return shown.stdout.decode()


def test_redeem_with_a_request_file(world: World, browser: Browser) -> None:
    token = token_for(world, "dave@example.com")
    csr = signing_csr(world.tmp, "dave-web")
    browser.open("/kms/redeem")
    assert browser.heading == "Redeem an enrollment token"
    browser.fill({"Enrollment token": token, "Password": P12_PASSWORD,
                  "Password again": P12_PASSWORD})
    browser.field("Request file").send_keys(str(csr))
    browser.press("Redeem and download")
    contents = pkcs12_contents(browser.downloaded("dave@example.com.p12"), P12_PASSWORD)
    assert contents.count("-----BEGIN CERTIFICATE-----") >= 3, contents
    assert contents.count("-----BEGIN PRIVATE KEY-----") == 1, contents
    assert "friendlyName: dave@example.com" in contents, contents


def test_redeem_with_a_pasted_request(world: World, browser: Browser) -> None:
    token = token_for(world, "alice@example.com")
    csr = signing_csr(world.tmp, "alice-web").read_text()
    browser.open("/kms/redeem")
    browser.fill({"Enrollment token": token, "Request (PEM)": csr, "Password": "x",
                  "Password again": "x"})
    browser.press("Redeem and download")
    contents = pkcs12_contents(browser.downloaded("alice@example.com.p12"), "x")
    assert "friendlyName: alice@example.com" in contents, contents


@pytest.mark.parametrize(("token", "csr", "passwords", "reason"), [
    ("ct-" + "a" * 32, "good", ("pw", "pw"), "The KMS refused the enrollment: "),
    ("mailed", "good", ("pw", "other"), "The two passwords differ."),
    ("mailed", "none", ("pw", "pw"), "Paste your certificate request or choose its file."),
    ("mailed", "junk", ("pw", "pw"), "The KMS refused the enrollment: the CA refused the "
                                     "smime-signing request: not a PKCS#10 request"),
], ids=["unknown-token", "passwords-differ", "no-request", "bad-request"])
def test_refusals_show_the_form_again(world: World, browser: Browser, token: str, csr: str,
                                      passwords: tuple[str, str], reason: str) -> None:
    mailed = token_for(world, "olga@example.com")
    token = mailed if token == "mailed" else token
    request = {"good": signing_csr(world.tmp, "olga-web").read_text(), "none": "",
               "junk": "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n"
                       "-----END CERTIFICATE REQUEST-----"}[csr]
    browser.open("/kms/redeem")
    browser.fill({"Enrollment token": token, "Request (PEM)": request,
                  "Password": passwords[0], "Password again": passwords[1]})
    browser.press("Redeem and download")
    problem = browser.driver.find_element(By.CSS_SELECTOR, "[role=alert]").text
    assert problem.startswith(reason), problem
    assert browser.field("Enrollment token").get_attribute("value") == token
    assert browser.field("Password").get_attribute("value") == ""
    # Nothing changed: the mailed token still redeems.
    assert Client(world).redeem(mailed, signing_csr(world.tmp, "olga-after"), "pw").status == 200


@dataclass(frozen=True)
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes


class Client:
    """The page's form posted by http.client: a session cookie and CSRF token from GET."""

    def __init__(self, world: World) -> None:
        context = ssl.create_default_context(cafile=world.server.ca_file)
        self.connection = http.client.HTTPSConnection(
            "127.0.0.1", world.server.https_port, context=context, timeout=60)

    def _form(self) -> tuple[str, str]:
        self.connection.request("GET", "/kms/redeem")
        answer = self.connection.getresponse()
        page = answer.read().decode()
        cookie = (answer.getheader("Set-Cookie") or "").split(";")[0]
        found = re.search(r'name="csrf" value="([^"]+)"', page)
        assert found is not None, page
        return cookie, found.group(1)

    def redeem(self, token: str, csr: Path, password: str, again: str | None = None,
               csrf: bool = True) -> Answer:
        """GET the form, then POST it as multipart/form-data with the request as a file."""
        cookie, csrf_token = self._form()
        fields = {"token": token.encode(), "csr": b"", "csr_file": csr.read_bytes(),
                  "p12_password": password.encode(),
                  "p12_password_again": (password if again is None else again).encode(),
                  **({"csrf": csrf_token.encode()} if csrf else {})}
        boundary = uuid.uuid4().hex
        body = b"".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            + value + b"\r\n" for name, value in fields.items()) + f"--{boundary}--\r\n".encode()
        try:
            self.connection.request("POST", "/kms/redeem", body=body, headers={
                "Content-Type": f"multipart/form-data; boundary={boundary}", "Cookie": cookie})
            answer = self.connection.getresponse()
            return Answer(answer.status, answer.headers, answer.read())
        finally:
            self.connection.close()


@pytest.mark.parametrize(("token", "password", "again", "status"), [
    ("unknown", "pw", "pw", 400),
    ("mailed", "", "", 400),
    ("mailed", "pw", "wp", 400),
], ids=["unknown-token", "empty-password", "passwords-differ"])
def test_refusals_are_400_pages(world: World, token: str, password: str, again: str,
                                status: int) -> None:
    mailed = token_for(world, "olga@example.com")
    csr = signing_csr(world.tmp, "olga-http")
    answer = Client(world).redeem(mailed if token == "mailed" else "ct-" + "b" * 32, csr,
                                  password, again)
    assert (answer.status, answer.headers["Content-Type"]) == (status,
                                                               "text/html; charset=utf-8")
    assert b'role="alert"' in answer.body
    assert Client(world).redeem(mailed, csr, "pw").status == 200


def test_download_headers(world: World) -> None:
    answer = Client(world).redeem(token_for(world, "olga@example.com"),
                                  signing_csr(world.tmp, "olga-headers"), "pw")
    assert answer.status == 200
    assert answer.headers["Content-Type"] == "application/x-pkcs12"
    assert answer.headers["Cache-Control"] == "no-store"
    assert answer.headers["Content-Disposition"] == 'attachment; filename="olga@example.com.p12"'
    assert "friendlyName: olga@example.com" in pkcs12_contents(answer.body, "pw")


def test_post_without_csrf_token_is_403(world: World) -> None:
    mailed = token_for(world, "olga@example.com")
    csr = signing_csr(world.tmp, "olga-csrf")
    assert Client(world).redeem(mailed, csr, "pw", csrf=False).status == 403
    assert Client(world).redeem(mailed, csr, "pw").status == 200
