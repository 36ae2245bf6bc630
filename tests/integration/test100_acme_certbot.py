"""Scenario 100: certbot (the Debian package) gets, renews and revokes a certificate
from certdir's ACME server (RFC 8555) on the https service.

certdir is the ACME scenarios' (tests/integration/acme_site.py:
`www.certdir.test` resolving to 127.0.0.1, http-01 validated on a free port
where certbot's standalone plugin listens, the `acme` policy module for
tls-server); certbot trusts certdir's CA through REQUESTS_CA_BUNDLE.

1. `certbot certonly --standalone` gets a certificate for www.certdir.test,
   issued by certdir's CA; it names AIA (OCSP, caIssuers) and CRL
   distribution points; fullchain.pem is the certificate and the CA;
   `certdir ca show` has it, valid, profile tls-server.
2. `certbot renew --force-renewal` gets a new certificate (another serial);
   `certdir ca list` has both.
3. The ACME records are in the CA's database: `certdir ca acme list`
   shows the account and its two orders, `ca acme show` the first.
4. `certbot revoke --cert-path` revokes the renewed one; `openssl ocsp`
   against certdir's responder then says revoked, with the reason certbot
   gave; `certdir ca show` says revoked.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509

from tests.integration.acme_site import NAME, acme_site
from tests.integration.conftest import Server, database_rows


@dataclass(frozen=True, slots=True)
class Site:
    server: Server
    http01_port: int
    tmp: Path

    def certbot(self, *args: str) -> subprocess.CompletedProcess[str]:
        state = self.tmp / "certbot"
        return subprocess.run(
            ["certbot", *args, "--non-interactive", "--config-dir", str(state / "config"),
             "--work-dir", str(state / "work"), "--logs-dir", str(state / "logs")],
            check=False, capture_output=True, text=True, timeout=180,
            env={**os.environ, "REQUESTS_CA_BUNDLE": str(self.server.ca_file)})

    @property
    def directory(self) -> str:
        return f"{self.server.https_url}/acme/directory"

    @property
    def live(self) -> Path:
        return self.tmp / "certbot" / "config" / "live" / NAME

    def ca(self, *args: str) -> str:
        """`certdir ca` with `args`, the data directory after the command's words, the
        rest after `--` (an ACME id may start with "-")."""
        words = 2 if args[0] == "acme" else 1
        rest = ("--", *args[words:]) if args[words:] else ()
        return self.server.certdir("ca", *args[:words], "--data-dir", str(self.server.data_dir),
                                   *rest).stdout.decode()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    if shutil.which("certbot") is None:
        pytest.fail("certbot is not installed; `make test` installs it")
    with acme_site(tmp_path_factory.mktemp("acme"), serve=False) as acme:
        yield Site(acme.server, acme.challenges.http_port, acme.tmp)


def _serial(path: Path) -> str:
    return format(x509.load_pem_x509_certificate(path.read_bytes()).serial_number, "x")


@dataclass(frozen=True, slots=True)
class Obtained:
    """What `certbot certonly` left: the certificate (PEM), its serial, fullchain.pem."""

    pem: bytes
    serial: str
    fullchain: bytes


@pytest.fixture(scope="module")
def obtained(site: Site) -> Obtained:
    done = site.certbot("certonly", "--standalone", "--agree-tos", "-m", "admin@example.com",
                        "--server", site.directory, "-d", NAME,
                        "--http-01-port", str(site.http01_port))
    assert done.returncode == 0, done.stdout + done.stderr
    return Obtained((site.live / "cert.pem").read_bytes(), _serial(site.live / "cert.pem"),
                    (site.live / "fullchain.pem").read_bytes())


def _x509_text(pem: bytes) -> str:
    return subprocess.run(["openssl", "x509", "-noout", "-issuer", "-ext",
                           "subjectAltName,authorityInfoAccess,crlDistributionPoints"],
                          input=pem.decode(), capture_output=True, text=True,
                          check=True).stdout


def test_certonly_gets_a_certificate_of_the_ca_for_the_name(obtained: Obtained) -> None:
    text = _x509_text(obtained.pem)
    assert ("CN = Example Root CA" in text, f"DNS:{NAME}" in text) == (True, True), text


def test_the_certificate_names_ocsp_ca_issuers_and_a_crl(obtained: Obtained) -> None:
    text = _x509_text(obtained.pem)
    assert ("OCSP - URI:http://127.0.0.1" in text, "CA Issuers - URI:" in text,
            ".crl" in text) == (True, True, True), text


def test_fullchain_is_the_certificate_and_the_ca(site: Site, obtained: Obtained) -> None:
    assert x509.load_pem_x509_certificates(obtained.fullchain) == [
        x509.load_pem_x509_certificate(obtained.pem),
        x509.load_pem_x509_certificate(site.server.ca_file.read_bytes())]


def test_ca_show_has_it_valid_for_tls_server(site: Site, obtained: Obtained) -> None:
    shown = site.ca("show", obtained.serial)
    assert ("tls-server" in shown, "valid" in shown) == (True, True), shown


@pytest.fixture(scope="module")
def renewed(site: Site, obtained: Obtained) -> str:
    """The serial `certbot renew --force-renewal` got."""
    done = site.certbot("renew", "--force-renewal", "--no-random-sleep-on-renew")
    assert done.returncode == 0, done.stdout + done.stderr
    return _serial(site.live / "cert.pem")


def test_renew_gets_a_new_certificate(obtained: Obtained, renewed: str) -> None:
    assert renewed != obtained.serial


def test_ca_list_has_both(site: Site, obtained: Obtained, renewed: str) -> None:
    listed = site.ca("list")
    assert (obtained.serial in listed, renewed in listed) == (True, True), listed


def test_cli_lists_the_account_and_its_orders(site: Site, renewed: str) -> None:
    listed = site.ca("acme", "list")
    orders = [order for (order,) in database_rows(site.server.data_dir,
                                                    "SELECT id FROM acme_orders")]
    # The account and its two orders.
    assert ("mailto:admin@example.com" in listed, len(orders),
            all(order in listed for order in orders), listed.count("valid") >= 3) == (
        True, 2, True, True), listed


def test_cli_shows_an_order(site: Site, renewed: str) -> None:
    [(order,)] = database_rows(site.server.data_dir,
                               "SELECT id FROM acme_orders ORDER BY created LIMIT 1")
    shown = site.ca("acme", "show", order)
    assert (NAME in shown, "valid" in shown) == (True, True), shown


@pytest.fixture(scope="module")
def revoked(site: Site, renewed: str) -> Path:
    """cert.pem (the renewed certificate) after `certbot revoke`, reason keyCompromise."""
    done = site.certbot("revoke", "--cert-path", str(site.live / "cert.pem"), "--server",
                        site.directory, "--reason", "keycompromise",
                        "--no-delete-after-revoke")
    assert done.returncode == 0, done.stdout + done.stderr
    return site.live / "cert.pem"


def test_revoke_is_answered_by_ocsp(site: Site, revoked: Path) -> None:
    ca = str(site.server.ca_file)
    ocsp = subprocess.run(["openssl", "ocsp", "-issuer", ca, "-cert", str(revoked), "-url",
                           f"{site.server.http_url}/ocsp", "-CAfile", ca], check=False,
                          capture_output=True, text=True, timeout=30)
    assert (": revoked" in ocsp.stdout, "Reason: keyCompromise" in ocsp.stdout) == (
        True, True), ocsp.stdout + ocsp.stderr


def test_ca_show_says_revoked(site: Site, revoked: Path) -> None:
    assert "revoked" in site.ca("show", _serial(revoked))
