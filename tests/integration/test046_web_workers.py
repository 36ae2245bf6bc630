"""Scenario 046: `workers: 2` serves the plain-http site from both workers.

1. Each worker issues its own delegated OCSP responder certificate at start.
2. Forty OCSP requests and forty CRL downloads over separate connections on the
   http port, eight clients at once, are all answered (good, and the CRL the
   data directory published); the access log shows both workers answering.
3. After `certdir ca revoke` (another process) every answer, from either
   worker, says revoked with the reason.
4. `openssl ocsp` verifies an answer against the root.
5. The https site still answers its pages, from the first worker only.
"""

from __future__ import annotations

import http.client
import re
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp

from tests.integration.conftest import Server, database_rows, make_server

ROOT = "Example-Root-CA"
CLIENTS = 8
PER_CLIENT = 5
T = TypeVar("T")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = make_server(tmp_path_factory.mktemp("web-workers"))
    srv.configure(workers=2)
    srv.start()
    deadline = time.monotonic() + 30
    while srv.log().count("OCSP responder certificate") < 2:
        if time.monotonic() > deadline:
            raise RuntimeError(f"no responder certificate per worker:\n{srv.log()}")
        time.sleep(0.05)
    yield srv
    log = srv.stop()
    assert "Traceback" not in log, log


@pytest.fixture(scope="module")
def leaf(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("leaf")
    key, csr, pem = tmp / "leaf.key", tmp / "leaf.csr", tmp / "leaf.pem"
    subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key), "-subj",
                    "/CN=leaf", "-addext", "subjectAltName=DNS:leaf.example.com",
                    "-out", str(csr)], check=True, capture_output=True)
    serial = server.certdir("ca", "issue", "--data-dir", str(server.data_dir), "--csr",
                            str(csr), "--profile", "tls-server").stdout.decode().strip()
    [(der,)] = database_rows(server.data_dir, "SELECT der FROM ca_certificates WHERE serial = ?",
                             serial)
    pem.write_bytes(x509.load_der_x509_certificate(der).public_bytes(Encoding.PEM))
    return pem


def _ocsp_request(server: Server, pem: Path) -> bytes:
    certificate = x509.load_pem_x509_certificate(pem.read_bytes())
    issuer = x509.load_pem_x509_certificate(server.ca_file.read_bytes())
    return (ocsp.OCSPRequestBuilder().add_certificate(certificate, issuer, hashes.SHA1())
            .build().public_bytes(Encoding.DER))


def _post_ocsp(server: Server, der: bytes) -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=30)
    connection.request("POST", "/ocsp", der, {"Content-Type": "application/ocsp-request"})
    answer = connection.getresponse()
    body = answer.read()
    connection.close()
    status = ocsp.load_der_ocsp_response(body)
    return answer.status, status.certificate_status.name


def _get_crl(server: Server) -> tuple[int, str | None, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=30)
    connection.request("GET", f"/{ROOT}.crl")
    answer = connection.getresponse()
    body = answer.read()
    connection.close()
    return answer.status, answer.getheader("Content-Type"), body


def _at_once(call: Callable[[], T]) -> list[T]:
    with ThreadPoolExecutor(CLIENTS) as pool:
        return list(pool.map(lambda _: call(), range(CLIENTS * PER_CLIENT)))


def _answered_by(server: Server, line: str) -> set[str]:
    """The worker prefixes ("" for the first) of the access-log lines naming `line`."""
    return set(re.findall(r"certdir\.access (\[\d+\] )?http 127\.0\.0\.1 " + re.escape(line),
                          server.log()))


def test_every_worker_has_its_responder_certificate(server: Server) -> None:
    assert (server.log().count("OCSP responder certificate"),
            "[1] OCSP responder certificate" in server.log()) == (2, True)


def test_ocsp_and_crls_are_answered_by_both_workers(server: Server, leaf: Path) -> None:
    der = _ocsp_request(server, leaf)
    published = (server.data_dir / "public" / f"{ROOT}.crl").read_bytes()
    answers = _at_once(lambda: _post_ocsp(server, der))
    crls = _at_once(lambda: _get_crl(server))
    assert (set(answers), set(crls), _answered_by(server, '"POST /ocsp" 200'),
            _answered_by(server, f'"GET /{ROOT}.crl" 200')) == (
        {(200, "GOOD")}, {(200, "application/pkix-crl", published)}, {"", "[1] "},
        {"", "[1] "})


def test_a_revocation_shows_on_both_workers_at_once(server: Server, leaf: Path) -> None:
    serial = format(x509.load_pem_x509_certificate(leaf.read_bytes()).serial_number, "x")
    server.certdir("ca", "revoke", "--data-dir", str(server.data_dir), serial,
                   "--reason", "keyCompromise")
    der = _ocsp_request(server, leaf)
    assert set(_at_once(lambda: _post_ocsp(server, der))) == {(200, "REVOKED")}


def test_openssl_verifies_an_answer(server: Server, leaf: Path) -> None:
    done = subprocess.run(["openssl", "ocsp", "-issuer", str(server.ca_file), "-cert",
                           str(leaf), "-url", f"{server.http_url}/ocsp", "-CAfile",
                           str(server.ca_file)], check=False, capture_output=True, text=True,
                          timeout=60)
    assert ("Response verify OK" in done.stderr,
            "revoked" in done.stdout.split(":", 1)[1]) == (True, True)


def test_https_pages_are_served_by_the_first_worker(server: Server) -> None:
    context = ssl.create_default_context(cafile=str(server.ca_file))
    statuses = set()
    for _ in range(10):
        connection = http.client.HTTPSConnection("127.0.0.1", server.https_port,
                                                 context=context, timeout=30)
        connection.request("GET", "/ca")
        statuses.add(connection.getresponse().status)
        connection.close()
    assert (statuses, _answered_by(server, '"GET /ca" 200')) == ({200}, {""})
