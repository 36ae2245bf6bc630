"""External account binding (RFC 8555 §7.3.4), sans-IO.

- A binding key is a key id (128 random bits, hex: never a leading "-" on
  a command line) and an HMAC key of `KEY_BYTES` random bytes, shown once,
  base64url without padding, when
  `certdir ca acme-eab create` makes it (certbot's `--eab-kid` and
  `--eab-hmac-key`).
- At rest the HMAC key is sealed (`Seal`): AES-256-GCM under a key derived
  with HKDF-SHA256 from the CA's private key, with the key id as
  associated data. The CA key is itself encrypted under the CA passphrase
  (`ca.keys`), so the database or a copy of it opens no binding key, and a
  sealed key copied to another key id, or read under another CA key (a
  data directory with a new CA), does not open. Whoever makes one
  unlocks the CA key as the signing commands do; the server holds it
  unlocked already. HKDF and AES-GCM of a few bytes take microseconds:
  they run on the reactor.
- `externalAccountBinding` in a newAccount payload is a flattened JWS
  (protected, payload, signature; base64url, §6.2) whose protected header
  is exactly `alg`, `kid` and `url`: `alg` is HS256 (the MAC algorithm
  keys are made for), `kid` the binding key's id, `url` the outer JWS's
  (the newAccount URL), and no `nonce` (§7.3.4). Its payload is the
  account's JWK, the same key as the outer JWS's `jwk`. Anything else is
  malformed.
- The MAC is HMAC-SHA256 of the signing input under the binding key,
  compared in constant time; a wrong one is unauthorized, as are an
  unknown, revoked or already used key id (`ca.acme.ops.account`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from ca.acme.jws import FLATTENED, Jwk, b64decode
from ca.acme.problems import AcmeProblem
from ca.keys import PrivateKey

KEY_BYTES = 32
NONCE_BYTES = 12
ALGORITHM = "HS256"
HEADER = frozenset({"alg", "kid", "url"})
_INFO = b"certdir acme eab v1"
_AAD = b"certdir acme eab key "


def new_key() -> tuple[str, bytes]:
    """A fresh key id and HMAC key."""
    return secrets.token_hex(16), secrets.token_bytes(KEY_BYTES)


@dataclass(frozen=True, slots=True)
class Seal:
    """Seals binding keys under the CA's private key."""
    _key: bytes = field(repr=False)

    @classmethod
    def of(cls, ca_key: PrivateKey) -> Seal:
        material = ca_key.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())
        return cls(HKDF(hashes.SHA256(), 32, None, _INFO).derive(material))

    def seal(self, kid: str, key: bytes) -> bytes:
        nonce = secrets.token_bytes(NONCE_BYTES)
        return nonce + AESGCM(self._key).encrypt(nonce, key, _AAD + kid.encode())

    def open(self, kid: str, sealed: bytes) -> bytes:
        try:
            return AESGCM(self._key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:],
                                             _AAD + kid.encode())
        except InvalidTag:
            raise AcmeProblem("serverInternal", "a binding key does not open under this "
                              "CA's key", 500) from None


def _object(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except (UnicodeDecodeError, ValueError):
        value = None
    if not isinstance(value, dict):
        raise AcmeProblem("malformed", f"the external account binding's {what} is not a "
                          "JSON object")
    return value


@dataclass(frozen=True, slots=True)
class Binding:
    """An external account binding, checked for shape; `verify` checks its MAC."""
    kid: str
    signing_input: bytes = field(repr=False)
    mac: bytes = field(repr=False)

    def verify(self, key: bytes) -> None:
        expected = hmac.new(key, self.signing_input, hashlib.sha256).digest()
        if not hmac.compare_digest(expected, self.mac):
            raise AcmeProblem("unauthorized", "the external account binding's MAC does not "
                              "verify", 403)


def parse(value: object, url: str, account_key: Jwk) -> Binding:
    """The `externalAccountBinding` of a newAccount sent to `url` with `account_key`."""
    if not isinstance(value, dict) or set(value) != FLATTENED:
        raise AcmeProblem("malformed", "externalAccountBinding is a flattened JWS with "
                          "exactly protected, payload and signature")
    protected, payload = value["protected"], value["payload"]
    header = _object(b64decode(protected, "externalAccountBinding protected"),
                     "protected header")
    if set(header) != HEADER:
        raise AcmeProblem("malformed", "the external account binding's protected header is "
                          "exactly alg, kid and url (no nonce, no jwk)")
    if header["alg"] != ALGORITHM:
        raise AcmeProblem("malformed", f"the external account binding is {ALGORITHM}, not "
                          f"{header['alg']!r}")
    if header["url"] != url:
        raise AcmeProblem("malformed", "the external account binding's url is not the "
                          "newAccount URL")
    kid = header["kid"]
    if not isinstance(kid, str) or not kid:
        raise AcmeProblem("malformed", "the external account binding's kid is not a key id")
    try:
        bound = Jwk.parse(_object(b64decode(payload, "externalAccountBinding payload"),
                                  "payload"))
    except AcmeProblem:
        raise AcmeProblem("malformed", "the external account binding's payload is not a "
                          "JWK") from None
    if bound.thumbprint != account_key.thumbprint:
        raise AcmeProblem("malformed", "the external account binding binds another key than "
                          "the account's")
    mac = b64decode(value["signature"], "externalAccountBinding signature")
    return Binding(kid, f"{protected}.{payload}".encode(), mac)
