"""POST /kms/enroll served by twisted.web in the test reactor, called over real sockets.

The redemption behind the endpoint is the test's own handler; the blocking
clients (post_enrollment, http.client) run in a thread.
"""

from __future__ import annotations

import datetime as dt
import http.client
import ipaddress
import json
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ParamSpec

import pytest
import pytest_twisted  # type: ignore[import-untyped]
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from twisted.internet import reactor as installed_reactor
from twisted.internet import ssl
from twisted.internet.defer import Deferred, fail
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread
from twisted.web.server import Site

from kms.errors import KMSError
from kms.web import MAX_BODY, enroll_resource, post_enrollment

P = ParamSpec("P")

# The asyncio reactor pytest-twisted installed; its interfaces are not declared.
reactor: Any = installed_reactor

GOOD = "ct-good"
USED = "ct-used"
BROKEN = "ct-broken"
CSR = b"-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n"
BUNDLE = b"0\x82\x01\x00 not really PKCS#12 \x00\xff"
PATH = "/kms/enroll"


def twisted_test(test: Callable[P, Coroutine[Any, Any, None]]) -> Callable[P, Deferred[None]]:
    """pytest_twisted.ensureDeferred, with the types it does not declare."""
    decorated: Callable[P, Deferred[None]] = pytest_twisted.ensureDeferred(test)
    return decorated


@dataclass
class Redeemer:
    """Stands in for the KMS: one token works, the others fail in each possible way."""

    calls: list[tuple[str, bytes, bytes]] = field(default_factory=list)

    def __call__(self, token: str, csr: bytes, password: bytes) -> Deferred[bytes]:
        self.calls.append((token, csr, password))
        if token == GOOD:
            later: Deferred[bytes] = deferLater(reactor, 0, lambda: BUNDLE)
            return later
        if token == USED:
            return fail(KMSError(f"token {token} already used"))
        if token == BROKEN:
            raise RuntimeError("a bug, not a refusal")
        raise KMSError("not a certdir token")


@dataclass(frozen=True)
class Endpoint:
    port: int
    redeemer: Redeemer

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{PATH}"


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    redeemer = Redeemer()
    listening = reactor.listenTCP(0, Site(enroll_resource(redeemer)), interface="127.0.0.1")
    try:
        yield Endpoint(listening.getHost().port, redeemer)
    finally:
        listening.stopListening()


@dataclass(frozen=True)
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes


def _raw(
    port: int, method: str, body: bytes = b"", content_type: str | None = None, path: str = PATH
) -> Answer:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {} if content_type is None else {"Content-Type": content_type}
    try:
        connection.request(method, path, body=body or None, headers=headers)
        response = connection.getresponse()
        return Answer(response.status, response.headers, response.read())
    finally:
        connection.close()


def raw(
    port: int, method: str, body: bytes = b"", content_type: str | None = None, path: str = PATH
) -> Deferred[Answer]:
    answer: Deferred[Answer] = deferToThread(_raw, port, method, body, content_type, path)
    return answer


def post(url: str, token: str, password: bytes = b"pw", ca_file: Path | None = None) -> Any:
    return deferToThread(post_enrollment, url, token, CSR, password, ca_file)


@twisted_test
async def test_redemption_returns_the_bundle(endpoint: Endpoint) -> None:
    password = b"p\xe4ss word&=+"
    bundle = await post(endpoint.url, GOOD, password)
    assert bundle == BUNDLE
    assert endpoint.redeemer.calls == [(GOOD, CSR, password)]


@twisted_test
async def test_json_body_and_response_headers(endpoint: Endpoint) -> None:
    body = json.dumps({"token": GOOD, "csr": CSR.decode(), "p12_password": "sécret"}).encode()
    answer = await raw(endpoint.port, "POST", body, "application/json; charset=utf-8")
    assert answer.status == 200
    assert answer.headers["Content-Type"] == "application/x-pkcs12"
    assert answer.headers["Cache-Control"] == "no-store"
    assert answer.body == BUNDLE
    assert endpoint.redeemer.calls == [(GOOD, CSR, "sécret".encode())]


@twisted_test
async def test_multipart_form(endpoint: Endpoint) -> None:
    boundary = "certdir-boundary"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        + value
        + b"\r\n"
        for name, value in (("token", GOOD.encode()), ("csr", CSR), ("p12_password", b"pw"))
    ]
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    answer = await raw(endpoint.port, "POST", body, f"multipart/form-data; boundary={boundary}")
    assert (answer.status, answer.body) == (200, BUNDLE)
    assert endpoint.redeemer.calls == [(GOOD, CSR, b"pw")]


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("garbage", "not a certdir token"),
        (USED, f"token {USED} already used"),
    ],
    ids=["raised", "errback"],
)
@twisted_test
async def test_kms_refusal_is_400_with_its_reason(
    endpoint: Endpoint, token: str, reason: str
) -> None:
    with pytest.raises(KMSError) as refused:
        await post(endpoint.url, token)
    assert str(refused.value) == reason
    answer = await raw(
        endpoint.port,
        "POST",
        f"token={token}&csr=x&p12_password=y".encode(),
        "application/x-www-form-urlencoded",
    )
    assert answer.status == 400
    assert answer.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert answer.body == reason.encode() + b"\n"


@twisted_test
async def test_failure_other_than_a_refusal_is_500(endpoint: Endpoint) -> None:
    with pytest.raises(KMSError, match="answered 500"):
        await post(endpoint.url, BROKEN)


@twisted_test
async def test_other_methods_are_405(endpoint: Endpoint) -> None:
    answer = await raw(endpoint.port, "GET")
    assert answer.status == 405
    assert answer.headers["Allow"] == "POST"
    assert endpoint.redeemer.calls == []


@twisted_test
async def test_oversized_body_is_413(endpoint: Endpoint) -> None:
    body = b"token=" + GOOD.encode() + b"&csr=" + b"A" * MAX_BODY + b"&p12_password=pw"
    answer = await raw(endpoint.port, "POST", body, "application/x-www-form-urlencoded")
    assert answer.status == 413
    assert endpoint.redeemer.calls == []


@pytest.mark.parametrize(
    ("body", "content_type", "path", "status", "reason"),
    [
        (
            b"token=ct-good&csr=x",
            "application/x-www-form-urlencoded",
            PATH,
            400,
            b"missing p12_password",
        ),
        (
            b'{"token": "ct-good", "csr": 1, "p12_password": "x"}',
            "application/json",
            PATH,
            400,
            b"must be JSON strings",
        ),
        (b"[1]", "application/json", PATH, 400, b"must be an object"),
        (b"{", "application/json", PATH, 400, b"not JSON"),
        (b"hello", "text/plain", PATH, 415, b"form or a JSON object"),
        (
            b"csr=x&p12_password=y",
            "application/x-www-form-urlencoded",
            PATH + "?token=ct-good",
            400,
            b"no query string",
        ),
    ],
    ids=["missing-field", "json-types", "json-array", "not-json", "media-type", "query"],
)
@twisted_test
async def test_malformed_requests(
    endpoint: Endpoint, body: bytes, content_type: str, path: str, status: int, reason: bytes
) -> None:
    answer = await raw(endpoint.port, "POST", body, content_type, path)
    assert answer.status == status
    assert reason in answer.body
    assert endpoint.redeemer.calls == []


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://kms.example.com/kms/enroll", "refusing to send the token and bundle password"),
        ("ftp://127.0.0.1/kms/enroll", "not an http or https URL"),
        ("file:///etc/passwd", "not an http or https URL"),
    ],
)
def test_client_refuses_unsafe_urls(url: str, reason: str) -> None:
    with pytest.raises(KMSError, match=reason):
        post_enrollment(url, GOOD, CSR, b"pw")


def test_unreachable_kms() -> None:
    with pytest.raises(KMSError, match=r"cannot reach the KMS at http://127\.0\.0\.1:9/"):
        post_enrollment("http://127.0.0.1:9/kms/enroll", GOOD, CSR, b"pw")


def _self_signed(common_name: str) -> tuple[bytes, bytes]:
    """A certificate for 127.0.0.1 that is its own trust anchor, and its key (PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    return certificate.public_bytes(pem), key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@twisted_test
async def test_https_verifies_the_server_against_the_ca_file(tmp_path: Path) -> None:
    certificate, key = _self_signed("127.0.0.1")
    (tmp_path / "kms.pem").write_bytes(certificate)
    (tmp_path / "stranger.pem").write_bytes(_self_signed("someone else")[0])
    options = ssl.PrivateCertificate.loadPEM(certificate + key).options()
    redeemer = Redeemer()
    listening = reactor.listenSSL(
        0, Site(enroll_resource(redeemer)), options, interface="127.0.0.1"
    )
    url = f"https://127.0.0.1:{listening.getHost().port}{PATH}"
    try:
        assert await post(url, GOOD, ca_file=tmp_path / "kms.pem") == BUNDLE
        with pytest.raises(KMSError, match=r"cannot reach the KMS .*CERTIFICATE_VERIFY_FAILED"):
            await post(url, GOOD, ca_file=tmp_path / "stranger.pem")
    finally:
        await listening.stopListening()
    assert [token for token, _, _ in redeemer.calls] == [GOOD]
