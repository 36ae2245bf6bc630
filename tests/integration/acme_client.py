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
import hashlib
import http.client
import http.server
import json
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from tests.integration.conftest import Server, make_server

NAME = "www.certdir.test"
OTHER = "other.certdir.test"


def acme_server(tmp: Path, http01_port: int) -> Server:
    """A certdir with ACME on its https service, validating http-01 on `http01_port`."""
    server = make_server(tmp)
    path = server.data_dir / "certdir.yaml"
    settings = yaml.safe_load(path.read_text())
    settings["ca"]["acme"] = {"allowed": [".certdir.test", "127.0.0.0/8"],
                              "resolve": {NAME: "127.0.0.1", OTHER: "127.0.0.1"},
                              "http01_port": http01_port, "retries": 0,
                              "total_timeout_s": 10}
    settings["ca"]["policies"] = {"tls-server": "acme"}
    path.write_text(yaml.safe_dump(settings, sort_keys=False))
    return server


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwk_of(key: ec.EllipticCurvePrivateKey) -> dict[str, str]:
    numbers = key.public_key().public_numbers()
    return {"kty": "EC", "crv": "P-256", "x": b64(numbers.x.to_bytes(32, "big")),
            "y": b64(numbers.y.to_bytes(32, "big"))}


def thumbprint(jwk: dict[str, str]) -> str:
    canonical = json.dumps({k: jwk[k] for k in ("crv", "kty", "x", "y")},
                           separators=(",", ":"), sort_keys=True)
    return b64(hashlib.sha256(canonical.encode()).digest())


def sign(key: ec.EllipticCurvePrivateKey, protected: dict[str, Any],
         payload: Any) -> dict[str, str]:
    """A flattened JWS with ES256; `payload` None is POST-as-GET (empty)."""
    header = b64(json.dumps(protected).encode())
    body = "" if payload is None else b64(json.dumps(payload).encode())
    r, s = decode_dss_signature(key.sign(f"{header}.{body}".encode(),
                                         ec.ECDSA(hashes.SHA256())))
    return {"protected": header, "payload": body,
            "signature": b64(r.to_bytes(32, "big") + s.to_bytes(32, "big"))}


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
    key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(
        ec.SECP256R1()))
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
        protected: dict[str, Any] = {"alg": "ES256", "nonce": self.nonce, "url": url}
        if self.kid is None:
            protected["jwk"] = jwk_of(self.key)
        else:
            protected["kid"] = self.kid
        protected.update(changes)
        return {k: v for k, v in protected.items() if v is not None}

    def post(self, url: str, payload: Any, protected: dict[str, Any] | None = None,
             key: ec.EllipticCurvePrivateKey | None = None) -> Answer:
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
