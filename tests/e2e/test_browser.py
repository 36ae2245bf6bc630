"""The browser set-up is honest, and every page is usable by keyboard and screen reader.

- The browser trusts the server's CA and nothing else: a server whose
  certificate the CA did not issue gets Chromium's privacy error page.
- JavaScript is off: a page script does not run.
- On every page (as a visitor, a person logged in and a CA officer see
  it) Tab reaches every input and button, the skip link first, and every
  input, text area and select is named by a `<label for>`; buttons by
  their text; a person logs in with the keyboard alone.
"""

from __future__ import annotations

import datetime as dt
import http.server
import ipaddress
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys

from tests.e2e.conftest import OFFICER, REQUESTER, Browser, World, signing_csr

# The pages with forms, and who looks at them: None is a visitor not logged in.
PAGES = [
    ("/login", None),
    ("/people", None),
    ("/kms/redeem", None),
    ("/request", REQUESTER),
    ("/requests", REQUESTER),
    ("/officer", OFFICER),
]


def _stranger_certificate(folder: Path) -> Path:
    """A self-signed certificate for 127.0.0.1 (key and certificate in one PEM file)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "stranger")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(key, hashes.SHA256()))
    path = folder / "stranger.pem"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption())
                     + certificate.public_bytes(serialization.Encoding.PEM))
    return path


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<!DOCTYPE html><title>hello</title><p>hello"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def stranger(tmp_path: Path) -> Iterator[str]:
    """An https server on 127.0.0.1 whose certificate our CA did not issue."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(_stranger_certificate(tmp_path))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_our_server_is_trusted(browser: Browser) -> None:
    browser.open("/kms/redeem")
    assert browser.driver.title == "Redeem an enrollment token · certdir Certificate Server"


def test_a_stranger_is_not_trusted(browser: Browser, stranger: str) -> None:
    browser.driver.get(stranger)
    assert browser.driver.title == "Privacy error"


def test_javascript_is_off(browser: Browser, tmp_path: Path) -> None:
    page = tmp_path / "script.html"
    page.write_text("<!DOCTYPE html><title>script off</title>"
                    "<script>document.title = 'script ran'</script>")
    browser.driver.get(page.as_uri())
    assert browser.driver.title == "script off"


@pytest.fixture(scope="module")
def pending(world: World) -> None:
    """A request waiting in the officer's queue, so the queue's forms are on the page."""
    csr = signing_csr(world.tmp, "queued")
    world.cli("ca", "submit", "--csr", str(csr), "--profile", "smime-user", "--entry",
              f"uid=dave,{REQUESTER.partition(',')[2]}")


def _visit(world: World, browser: Browser, path: str, who: str | None) -> None:
    if who is not None:
        browser.log_in(who, world.password(who))
    browser.open(path)


@pytest.mark.parametrize(("path", "who"), PAGES, ids=[f"{p} {w or 'visitor'}" for p, w in PAGES])
def test_every_control_has_a_label(world: World, browser: Browser, pending: None, path: str,
                                   who: str | None) -> None:
    _visit(world, browser, path, who)
    assert browser.controls(), f"{path} has no form"
    assert browser.unlabelled() == []


@pytest.mark.parametrize(("path", "who"), PAGES, ids=[f"{p} {w or 'visitor'}" for p, w in PAGES])
def test_tab_reaches_every_control(world: World, browser: Browser, pending: None, path: str,
                                   who: str | None) -> None:
    _visit(world, browser, path, who)
    reached = browser.tab_order()
    assert reached[0].get_attribute("textContent") == "Skip to the content"
    missed = [c.get_attribute("outerHTML") for c in browser.controls() if c not in reached]
    assert missed == []


def test_log_in_with_the_keyboard_alone(world: World, browser: Browser) -> None:
    browser.open("/login")
    keys = ActionChains(browser.driver)
    for _ in range(len(browser.tab_order())):
        if browser.driver.switch_to.active_element.get_attribute("id") == "name":
            break
        keys.send_keys(Keys.TAB).perform()
    assert browser.driver.switch_to.active_element.get_attribute("id") == "name"
    browser.navigate(keys.send_keys("alice@example.com", Keys.TAB, world.password(REQUESTER),
                                    Keys.ENTER).perform)
    assert browser.heading == "My requests"
