"""What the test suite's two ACME clients share, all but the signing (RFC 8555, RFC 8737).

The hostile client (tests/integration/acme_client.py, a JWS by hand with
`cryptography`) and the josepy client (tests/acme_josepy.py, also
bench/acme_bench.py's) sign each their own way; nothing here signs, and
nothing imports `ca.acme`, so the server's checks meet implementations of
their own.

- `Session`: the https side of one client, for one thread: one kept-alive
  connection checked against certdir's CA, the directory, and the last
  Replay-Nonce, which is the next request's nonce (§6.5). A kept-alive
  connection the server closed while idle fails at once, before the
  request reached it: the request is sent again on a new connection.
  Each client's `post` signs; `order` (newOrder, §7.4) is the same for both.
- `Answer`: what the server said; `problem` is the problem type's last
  part (§6.7).
- `csr`: a DER PKCS#10 request for names (the first also the commonName).
- `ChallengeServers` answers http-01 (§8.3) on one port and tls-alpn-01
  (RFC 8737) on another: Python's ssl, ALPN "acme-tls/1", the certificate
  chosen by SNI, one per name (`alpn_certificate`: self-signed, exactly one
  SAN, the critical acmeIdentifier extension holding the DER OCTET STRING
  of SHA-256(key authorization), §3). Threads, not the reactor: the
  clients run outside it (in the scenarios and in the benchmark).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import http.client
import http.server
import json
import socketserver
import ssl
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from cryptography.x509.oid import NameOID

ACME_TLS_1 = "acme-tls/1"
ACME_IDENTIFIER = x509.ObjectIdentifier("1.3.6.1.5.5.7.1.31")
JOSE = "application/jose+json"
TIMEOUT_S = 60.0


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def problem(self) -> str:
        """The problem type's last part, or "" for an answer that is not a problem."""
        if self.headers.get("Content-Type") != "application/problem+json":
            return ""
        kind: str = self.json()["type"]
        return kind.removeprefix("urn:ietf:params:acme:error:")

    @property
    def location(self) -> str:
        return self.headers.get("Location", "")


# An authorization's statuses other than pending (RFC 8555 §7.1.6): it changes no more.
AUTHORIZATION_ENDS = frozenset({"valid", "invalid", "deactivated", "expired", "revoked"})


class Refused(Exception):
    """The server answered a step of an order otherwise than the RFC's next step."""

    def __init__(self, step: str, answer: Answer) -> None:
        super().__init__(f"{step}: {answer.status} {answer.body[:300]!r}")
        self.step = step
        self.answer = answer


@dataclass
class Session(ABC):
    """One client's requests to one ACME server, from one thread, over one connection."""

    directory_url: str
    ca_file: Path
    directory: dict[str, Any] = field(default_factory=dict, kw_only=True)
    nonce: str | None = field(default=None, kw_only=True)
    _connection: http.client.HTTPSConnection | None = field(default=None, repr=False,
                                                            kw_only=True)

    def _connect(self) -> http.client.HTTPSConnection:
        if self._connection is None:
            parts = urlsplit(self.directory_url)
            context = ssl.create_default_context(cafile=str(self.ca_file))
            self._connection = http.client.HTTPSConnection(
                parts.hostname or "", parts.port, context=context, timeout=TIMEOUT_S)
        return self._connection

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def request(self, method: str, url: str, body: bytes | None = None,
                content_type: str = JOSE) -> Answer:
        headers = {"Content-Type": content_type} if body is not None else {}
        for attempt in (1, 2):
            connection = self._connect()
            try:
                parts = urlsplit(url)
                target = f"{parts.path}?{parts.query}" if parts.query else parts.path
                connection.request(method, target, body=body, headers=headers)
                response = connection.getresponse()
                answer = Answer(response.status, response.headers, response.read())
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
                    ssl.SSLEOFError):
                self.close()
                if attempt == 2:
                    raise
        fresh = answer.headers.get("Replay-Nonce")
        if fresh:
            self.nonce = fresh
        return answer

    def start(self) -> None:
        """Read the directory and get a first nonce (§7.1.1, §7.2)."""
        self.directory = self.request("GET", self.directory_url).json()
        self.request("HEAD", self.directory["newNonce"])

    @abstractmethod
    def post(self, url: str, payload: Any) -> Answer:
        """`payload` signed by the account for `url`; None is POST-as-GET (§6.3)."""

    def order(self, *names: str) -> Answer:
        return self.post(self.directory["newOrder"],
                         {"identifiers": [{"type": "dns", "value": n} for n in names]})

    def challenge(self, order: Answer, kind: str = "http-01") -> tuple[str, dict[str, Any]]:
        """The URL of the order's one authorization, and its challenge of `kind`."""
        [authorization] = order.json()["authorizations"]
        found: dict[str, Any] = next(
            c for c in self.post(authorization, None).json()["challenges"]
            if c["type"] == kind)
        return authorization, found

    def poll(self, url: str, done: frozenset[str], poll_s: float,
             timeout_s: float = TIMEOUT_S) -> Answer:
        """POST-as-GET `url` until its status is one of `done`."""
        deadline = time.monotonic() + timeout_s
        while True:
            answer = self.post(url, None)
            if answer.status != 200 or answer.json().get("status") in done:
                return answer
            if time.monotonic() > deadline:
                raise Refused(f"{url} still {answer.json().get('status')}", answer)
            time.sleep(poll_s)


def csr(names: tuple[str, ...], key: ec.EllipticCurvePrivateKey) -> bytes:
    """A DER PKCS#10 request for `names` (SANs; the first also the commonName)."""
    request = (x509.CertificateSigningRequestBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
               .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]),
                              critical=False)
               .sign(key, hashes.SHA256()))
    return request.public_bytes(Encoding.DER)


def dns_names(certificate: x509.Certificate) -> list[str]:
    """The DNS names of a certificate's subjectAltName."""
    names: list[str] = certificate.extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    return names


def alpn_certificate(name: str, key_authorization: str) -> tuple[bytes, bytes]:
    """The tls-alpn-01 certificate for `name` (RFC 8737 §3) and its key, both PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    digest = hashlib.sha256(key_authorization.encode("ascii")).digest()
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        # DER OCTET STRING (tag 4, length 32) of the digest.
        .add_extension(x509.UnrecognizedExtension(ACME_IDENTIFIER, b"\x04\x20" + digest),
                       critical=True)
        .sign(key, hashes.SHA256()))
    return (certificate.public_bytes(Encoding.PEM),
            key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))


class Responder(Protocol):
    """Whatever makes a challenge answerable before the client posts to it."""

    def answer(self, kind: str, name: str, token: str, key_authorization: str) -> None: ...


# socketserver's default listen backlog is 5: a burst of validations beyond it
# loses SYNs, and each waits a second for the retransmission.
BACKLOG = 256


class _HTTPServer(http.server.ThreadingHTTPServer):
    request_queue_size = BACKLOG


class _TLSServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = BACKLOG


@dataclass
class ChallengeServers:
    """http-01 on 127.0.0.1:`http_port`, tls-alpn-01 on 127.0.0.1:`tls_port` (if given).

    `folder` holds the tls-alpn-01 certificates (Python's ssl loads them from
    files). `handshakes` lists (SNI, ALPN) of every tls-alpn-01 handshake done.
    """

    folder: Path
    http_port: int
    tls_port: int | None = None
    tokens: dict[str, str] = field(default_factory=dict)
    contexts: dict[str, ssl.SSLContext] = field(default_factory=dict)
    handshakes: list[tuple[str | None, str | None]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, kind: str, name: str, token: str, key_authorization: str) -> None:
        if kind == "http-01":
            with self._lock:
                self.tokens[token] = key_authorization
        elif kind == "tls-alpn-01":
            self._alpn(name, key_authorization)
        else:
            raise ValueError(f"no server here for {kind}")

    def _alpn(self, name: str, key_authorization: str) -> None:
        certificate, key = alpn_certificate(name, key_authorization)
        path = self.folder / f"{name}.pem"
        path.write_bytes(key + certificate)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.set_alpn_protocols([ACME_TLS_1])
        context.load_cert_chain(path)
        with self._lock:
            self.contexts[name] = context

    def _http_server(self) -> _HTTPServer:
        servers = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                token = self.path.removeprefix("/.well-known/acme-challenge/")
                with servers._lock:
                    body = servers.tokens.get(token, "").encode()
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        return _HTTPServer(("127.0.0.1", self.http_port), Handler)

    def _tls_server(self, port: int) -> _TLSServer:
        servers = self
        first = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        first.minimum_version = ssl.TLSVersion.TLSv1_2
        first.set_alpn_protocols([ACME_TLS_1])
        # The callback runs inside the handshake, on the handler's thread.
        asked = threading.local()

        def by_name(connection: ssl.SSLObject | ssl.SSLSocket, name: str | None,
                    _: ssl.SSLContext) -> int | None:
            asked.name = name
            with servers._lock:
                chosen = servers.contexts.get(name or "")
            if chosen is None:
                return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
            connection.context = chosen
            return None

        first.sni_callback = by_name

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                self.request.settimeout(10)
                asked.name = None
                try:
                    tls = first.wrap_socket(self.request, server_side=True)
                except (ssl.SSLError, OSError):
                    return
                with servers._lock:
                    servers.handshakes.append((asked.name, tls.selected_alpn_protocol()))
                tls.close()

        return _TLSServer(("127.0.0.1", port), Handler)

    @contextmanager
    def serving(self) -> Iterator[ChallengeServers]:
        running: list[socketserver.BaseServer] = [self._http_server()]
        if self.tls_port is not None:
            running.append(self._tls_server(self.tls_port))
        for server in running:
            threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            yield self
        finally:
            for server in running:
                server.shutdown()
                server.server_close()


class HoldingHTTP01:
    """http-01 on 127.0.0.1:`port` that holds the validation's GET of a token in
    `held` (of every token when `held` is None) unanswered until `release` is
    set, then answers `answers`; `asked` counts the GETs held."""

    def __init__(self, port: int, held: set[str] | None = None, hold_s: float = 60) -> None:
        self.answers: dict[str, str] = {}
        self.held = held
        self.asked = threading.Semaphore(0)
        self.release = threading.Event()
        holding = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                token = self.path.rsplit("/", 1)[-1]
                if holding.held is None or token in holding.held:
                    holding.asked.release()
                    holding.release.wait(hold_s)
                body = holding.answers.get(token, "").encode()
                try:
                    self.send_response(200 if body else 404)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    return  # the validation that asked gave up, or its server was killed

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = _HTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True

    def __enter__(self) -> HoldingHTTP01:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
