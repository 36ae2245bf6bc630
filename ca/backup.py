"""`certdir ca backup` / `restore`: one encrypted archive of a data directory.

- The archive holds certdir.yaml, a copy of the database (the directory
  and the CA tables) as of one commit (`directory.backend.copies`: SQLite's
  online backup API, or pg_dump under one snapshot), so it is consistent
  while the server runs and writes, and the folders ca/, tls/,
  public/ and secrets/ — but no passphrase or password (ca.backup_secrets):
  the CA key in ca/key.pem stays encrypted under its passphrase, the KMS
  master key wrapped under the KMS passphrase, and certdir.yaml holds the
  root password's hash only. After a restore the administrator puts them
  back (or supplies them at start).
- An SQLite database must lie inside the data directory: a restore
  recreates it at the same relative path, where the restored certdir.yaml
  points. A database server's copy is loaded into the database the caller
  names once the files are restored (`certdir ca restore --storage-url`),
  by default the one the archived certdir.yaml names; it must be empty. A
  copy loads only into the kind of database it came from.
- Format (version 1): a header — magic `CERTDIR-BACKUP\\x00`, version,
  Argon2id time cost, memory cost (KiB) and parallelism, a random 16-byte
  salt, a random 12-byte base nonce, the chunk size — then a POSIX tar
  stream encrypted with AES-256-GCM (NIST SP 800-38D) under a key derived
  from the passphrase with Argon2id (RFC 9106 §4, second recommended
  option: t=3, m=64 MiB, p=4). The stream is cut into 1 MiB chunks, each
  with its own nonce (the base nonce XOR the chunk counter, so none
  repeats under one key) and, as associated data, the whole header, the
  counter and a last-chunk flag: reordered, dropped, truncated or appended
  chunks and an edited header all fail authentication.
- Archives are written with mode 0600 and atomically: to a temporary file
  beside the target, synced, then renamed over it; never inside a folder
  the backup archives, where it would take in its own half-written self.
- restore refuses a data directory that is not empty, a wrong passphrase or
  a damaged archive (one message for both: GCM cannot tell them apart),
  members whose path is absolute or climbs out with `..`, and anything but
  regular files and directories. Modes are restored from the archive, with
  the folders secrets/, ca/ and tls/ 0700 and the files in secrets/, the CA
  key and the TLS key at most 0600. A failed restore removes what it wrote.
"""

from __future__ import annotations

import os
import secrets
import shutil
import stat
import struct
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

import yaml
from argon2.low_level import Type, hash_secret_raw
from cryptography import x509
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ca.backup_secrets import left_out
from ca.errors import CAError
from directory.backend import Records
from directory.backend.copies import Copier, CopyError, copier
from directory.backend.opening import sqlite_url

MAGIC = b"CERTDIR-BACKUP\x00"
VERSION = 1
CHUNK_SIZE = 1 << 20
TAG_SIZE = 16
_HEADER = struct.Struct(">15sBIIB16s12sI")
_CHUNK_AAD = struct.Struct(">QB")


@dataclass(frozen=True, slots=True)
class KDFCost:
    time_cost: int = 3
    memory_kib: int = 64 * 1024
    parallelism: int = 4


# What a restore agrees to spend on an archive's KDF parameters: they come
# from the unauthenticated header, so an edited one must not exhaust memory.
MAX_COST = KDFCost(time_cost=64, memory_kib=4 * 1024 * 1024, parallelism=64)

CONFIG_FILE = "certdir.yaml"
FOLDERS = ("ca", "tls", "public", "secrets")
PRIVATE_FOLDERS = frozenset({"ca", "tls", "secrets"})
PRIVATE_FILES = frozenset({"ca/key.pem", "tls/server.key"})
DAMAGED = "wrong backup passphrase or damaged archive"


@dataclass(frozen=True, slots=True)
class BackupSummary:
    ca_subject: str | None
    certificates: int
    files: int
    archive_size: int


@dataclass(frozen=True, slots=True)
class Header:
    cost: KDFCost
    salt: bytes
    nonce: bytes
    chunk_size: int

    def pack(self) -> bytes:
        return _HEADER.pack(MAGIC, VERSION, self.cost.time_cost, self.cost.memory_kib,
                            self.cost.parallelism, self.salt, self.nonce, self.chunk_size)

    @classmethod
    def unpack(cls, data: bytes, source: Path) -> Header:
        if len(data) < _HEADER.size or not data.startswith(MAGIC):
            raise CAError(f"{source} is not a certdir backup")
        _, version, time_cost, memory_kib, parallelism, salt, nonce, chunk_size = (
            _HEADER.unpack(data))
        if version != VERSION:
            raise CAError(f"{source}: backup format version {version} is not supported "
                          f"(this certdir reads version {VERSION})")
        cost = KDFCost(time_cost, memory_kib, parallelism)
        if not (1 <= time_cost <= MAX_COST.time_cost
                and 8 * parallelism <= memory_kib <= MAX_COST.memory_kib
                and 1 <= parallelism <= MAX_COST.parallelism
                and 1 <= chunk_size <= 16 * CHUNK_SIZE):
            raise CAError(f"{source}: {DAMAGED}")
        return cls(cost, salt, nonce, chunk_size)

    def key(self, passphrase: bytes) -> AESGCM:
        return AESGCM(hash_secret_raw(passphrase, self.salt, self.cost.time_cost,
                                      self.cost.memory_kib, self.cost.parallelism, 32,
                                      Type.ID))

    def chunk_nonce(self, counter: int) -> bytes:
        mixed = int.from_bytes(self.nonce, "big") ^ counter
        return mixed.to_bytes(len(self.nonce), "big")

    def chunk_aad(self, counter: int, last: bool) -> bytes:
        return self.pack() + _CHUNK_AAD.pack(counter, last)


class SealingWriter:
    """A write-only stream that encrypts what it is given, chunk by chunk."""

    def __init__(self, out: IO[bytes], passphrase: bytes, cost: KDFCost = KDFCost()) -> None:
        self.header = Header(cost, secrets.token_bytes(16), secrets.token_bytes(12), CHUNK_SIZE)
        self._aead = self.header.key(passphrase)
        self._out = out
        self._pending = bytearray()
        self._counter = 0
        out.write(self.header.pack())

    def write(self, data: bytes) -> int:
        self._pending += data
        # Keep one full chunk back: only at close is it known to be the last.
        while len(self._pending) > self.header.chunk_size:
            self._seal(bytes(self._pending[:self.header.chunk_size]), last=False)
            del self._pending[:self.header.chunk_size]
        return len(data)

    def close(self) -> None:
        self._seal(bytes(self._pending), last=True)
        self._pending.clear()

    def _seal(self, chunk: bytes, last: bool) -> None:
        self._out.write(self._aead.encrypt(self.header.chunk_nonce(self._counter), chunk,
                                           self.header.chunk_aad(self._counter, last)))
        self._counter += 1


class OpeningReader:
    """A read-only stream of the plaintext; every chunk is authenticated
    before a byte of it is handed out."""

    def __init__(self, source: IO[bytes], passphrase: bytes, name: Path) -> None:
        self.header = Header.unpack(source.read(_HEADER.size), name)
        self._aead = self.header.key(passphrase)
        self._source = source
        self._name = name
        self._counter = 0
        self._buffer = b""
        self._next = source.read(self.header.chunk_size + TAG_SIZE)
        self._done = False

    def read(self, size: int = -1) -> bytes:
        while not self._done and (size < 0 or len(self._buffer) < size):
            self._open_next()
        if size < 0:
            size = len(self._buffer)
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def _open_next(self) -> None:
        sealed = self._next
        self._next = self._source.read(self.header.chunk_size + TAG_SIZE)
        last = not self._next
        try:
            plain = self._aead.decrypt(self.header.chunk_nonce(self._counter), sealed,
                                       self.header.chunk_aad(self._counter, last))
        except InvalidTag:
            raise CAError(f"{self._name}: {DAMAGED}") from None
        self._counter += 1
        self._buffer += plain
        self._done = last


@contextmanager
def sealed_file(out: Path, passphrase: bytes) -> Iterator[SealingWriter]:
    """A new archive at `out`, mode 0600, in place only once complete."""
    fd, name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    aside = Path(name)
    try:
        with os.fdopen(fd, "wb") as f:
            writer = SealingWriter(f, passphrase)
            yield writer
            writer.close()
            f.flush()
            os.fsync(f.fileno())
        os.replace(aside, out)
    except BaseException:
        aside.unlink(missing_ok=True)
        raise
    directory = os.open(out.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _certificates(records: Records) -> int:
    row = records.row("SELECT count(*) FROM ca_certificates")
    return 0 if row is None else int(row[0])


def _ca_subject(data_dir: Path) -> str | None:
    try:
        pem = (data_dir / "ca" / "cert.pem").read_bytes()
    except FileNotFoundError:
        return None
    return x509.load_pem_x509_certificate(pem).subject.rfc4514_string()


def _members(data_dir: Path) -> Iterator[tuple[str, Path]]:
    """(archive name, path) of certdir.yaml and the folders, top down."""
    excluded = left_out(data_dir)
    yield CONFIG_FILE, data_dir / CONFIG_FILE
    for folder in FOLDERS:
        top = data_dir / folder
        if not top.is_dir():
            continue
        for root, dirs, files in os.walk(top):
            dirs.sort()
            here = Path(root)
            yield here.relative_to(data_dir).as_posix(), here
            for name in sorted(files):
                path = here / name
                if path.resolve() not in excluded:
                    yield path.relative_to(data_dir).as_posix(), path


def _add(archive: tarfile.TarFile, name: str, path: Path) -> bool:
    """Add a directory or a regular file (symbolic links followed); True for a file."""
    info = os.stat(path)
    member = tarfile.TarInfo(name)
    member.mode = stat.S_IMODE(info.st_mode)
    member.mtime = int(info.st_mtime)
    if stat.S_ISDIR(info.st_mode):
        member.type = tarfile.DIRTYPE
        archive.addfile(member)
        return False
    if not stat.S_ISREG(info.st_mode):
        raise CAError(f"{path}: not a regular file; a backup holds only files and folders")
    member.size = info.st_size
    with path.open("rb") as f:
        archive.addfile(member, f)
    return True


def _check_target(data_dir: Path, out: Path) -> None:
    if out.is_dir():
        raise CAError(f"{out} is a directory; name the archive file to write")
    where = out.resolve().parent
    for folder in FOLDERS:
        if where.is_relative_to((data_dir / folder).resolve()):
            raise CAError(f"{out} lies in {data_dir / folder}, which the backup archives; "
                          "write it elsewhere")


def backup(data_dir: Path, url: str, out: Path, passphrase: bytes) -> BackupSummary:
    """Write the encrypted archive of `data_dir`, whose database is at `url`, to `out`."""
    if not passphrase:
        raise CAError("the backup passphrase must not be empty")
    if not (data_dir / CONFIG_FILE).is_file():
        raise CAError(f"{data_dir}: no {CONFIG_FILE}; not a certdir data directory")
    try:
        how = copier(url)
        db_name = how.member(url, data_dir)
    except CopyError as e:
        raise CAError(str(e)) from None
    _check_target(data_dir, out)
    try:
        certificates, files = _write(data_dir, url, how, db_name, out, passphrase)
    except OSError as e:
        raise CAError(f"{e.filename or out}: {e.strerror}") from None
    except CopyError as e:
        raise CAError(str(e)) from None
    return BackupSummary(_ca_subject(data_dir), certificates, files, out.stat().st_size)


def _write(data_dir: Path, url: str, how: Copier, db_name: str, out: Path,
           passphrase: bytes) -> tuple[int, int]:
    """(certificates issued, files archived)."""
    files = 0
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".certdir-snapshot-") as scratch:
        snapshot = Path(scratch) / "snapshot"
        with how.dump(url, snapshot) as records:
            certificates = _certificates(records)
        with sealed_file(out, passphrase) as sealed, tarfile.open(
                fileobj=sealed, mode="w|", format=tarfile.PAX_FORMAT) as archive:  # type: ignore[call-overload]
            for name, path in _members(data_dir):
                files += _add(archive, name, path)
            files += _add(archive, db_name, snapshot)
    return certificates, files


def _safe_path(data_dir: Path, name: str) -> Path:
    parts = PurePosixPath(name).parts
    if (not parts or PurePosixPath(name).is_absolute()
            or any(part in ("..", ".", "") for part in parts)):
        raise CAError(f"the archive member {name!r} would escape the data directory; "
                      "refusing the archive")
    return data_dir.joinpath(*parts)


def _mode(name: str, mode: int, is_dir: bool) -> int:
    top = PurePosixPath(name).parts[0]
    if is_dir:
        return 0o700 if top in PRIVATE_FOLDERS else mode & 0o777
    return mode & 0o600 if top == "secrets" or name in PRIVATE_FILES else mode & 0o777


def _extract(archive: tarfile.TarFile, data_dir: Path) -> int:
    files = 0
    for member in archive:
        path = _safe_path(data_dir, member.name)
        mode = _mode(member.name, member.mode, member.isdir())
        if member.isdir():
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(path, mode)
            continue
        if not member.isfile():
            raise CAError(f"the archive member {member.name!r} is not a regular file "
                          "or folder; refusing the archive")
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        source = archive.extractfile(member)
        assert source is not None
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError:
            raise CAError(f"the archive holds {member.name!r} twice; refusing it") from None
        with os.fdopen(fd, "wb") as f:
            shutil.copyfileobj(source, f)
            os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        os.utime(path, (member.mtime, member.mtime))
        files += 1
    return files


def archived_storage(data_dir: Path) -> str:
    """The database URL the restored certdir.yaml names: `storage.url`, else
    the SQLite file `storage.path`."""
    settings = yaml.safe_load((data_dir / CONFIG_FILE).read_text())
    storage = settings.get("storage") if isinstance(settings, dict) else None
    storage = storage if isinstance(storage, dict) else {}
    url = storage.get("url")
    if isinstance(url, str):
        return url
    path = storage.get("path")
    return sqlite_url(data_dir / (path if isinstance(path, str) else "certdir.db"))


def _empty_target(data_dir: Path) -> bool:
    """Check `data_dir` may receive a restore; True when it has to be created."""
    if not data_dir.exists():
        return True
    if not data_dir.is_dir():
        raise CAError(f"{data_dir} is not a directory; restore into an empty or new one")
    if any(data_dir.iterdir()):
        raise CAError(f"{data_dir} is not empty; restore only into an empty or new directory")
    return False


def restore(archive: Path, data_dir: Path, passphrase: bytes,
            storage: Callable[[Path], str] = archived_storage) -> BackupSummary:
    """Recreate a data directory from an archive `backup` wrote; its database
    goes to the URL `storage` gives for the restored data directory (asked
    once its files, certdir.yaml among them, are in place)."""
    created = _empty_target(data_dir)
    try:
        source = archive.open("rb")
    except OSError as e:
        raise CAError(f"{archive}: {e.strerror}") from None
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        with source:
            reader = OpeningReader(source, passphrase, archive)
            try:
                with tarfile.open(fileobj=reader, mode="r|") as members:  # type: ignore[call-overload]
                    files = _extract(members, data_dir)
            except tarfile.TarError:
                raise CAError(f"{archive}: {DAMAGED}") from None
            # The tar stream ends before its zero padding; reading on checks
            # the remaining chunks, the last-chunk flag among them.
            reader.read()
        url = storage(data_dir)
        how = copier(url)
        copy = _safe_path(data_dir, how.member(url, data_dir))
        if not copy.is_file():
            raise CopyError(f"the archive holds no {copy.name}: it is the copy of another "
                            f"kind of database than {url.split(':', 1)[0]}")
        with how.load(url, copy) as records:
            certificates = _certificates(records)
    except OSError as e:
        _remove_restored(data_dir, created)
        raise CAError(f"{e.filename or data_dir}: {e.strerror}; nothing restored") from None
    except CopyError as e:
        _remove_restored(data_dir, created)
        raise CAError(f"{e}; nothing restored") from None
    except BaseException:
        _remove_restored(data_dir, created)
        raise
    return BackupSummary(_ca_subject(data_dir), certificates, files, archive.stat().st_size)


def _remove_restored(data_dir: Path, created: bool) -> None:
    if created:
        shutil.rmtree(data_dir, ignore_errors=True)
        return
    for child in data_dir.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)
