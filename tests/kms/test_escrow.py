"""Escrowed keys (kms.escrow) on a real SQLite file.

- Every key type the CA issues for comes back from recovery with the same
  private numbers, under the record it was escrowed with.
- The database holds the key only sealed; a sealed key moved onto another
  owner's or serial's row, or altered, does not open.
- One escrowed key per serial; find filters by owner (any case) and serial.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from ca.keys import PrivateKey, generate
from kms.errors import KMSError
from kms.escrow import EscrowRecord, escrow, find, recover
from kms.vault import Vault
from tests.kms import Database

NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
ALICE = "uid=Alice,ou=People,dc=example,dc=com"
BOB = "uid=bob,ou=People,dc=example,dc=com"
SERIAL = 0x5A3B9C0D1E2F3A4B5C6D7E8F9A0B1C2D3E4F5A6B


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(tmp_path / "certdir.db")
    yield database
    database.close()


@pytest.fixture
def vault(db: Database) -> Vault:
    return db.write(lambda records: Vault.create(records, b"kms passphrase", NOW))


def private_numbers(key: PrivateKey) -> object:
    if isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        return key.private_numbers()
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    return key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                             serialization.NoEncryption())


@pytest.mark.parametrize("key_type", ["rsa2048", "p256", "p384", "ed25519"])
def test_escrow_recover_round_trip(db: Database, vault: Vault, key_type: str) -> None:
    key = generate(key_type)
    escrow_id = db.write(lambda records: escrow(records, vault, ALICE, SERIAL, key, NOW))
    record, recovered = db.read(lambda records: recover(records, vault, escrow_id))
    assert record == EscrowRecord(escrow_id, ALICE, SERIAL, NOW)
    assert type(recovered) is type(key)
    assert private_numbers(recovered) == private_numbers(key)


def test_only_the_sealed_key_is_stored(db: Database, vault: Vault, tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    db.write(lambda records: escrow(records, vault, ALICE, SERIAL, key, NOW))
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    secret = key.private_numbers().private_value.to_bytes(32, "big")
    stored = (tmp_path / "certdir.db").read_bytes()
    assert der not in stored
    assert secret not in stored


def test_recover_under_a_new_passphrase(db: Database, vault: Vault) -> None:
    key = generate("p256")
    with db.transaction() as records:
        escrow_id = escrow(records, vault, ALICE, SERIAL, key, NOW)
        vault.change_secret(records, b"another passphrase")
    with db.backend.reading() as records:
        _, recovered = recover(records, Vault.unlock(records, b"another passphrase"), escrow_id)
    assert private_numbers(recovered) == private_numbers(key)


@pytest.mark.parametrize("column, value", [("owner", BOB), ("serial", f"{SERIAL + 1:x}")])
def test_sealed_key_moved_to_another_record(db: Database, vault: Vault,
                                            column: str, value: str) -> None:
    with db.transaction() as records:
        escrow_id = escrow(records, vault, ALICE, SERIAL, generate("p256"), NOW)
        records.run(f"UPDATE kms_escrow SET {column} = ? WHERE id = ?", (value, escrow_id))
    with pytest.raises(KMSError, match="altered or belongs to another record"):
        db.read(lambda records: recover(records, vault, escrow_id))


def test_altered_sealed_key(db: Database, vault: Vault) -> None:
    with db.transaction() as records:
        escrow_id = escrow(records, vault, ALICE, SERIAL, generate("p256"), NOW)
        (sealed,) = records.rows("SELECT sealed FROM kms_escrow")[0]
        altered = sealed[:-1] + bytes([sealed[-1] ^ 0x80])
        records.run("UPDATE kms_escrow SET sealed = ?", (altered,))
    with pytest.raises(KMSError):
        db.read(lambda records: recover(records, vault, escrow_id))


def test_another_vault_cannot_recover(db: Database, vault: Vault, tmp_path: Path) -> None:
    escrow_id = db.write(lambda records: escrow(records, vault, ALICE, SERIAL,
                                                generate("p256"), NOW))
    other_db = Database(tmp_path / "other.db")
    other = other_db.write(lambda records: Vault.create(records, b"kms passphrase", NOW))
    with pytest.raises(KMSError):
        db.read(lambda records: recover(records, other, escrow_id))
    other_db.close()


def test_unknown_escrow_id(db: Database, vault: Vault) -> None:
    with pytest.raises(KMSError, match="no escrowed key #42"):
        db.read(lambda records: recover(records, vault, 42))


def test_one_key_per_serial(db: Database, vault: Vault) -> None:
    db.write(lambda records: escrow(records, vault, ALICE, SERIAL, generate("p256"), NOW))
    with pytest.raises(KMSError, match=f"already escrowed for certificate serial {SERIAL:x}"):
        db.write(lambda records: escrow(records, vault, BOB, SERIAL, generate("p256"), NOW))
    assert len(db.read(find)) == 1


def test_find(db: Database, vault: Vault) -> None:
    later = NOW + dt.timedelta(days=1)
    with db.transaction() as records:
        first = escrow(records, vault, ALICE, 1, generate("p256"), NOW)
        second = escrow(records, vault, BOB, 2, generate("p256"), NOW)
        third = escrow(records, vault, ALICE, 3, generate("p256"), later)
    with db.backend.reading() as records:
        assert [r.id for r in find(records)] == [first, second, third]
        assert [r.id for r in find(records, owner=ALICE.upper())] == [first, third]
        assert find(records, serial=3) == [EscrowRecord(third, ALICE, 3, later)]
        assert [r.id for r in find(records, owner=BOB, serial=2)] == [second]
        assert find(records, owner=BOB, serial=3) == []
        assert find(records, owner="uid=carol,dc=example,dc=com") == []
