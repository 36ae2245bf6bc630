"""Escrowed private keys: the encryption keys the KMS generated, kept for recovery.

- A key is stored as PKCS#8 DER (RFC 5958 §2) sealed by the vault (envelope
  encryption, AES-256-GCM) with the associated data `owner\\nserial`: the
  owner's DN lower-cased and the certificate serial in lower-case hex. A
  sealed key copied onto another owner's or serial's row no longer opens.
- One escrowed key per certificate serial.
- Only key types the CA accepts come back out (ca.keys): RSA, ECDSA P-256/P-384,
  Ed25519.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from ca.keys import PrivateKey
from directory.backend import Records
from kms.errors import KMSError
from kms.vault import Vault

SCHEMA: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS kms_escrow (
        id INTEGER PRIMARY KEY,
        owner TEXT NOT NULL,
        owner_key TEXT NOT NULL,
        serial TEXT NOT NULL UNIQUE,
        created TEXT NOT NULL,
        sealed BLOB NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS kms_escrow_owner ON kms_escrow (owner_key)",
)


@dataclass(frozen=True, slots=True)
class EscrowRecord:
    id: int
    owner: str
    serial: int
    created: dt.datetime


def _aad(owner: str, serial: int) -> bytes:
    return f"{owner.lower()}\n{serial:x}".encode()


def escrow(records: Records, vault: Vault, owner: str, serial: int, key: PrivateKey,
           now: dt.datetime) -> int:
    if records.row("SELECT 1 FROM kms_escrow WHERE serial = ?", (f"{serial:x}",)) is not None:
        raise KMSError(f"a key is already escrowed for certificate serial {serial:x}")
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    row = records.row(
        "INSERT INTO kms_escrow (owner, owner_key, serial, created, sealed)"
        " VALUES (?, ?, ?, ?, ?) RETURNING id",
        (owner, owner.lower(), f"{serial:x}", now.astimezone(dt.UTC).isoformat(timespec="seconds"),
         vault.seal(der, _aad(owner, serial))))
    assert row is not None
    return int(row[0])


_COLUMNS = "id, owner, serial, created"


def _record(row: tuple[int, str, str, str]) -> EscrowRecord:
    escrow_id, owner, serial, created = row
    return EscrowRecord(escrow_id, owner, int(serial, 16), dt.datetime.fromisoformat(created))


def find(records: Records, owner: str | None = None,
         serial: int | None = None) -> list[EscrowRecord]:
    wanted = {"owner_key": None if owner is None else owner.lower(),
              "serial": None if serial is None else f"{serial:x}"}
    given = {column: value for column, value in wanted.items() if value is not None}
    where = " AND ".join(f"{column} = ?" for column in given) or "1 = 1"
    rows = records.rows(f"SELECT {_COLUMNS} FROM kms_escrow WHERE {where} ORDER BY id",
                        tuple(given.values()))
    return [_record(row) for row in rows]


def recover(records: Records, vault: Vault,
            escrow_id: int) -> tuple[EscrowRecord, PrivateKey]:
    row = records.row(f"SELECT {_COLUMNS}, sealed FROM kms_escrow WHERE id = ?", (escrow_id,))
    if row is None:
        raise KMSError(f"no escrowed key #{escrow_id}")
    record = _record(row[:4])
    der = vault.open(row[4], _aad(record.owner, record.serial))
    key = serialization.load_der_private_key(der, None)
    if not isinstance(key, RSAPrivateKey | EllipticCurvePrivateKey | Ed25519PrivateKey):
        raise KMSError(f"escrowed key #{escrow_id} is a {type(key).__name__}, not supported")
    return record, key
