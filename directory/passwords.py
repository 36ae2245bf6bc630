"""userPassword storage schemes (RFC 3112 syntax, RFC 2307 "{SCHEME}" prefixes).

- New passwords are hashed with Argon2id and stored as `{ARGON2}<PHC string>`.
- Existing `{SSHA}`, `{SSHA256}`, `{SSHA512}` values (salted SHA-1/SHA-2 as
  written by OpenLDAP's slappasswd) still verify, so address books imported
  from OpenLDAP keep working; certdir never writes them.
- A value without a known scheme never verifies: clear-text passwords are
  hashed before they are stored (see `prepare`), never compared.
- Comparisons of digests are constant-time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_HASHER = PasswordHasher()
ARGON2 = b"{ARGON2}"


def hash_password(password: bytes) -> bytes:
    return ARGON2 + _HASHER.hash(password).encode()


def generate_password() -> str:
    """A random password for RFC 3062 requests that do not give one."""
    return secrets.token_urlsafe(15)


def _verify_argon2(stored: bytes, password: bytes) -> bool:
    try:
        return _HASHER.verify(stored.decode(), password)
    except (VerifyMismatchError, VerificationError, InvalidHashError, UnicodeDecodeError):
        return False


def _salted(digest: Callable[[bytes], hashlib._Hash], size: int) -> Callable[[bytes, bytes], bool]:
    def verify(stored: bytes, password: bytes) -> bool:
        try:
            raw = base64.b64decode(stored, validate=True)
        except ValueError:
            return False
        if len(raw) <= size:
            return False
        hashed, salt = raw[:size], raw[size:]
        return hmac.compare_digest(digest(password + salt).digest(), hashed)

    return verify


SCHEMES: dict[bytes, Callable[[bytes, bytes], bool]] = {
    ARGON2: _verify_argon2,
    b"{SSHA}": _salted(hashlib.sha1, 20),
    b"{SSHA256}": _salted(hashlib.sha256, 32),
    b"{SSHA512}": _salted(hashlib.sha512, 64),
}


def scheme_of(stored: bytes) -> bytes | None:
    if not stored.startswith(b"{"):
        return None
    end = stored.find(b"}")
    scheme = stored[: end + 1].upper()
    return scheme if scheme in SCHEMES else None


def verify(stored: bytes, password: bytes) -> bool:
    scheme = scheme_of(stored)
    if scheme is None:
        return False
    return SCHEMES[scheme](stored[len(scheme):], password)


def is_slow(stored: bytes) -> bool:
    """Argon2 takes tens of milliseconds: verify it off the reactor thread."""
    return scheme_of(stored) == ARGON2


def prepare(value: bytes) -> bytes:
    """The value to store for a userPassword given by a client: hashes are
    kept as they are, anything else is hashed."""
    return value if scheme_of(value) is not None else hash_password(value)
