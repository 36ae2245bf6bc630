"""The Certificate Server pages walked in Chromium, as their users walk them.

- A visitor follows the home page to the CA certificates page, which shows
  each CA of public/chain.pem with its SHA-256 fingerprint, and downloads
  the root's certificate: the file is the root, byte for byte.
- A visitor finds a person's certificates by mail address and downloads
  one: it is one of those the directory holds for them.
- A person logs in, submits a request file made by `openssl req` and sees
  it pending; a CA officer logs in and approves it from the queue; the
  person logs in again, sees it issued and downloads the certificate,
  which is for their mail address and their key.
"""

from __future__ import annotations

import base64
import re
import subprocess

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from selenium.webdriver.common.by import By
from selenium.webdriver.support.select import Select

from tests.e2e.conftest import ENROLLED, OFFICER, REQUESTER, Browser, World, signing_csr


def chain(world: World) -> list[x509.Certificate]:
    """The CA certificates, the signing CA first and the root last."""
    return x509.load_pem_x509_certificates(
        (world.server.data_dir / "public" / "chain.pem").read_bytes())


def entry_certificates(world: World, dn: str) -> list[bytes]:
    out = world.server.tool("ldapsearch", "-LLL", "-b", dn, "-s", "base", "(objectClass=*)",
                            "userCertificate;binary", check=True)
    text = out.stdout.decode().replace("\n ", "")
    return [base64.b64decode(v) for v in re.findall(r"userCertificate;binary:: (\S+)", text)]


def test_ca_certificates_page(world: World, browser: Browser) -> None:
    browser.open("/")
    browser.follow(browser.link("Download and install the CA certificates and CRLs"))
    assert browser.heading == "CA certificates"
    shown = [e.text for e in browser.driver.find_elements(By.CSS_SELECTOR, "dd.fingerprint")]
    assert shown == [c.fingerprint(hashes.SHA256()).hex(":").upper() for c in chain(world)]


def test_root_certificate_downloads(world: World, browser: Browser) -> None:
    root = chain(world)[-1]
    browser.open("/ca")
    link = browser.driver.find_element(By.XPATH, "//h2[contains(., '(root)')]/.."
                                                 "//a[substring(@href, string-length(@href)-3)"
                                                 "='.crt']")
    assert browser.download(link.click) == (link.text,
                                            root.public_bytes(serialization.Encoding.DER))


def test_find_a_persons_certificate(world: World, browser: Browser) -> None:
    browser.open("/")
    browser.follow(browser.link("Find a person's certificate"))
    browser.fill({"Mail address": "carol@example.com"})
    browser.press("Find")
    rows = browser.driver.find_elements(
        By.XPATH, "//table[caption='Certificates of Carol Example']/tbody/tr")
    held = entry_certificates(world, ENROLLED)
    assert len(rows) == len(held) == 2
    link = rows[0].find_element(By.LINK_TEXT, "DER")
    digest = (link.get_attribute("href") or "").rsplit("/", 1)[1].removesuffix(".crt")
    name, content = browser.download(link.click)
    assert name == f"{digest[:16]}.crt"
    assert content in held


def test_request_approved_by_an_officer_and_downloaded(world: World, browser: Browser) -> None:
    csr = signing_csr(world.tmp, "alice-request")
    browser.log_in("alice@example.com", world.password(REQUESTER))
    browser.follow(browser.link("Request a certificate"))
    Select(browser.field("Kind of certificate")).select_by_visible_text("smime-user")
    browser.field("or a file holding it (PEM or DER)").send_keys(str(csr))
    browser.press("Submit the request")
    found = re.search(r"/requests/(\d+)$", browser.driver.current_url)
    assert found is not None, browser.driver.current_url
    number = found.group(1)
    assert browser.heading == f"Request {number}"
    assert _status(browser) == "pending"
    browser.press("Log out")

    browser.log_in("olga@example.com", world.password(OFFICER))
    browser.follow(browser.link("Officer"))
    browser.press(f"Approve request {number}")
    browser.press("Log out")

    browser.log_in("alice@example.com", world.password(REQUESTER))
    browser.follow(browser.link("My requests"))
    browser.follow(browser.link(number))
    assert _status(browser) == "issued"
    name, content = browser.download(browser.link("certificate.pem").click)
    assert name == f"request-{number}.pem"
    certificate = x509.load_pem_x509_certificate(content)
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert names.value.get_values_for_type(x509.RFC822Name) == ["alice@example.com"]
    key = subprocess.run(["openssl", "pkey", "-in", str(world.tmp / "alice-request.key"),
                          "-pubout"], capture_output=True, check=True).stdout
    assert certificate.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo) == key


def _status(browser: Browser) -> str:
    return browser.driver.find_element(By.XPATH, "//dt[.='Status']/following-sibling::dd[1]").text
