"""Scenario 040: the OCSP responder at <base_url>/ocsp (RFC 6960, RFC 5019), asked by
`openssl ocsp` and curl.

1. For a leaf of a root CA and a leaf of a sub-CA (root -> issuing CA, made as in
   scenario 021), `openssl ocsp -issuer CA.pem -cert leaf.pem -url <http>/ocsp
   -CAfile root.pem` says good and "Response verify OK", with and without
   `-no_nonce`; a serial never issued is unknown.
2. Revoked from the CLI (`certdir ca revoke`, another process) while the server
   runs, and after a cached good answer: the next answer is revoked with the
   reason; certificateHold is revoked with reason certificateHold, `ca release`
   makes it good again.
3. GET `/ocsp/<base64, URL-encoded>` with curl: 200 application/ocsp-response with
   RFC 5019 §6.2 headers (max-age, Last-Modified, Expires, ETag) that openssl
   reads as good; If-None-Match with the ETag gets 304.
4. Bad DER, an empty GET and two requests in one are malformedRequest; a CertID
   of a foreign CA, and of the sub-CA's
   parent (whose key it does not hold), is unauthorized; POST with another
   content type is 415.
5. The same responder answers on https.
6. `ca.ocsp.signer: ca`: the response is signed by the CA itself (its responder
   ID is the CA key's hash) and still verifies.
"""

from __future__ import annotations

import base64
import hashlib
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from tests.integration.conftest import SUFFIX, Server, database_rows, make_server

ISSUING_NAME = f"cn=Example Issuing CA,{SUFFIX}"


def ca(server: Server, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    return server.certdir("ca", args[0], "--data-dir", str(server.data_dir), *args[1:],
                          check=check)


def wait_for_responder(server: Server, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while "OCSP responder certificate" not in server.log():
        if time.monotonic() > deadline:
            raise RuntimeError(f"no OCSP responder certificate:\n{server.log()}")
        time.sleep(0.05)


@dataclass(frozen=True, slots=True)
class CA:
    """A served CA: its server, its certificate file and the root to trust."""
    server: Server
    certificate: Path
    root: Path
    tmp: Path

    def leaf(self, name: str) -> tuple[str, Path]:
        """A tls-server certificate issued with `certdir ca issue`: serial, PEM file."""
        key, csr = self.tmp / f"{name}.key", self.tmp / f"{name}.csr"
        subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key), "-subj",
                        f"/CN={name}", "-addext", f"subjectAltName=DNS:{name}.example.com",
                        "-out", str(csr)], check=True, capture_output=True)
        serial = ca(self.server, "issue", "--csr", str(csr), "--profile",
                    "tls-server").stdout.decode().strip()
        [(der,)] = database_rows(self.server.data_dir,
                                 "SELECT der FROM ca_certificates WHERE serial = ?", serial)
        pem = self.tmp / f"{name}.pem"
        pem.write_bytes(x509.load_der_x509_certificate(der).public_bytes(Encoding.PEM))
        return serial, pem

    def ask(self, *target: str, nonce: bool = True, issuer: Path | None = None,
            url: str | None = None) -> subprocess.CompletedProcess[str]:
        args = ["openssl", "ocsp", "-issuer", str(issuer or self.certificate), *target,
                "-url", f"{url or self.server.http_url}/ocsp", "-CAfile", str(self.root)]
        if not nonce:
            args.append("-no_nonce")
        return subprocess.run(args, check=False, capture_output=True, text=True, timeout=60)

    def ask_cert(self, pem: Path, nonce: bool = True) -> str:
        done = self.ask("-cert", str(pem), nonce=nonce)
        assert "Response verify OK" in done.stderr, done.stderr
        return done.stdout


def served(server: Server, certificate: Path, root: Path, tmp: Path,
           delegated: bool = True) -> CA:
    server.start()
    if delegated:
        wait_for_responder(server)
    return CA(server, certificate, root, tmp)


def stop(server: Server) -> None:
    log = server.stop()
    assert "Traceback" not in log, log


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CA]:
    server = make_server(tmp_path_factory.mktemp("root"))
    public = server.data_dir / "public" / "ca.pem"
    yield served(server, public, public, tmp_path_factory.mktemp("root-leaves"))
    stop(server)


@pytest.fixture(scope="module")
def sub(root: CA, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CA]:
    tmp = tmp_path_factory.mktemp("sub-leaves")
    server = make_server(tmp_path_factory.mktemp("issuing"), "--no-ca")
    ca(server, "request-sub", "--name", ISSUING_NAME, "--out", str(tmp / "issuing.csr"))
    ca(root.server, "sign-sub", "--csr", str(tmp / "issuing.csr"),
       "--out", str(tmp / "issuing.answer"))
    ca(server, "install-sub", str(tmp / "issuing.answer"))
    issuing = server.data_dir / "public" / "Example-Issuing-CA.pem"
    yield served(server, issuing, root.root, tmp)
    stop(server)


@pytest.fixture(scope="module")
def ca_signed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CA]:
    server = make_server(tmp_path_factory.mktemp("ca-signed"))
    server.configure("ca", ocsp={"signer": "ca"})
    public = server.data_dir / "public" / "ca.pem"
    yield served(server, public, public, tmp_path_factory.mktemp("ca-signed-leaves"),
                 delegated=False)
    stop(server)


@pytest.fixture(params=["root", "sub"])
def any_ca(request: pytest.FixtureRequest) -> CA:
    found: CA = request.getfixturevalue(request.param)
    return found


NONCE = pytest.mark.parametrize("nonce", [True, False], ids=["nonce", "no_nonce"])


@NONCE
def test_good(any_ca: CA, nonce: bool) -> None:
    _, pem = any_ca.leaf(f"good-{nonce}")
    assert f"{pem}: good" in any_ca.ask_cert(pem, nonce)


@NONCE
def test_nonce_echoed_only_when_sent(any_ca: CA, nonce: bool) -> None:
    _, pem = any_ca.leaf(f"nonce-{nonce}")
    done = any_ca.ask("-cert", str(pem), "-resp_text", nonce=nonce)
    assert ("OCSP Nonce" in done.stdout) is nonce


@NONCE
def test_unknown_serial(any_ca: CA, nonce: bool) -> None:
    done = any_ca.ask("-serial", "0x123456789abcdef", nonce=nonce)
    assert "0x123456789abcdef: unknown" in done.stdout, done.stdout + done.stderr


@NONCE
def test_revoked_from_the_cli_while_serving(any_ca: CA, nonce: bool) -> None:
    serial, pem = any_ca.leaf(f"revoked-{nonce}")
    assert f"{pem}: good" in any_ca.ask_cert(pem, nonce)
    ca(any_ca.server, "revoke", serial, "--reason", "keyCompromise")
    answer = any_ca.ask_cert(pem, nonce)
    assert f"{pem}: revoked" in answer
    assert "Reason: keyCompromise" in answer


def test_hold_then_release(any_ca: CA) -> None:
    serial, pem = any_ca.leaf("held")
    assert f"{pem}: good" in any_ca.ask_cert(pem, nonce=False)
    ca(any_ca.server, "revoke", serial, "--reason", "certificateHold")
    held = any_ca.ask_cert(pem, nonce=False)
    assert f"{pem}: revoked" in held
    assert "Reason: certificateHold" in held
    ca(any_ca.server, "release", serial)
    assert f"{pem}: good" in any_ca.ask_cert(pem, nonce=False)


def curl(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["curl", "-sS", *args], check=True, capture_output=True, timeout=60)


def headers(dump: Path) -> dict[str, str]:
    lines = dump.read_bytes().decode().split("\r\n")
    found = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            found[name.strip().lower()] = value.strip()
    found["status"] = lines[0].split()[1]
    return found


def read_response(issuer: CA, answer: Path, pem: Path) -> str:
    """What openssl makes of a response fetched by curl (for a request without nonce)."""
    checked = subprocess.run(["openssl", "ocsp", "-respin", str(answer), "-issuer",
                              str(issuer.certificate), "-cert", str(pem), "-CAfile",
                              str(issuer.root), "-no_nonce"], check=True, capture_output=True,
                             text=True)
    assert "Response verify OK" in checked.stderr, checked.stderr
    return checked.stdout


def test_get_with_caching_headers(root: CA) -> None:
    _, pem = root.leaf("get")
    request = root.tmp / "get.req"
    subprocess.run(["openssl", "ocsp", "-issuer", str(root.certificate), "-cert", str(pem),
                    "-no_nonce", "-reqout", str(request)], check=True, capture_output=True)
    encoded = quote(base64.b64encode(request.read_bytes()).decode(), safe="")
    url = f"{root.server.http_url}/ocsp/{encoded}"
    dump, body = root.tmp / "get.headers", root.tmp / "get.resp"
    curl("-D", str(dump), "-o", str(body), url)
    got = headers(dump)
    assert (got["status"], got["content-type"]) == ("200", "application/ocsp-response")
    max_age = int(got["cache-control"].split(",")[0].removeprefix("max-age="))
    assert 86000 < max_age <= 86400
    assert got["etag"] == f'"{hashlib.sha256(body.read_bytes()).hexdigest()}"'
    assert got["last-modified"] and got["expires"]
    assert f"{pem}: good" in read_response(root, body, pem)
    again = root.tmp / "again.headers"
    curl("-D", str(again), "-o", "/dev/null", "-H", f"If-None-Match: {got['etag']}", url)
    assert headers(again)["status"] == "304"


def posted(server_url: str, body: bytes, tmp: Path, *extra: str) -> Path:
    sent, answer = tmp / "posted.der", tmp / "answer.der"
    sent.write_bytes(body)
    curl("-o", str(answer), "-H", "Content-Type: application/ocsp-request",
         "--data-binary", f"@{sent}", *extra, f"{server_url}/ocsp")
    return answer


def response_status(answer: Path) -> str:
    done = subprocess.run(["openssl", "ocsp", "-respin", str(answer), "-resp_text",
                           "-noverify"], check=False, capture_output=True, text=True)
    return done.stdout + done.stderr


def test_bad_der_is_malformed(root: CA) -> None:
    answer = posted(root.server.http_url, b"\x30\x82\xff\xff not DER", root.tmp)
    assert "Responder Error: malformedrequest (1)" in response_status(answer)


def test_two_requests_in_one_is_malformed(root: CA) -> None:
    request = root.tmp / "two.req"
    subprocess.run(["openssl", "ocsp", "-issuer", str(root.certificate), "-serial", "0x01",
                    "-serial", "0x02", "-no_nonce", "-reqout", str(request)], check=True,
                   capture_output=True)
    answer = posted(root.server.http_url, request.read_bytes(), root.tmp)
    assert "Responder Error: malformedrequest (1)" in response_status(answer)


def test_empty_get_is_malformed(root: CA) -> None:
    answer = root.tmp / "empty.der"
    curl("-o", str(answer), f"{root.server.http_url}/ocsp/")
    assert "Responder Error: malformedrequest (1)" in response_status(answer)


def test_other_content_type_is_415(root: CA) -> None:
    done = curl("-o", "/dev/null", "-w", "%{http_code}", "-H", "Content-Type: text/plain",
                "--data-binary", "x", f"{root.server.http_url}/ocsp")
    assert done.stdout == b"415"


def test_foreign_ca_is_unauthorized(root: CA) -> None:
    foreign_key, foreign = root.tmp / "foreign.key", root.tmp / "foreign.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(foreign_key), "-subj",
                    "/CN=Foreign CA", "-days", "1", "-out", str(foreign)],
                   check=True, capture_output=True)
    done = root.ask("-serial", "0x01", issuer=foreign)
    assert "Responder Error: unauthorized (6)" in done.stdout + done.stderr


def test_parent_of_the_sub_ca_is_unauthorized(sub: CA) -> None:
    issuing = x509.load_pem_x509_certificate(sub.certificate.read_bytes())
    done = sub.ask("-serial", hex(issuing.serial_number), issuer=sub.root)
    assert "Responder Error: unauthorized (6)" in done.stdout + done.stderr


def test_served_on_https(root: CA) -> None:
    _, pem = root.leaf("https")
    request = root.tmp / "https.req"
    subprocess.run(["openssl", "ocsp", "-issuer", str(root.certificate), "-cert", str(pem),
                    "-no_nonce", "-reqout", str(request)], check=True, capture_output=True)
    answer = posted(root.server.https_url, request.read_bytes(), root.tmp,
                    "--cacert", str(root.root))
    assert f"{pem}: good" in read_response(root, answer, pem)


def test_ca_signer(ca_signed: CA) -> None:
    serial, pem = ca_signed.leaf("by-ca")
    done = ca_signed.ask("-cert", str(pem), "-resp_text")
    assert "Response verify OK" in done.stderr, done.stderr
    assert f"{pem}: good" in done.stdout
    key = x509.load_pem_x509_certificate(ca_signed.certificate.read_bytes()).public_key()
    key_hash = x509.SubjectKeyIdentifier.from_public_key(key).digest.hex().upper()
    assert f"Responder Id: {key_hash}" in done.stdout
    ca(ca_signed.server, "revoke", serial, "--reason", "superseded")
    assert "Reason: superseded" in ca_signed.ask_cert(pem)
