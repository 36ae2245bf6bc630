"""The KMS vault: one master key, never stored in clear, and envelope encryption under it.

- The master key is 32 random bytes. At rest it is wrapped with AES-256-GCM
  (NIST SP 800-38D) under a key-encryption key derived from the KMS
  passphrase with Argon2id (RFC 9106 §4, second recommended option: t=3,
  m=64 MiB, p=4, 32-byte output) and a random 16-byte salt. Salt, cost,
  nonce and wrapped key are the one row of `kms_vault`.
- The GCM tag is the passphrase check: a wrong passphrase fails
  authentication, so nothing else derived from the passphrase is stored.
- Changing the passphrase re-wraps the master key under a new salt and
  nonce; everything sealed under the master key stays as it is.
- Sealing is envelope encryption: a fresh 32-byte data key per blob
  encrypts the plaintext with AES-256-GCM, and the master key wraps that
  data key with AES-256-GCM; both bind the caller's associated data, so a
  blob opened under any other aad (another owner, another serial) fails.
- A sealed blob is self-describing: version byte 1, wrap nonce (12), wrapped
  data key (48, tag included), data nonce (12), ciphertext with its tag.
- Argon2 costs read back from the table are bounded before use, so an edited
  row cannot make unlocking exhaust memory or time.
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
import secrets
import struct
import sys
from dataclasses import dataclass, field

from argon2.low_level import Type, hash_secret_raw
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from directory.backend import Param, Records
from kms.config import KMSConfig
from kms.errors import KMSError

SCHEMA: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS kms_vault (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        created TEXT NOT NULL,
        time_cost INTEGER NOT NULL,
        memory_kib INTEGER NOT NULL,
        parallelism INTEGER NOT NULL,
        salt BLOB NOT NULL,
        nonce BLOB NOT NULL,
        wrapped BLOB NOT NULL
    )""",
)

KEY_SIZE = 32
NONCE_SIZE = 12
TAG_SIZE = 16
BLOB_VERSION = 1
_BLOB_HEADER = struct.Struct(f">B{NONCE_SIZE}s{KEY_SIZE + TAG_SIZE}s{NONCE_SIZE}s")
# Binds the wrapped master key to its purpose: a KEK can never unwrap anything else.
_MASTER_AAD = b"certdir kms master key v1"
NO_VAULT = "no KMS here; run certdir kms init"
WRONG_SECRET = "wrong KMS passphrase"


@dataclass(frozen=True, slots=True)
class KDFCost:
    time_cost: int = 3
    memory_kib: int = 64 * 1024
    parallelism: int = 4

    def within(self, limit: KDFCost) -> bool:
        return (1 <= self.time_cost <= limit.time_cost
                and 8 * self.parallelism <= self.memory_kib <= limit.memory_kib
                and 1 <= self.parallelism <= limit.parallelism)

    def derive(self, secret: bytes, salt: bytes) -> AESGCM:
        return AESGCM(hash_secret_raw(secret, salt, self.time_cost, self.memory_kib,
                                      self.parallelism, KEY_SIZE, Type.ID))

    def wrap(self, master: bytes, secret: bytes) -> tuple[Param, ...]:
        """The vault row's KDF and wrapping columns for `master` under
        `secret` at this cost, freshly salted."""
        salt, nonce = secrets.token_bytes(16), secrets.token_bytes(NONCE_SIZE)
        wrapped = self.derive(secret, salt).encrypt(nonce, master, _MASTER_AAD)
        return self.time_cost, self.memory_kib, self.parallelism, salt, nonce, wrapped

    def unwrap(self, secret: bytes, salt: bytes, nonce: bytes, wrapped: bytes) -> bytes:
        """The master key the row's columns wrap; InvalidTag for a wrong `secret`."""
        return self.derive(secret, salt).decrypt(nonce, wrapped, _MASTER_AAD)


COST = KDFCost()
MAX_COST = KDFCost(time_cost=64, memory_kib=4 * 1024 * 1024, parallelism=64)


def _check_secret(secret: bytes) -> None:
    if not secret:
        raise KMSError("an empty passphrase cannot protect the KMS")


@dataclass(frozen=True, slots=True)
class Vault:
    """An unlocked KMS: it holds the master key in memory only."""

    _key: bytes = field(repr=False)

    @classmethod
    def create(cls, records: Records, secret: bytes, now: dt.datetime) -> Vault:
        _check_secret(secret)
        if records.row("SELECT 1 FROM kms_vault") is not None:
            raise KMSError("a KMS vault already exists here")
        master = secrets.token_bytes(KEY_SIZE)
        records.run(
            "INSERT INTO kms_vault (id, created, time_cost, memory_kib, parallelism, salt,"
            " nonce, wrapped) VALUES (1, ?, ?, ?, ?, ?, ?, ?)",
            (now.astimezone(dt.UTC).isoformat(timespec="seconds"),
             *COST.wrap(master, secret)))
        return cls(master)

    @classmethod
    def unlock(cls, records: Records, secret: bytes) -> Vault:
        row = records.row(
            "SELECT time_cost, memory_kib, parallelism, salt, nonce, wrapped FROM kms_vault")
        if row is None:
            raise KMSError(NO_VAULT)
        time_cost, memory_kib, parallelism, salt, nonce, wrapped = row
        cost = KDFCost(time_cost, memory_kib, parallelism)
        if not cost.within(MAX_COST):
            raise KMSError("the KMS vault record is damaged (Argon2 cost out of range)")
        try:
            master = cost.unwrap(secret, salt, nonce, wrapped)
        except InvalidTag:
            raise KMSError(WRONG_SECRET) from None
        return cls(master)

    def change_secret(self, records: Records, new_secret: bytes) -> None:
        _check_secret(new_secret)
        changed = records.run(
            "UPDATE kms_vault SET time_cost = ?, memory_kib = ?, parallelism = ?, salt = ?,"
            " nonce = ?, wrapped = ? WHERE id = 1",
            COST.wrap(self._key, new_secret))
        if changed != 1:
            raise KMSError(NO_VAULT)

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        data_key = AESGCM.generate_key(bit_length=KEY_SIZE * 8)
        wrap_nonce, data_nonce = secrets.token_bytes(NONCE_SIZE), secrets.token_bytes(NONCE_SIZE)
        wrapped = AESGCM(self._key).encrypt(wrap_nonce, data_key, aad)
        ciphertext = AESGCM(data_key).encrypt(data_nonce, plaintext, aad)
        return _BLOB_HEADER.pack(BLOB_VERSION, wrap_nonce, wrapped, data_nonce) + ciphertext

    def open(self, blob: bytes, aad: bytes) -> bytes:
        if len(blob) < _BLOB_HEADER.size + TAG_SIZE or blob[0] != BLOB_VERSION:
            raise KMSError("not a KMS sealed blob (unknown version or truncated)")
        _, wrap_nonce, wrapped, data_nonce = _BLOB_HEADER.unpack_from(blob)
        try:
            data_key = AESGCM(self._key).decrypt(wrap_nonce, wrapped, aad)
            return AESGCM(data_key).decrypt(data_nonce, blob[_BLOB_HEADER.size:], aad)
        except InvalidTag:
            raise KMSError("sealed KMS data was altered or belongs to another record") from None


def secret_from(config: KMSConfig) -> bytes:
    from_env = os.environ.get(config.passphrase_env)
    if from_env:
        return from_env.encode()
    try:
        from_file = config.passphrase_file.read_bytes().strip()
    except FileNotFoundError:
        from_file = b""
    if from_file:
        return from_file
    if sys.stdin.isatty():
        return getpass.getpass("KMS passphrase: ").encode()
    raise KMSError(f"the KMS is locked: set ${config.passphrase_env} or put the passphrase "
                   f"in {config.passphrase_file}")
