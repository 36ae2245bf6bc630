"""CA backup and restore (issue 4, part 6), on real data directories.

A data directory made by `certdir init`, with a TLS server certificate
issued from an openssl CSR, is backed up and restored into an empty
directory: the restored CA is the same CA (certificate, key, issued
certificates, directory entries) and, once the administrator copies the
passphrase file back, it reports its status and issues certificates that
chain to the original root. Wrong passphrases, edited, truncated or
reordered archives, non-empty targets and members escaping the directory
are each refused, and a refused restore leaves nothing behind.
"""

from __future__ import annotations

import io
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import tarfile
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ca.backup import (
    CHUNK_SIZE,
    DAMAGED,
    TAG_SIZE,
    BackupSummary,
    OpeningReader,
    SealingWriter,
    backup,
    restore,
    sealed_file,
)
from ca.errors import CAError
from ca.keys import decrypt_private_key
from directory.backend.opening import sqlite_url
from tests.pki.lint import openssl_verify

CERTDIR = [sys.executable, "-m", "certdir"]
PASSPHRASE = b"correct horse battery staple"


def certdir(*args: str | Path) -> str:
    done = subprocess.run([*CERTDIR, *map(str, args)], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def tls_csr(folder: Path, name: str) -> Path:
    csr = folder / f"{name}.csr"
    subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(folder / f"{name}.key"),
                    "-out", str(csr), "-subj", f"/CN={name}",
                    "-addext", f"subjectAltName=DNS:{name}"],
                   check=True, capture_output=True)
    return csr


def issue(data_dir: Path, csr: Path) -> str:
    return certdir("ca", "issue", "--data-dir", data_dir, "--csr", csr,
                   "--profile", "tls-server").strip()


def certificate_rows(database: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(database) as conn:
        return conn.execute("SELECT * FROM ca_certificates ORDER BY serial").fetchall()


def certificate_pem(data_dir: Path, serial: str) -> str:
    with sqlite3.connect(data_dir / "certdir.db") as conn:
        (der,) = conn.execute("SELECT der FROM ca_certificates WHERE serial=?",
                              (serial,)).fetchone()
    return x509.load_der_x509_certificate(der).public_bytes(
        serialization.Encoding.PEM).decode()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@dataclass(frozen=True)
class RoundTrip:
    original: Path
    archive: Path
    restored: Path
    serial: str
    backed_up: BackupSummary
    restored_summary: BackupSummary
    work: Path


@pytest.fixture(scope="module")
def round_trip(tmp_path_factory: pytest.TempPathFactory) -> RoundTrip:
    work = tmp_path_factory.mktemp("backup")
    original = work / "original"
    certdir("init", "--data-dir", original, "--suffix", "dc=example,dc=com")
    serial = issue(original, tls_csr(work, "www.example.com"))
    archive = work / "ca.backup"
    backed_up = backup(original, sqlite_url(original / "certdir.db"), archive, PASSPHRASE)
    restored = work / "restored"
    summary = restore(archive, restored, PASSPHRASE)
    return RoundTrip(original, archive, restored, serial, backed_up, summary, work)


def test_summaries_describe_the_ca(round_trip: RoundTrip) -> None:
    made = round_trip.backed_up
    assert made.ca_subject == "CN=Example Root CA,DC=example,DC=com"
    # The directory's TLS certificate from init and the one issued here.
    assert made.certificates == 2
    assert made.archive_size == round_trip.archive.stat().st_size
    assert round_trip.restored_summary == made


def test_archive_is_private_and_encrypted(round_trip: RoundTrip) -> None:
    assert mode(round_trip.archive) == 0o600
    data = round_trip.archive.read_bytes()
    assert data.startswith(b"CERTDIR-BACKUP\x00")
    assert b"Example Root CA" not in data and b"BEGIN" not in data
    assert not [p for p in round_trip.archive.parent.iterdir() if p.name.startswith(".")]


def test_same_ca_certificate_and_key(round_trip: RoundTrip) -> None:
    original, restored = round_trip.original, round_trip.restored
    for name in ("cert.pem", "chain.pem", "key.pem"):
        assert (restored / "ca" / name).read_bytes() == (original / "ca" / name).read_bytes()
    ca_passphrase = (original / "secrets" / "ca-passphrase").read_bytes().strip()
    keys = [decrypt_private_key((d / "ca" / "key.pem").read_bytes(), ca_passphrase, "CA key")
            for d in (original, restored)]
    assert len({key.private_bytes(serialization.Encoding.DER,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()) for key in keys}) == 1


def test_secrets_stay_out_and_modes_are_restored(round_trip: RoundTrip) -> None:
    restored = round_trip.restored
    assert list((restored / "secrets").iterdir()) == []
    for folder in ("secrets", "ca", "tls"):
        assert mode(restored / folder) == 0o700
    for secret in ("ca/key.pem", "tls/server.key"):
        assert mode(restored / secret) == 0o600
    original_files = sorted(p.relative_to(round_trip.original) for p in
                            round_trip.original.rglob("*") if p.is_file()
                            and p.parent.name != "secrets"
                            and p.name not in ("certdir.db-wal", "certdir.db-shm"))
    restored_files = sorted(p.relative_to(restored) for p in restored.rglob("*")
                            if p.is_file())
    assert restored_files == original_files
    assert round_trip.backed_up.files == len(original_files)
    for path in original_files:
        assert mode(restored / path) == mode(round_trip.original / path), path


def test_same_certificate_rows(round_trip: RoundTrip) -> None:
    rows = certificate_rows(round_trip.restored / "certdir.db")
    assert rows == certificate_rows(round_trip.original / "certdir.db")
    assert round_trip.serial in {row[0] for row in rows}


def test_same_directory_entries(round_trip: RoundTrip) -> None:
    exported = [certdir("ldif", "export", "--data-dir", d)
                for d in (round_trip.original, round_trip.restored)]
    assert exported[0] == exported[1]
    assert "cn=Example Root CA,cn=CAs,cn=PKI,dc=example,dc=com" in exported[0]


def test_restored_ca_works_once_its_passphrase_is_back(round_trip: RoundTrip) -> None:
    restored = round_trip.restored
    shutil.copy2(round_trip.original / "secrets" / "ca-passphrase",
                 restored / "secrets" / "ca-passphrase")
    status = certdir("ca", "status", "--data-dir", restored)
    assert "CN=Example Root CA,DC=example,DC=com" in status
    serial = issue(restored, tls_csr(round_trip.work, "mail.example.com"))
    leaf = round_trip.work / "restored-leaf.pem"
    leaf.write_text(certificate_pem(restored, serial))
    code, output = openssl_verify(leaf, [round_trip.original / "public" / "chain.pem"])
    assert code == 0, output


# --- refusals ---------------------------------------------------------------------


def refused(archive: Path, target: Path, passphrase: bytes = PASSPHRASE) -> str:
    with pytest.raises(CAError) as refusal:
        restore(archive, target, passphrase)
    assert not target.exists(), "a refused restore leaves nothing behind"
    return str(refusal.value)


def test_wrong_passphrase(round_trip: RoundTrip, tmp_path: Path) -> None:
    assert DAMAGED in refused(round_trip.archive, tmp_path / "new", b"wrong passphrase")


@pytest.mark.parametrize("where", ["header salt", "first chunk", "last byte"])
def test_tampered_byte(round_trip: RoundTrip, tmp_path: Path, where: str) -> None:
    data = bytearray(round_trip.archive.read_bytes())
    offset = {"header salt": 30, "first chunk": 200, "last byte": len(data) - 1}[where]
    data[offset] ^= 0x01
    tampered = tmp_path / "tampered.backup"
    tampered.write_bytes(bytes(data))
    assert DAMAGED in refused(tampered, tmp_path / "new")


def test_truncated_and_extended_archives(round_trip: RoundTrip, tmp_path: Path) -> None:
    data = round_trip.archive.read_bytes()
    for name, edited in (("truncated", data[:-100]), ("extended", data + bytes(32))):
        path = tmp_path / name
        path.write_bytes(edited)
        assert DAMAGED in refused(path, tmp_path / "new")


def test_not_a_backup(tmp_path: Path) -> None:
    path = tmp_path / "certdir.yaml"
    path.write_text("suffix: dc=example,dc=com\n")
    assert "is not a certdir backup" in refused(path, tmp_path / "new")


def test_non_empty_target(round_trip: RoundTrip, tmp_path: Path) -> None:
    target = tmp_path / "busy"
    target.mkdir()
    (target / "keep.txt").write_text("someone's file\n")
    with pytest.raises(CAError, match=f"{target} is not empty"):
        restore(round_trip.archive, target, PASSPHRASE)
    assert [p.name for p in target.iterdir()] == ["keep.txt"]


def test_empty_existing_target_is_accepted_and_emptied_on_refusal(
        round_trip: RoundTrip, tmp_path: Path) -> None:
    target = tmp_path / "empty"
    target.mkdir()
    truncated = tmp_path / "truncated.backup"
    truncated.write_bytes(round_trip.archive.read_bytes()[:-1])
    with pytest.raises(CAError, match=DAMAGED):
        restore(truncated, target, PASSPHRASE)
    assert target.is_dir() and not list(target.iterdir())
    assert restore(round_trip.archive, target, PASSPHRASE) == round_trip.backed_up


def hostile_archive(path: Path, member: tarfile.TarInfo, content: bytes = b"") -> None:
    with sealed_file(path, PASSPHRASE) as sealed, tarfile.open(
            fileobj=sealed, mode="w|") as archive:  # type: ignore[call-overload]
        ok = tarfile.TarInfo("certdir.yaml")
        ok.size = 3
        archive.addfile(ok, io.BytesIO(b"{}\n"))
        member.size = len(content) if member.isfile() else 0
        archive.addfile(member, io.BytesIO(content))


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    member = tarfile.TarInfo(name)
    member.type = kind
    member.linkname = link
    return member


@pytest.mark.parametrize("member, why", [
    (_member("../escaped"), "would escape"),
    (_member("secrets/../../escaped"), "would escape"),
    (_member("/tmp/certdir-escaped"), "would escape"),
    (_member("ca/link", tarfile.SYMTYPE, "/etc/passwd"), "not a regular file"),
    (_member("ca/hard", tarfile.LNKTYPE, "certdir.yaml"), "not a regular file"),
], ids=["dot-dot", "nested dot-dot", "absolute", "symlink", "hard link"])
def test_members_escaping_the_directory(tmp_path: Path, member: tarfile.TarInfo,
                                        why: str) -> None:
    archive = tmp_path / "hostile.backup"
    hostile_archive(archive, member, b"owned\n")
    assert why in refused(archive, tmp_path / "data" / "new")
    assert not (tmp_path / "data" / "escaped").exists()
    assert not Path("/tmp/certdir-escaped").exists()


# --- the encrypted stream ---------------------------------------------------------


def seal(data: bytes, passphrase: bytes = PASSPHRASE) -> bytes:
    out = io.BytesIO()
    writer = SealingWriter(out, passphrase)
    for start in range(0, len(data), 100_000):
        writer.write(data[start:start + 100_000])
    writer.close()
    return out.getvalue()


def unseal(sealed: bytes, passphrase: bytes = PASSPHRASE) -> bytes:
    reader = OpeningReader(io.BytesIO(sealed), passphrase, Path("stream"))
    return reader.read()


@pytest.mark.parametrize("size", [0, 1, CHUNK_SIZE, 2 * CHUNK_SIZE + 12345])
def test_stream_round_trip_in_chunks(size: int) -> None:
    data = os.urandom(size)
    sealed = seal(data)
    header = len(sealed) - len(data) - TAG_SIZE * max(1, -(-size // CHUNK_SIZE))
    assert header == 57
    assert unseal(sealed) == data


def test_stream_chunks_cannot_be_dropped_or_reordered() -> None:
    data = os.urandom(3 * CHUNK_SIZE + 1)
    sealed = seal(data)
    size = CHUNK_SIZE + TAG_SIZE
    header, body = sealed[:57], sealed[57:]
    chunks = [body[i:i + size] for i in range(0, len(body), size)]
    assert len(chunks) == 4
    for edited in (chunks[:3], chunks[:1] + chunks[2:], [chunks[1], chunks[0], *chunks[2:]]):
        with pytest.raises(CAError, match=DAMAGED):
            unseal(header + b"".join(edited))


def test_backup_is_consistent_while_a_writer_holds_a_transaction(
        round_trip: RoundTrip, tmp_path: Path) -> None:
    data_dir = tmp_path / "live"
    shutil.copytree(round_trip.original, data_dir)
    writer = sqlite3.connect(data_dir / "certdir.db", isolation_level=None)
    (committed,) = writer.execute("SELECT count(*) FROM ca_requests").fetchone()
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO ca_requests (created, csr, profile, status, policy) "
                   "VALUES ('2026-01-01T00:00:00Z', x'00', 'tls-server', 'pending', 'x')")
    done: list[BackupSummary] = []
    thread = threading.Thread(target=lambda: done.append(
        backup(data_dir, sqlite_url(data_dir / "certdir.db"), tmp_path / "live.backup",
               PASSPHRASE)))
    thread.start()
    thread.join(timeout=30)
    writer.execute("COMMIT")
    writer.close()
    assert done, "the backup waited for the writer"
    restore(tmp_path / "live.backup", tmp_path / "restored", PASSPHRASE)
    with sqlite3.connect(tmp_path / "restored" / "certdir.db") as conn:
        assert conn.execute("SELECT count(*) FROM ca_requests").fetchone() == (committed,)


def test_database_outside_the_data_directory(round_trip: RoundTrip, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.db"
    shutil.copy(round_trip.original / "certdir.db", elsewhere)
    with pytest.raises(CAError, match="outside the data directory"):
        backup(round_trip.original, sqlite_url(elsewhere), tmp_path / "x.backup", PASSPHRASE)
    assert not list(tmp_path.glob("x.backup*"))


@pytest.mark.parametrize("where, why", [
    ("public/inside.backup", "which the backup archives"),
    ("missing-folder/x.backup", "No such file or directory"),
    (".", "is a directory"),
])
def test_unwritable_archive_targets(round_trip: RoundTrip, where: str, why: str) -> None:
    out = round_trip.original / where
    with pytest.raises(CAError, match=why):
        backup(round_trip.original, sqlite_url(round_trip.original / "certdir.db"), out,
               PASSPHRASE)
    assert not list((round_trip.original / "public").glob("*.backup*"))


def test_cli_round_trip(round_trip: RoundTrip, tmp_path: Path) -> None:
    """`certdir ca backup` / `ca restore`: the archive restores a CA that lists the
    same certificates, once its key passphrase is back."""
    passphrase = tmp_path / "backup-passphrase"
    passphrase.write_bytes(PASSPHRASE + b"\n")
    archive, restored = tmp_path / "cli.backup", tmp_path / "restored"
    certdir("ca", "backup", "--data-dir", round_trip.original, "--out", archive,
            "--passphrase-file", passphrase)
    assert mode(archive) == 0o600
    certdir("ca", "restore", "--data-dir", restored, archive, "--passphrase-file", passphrase)
    shutil.copy(round_trip.original / "secrets" / "ca-passphrase", restored / "secrets")
    assert (certdir("ca", "list", "--data-dir", restored)
            == certdir("ca", "list", "--data-dir", round_trip.original))
    assert "Example Root CA" in certdir("ca", "status", "--data-dir", restored)
    wrong = subprocess.run([*CERTDIR, "ca", "restore", "--data-dir", str(tmp_path / "other"),
                            str(archive)], check=False, capture_output=True, text=True,
                           env={**os.environ, "CERTDIR_BACKUP_PASSPHRASE": "wrong"})
    assert wrong.returncode == 1
    assert wrong.stderr.strip().splitlines() == [
        f"certdir: error: {archive}: wrong backup passphrase or damaged archive"], wrong.stderr
