"""The KMS vault (kms.vault) on a real SQLite file.

- The master key is wrapped under Argon2id(passphrase); only the right
  passphrase unlocks it, and the GCM tag is the check: a wrong one gives
  "wrong KMS passphrase", no vault at all "no KMS here".
- Changing the passphrase re-wraps the master key: the new one unlocks, the
  old one no longer does, and what was sealed before still opens.
- `kms.store.create` makes the KMS tables inside the caller's transaction.
- Sealed blobs open only unaltered, under the same associated data and the
  same master key; every part of the blob is authenticated.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kms import store
from kms.config import KMSConfig
from kms.errors import KMSError
from kms.vault import Vault, secret_from
from tests.kms import database, transaction

NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
SECRET = b"correct horse battery staple"
AAD = b"uid=alice,dc=example,dc=com\n1f"


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "certdir.db"


@pytest.fixture
def conn(path: Path) -> Iterator[sqlite3.Connection]:
    connection = database(path)
    yield connection
    connection.close()


@pytest.fixture
def vault(conn: sqlite3.Connection) -> Vault:
    with transaction(conn):
        return Vault.create(conn, SECRET, NOW)


def reopen(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def test_store_creates_tables_in_the_callers_transaction(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "fresh.db", isolation_level=None)
    tables = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name LIKE 'kms_%'"
    with pytest.raises(RuntimeError), transaction(conn):
        store.create(conn)
        raise RuntimeError("the caller's transaction fails later")
    assert conn.execute(tables).fetchone() == (0,)
    with transaction(conn):
        store.create(conn)
        store.create(conn)
    assert conn.execute(tables).fetchone()[0] >= 5
    conn.close()


def test_create_then_unlock_from_another_connection(vault: Vault, path: Path) -> None:
    other = reopen(path)
    unlocked = Vault.unlock(other, SECRET)
    assert unlocked.open(vault.seal(b"escrowed key", AAD), AAD) == b"escrowed key"
    assert vault.open(unlocked.seal(b"other way", AAD), AAD) == b"other way"
    other.close()


def test_the_master_key_is_not_stored_in_clear(vault: Vault, path: Path) -> None:
    assert vault._key not in path.read_bytes()
    assert vault._key.hex() not in repr(vault)


def test_create_twice_is_refused(vault: Vault, conn: sqlite3.Connection) -> None:
    with pytest.raises(KMSError, match="already exists"), transaction(conn):
        Vault.create(conn, b"another", NOW)
    assert conn.execute("SELECT count(*) FROM kms_vault").fetchone() == (1,)


def test_wrong_secret(vault: Vault, conn: sqlite3.Connection) -> None:
    with pytest.raises(KMSError, match=r"^wrong KMS passphrase$"):
        Vault.unlock(conn, b"correct horse battery stapler")


def test_no_vault(conn: sqlite3.Connection) -> None:
    with pytest.raises(KMSError, match=r"^no KMS here; run certdir kms init$"):
        Vault.unlock(conn, SECRET)


@pytest.mark.parametrize("column, value", [("memory_kib", 1 << 40), ("time_cost", 0),
                                           ("parallelism", 1000)])
def test_edited_cost_is_refused_before_use(vault: Vault, conn: sqlite3.Connection,
                                           column: str, value: int) -> None:
    conn.execute(f"UPDATE kms_vault SET {column} = ?", (value,))
    with pytest.raises(KMSError, match="damaged"):
        Vault.unlock(conn, SECRET)


def test_empty_secret_is_refused(conn: sqlite3.Connection) -> None:
    with pytest.raises(KMSError, match="empty passphrase"), transaction(conn):
        Vault.create(conn, b"", NOW)
    assert conn.execute("SELECT count(*) FROM kms_vault").fetchone() == (0,)


def test_change_secret(vault: Vault, conn: sqlite3.Connection, path: Path) -> None:
    sealed = vault.seal(b"sealed before the change", AAD)
    with transaction(conn):
        vault.change_secret(conn, b"new passphrase")
    other = reopen(path)
    with pytest.raises(KMSError, match="wrong KMS passphrase"):
        Vault.unlock(other, SECRET)
    assert Vault.unlock(other, b"new passphrase").open(sealed, AAD) == b"sealed before the change"
    other.close()


def test_rolled_back_change_keeps_the_old_secret(vault: Vault, conn: sqlite3.Connection) -> None:
    with pytest.raises(RuntimeError), transaction(conn):
        vault.change_secret(conn, b"new passphrase")
        raise RuntimeError("the caller's transaction fails later")
    Vault.unlock(conn, SECRET)


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
    conn = database(tmp_path / "other.db")
    with transaction(conn):
        other = Vault.create(conn, SECRET, NOW)
    with pytest.raises(KMSError):
        other.open(vault.seal(b"private key bytes", AAD), AAD)
    conn.close()


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
