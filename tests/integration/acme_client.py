"""A small ACME client for the hostile ACME scenario (test101) and scenario 102, from RFC 8555.

It signs with `cryptography` on its own (nothing of `ca.acme` is imported,
so the server's JWS code is checked against an independent signer), and
can break each rule on purpose: any protected header (`alg: none`, jwk and
kid together, a foreign `url`), a spent nonce, an unsigned body, another
content type. Its https session, answers and challenge servers are the
ones both test clients share (tests/acme_client_base.py).
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from tests.acme_client_base import Answer, Session


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
class Client(Session):
    """One account's requests, each JWS signed here, any header member as the test says."""

    key: Key = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    kid: str | None = None

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

    def key_authorization(self, token: str) -> str:
        return f"{token}.{thumbprint(jwk_of(self.key))}"
