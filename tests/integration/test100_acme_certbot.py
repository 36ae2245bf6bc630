"""Scenario 100: certbot (the Debian package) gets, renews and revokes a certificate
from certdir's ACME server (RFC 8555) on the https service.

certdir is the ACME scenarios' (tests/integration/acme_site.py:
`www.certdir.test` resolving to 127.0.0.1, http-01 validated on a free port
where certbot's standalone plugin listens, the `acme` policy module for
tls-server); certbot trusts certdir's CA through REQUESTS_CA_BUNDLE.

1. `certbot certonly --standalone` gets a certificate for www.certdir.test:
   issued by certdir's CA, that name in its SAN, AIA (OCSP, caIssuers) and
   CRL distribution points present; fullchain.pem is the certificate and
   the CA; `certdir ca list` and `ca show` have it, profile tls-server.
2. `certbot renew --force-renewal` gets a new certificate (another serial),
   recorded too.
3. `certbot revoke --cert-path` revokes it; `openssl ocsp` against
   certdir's responder then says revoked, with the reason certbot gave;
   `certdir ca show` says revoked.
4. The ACME records are in the CA's database: `certdir ca acme list`
   shows the account and its orders, `ca acme show` one of them.
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
        """`certdir ca` with `args`, the data directory after the command's words."""
        words = 2 if args[0] == "acme" else 1
        return self.server.certdir("ca", *args[:words], "--data-dir", str(self.server.data_dir),
                                   *args[words:]).stdout.decode()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    if shutil.which("certbot") is None:
        pytest.fail("certbot is not installed; `make test` installs it")
    with acme_site(tmp_path_factory.mktemp("acme"), serve=False) as acme:
        yield Site(acme.server, acme.challenges.http_port, acme.tmp)


def _serial(path: Path) -> str:
    return format(x509.load_pem_x509_certificate(path.read_bytes()).serial_number, "x")


def test_certonly_gets_a_certificate(site: Site) -> None:
    done = site.certbot("certonly", "--standalone", "--agree-tos", "-m", "admin@example.com",
                        "--server", site.directory, "-d", NAME,
                        "--http-01-port", str(site.http01_port))
    assert done.returncode == 0, done.stdout + done.stderr
    text = subprocess.run(["openssl", "x509", "-in", str(site.live / "cert.pem"), "-noout",
                           "-issuer", "-ext", "subjectAltName,authorityInfoAccess,"
                           "crlDistributionPoints"], capture_output=True, text=True,
                          check=True).stdout
    assert "CN = Example Root CA" in text
    assert f"DNS:{NAME}" in text
    assert "OCSP - URI:http://127.0.0.1" in text and "CA Issuers - URI:" in text
    assert ".crl" in text
    chain = x509.load_pem_x509_certificates((site.live / "fullchain.pem").read_bytes())
    root = x509.load_pem_x509_certificate(site.server.ca_file.read_bytes())
    assert chain[1:] == [root]
    serial = _serial(site.live / "cert.pem")
    assert serial in site.ca("list")
    shown = site.ca("show", serial)
    assert "tls-server" in shown and "valid" in shown


def test_renew_gets_a_new_certificate(site: Site) -> None:
    before = _serial(site.live / "cert.pem")
    done = site.certbot("renew", "--force-renewal", "--no-random-sleep-on-renew")
    assert done.returncode == 0, done.stdout + done.stderr
    after = _serial(site.live / "cert.pem")
    assert after != before
    listed = site.ca("list")
    assert before in listed and after in listed


def test_revoke_is_answered_by_ocsp(site: Site) -> None:
    serial = _serial(site.live / "cert.pem")
    done = site.certbot("revoke", "--cert-path", str(site.live / "cert.pem"), "--server",
                        site.directory, "--reason", "keycompromise",
                        "--no-delete-after-revoke")
    assert done.returncode == 0, done.stdout + done.stderr
    ca = str(site.server.ca_file)
    ocsp = subprocess.run(["openssl", "ocsp", "-issuer", ca, "-cert",
                           str(site.live / "cert.pem"), "-url", f"{site.server.http_url}/ocsp",
                           "-CAfile", ca], check=False, capture_output=True, text=True,
                          timeout=30)
    assert ": revoked" in ocsp.stdout, ocsp.stdout + ocsp.stderr
    assert "Reason: keyCompromise" in ocsp.stdout
    assert "revoked" in site.ca("show", serial)


def test_cli_lists_the_account_and_orders(site: Site) -> None:
    listed = site.ca("acme", "list")
    assert "mailto:admin@example.com" in listed
    assert listed.count("valid") >= 3  # the account and its two orders
    [(order,)] = database_rows(site.server.data_dir,
                               "SELECT id FROM acme_orders ORDER BY created LIMIT 1")
    assert order in listed
    shown = site.ca("acme", "show", order)
    assert NAME in shown and "valid" in shown
