"""POST /kms/enroll served by twisted.web over TLS in the test reactor, called over real sockets.

The /kms resource is mounted under a root as the web service mounts it; the
redemption behind it is the test's own handler; the blocking clients
(post_enrollment, http.client) run in a thread and trust the test's
self-signed certificate through a CA file.
"""

from __future__ import annotations

import datetime as dt
import http.client
import ipaddress
import json
import ssl as std_ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from twisted.internet import reactor as installed_reactor
from twisted.internet import ssl
from twisted.internet.defer import Deferred, fail
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread
from twisted.web.resource import Resource
from twisted.web.server import Site
from twisted.web.util import Redirect

from kms.enrollment import Enrollment
from kms.errors import KMSError
from kms.web import MAX_BODY, enroll_resource, post_enrollment

# The asyncio reactor pytest-twisted installed; its interfaces are not declared.
reactor: Any = installed_reactor

GOOD = "ct-good"
USED = "ct-used"
BROKEN = "ct-broken"
CSR = b"-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n"
BUNDLE = b"0\x82\x01\x00 not really PKCS#12 \x00\xff"
PATH = "/kms/enroll"
MAIL = "erin.o'neil@example.com"


@dataclass
class Redeemer:
    """Stands in for the KMS: one token works, the others fail in each possible way."""

    calls: list[tuple[str, bytes, bytes]] = field(default_factory=list)

    def __call__(self, token: str, csr: bytes, password: bytes) -> Deferred[Enrollment]:
        self.calls.append((token, csr, password))
        if token == GOOD:
            certificate = x509.load_pem_x509_certificate(_self_signed("Erin", MAIL)[0])
            done = Enrollment("uid=erin", certificate, certificate, BUNDLE)
            later: Deferred[Enrollment] = deferLater(reactor, 0, lambda: done)
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
    ca_file: Path

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}{PATH}"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """The server's self-signed certificate as a CA file, and its TLS options."""
    certificate, key = _self_signed("127.0.0.1")
    ca_file = tmp_path_factory.mktemp("tls") / "kms.pem"
    ca_file.write_bytes(certificate)
    return ca_file, ssl.PrivateCertificate.loadPEM(certificate + key).options()


@pytest.fixture
def endpoint(tls: tuple[Path, Any]) -> Iterator[Endpoint]:
    redeemer = Redeemer()
    root = Resource()
    root.putChild(b"kms", enroll_resource(redeemer))
    root.putChild(b"moved", Redirect(b"https://kms.example.com/kms/enroll"))
    listening = reactor.listenSSL(0, Site(root), tls[1], interface="127.0.0.1")
    try:
        yield Endpoint(listening.getHost().port, redeemer, tls[0])
    finally:
        listening.stopListening()


@dataclass(frozen=True)
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes


def _raw(
    endpoint: Endpoint, method: str, body: bytes, content_type: str | None, path: str
) -> Answer:
    context = std_ssl.create_default_context(cafile=endpoint.ca_file)
    connection = http.client.HTTPSConnection("127.0.0.1", endpoint.port, timeout=30,
                                             context=context)
    headers = {} if content_type is None else {"Content-Type": content_type}
    try:
        connection.request(method, path, body=body or None, headers=headers)
        response = connection.getresponse()
        return Answer(response.status, response.headers, response.read())
    finally:
        connection.close()


def raw(
    endpoint: Endpoint, method: str, body: bytes = b"", content_type: str | None = None,
    path: str = PATH
) -> Deferred[Answer]:
    answer: Deferred[Answer] = deferToThread(_raw, endpoint, method, body, content_type, path)
    return answer


def post(url: str, token: str, password: bytes = b"pw", ca_file: Path | None = None) -> Any:
    return deferToThread(post_enrollment, url, token, CSR, password, ca_file)


@pytest_twisted.ensureDeferred
async def test_redemption_returns_the_bundle(endpoint: Endpoint) -> None:
    password = b"p\xe4ss word&=+"
    bundle = await post(endpoint.url, GOOD, password, endpoint.ca_file)
    assert bundle == BUNDLE
    assert endpoint.redeemer.calls == [(GOOD, CSR, password)]


@pytest_twisted.ensureDeferred
async def test_json_body_and_response_headers(endpoint: Endpoint) -> None:
    body = json.dumps({"token": GOOD, "csr": CSR.decode(), "p12_password": "sécret"}).encode()
    answer = await raw(endpoint, "POST", body, "application/json; charset=utf-8")
    assert answer.status == 200
    assert answer.headers["Content-Type"] == "application/x-pkcs12"
    assert answer.headers["Cache-Control"] == "no-store"
    assert answer.headers["Content-Disposition"] == (
        'attachment; filename="erin.o_neil@example.com.p12"')
    assert answer.body == BUNDLE
    assert endpoint.redeemer.calls == [(GOOD, CSR, "sécret".encode())]


@pytest_twisted.ensureDeferred
async def test_multipart_form(endpoint: Endpoint) -> None:
    boundary = "certdir-boundary"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        + value
        + b"\r\n"
        for name, value in (("token", GOOD.encode()), ("csr", CSR), ("p12_password", b"pw"))
    ]
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    answer = await raw(endpoint, "POST", body, f"multipart/form-data; boundary={boundary}")
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
@pytest_twisted.ensureDeferred
async def test_kms_refusal_is_400_with_its_reason(
    endpoint: Endpoint, token: str, reason: str
) -> None:
    with pytest.raises(KMSError) as refused:
        await post(endpoint.url, token, ca_file=endpoint.ca_file)
    assert str(refused.value) == reason
    answer = await raw(
        endpoint,
        "POST",
        f"token={token}&csr=x&p12_password=y".encode(),
        "application/x-www-form-urlencoded",
    )
    assert answer.status == 400
    assert answer.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert answer.body == reason.encode() + b"\n"


@pytest_twisted.ensureDeferred
async def test_failure_other_than_a_refusal_is_500(endpoint: Endpoint) -> None:
    with pytest.raises(KMSError, match="answered 500"):
        await post(endpoint.url, BROKEN, ca_file=endpoint.ca_file)


@pytest_twisted.ensureDeferred
async def test_other_methods_are_405(endpoint: Endpoint) -> None:
    answer = await raw(endpoint, "GET")
    assert answer.status == 405
    assert answer.headers["Allow"] == "POST"
    assert endpoint.redeemer.calls == []


@pytest_twisted.ensureDeferred
async def test_oversized_body_is_413(endpoint: Endpoint) -> None:
    body = b"token=" + GOOD.encode() + b"&csr=" + b"A" * MAX_BODY + b"&p12_password=pw"
    answer = await raw(endpoint, "POST", body, "application/x-www-form-urlencoded")
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
@pytest_twisted.ensureDeferred
async def test_malformed_requests(
    endpoint: Endpoint, body: bytes, content_type: str, path: str, status: int, reason: bytes
) -> None:
    answer = await raw(endpoint, "POST", body, content_type, path)
    assert answer.status == status
    assert reason in answer.body
    assert endpoint.redeemer.calls == []


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://kms.example.com/kms/enroll", "served over https only"),
        ("http://127.0.0.1:8080/kms/enroll", "served over https only"),
        ("ftp://127.0.0.1/kms/enroll", "not an https URL"),
        ("file:///etc/passwd", "not an https URL"),
    ],
)
def test_client_refuses_unsafe_urls(url: str, reason: str) -> None:
    with pytest.raises(KMSError, match=reason):
        post_enrollment(url, GOOD, CSR, b"pw")


def test_unreachable_kms() -> None:
    with pytest.raises(KMSError, match=r"cannot reach the KMS at https://127\.0\.0\.1:9/"):
        post_enrollment("https://127.0.0.1:9/kms/enroll", GOOD, CSR, b"pw")


@pytest_twisted.ensureDeferred
async def test_redirect_is_not_followed(endpoint: Endpoint) -> None:
    with pytest.raises(KMSError, match=r"redirects to https://kms\.example\.com/kms/enroll"):
        await post(f"https://127.0.0.1:{endpoint.port}/moved", GOOD, ca_file=endpoint.ca_file)
    assert endpoint.redeemer.calls == []


def _self_signed(common_name: str, mail: str | None = None) -> tuple[bytes, bytes]:
    """A certificate for 127.0.0.1 (and `mail`) that is its own trust anchor, and its key (PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    names: list[x509.GeneralName] = [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    if mail is not None:
        names.append(x509.RFC822Name(mail))
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    return certificate.public_bytes(pem), key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest_twisted.ensureDeferred
async def test_https_verifies_the_server_against_the_ca_file(
    endpoint: Endpoint, tmp_path: Path
) -> None:
    (tmp_path / "stranger.pem").write_bytes(_self_signed("someone else")[0])
    assert (await post(endpoint.url, GOOD, ca_file=endpoint.ca_file)) == BUNDLE
    with pytest.raises(KMSError, match=r"is not trusted by .*stranger\.pem: "):
        await post(endpoint.url, GOOD, ca_file=tmp_path / "stranger.pem")
    with pytest.raises(KMSError, match=r"is not trusted by the system's trust store: "):
        await post(endpoint.url, GOOD)
    assert [token for token, _, _ in endpoint.redeemer.calls] == [GOOD]
