"""The signed requests of ACME: flattened JSON JWS (RFC 8555 §6.2, RFC 7515).

- A request body is one JSON object with exactly `protected`, `payload` and
  `signature`, each base64url without padding (RFC 7515 §7.2.2, §2); the
  general serialization (`signatures`), an unprotected `header` and a
  detached or unencoded payload (`b64`, RFC 7797) are malformed, and so is
  any `crit` parameter: this server understands no extension.
- The protected header holds `alg`, `nonce` (a request to the server) and
  `url`, and exactly one of `jwk` (newAccount, revokeCert by the
  certificate's key, the inner JWS of keyChange) and `kid` (every other
  request): both or neither is malformed. The inner JWS of keyChange has no
  nonce (RFC 8555 §7.3.5), so `parse(..., inner=True)` refuses one.
- `alg` is ES256 (P-256), RS256 (RSA of 2048 bits or more) or EdDSA
  (Ed25519, RFC 8037); `none`, the MAC algorithms (HS*) and anything else
  are badSignatureAlgorithm (RFC 8555 §6.2). A JWK of another type, curve
  or size, or with private members, is badPublicKey; a JWK that does not
  fit the algorithm is malformed.
- An ES256 signature is r || s, 64 bytes (RFC 7518 §3.4), converted to DER
  for `cryptography`; any other length fails to verify.
- The JWK thumbprint (RFC 7638) is the SHA-256 of the required members in
  lexicographic order, no whitespace; it names an account's key and ends
  every key authorization (RFC 8555 §8.1).
- Verification uses `cryptography` directly (no josepy: a few table rows
  cover the three algorithms, and the request path stays in one library).
  RSA-2048 and P-256 verifications take tens of microseconds, Ed25519
  less, so they run inline on the reactor thread; only signing goes to
  the pool.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from ca.acme.problems import AcmeProblem

PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey

MIN_RSA_BITS = 2048
FLATTENED = frozenset(("protected", "payload", "signature"))


def b64decode(text: object, what: str) -> bytes:
    """base64url without padding (RFC 7515 §2); anything else is malformed."""
    if not isinstance(text, str) or "=" in text:
        raise AcmeProblem("malformed", f"{what} is not base64url without padding")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise AcmeProblem("malformed", f"{what} is not base64url") from None


def b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _int(text: object, what: str) -> int:
    return int.from_bytes(b64decode(text, what), "big")


def _ec(members: Mapping[str, Any]) -> PublicKey:
    if members.get("crv") != "P-256":
        raise AcmeProblem("badPublicKey", "EC keys are P-256 (ES256) only")
    try:
        return ec.EllipticCurvePublicNumbers(_int(members.get("x"), "jwk x"),
                                             _int(members.get("y"), "jwk y"),
                                             ec.SECP256R1()).public_key()
    except ValueError:
        raise AcmeProblem("badPublicKey", "the EC point is not on P-256") from None


def _rsa(members: Mapping[str, Any]) -> PublicKey:
    n, e = _int(members.get("n"), "jwk n"), _int(members.get("e"), "jwk e")
    if n.bit_length() < MIN_RSA_BITS:
        raise AcmeProblem("badPublicKey", f"RSA keys have at least {MIN_RSA_BITS} bits")
    try:
        return rsa.RSAPublicNumbers(e, n).public_key()
    except ValueError:
        raise AcmeProblem("badPublicKey", "not a usable RSA public key") from None


def _okp(members: Mapping[str, Any]) -> PublicKey:
    if members.get("crv") != "Ed25519":
        raise AcmeProblem("badPublicKey", "OKP keys are Ed25519 (EdDSA) only")
    raw = b64decode(members.get("x"), "jwk x")
    if len(raw) != 32:
        raise AcmeProblem("badPublicKey", "an Ed25519 key is 32 bytes")
    return ed25519.Ed25519PublicKey.from_public_bytes(raw)


@dataclass(frozen=True, slots=True)
class KeyType:
    """One `kty`: its required members (RFC 7638 §3.2) and how to load them."""
    required: tuple[str, ...]
    private: tuple[str, ...]
    load: Callable[[Mapping[str, Any]], PublicKey]


KEY_TYPES: Mapping[str, KeyType] = {
    "EC": KeyType(("crv", "kty", "x", "y"), ("d",), _ec),
    "RSA": KeyType(("e", "kty", "n"), ("d", "p", "q", "dp", "dq", "qi", "oth"), _rsa),
    "OKP": KeyType(("crv", "kty", "x"), ("d",), _okp),
}


@dataclass(frozen=True, slots=True)
class Jwk:
    """A public JWK (RFC 7517), reduced to its required members."""
    members: tuple[tuple[str, str], ...]
    key: PublicKey = field(compare=False, repr=False)

    @classmethod
    def parse(cls, value: object) -> Jwk:
        if not isinstance(value, dict):
            raise AcmeProblem("malformed", "jwk is not a JSON object")
        kind = KEY_TYPES.get(value.get("kty"))  # type: ignore[arg-type]
        if kind is None:
            raise AcmeProblem("badPublicKey", f"unsupported key type {value.get('kty')!r}")
        if any(name in value for name in kind.private):
            raise AcmeProblem("badPublicKey", "the jwk holds private key members")
        for name in kind.required:
            if not isinstance(value.get(name), str):
                raise AcmeProblem("malformed", f"jwk member {name!r} is missing")
        key = kind.load(value)
        return cls(tuple((name, value[name]) for name in kind.required), key)

    @classmethod
    def loads(cls, text: str) -> Jwk:
        """A JWK as stored (`canonical`)."""
        return cls.parse(json.loads(text))

    @property
    def kty(self) -> str:
        return dict(self.members)["kty"]

    @property
    def canonical(self) -> str:
        """The required members, sorted, no whitespace (RFC 7638 §3.3)."""
        return json.dumps(dict(self.members), separators=(",", ":"), sort_keys=True)

    @property
    def thumbprint(self) -> str:
        return b64encode(hashlib.sha256(self.canonical.encode()).digest())


def _verify_es256(key: PublicKey, signature: bytes, data: bytes) -> None:
    assert isinstance(key, ec.EllipticCurvePublicKey)
    if len(signature) != 64:
        raise InvalidSignature
    der = encode_dss_signature(int.from_bytes(signature[:32], "big"),
                               int.from_bytes(signature[32:], "big"))
    key.verify(der, data, ec.ECDSA(hashes.SHA256()))


def _verify_rs256(key: PublicKey, signature: bytes, data: bytes) -> None:
    assert isinstance(key, rsa.RSAPublicKey)
    key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())


def _verify_eddsa(key: PublicKey, signature: bytes, data: bytes) -> None:
    assert isinstance(key, ed25519.Ed25519PublicKey)
    key.verify(signature, data)


@dataclass(frozen=True, slots=True)
class Algorithm:
    kty: str
    verify: Callable[[PublicKey, bytes, bytes], None]


ALGORITHMS: Mapping[str, Algorithm] = {
    "ES256": Algorithm("EC", _verify_es256),
    "RS256": Algorithm("RSA", _verify_rs256),
    "EdDSA": Algorithm("OKP", _verify_eddsa),
}


@dataclass(frozen=True, slots=True)
class Jws:
    """One flattened JWS, parsed and checked for shape; `verify` checks the signature."""
    alg: str
    url: str
    nonce: str | None
    jwk: Jwk | None
    kid: str | None
    payload: bytes
    signing_input: bytes = field(repr=False)
    signature: bytes = field(repr=False)

    def verify(self, key: Jwk) -> None:
        algorithm = ALGORITHMS[self.alg]
        if key.kty != algorithm.kty:
            raise AcmeProblem("malformed", f"{self.alg} does not go with a {key.kty} key")
        try:
            algorithm.verify(key.key, self.signature, self.signing_input)
        except InvalidSignature:
            raise AcmeProblem("malformed", "the JWS signature does not verify") from None

    def json(self) -> Any:
        """The payload as JSON; None for POST-as-GET (an empty payload, RFC 8555 §6.3)."""
        if not self.payload:
            return None
        try:
            return json.loads(self.payload)
        except (UnicodeDecodeError, ValueError):
            raise AcmeProblem("malformed", "the payload is not JSON") from None

    def object(self) -> dict[str, Any]:
        """The payload as a JSON object (an empty payload is not one)."""
        value = self.json()
        if not isinstance(value, dict):
            raise AcmeProblem("malformed", "the payload is not a JSON object")
        return value


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except (UnicodeDecodeError, ValueError):
        raise AcmeProblem("malformed", f"{what} is not JSON") from None
    if not isinstance(value, dict):
        raise AcmeProblem("malformed", f"{what} is not a JSON object")
    return value


def parse(body: bytes | Mapping[str, Any], inner: bool = False) -> Jws:
    """A request body (or keyChange's inner JWS, already decoded) checked for shape."""
    outer = _json_object(body, "the request body") if isinstance(body, bytes) else body
    if set(outer) != FLATTENED:
        raise AcmeProblem("malformed", "a request is a flattened JWS with exactly protected, "
                                       "payload and signature")
    protected_text, payload_text = outer["protected"], outer["payload"]
    header = _json_object(b64decode(protected_text, "protected"), "the protected header")
    payload = b64decode(payload_text, "payload")
    signature = b64decode(outer["signature"], "signature")
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        raise AcmeProblem("badSignatureAlgorithm",
                          f"alg {alg!r} is not accepted (ES256, RS256, EdDSA)",
                          fields={"algorithms": sorted(ALGORITHMS)})
    for name in ("crit", "b64"):
        if name in header:
            raise AcmeProblem("malformed", f"the protected header may not hold {name!r}")
    if ("jwk" in header) == ("kid" in header):
        raise AcmeProblem("malformed", "the protected header holds exactly one of jwk and kid")
    url, nonce, kid = header.get("url"), header.get("nonce"), header.get("kid")
    if not isinstance(url, str):
        raise AcmeProblem("malformed", "the protected header has no url")
    if inner and "nonce" in header:
        raise AcmeProblem("malformed", "the inner JWS of keyChange has no nonce")
    if not inner and not isinstance(nonce, str):
        raise AcmeProblem("badNonce", "the protected header has no nonce")
    if kid is not None and not isinstance(kid, str):
        raise AcmeProblem("malformed", "kid is not a URL")
    jwk = Jwk.parse(header["jwk"]) if "jwk" in header else None
    signing_input = f"{protected_text}.{payload_text}".encode()
    return Jws(str(alg), url, nonce, jwk, kid, payload, signing_input, signature)
