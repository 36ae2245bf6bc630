"""The KMS vault (kms.vault) on a real SQLite file.

- The master key is wrapped under Argon2id(passphrase); only the right
  passphrase unlocks it, and the GCM tag is the check: a wrong one gives
  "wrong KMS passphrase", no vault at all "no KMS here".
- Changing the passphrase re-wraps the master key: the new one unlocks, the
  old one no longer does, and what was sealed before still opens.
- Sealed blobs open only unaltered, under the same associated data and the
  same master key; every part of the blob is authenticated.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kms.config import KMSConfig
from kms.errors import KMSError
from kms.vault import Vault, secret_from
from tests.kms import Database

NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
SECRET = b"correct horse battery staple"
AAD = b"uid=alice,dc=example,dc=com\n1f"


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "certdir.db"


@pytest.fixture
def db(path: Path) -> Iterator[Database]:
    database = Database(path)
    yield database
    database.close()


@pytest.fixture
def vault(db: Database) -> Vault:
    return db.write(lambda records: Vault.create(records, SECRET, NOW))


def unlock(db: Database, secret: bytes) -> Vault:
    return db.read(lambda records: Vault.unlock(records, secret))


def vaults(db: Database) -> int:
    (count,) = db.edit.execute("SELECT count(*) FROM kms_vault").fetchone()
    assert isinstance(count, int)
    return count


def test_create_then_unlock_after_reopening(vault: Vault, path: Path) -> None:
    other = Database(path)
    unlocked = unlock(other, SECRET)
    assert unlocked.open(vault.seal(b"escrowed key", AAD), AAD) == b"escrowed key"
    assert vault.open(unlocked.seal(b"other way", AAD), AAD) == b"other way"
    other.close()


def test_the_master_key_is_not_stored_in_clear(vault: Vault, path: Path) -> None:
    assert vault._key not in path.read_bytes()
    assert vault._key.hex() not in repr(vault)


def test_create_twice_is_refused(vault: Vault, db: Database) -> None:
    with pytest.raises(KMSError, match="already exists"):
        db.write(lambda records: Vault.create(records, b"another", NOW))
    assert vaults(db) == 1


def test_wrong_secret(vault: Vault, db: Database) -> None:
    with pytest.raises(KMSError, match=r"^wrong KMS passphrase$"):
        unlock(db, b"correct horse battery stapler")


def test_no_vault(db: Database) -> None:
    with pytest.raises(KMSError, match=r"^no KMS here; run certdir kms init$"):
        unlock(db, SECRET)


@pytest.mark.parametrize("column, value", [("memory_kib", 1 << 40), ("time_cost", 0),
                                           ("parallelism", 1000)])
def test_edited_cost_is_refused_before_use(vault: Vault, db: Database,
                                           column: str, value: int) -> None:
    db.edit.execute(f"UPDATE kms_vault SET {column} = ?", (value,))
    with pytest.raises(KMSError, match="damaged"):
        unlock(db, SECRET)


def test_empty_secret_is_refused(db: Database) -> None:
    with pytest.raises(KMSError, match="empty passphrase"):
        db.write(lambda records: Vault.create(records, b"", NOW))
    assert vaults(db) == 0


def test_change_secret(vault: Vault, db: Database, path: Path) -> None:
    sealed = vault.seal(b"sealed before the change", AAD)
    db.write(lambda records: vault.change_secret(records, b"new passphrase"))
    other = Database(path)
    with pytest.raises(KMSError, match="wrong KMS passphrase"):
        unlock(other, SECRET)
    assert unlock(other, b"new passphrase").open(sealed, AAD) == b"sealed before the change"
    other.close()


def test_rolled_back_change_keeps_the_old_secret(vault: Vault, db: Database) -> None:
    with pytest.raises(RuntimeError), db.transaction() as records:
        vault.change_secret(records, b"new passphrase")
        raise RuntimeError("the caller's transaction fails later")
    unlock(db, SECRET)


@pytest.mark.parametrize("plaintext", [b"", b"x", bytes(range(256)) * 40])
def test_seal_open_round_trip(vault: Vault, plaintext: bytes) -> None:
    blob = vault.seal(plaintext, AAD)
    assert len(plaintext) < 2 or plaintext not in blob
    assert vault.open(blob, AAD) == plaintext


def test_every_seal_is_fresh(vault: Vault) -> None:
    assert vault.seal(b"same", AAD) != vault.seal(b"same", AAD)


# Offsets into a blob: version, wrap nonce, wrapped data key, its tag, data nonce,
# ciphertext, data tag (the last byte).
PARTS = [("version", 0), ("wrap nonce", 1), ("wrapped key", 13), ("wrapped key tag", 60),
         ("data nonce", 61), ("ciphertext", 73), ("data tag", -1)]


@pytest.mark.parametrize("part, offset", PARTS)
def test_tampered_blob(vault: Vault, part: str, offset: int) -> None:
    blob = bytearray(vault.seal(b"private key bytes", AAD))
    blob[offset] ^= 0x01
    with pytest.raises(KMSError):
        vault.open(bytes(blob), AAD)


@pytest.mark.parametrize("cut", [0, 1, 72, 73, 88])
def test_truncated_blob(vault: Vault, cut: int) -> None:
    with pytest.raises(KMSError):
        vault.open(vault.seal(b"private key bytes", AAD)[:cut], AAD)


@pytest.mark.parametrize("aad", [b"", b"uid=bob,dc=example,dc=com\n1f",
                                 b"uid=alice,dc=example,dc=com\n20"])
def test_wrong_aad(vault: Vault, aad: bytes) -> None:
    with pytest.raises(KMSError, match="altered or belongs to another record"):
        vault.open(vault.seal(b"private key bytes", AAD), aad)


def test_another_vaults_blob(vault: Vault, tmp_path: Path) -> None:
    other_db = Database(tmp_path / "other.db")
    other = other_db.write(lambda records: Vault.create(records, SECRET, NOW))
    with pytest.raises(KMSError):
        other.open(vault.seal(b"private key bytes", AAD), AAD)
    other_db.close()


def test_secret_from_environment_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "kms-passphrase").write_bytes(b"from the file\n")
    config = KMSConfig(passphrase_env="TEST_KMS_SECRET",
                       passphrase_file=tmp_path / "kms-passphrase")
    monkeypatch.setenv("TEST_KMS_SECRET", "from the environment")
    assert secret_from(config) == b"from the environment"
    monkeypatch.delenv("TEST_KMS_SECRET")
    assert secret_from(config) == b"from the file"


def test_secret_nowhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEST_KMS_SECRET", raising=False)
    monkeypatch.setattr(sys, "stdin", open("/dev/null"))  # noqa: SIM115
    config = KMSConfig(passphrase_env="TEST_KMS_SECRET", passphrase_file=tmp_path / "missing")
    with pytest.raises(KMSError, match=r"\$TEST_KMS_SECRET.*missing"):
        secret_from(config)
