"""Anti-replay nonces (RFC 8555 §6.5), sans-IO.

- A nonce is self-contained: base64url of its expiry (8 bytes, seconds),
  16 random bytes and the first 16 bytes of an HMAC-SHA256 of both under a
  secret kept in the database (`ca.acme.store`), so every front end on one
  database issues nonces the others accept, and issuing one writes nothing:
  every response carries a fresh `Replay-Nonce` at no cost to the writer.
- `check` refuses a nonce that is not one of ours (bad MAC, wrong length)
  or has expired, with badNonce; clients retry those (§6.5).
- A nonce is single-use: the request that carries it spends it in the
  database (`AcmeStore.spend_nonce`, a row keyed by the nonce, inserted once;
  a second insert changes nothing and is badNonce). The row is kept until
  the nonce expires, then pruned: past its expiry `check` refuses the nonce
  anyway. So the used set holds at most the nonces of one lifetime.
- Nonces are base64url without padding (§6.5.1); the HMAC is compared in
  constant time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field

from ca.acme.problems import AcmeProblem

RANDOM_BYTES = 16
MAC_BYTES = 16
EXPIRY_BYTES = 8
NONCE_BYTES = EXPIRY_BYTES + RANDOM_BYTES + MAC_BYTES
SECRET_BYTES = 32


@dataclass(frozen=True, slots=True)
class Nonces:
    secret: bytes = field(repr=False)
    lifetime: int = 3600

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self.secret, body, hashlib.sha256).digest()[:MAC_BYTES]

    def issue(self, now: float) -> str:
        body = int(now + self.lifetime).to_bytes(EXPIRY_BYTES, "big") + secrets.token_bytes(
            RANDOM_BYTES)
        return base64.urlsafe_b64encode(body + self._mac(body)).rstrip(b"=").decode()

    def check(self, nonce: str, now: float) -> int:
        """The nonce's expiry (seconds since the epoch) if it is ours and current."""
        try:
            raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
        except (binascii.Error, ValueError):
            raw = b""
        body, mac = raw[:-MAC_BYTES], raw[-MAC_BYTES:]
        if len(raw) != NONCE_BYTES or "=" in nonce or not hmac.compare_digest(
                mac, self._mac(body)):
            raise AcmeProblem("badNonce", "this nonce was not issued here")
        expires = int.from_bytes(body[:EXPIRY_BYTES], "big")
        if expires <= now:
            raise AcmeProblem("badNonce", "this nonce has expired")
        return expires
