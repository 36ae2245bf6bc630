"""userPassword storage schemes (RFC 3112 syntax, RFC 2307 "{SCHEME}" prefixes).

- New passwords are hashed with Argon2id under the server's `HashPolicy`
  and stored as `{ARGON2}<PHC string>`.
- A value that starts with `{WORD}` is a hash. Values in a scheme of
  `SCHEMES` verify as that scheme and are never hashed again as if they
  were the password: `{ARGON2}`; OpenLDAP's `{MD5}`, `{SMD5}`, `{SHA}`,
  `{SSHA}`, `{SSHA256}`, `{SSHA384}`, `{SSHA512}` (base64 of the digest,
  then the salt); `{CRYPT}` with glibc's `$1$` (MD5), `$5$` (SHA-256) and
  `$6$` (SHA-512) formats; `{PBKDF2}`/`{PBKDF2-SHA1}`, `{PBKDF2-SHA256}`,
  `{PBKDF2-SHA512}` as OpenLDAP's pw-pbkdf2 writes them
  (`<iterations>$<salt>$<key>`, adapted base64: `.` for `+`, no padding).
- A hash whose cost lies outside the policy (Argon2 time, memory,
  parallelism or length; PBKDF2 iterations or crypt rounds) never verifies
  and costs nothing: a stored value cannot make the server do more work
  than the policy allows. A value in an unknown scheme never verifies.
- `dummy` is a hash with the server's parameters to verify when no stored
  value is acceptable, so a missing entry or one without a usable password
  costs the same time as a wrong password.
- Any value other than an Argon2id hash with the current parameters
  `needs_upgrade` after a successful bind.
- Comparisons of digests are constant-time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property

import crypt_r
from argon2 import PasswordHasher, extract_parameters
from argon2.exceptions import InvalidHashError, VerificationError

ARGON2 = b"{ARGON2}"
_PREFIX = re.compile(rb"\{[A-Za-z0-9.-]+\}")
_CRYPT = re.compile(r"\$(1|5|6)\$(?:rounds=(\d+)\$)?[./0-9A-Za-z]{0,16}\$[./0-9A-Za-z]+")
MAX_HASH_BYTES = 128


@dataclass(frozen=True)
class HashPolicy:
    """Argon2id parameters for new hashes, and the most a stored hash may cost."""
    time_cost: int = 3
    memory_kib: int = 65536
    parallelism: int = 4
    max_time_cost: int = 6
    max_memory_kib: int = 131072
    max_parallelism: int = 8
    max_iterations: int = 600_000


@dataclass(frozen=True)
class Scheme:
    allowed: Callable[[bytes, HashPolicy], bool]
    verify: Callable[[bytes, bytes], bool]


def _argon2_allowed(body: bytes, policy: HashPolicy) -> bool:
    try:
        p = extract_parameters(body.decode("ascii"))
    except (InvalidHashError, UnicodeDecodeError, ValueError):
        return False
    return (1 <= p.time_cost <= policy.max_time_cost
            and 8 * p.parallelism <= p.memory_cost <= policy.max_memory_kib
            and 1 <= p.parallelism <= policy.max_parallelism
            and p.hash_len <= MAX_HASH_BYTES and p.salt_len <= MAX_HASH_BYTES)


def _argon2_verify(body: bytes, password: bytes) -> bool:
    try:
        return PasswordHasher().verify(body.decode("ascii"), password)
    except (VerificationError, InvalidHashError, UnicodeDecodeError):
        return False


def _b64(body: bytes) -> bytes | None:
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        return None


def _digest(name: str, salted: bool) -> Scheme:
    size = hashlib.new(name).digest_size

    def split(body: bytes) -> tuple[bytes, bytes] | None:
        raw = _b64(body)
        if raw is None or len(raw) < size or (len(raw) == size) == salted:
            return None
        return raw[:size], raw[size:]

    def verify(body: bytes, password: bytes) -> bool:
        parts = split(body)
        if parts is None:
            return False
        digest, salt = parts
        return hmac.compare_digest(hashlib.new(name, password + salt).digest(), digest)

    return Scheme(allowed=lambda body, policy: split(body) is not None, verify=verify)


def _crypt_allowed(body: bytes, policy: HashPolicy) -> bool:
    found = _CRYPT.fullmatch(body.decode("ascii", errors="replace"))
    return found is not None and int(found[2] or 0) <= policy.max_iterations


def _crypt_verify(body: bytes, password: bytes) -> bool:
    try:
        text = password.decode()
    except UnicodeDecodeError:
        return False
    if "\0" in text:
        return False
    stored = body.decode("ascii")
    computed = crypt_r.crypt(text, stored)
    return computed is not None and hmac.compare_digest(computed, stored)


def _ab64(text: bytes) -> bytes | None:
    return _b64(text.replace(b".", b"+") + b"=" * (-len(text) % 4))


def _pbkdf2(name: str) -> Scheme:
    size = hashlib.new(name).digest_size

    def parse(body: bytes) -> tuple[int, bytes, bytes] | None:
        parts = body.split(b"$")
        if len(parts) != 3 or not parts[0].isdigit():
            return None
        salt, key = _ab64(parts[1]), _ab64(parts[2])
        if salt is None or key is None or len(key) != size:
            return None
        return int(parts[0]), salt, key

    def allowed(body: bytes, policy: HashPolicy) -> bool:
        parsed = parse(body)
        return parsed is not None and 1 <= parsed[0] <= policy.max_iterations

    def verify(body: bytes, password: bytes) -> bool:
        parsed = parse(body)
        if parsed is None:
            return False
        iterations, salt, key = parsed
        return hmac.compare_digest(hashlib.pbkdf2_hmac(name, password, salt, iterations), key)

    return Scheme(allowed=allowed, verify=verify)


SCHEMES: Mapping[bytes, Scheme] = {
    ARGON2: Scheme(allowed=_argon2_allowed, verify=_argon2_verify),
    b"{MD5}": _digest("md5", salted=False),
    b"{SMD5}": _digest("md5", salted=True),
    b"{SHA}": _digest("sha1", salted=False),
    b"{SSHA}": _digest("sha1", salted=True),
    b"{SSHA256}": _digest("sha256", salted=True),
    b"{SSHA384}": _digest("sha384", salted=True),
    b"{SSHA512}": _digest("sha512", salted=True),
    b"{CRYPT}": Scheme(allowed=_crypt_allowed, verify=_crypt_verify),
    b"{PBKDF2}": _pbkdf2("sha1"),
    b"{PBKDF2-SHA1}": _pbkdf2("sha1"),
    b"{PBKDF2-SHA256}": _pbkdf2("sha256"),
    b"{PBKDF2-SHA512}": _pbkdf2("sha512"),
}


def prefix_of(value: bytes) -> bytes | None:
    """The `{SCHEME}` a value starts with, upper-cased, known or not."""
    found = _PREFIX.match(value)
    return found[0].upper() if found else None


def is_hashed(value: bytes) -> bool:
    return prefix_of(value) is not None


def generate_password() -> str:
    """A random password for RFC 3062 requests that do not give one."""
    return secrets.token_urlsafe(15)


class Hashing:
    """Hashing and verification under one `HashPolicy` (thread-safe, no I/O)."""

    def __init__(self, policy: HashPolicy) -> None:
        self.policy = policy
        self._hasher = PasswordHasher(time_cost=policy.time_cost,
                                      memory_cost=policy.memory_kib,
                                      parallelism=policy.parallelism)

    def hash(self, password: bytes) -> bytes:
        return ARGON2 + self._hasher.hash(password).encode()

    def acceptable(self, stored: bytes) -> bool:
        """In a known scheme and within the policy: worth verifying, or storing."""
        prefix = prefix_of(stored)
        scheme = SCHEMES.get(prefix) if prefix else None
        return scheme is not None and scheme.allowed(stored[len(prefix or b""):], self.policy)

    def verify(self, stored: bytes, password: bytes) -> bool:
        if not self.acceptable(stored):
            return False
        prefix = prefix_of(stored) or b""
        return SCHEMES[prefix].verify(stored[len(prefix):], password)

    @cached_property
    def dummy(self) -> bytes:
        return self.hash(secrets.token_bytes(16))

    def needs_upgrade(self, stored: bytes) -> bool:
        if prefix_of(stored) != ARGON2:
            return True
        return self._hasher.check_needs_rehash(stored[len(ARGON2):].decode("ascii"))

    def prepare(self, value: bytes) -> bytes:
        """The value to store for a userPassword in an import or a
        server-side write: hashes are kept as they are, anything else is hashed."""
        return value if is_hashed(value) else self.hash(value)


DEFAULT = Hashing(HashPolicy())


def hash_password(password: bytes) -> bytes:
    return DEFAULT.hash(password)


def verify(stored: bytes, password: bytes) -> bool:
    return DEFAULT.verify(stored, password)
