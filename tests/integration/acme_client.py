"""A small ACME client for the hostile ACME scenario (test101), written from RFC 8555.

It signs with `cryptography` on its own (nothing of `ca.acme` is imported,
so the server's JWS code is checked against an independent signer), and
can break each rule on purpose: any protected header (`alg: none`, jwk and
kid together, a foreign `url`), a spent nonce, an unsigned body.

`Challenges` serves http-01 key authorizations on a port of its own, as
certbot's standalone plugin does. `acme_server` is the certdir both ACME
scenarios run: ACME on its https service for `.certdir.test` and loopback,
`NAME` and `OTHER` resolving to 127.0.0.1, http-01 on a port of the test's,
the `acme` policy module issuing tls-server.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import http.client
import http.server
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from cryptography.x509.oid import NameOID

from tests.integration.conftest import Server, make_server

NAME = "www.certdir.test"
OTHER = "other.certdir.test"


def acme_server(tmp: Path, http01_port: int, tls_alpn01_port: int = 443,
                **acme: Any) -> Server:
    """A certdir with ACME on its https service, validating http-01 on `http01_port`
    and tls-alpn-01 on `tls_alpn01_port`; `acme` adds keys of `ca.acme`."""
    server = make_server(tmp)
    path = server.data_dir / "certdir.yaml"
    settings = yaml.safe_load(path.read_text())
    settings["ca"]["acme"] = {"allowed": [".certdir.test", "127.0.0.0/8"],
                              "resolve": {NAME: "127.0.0.1", OTHER: "127.0.0.1"},
                              "http01_port": http01_port,
                              "tls_alpn01_port": tls_alpn01_port, "retries": 0,
                              "total_timeout_s": 10, **acme}
    settings["ca"]["policies"] = {"tls-server": "acme"}
    path.write_text(yaml.safe_dump(settings, sort_keys=False))
    return server


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


Key = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


def jwk_of(key: Key) -> dict[str, str]:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return {"kty": "OKP", "crv": "Ed25519", "x": b64(key.public_key().public_bytes_raw())}
    numbers = key.public_key().public_numbers()
    return {"kty": "EC", "crv": "P-256", "x": b64(numbers.x.to_bytes(32, "big")),
            "y": b64(numbers.y.to_bytes(32, "big"))}


def alg_of(key: Key) -> str:
    return "EdDSA" if isinstance(key, ed25519.Ed25519PrivateKey) else "ES256"


def thumbprint(jwk: dict[str, str]) -> str:
    canonical = json.dumps({k: v for k, v in jwk.items() if k in ("crv", "kty", "x", "y")},
                           separators=(",", ":"), sort_keys=True)
    return b64(hashlib.sha256(canonical.encode()).digest())


def sign(key: Key, protected: dict[str, Any], payload: Any) -> dict[str, str]:
    """A flattened JWS (ES256 or EdDSA); `payload` None is POST-as-GET (empty)."""
    header = b64(json.dumps(protected).encode())
    body = "" if payload is None else b64(json.dumps(payload).encode())
    data = f"{header}.{body}".encode()
    if isinstance(key, ed25519.Ed25519PrivateKey):
        signature = key.sign(data)
    else:
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return {"protected": header, "payload": body, "signature": b64(signature)}


@dataclass
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


@dataclass
class Client:
    directory_url: str
    ca_file: Path
    key: Key = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    kid: str | None = None
    nonce: str | None = None
    directory: dict[str, Any] = field(default_factory=dict)

    def _connection(self, url: str) -> http.client.HTTPSConnection:
        parts = urlsplit(url)
        context = ssl.create_default_context(cafile=str(self.ca_file))
        return http.client.HTTPSConnection(parts.hostname or "", parts.port, context=context,
                                           timeout=30)

    def request(self, method: str, url: str, body: bytes | None = None,
                content_type: str = "application/jose+json") -> Answer:
        connection = self._connection(url)
        try:
            headers = {"Content-Type": content_type} if body is not None else {}
            connection.request(method, urlsplit(url).path, body=body, headers=headers)
            response = connection.getresponse()
            answer = Answer(response.status, response.headers, response.read())
        finally:
            connection.close()
        fresh = answer.headers.get("Replay-Nonce")
        if fresh:
            self.nonce = fresh
        return answer

    def start(self) -> None:
        self.directory = self.request("GET", self.directory_url).json()
        self.request("HEAD", self.directory["newNonce"])

    def header(self, url: str, **changes: Any) -> dict[str, Any]:
        protected: dict[str, Any] = {"alg": alg_of(self.key), "nonce": self.nonce, "url": url}
        if self.kid is None:
            protected["jwk"] = jwk_of(self.key)
        else:
            protected["kid"] = self.kid
        protected.update(changes)
        return {k: v for k, v in protected.items() if v is not None}

    def post(self, url: str, payload: Any, protected: dict[str, Any] | None = None,
             key: Key | None = None) -> Answer:
        signed = sign(key or self.key, protected or self.header(url), payload)
        return self.request("POST", url, json.dumps(signed).encode())

    def register(self) -> Answer:
        answer = self.post(self.directory["newAccount"],
                           {"termsOfServiceAgreed": True, "contact": ["mailto:a@example.com"]})
        self.kid = answer.headers["Location"]
        return answer

    def order(self, *names: str) -> Answer:
        return self.post(self.directory["newOrder"],
                         {"identifiers": [{"type": "dns", "value": n} for n in names]})

    def key_authorization(self, token: str) -> str:
        return f"{token}.{thumbprint(jwk_of(self.key))}"


ACME_IDENTIFIER = x509.ObjectIdentifier("1.3.6.1.5.5.7.1.31")


class AlpnChallenges:
    """tls-alpn-01 answers (RFC 8737 §3) on 127.0.0.1:`port`: for the name a
    client asks for by SNI, a self-signed certificate with that one name and
    the critical acmeIdentifier extension holding the key authorization's
    SHA-256, offered with ALPN acme-tls/1 only."""

    def __init__(self, port: int, tmp: Path) -> None:
        self.answers: dict[str, str] = {}  # name -> key authorization
        self.tmp = tmp
        self.socket = socket.create_server(("127.0.0.1", port))
        self.socket.settimeout(0.2)
        self._stop = threading.Event()

    def _context(self, name: str) -> ssl.SSLContext:
        key = ec.generate_private_key(ec.SECP256R1())
        digest = hashlib.sha256(self.answers[name].encode()).digest()
        now = dt.datetime.now(dt.UTC)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        certificate = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                       .public_key(key.public_key()).serial_number(x509.random_serial_number())
                       .not_valid_before(now - dt.timedelta(minutes=5))
                       .not_valid_after(now + dt.timedelta(days=1))
                       .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]),
                                      critical=False)
                       # The extension's value is the DER OCTET STRING of the digest.
                       .add_extension(x509.UnrecognizedExtension(
                           ACME_IDENTIFIER, b"\x04\x20" + digest), critical=True)
                       .sign(key, hashes.SHA256()))
        pem = self.tmp / f"alpn-{name}.pem"
        pem.write_bytes(certificate.public_bytes(Encoding.PEM) + key.private_bytes(
            Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.set_alpn_protocols(["acme-tls/1"])
        context.load_cert_chain(pem)
        return context

    def _serve(self) -> None:
        default = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)

        def choose(connection: ssl.SSLObject, name: str, _: ssl.SSLContext) -> int | None:
            if name in self.answers:
                connection.context = self._context(name)
            return None

        default.sni_callback = choose
        default.set_alpn_protocols(["acme-tls/1"])
        while not self._stop.is_set():
            try:
                client, _ = self.socket.accept()
            except TimeoutError:
                continue
            client.settimeout(10)
            try:
                with default.wrap_socket(client, server_side=True) as tls:
                    tls.recv(1)
            except (OSError, ssl.SSLError):
                client.close()

    @contextmanager
    def serving(self) -> Iterator[AlpnChallenges]:
        thread = threading.Thread(target=self._serve, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()
            self.socket.close()


class Challenges:
    """http-01 answers on 127.0.0.1:`port`: token -> key authorization."""

    def __init__(self, port: int) -> None:
        answers: dict[str, str] = {}
        self.answers = answers

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                token = self.path.removeprefix("/.well-known/acme-challenge/")
                body = answers.get(token, "").encode()
                self.send_response(200 if body else 404)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)

    @contextmanager
    def serving(self) -> Iterator[Challenges]:
        thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.server.shutdown()
            self.server.server_close()
