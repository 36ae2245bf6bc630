"""A second ACME client (RFC 8555), signing with josepy: scenario 102 and bench/acme_bench.py.

It shares nothing with the server (no `ca.acme` import) nor with the
hostile client of scenario 101 (which signs with `cryptography` by hand),
so the server's JWS checks meet a third implementation.

- JWS: josepy's own `JWS.sign`, flattened (RFC 8555 §6.2), with the ACME
  protected header members `nonce` and `url` added to josepy's registered
  ones as josepy's Header asks (a subclass), and exactly one of `jwk`
  (newAccount, revokeCert by the certificate's key, keyChange's inner JWS)
  and `kid`. josepy has ES256 and RS256 but no EdDSA (RFC 8037): `JWKOKP`
  and `EdDSA` register the OKP key type and the Ed25519 algorithm with
  josepy's own registries, so all three go through the same `JWS.sign`.
- The `acme` package of PyPI is not used: its current versions (5.x) have
  neither tls-alpn-01 nor keyChange, and the messages are small JSON
  objects written here from the RFC.
- HTTP: one kept-alive https connection per `Client`, the server checked
  against certdir's CA; every answer's Replay-Nonce is the next request's
  nonce (§6.5), so a `Client` is one thread's; `fork` gives another
  thread a client of the same account with its own connection and nonce.
- `obtain` is the whole of §7.4 for one order: newOrder, each
  authorization's challenge answered by a `Responder`, the order polled
  until ready, finalize with a fresh P-256 CSR, polled until valid, the
  certificate downloaded. Any other turn raises `Refused` with the answer.
- `ChallengeServers` answers http-01 (§8.3) on one port and tls-alpn-01
  (RFC 8737) on another: Python's ssl, ALPN "acme-tls/1", the certificate
  chosen by SNI, one per name, self-signed with exactly one SAN and the
  critical acmeIdentifier extension holding the DER OCTET STRING of
  SHA-256(key authorization) (§3).
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
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from cryptography.x509.oid import NameOID
from josepy import errors, json_util, jwa, jwk, jws

ACME_TLS_1 = "acme-tls/1"
ACME_IDENTIFIER = x509.ObjectIdentifier("1.3.6.1.5.5.7.1.31")
JOSE = "application/jose+json"
TIMEOUT_S = 60.0


@jwk.JWK.register
class JWKOKP(jwk.JWK):
    """An Ed25519 JWK (RFC 8037 §2): kty OKP, crv Ed25519, x the raw public key."""

    typ = "OKP"
    __slots__ = ("key",)
    cryptography_key_types = (ed25519.Ed25519PublicKey, ed25519.Ed25519PrivateKey)
    required = ("crv", jwk.JWK.type_field_name, "x")

    def fields_to_partial_json(self) -> dict[str, str]:
        key = self.key
        public = key.public_key() if isinstance(key, ed25519.Ed25519PrivateKey) else key
        params = {"crv": "Ed25519", "x": json_util.encode_b64jose(public.public_bytes_raw())}
        if isinstance(key, ed25519.Ed25519PrivateKey):
            params["d"] = json_util.encode_b64jose(key.private_bytes_raw())
        return params

    @classmethod
    def fields_from_json(cls, jobj: Mapping[str, Any]) -> JWKOKP:
        if jobj.get("crv") != "Ed25519":
            raise errors.DeserializationError("only Ed25519 OKP keys")
        if "d" in jobj:
            return cls(key=ed25519.Ed25519PrivateKey.from_private_bytes(
                json_util.decode_b64jose(jobj["d"])))
        return cls(key=ed25519.Ed25519PublicKey.from_public_bytes(
            json_util.decode_b64jose(jobj["x"])))

    def public_key(self) -> JWKOKP:
        key = self.key
        return type(self)(key=key.public_key() if isinstance(key, ed25519.Ed25519PrivateKey)
                          else key)


class _EdDSA(jwa.JWASignature):
    """EdDSA with Ed25519 (RFC 8037 §3.1): the signature is Ed25519's 64 bytes."""

    kty = JWKOKP

    def sign(self, key: ed25519.Ed25519PrivateKey, msg: bytes) -> bytes:
        return key.sign(msg)

    def verify(self, key: ed25519.Ed25519PublicKey, msg: bytes, sig: bytes) -> bool:
        try:
            key.verify(sig, msg)
        except InvalidSignature:
            return False
        return True


EdDSA = jwa.JWASignature.register(_EdDSA("EdDSA"))


class AcmeHeader(jws.Header):
    """josepy's registered header parameters, and ACME's nonce and url (RFC 8555 §6.4, §6.5)."""

    nonce: str | None = json_util.field("nonce", omitempty=True)
    url: str | None = json_util.field("url", omitempty=True)


class AcmeSignature(jws.Signature):
    """josepy's Signature with AcmeHeader (josepy's way: slots and the header field again)."""

    __slots__ = jws.Signature._orig_slots
    header_cls = AcmeHeader
    header: AcmeHeader = json_util.field("header", omitempty=True, default=AcmeHeader(),
                                         decoder=AcmeHeader.from_json)


class AcmeJWS(jws.JWS):
    __slots__ = jws.JWS._orig_slots
    signature_cls = AcmeSignature


PROTECTED = frozenset({"alg", "jwk", "kid", "nonce", "url"})


PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey

# The account keys of RFC 8555 §6.2's algorithms as this client makes them.
GENERATE: Mapping[str, Callable[[], PrivateKey]] = {
    "ES256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "RS256": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
    "EdDSA": ed25519.Ed25519PrivateKey.generate,
}


@dataclass(frozen=True, slots=True)
class Key:
    """A private key and the JWS algorithm it signs with."""

    private: jwk.JWK
    alg: jwa.JWASignature

    @classmethod
    def generate(cls, alg: str) -> Key:
        return cls.of(GENERATE[alg]())

    @classmethod
    def of(cls, private: PrivateKey) -> Key:
        """The Key of a `cryptography` private key (P-256, RSA or Ed25519)."""
        if isinstance(private, ec.EllipticCurvePrivateKey):
            return cls(jwk.JWKEC(key=private), jwa.ES256)
        if isinstance(private, rsa.RSAPrivateKey):
            return cls(jwk.JWKRSA(key=private), jwa.RS256)
        return cls(JWKOKP(key=private), EdDSA)

    @property
    def public(self) -> dict[str, Any]:
        """The public JWK as JSON."""
        made: dict[str, Any] = self.private.public_key().to_json()
        return made

    @property
    def thumbprint(self) -> str:
        """The RFC 7638 thumbprint, base64url: the end of every key authorization."""
        return json_util.encode_b64jose(self.private.thumbprint())

    def sign(self, payload: bytes, url: str, nonce: str | None = None,
             kid: str | None = None) -> dict[str, Any]:
        """The flattened JWS of `payload` for `url`: with `kid`, else with this key's jwk."""
        headers: dict[str, Any] = {"url": url}
        if nonce is not None:
            headers["nonce"] = nonce
        if kid is not None:
            headers["kid"] = kid
        signed = AcmeJWS.sign(payload=payload, key=self.private, alg=self.alg,
                              include_jwk=kid is None, protect=PROTECTED, **headers)
        made: dict[str, Any] = signed.to_json()
        return made


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


class Refused(Exception):
    """The server answered a step of an order otherwise than the RFC's next step."""

    def __init__(self, step: str, answer: Answer) -> None:
        super().__init__(f"{step}: {answer.status} {answer.body[:300]!r}")
        self.step = step
        self.answer = answer


def _payload(payload: Any) -> bytes:
    """None is POST-as-GET's empty payload (§6.3); anything else is JSON."""
    return b"" if payload is None else json.dumps(payload).encode()


@dataclass
class Client:
    """One account's requests, from one thread, over one kept-alive connection."""

    directory_url: str
    ca_file: Path
    key: Key = field(default_factory=lambda: Key.generate("ES256"))
    kid: str | None = None
    directory: dict[str, str] = field(default_factory=dict)
    nonce: str | None = None
    _connection: http.client.HTTPSConnection | None = field(default=None, repr=False)

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

    def request(self, method: str, url: str, body: bytes | None = None) -> Answer:
        headers = {"Content-Type": JOSE} if body is not None else {}
        # A kept-alive connection the server closed while idle fails at once:
        # the request never reached it, so it is sent again on a new one.
        for attempt in (1, 2):
            connection = self._connect()
            try:
                connection.request(method, urlsplit(url).path, body=body, headers=headers)
                response = connection.getresponse()
                answer = Answer(response.status, response.headers, response.read())
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
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

    def fork(self) -> Client:
        """A client of the same account for another thread: its own connection and nonce."""
        other = Client(self.directory_url, self.ca_file, self.key, self.kid,
                       dict(self.directory))
        other.request("HEAD", self.directory["newNonce"])
        return other

    def post(self, url: str, payload: Any, key: Key | None = None) -> Answer:
        """A POST signed with the account (kid), or with `key`'s jwk when given."""
        signer = key or self.key
        kid = None if key is not None else self.kid
        signed = signer.sign(_payload(payload), url, self.nonce, kid)
        return self.request("POST", url, json.dumps(signed).encode())

    def register(self, contact: str = "mailto:admin@example.com") -> Answer:
        """newAccount (§7.3) signed with the jwk; its Location is the kid from then on."""
        answer = self.post(self.directory["newAccount"],
                           {"termsOfServiceAgreed": True, "contact": [contact]}, key=self.key)
        if answer.status in (200, 201):
            self.kid = answer.location
        return answer

    def order(self, *names: str) -> Answer:
        return self.post(self.directory["newOrder"],
                         {"identifiers": [{"type": "dns", "value": n} for n in names]})

    def key_authorization(self, token: str) -> str:
        return f"{token}.{self.key.thumbprint}"

    def key_change(self, new: Key) -> Answer:
        """keyChange (§7.3.5): the inner JWS by the new key (jwk, no nonce), the outer by
        the account; on success this client signs with the new key."""
        url = self.directory["keyChange"]
        inner = new.sign(_payload({"account": self.kid, "oldKey": self.key.public}), url)
        answer = self.post(url, inner)
        if answer.status == 200:
            self.key = new
        return answer

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


class Responder(Protocol):
    """Whatever makes a challenge answerable before the client posts to it."""

    def answer(self, kind: str, name: str, token: str, key_authorization: str) -> None: ...


def csr(names: tuple[str, ...], key: ec.EllipticCurvePrivateKey) -> bytes:
    """A DER PKCS#10 request for `names` (SANs; the first also the commonName)."""
    request = (x509.CertificateSigningRequestBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
               .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]),
                              critical=False)
               .sign(key, hashes.SHA256()))
    return request.public_bytes(Encoding.DER)


@dataclass(frozen=True, slots=True)
class Issued:
    """One order carried to its certificate; `marks` are time.monotonic() after each step."""

    order: str
    certificate: str
    chain: Answer
    key: ec.EllipticCurvePrivateKey
    marks: tuple[tuple[str, float], ...]


def obtain(client: Client, names: tuple[str, ...], responder: Responder,
           kind: str = "http-01", poll_s: float = 0.1,
           key: ec.EllipticCurvePrivateKey | None = None) -> Issued:
    """newOrder -> challenges -> ready -> finalize -> valid -> certificate (§7.4)."""
    marks = [("start", time.monotonic())]
    ordered = client.order(*names)
    if ordered.status != 201:
        raise Refused("newOrder", ordered)
    order_url = ordered.location
    marks.append(("newOrder", time.monotonic()))
    for authorization in ordered.json()["authorizations"]:
        found = client.post(authorization, None)
        if found.status != 200:
            raise Refused("authorization", found)
        body = found.json()
        challenge = next((c for c in body["challenges"] if c["type"] == kind), None)
        if challenge is None:
            raise Refused(f"no {kind} challenge", found)
        responder.answer(kind, body["identifier"]["value"], challenge["token"],
                         client.key_authorization(challenge["token"]))
        started = client.post(challenge["url"], {})
        if started.status != 200:
            raise Refused("challenge", started)
    ready = client.poll(order_url, frozenset({"ready", "invalid"}), poll_s)
    if ready.status != 200 or ready.json()["status"] != "ready":
        raise Refused("validation", ready)
    marks.append(("validated", time.monotonic()))
    key = key or ec.generate_private_key(ec.SECP256R1())
    finalized = client.post(ready.json()["finalize"],
                            {"csr": json_util.encode_b64jose(csr(names, key))})
    if finalized.status != 200:
        raise Refused("finalize", finalized)
    valid = finalized
    if finalized.json()["status"] != "valid":
        valid = client.poll(order_url, frozenset({"valid", "invalid"}), poll_s)
    if valid.status != 200 or valid.json()["status"] != "valid":
        raise Refused("issuance", valid)
    marks.append(("finalized", time.monotonic()))
    certificate = valid.json()["certificate"]
    chain = client.post(certificate, None)
    if chain.status != 200:
        raise Refused("certificate", chain)
    marks.append(("downloaded", time.monotonic()))
    return Issued(order_url, certificate, chain, key, tuple(marks))


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
