"""Scenario 072: a CA backup holds no passphrase and no password; a restore
asks for them (issue 10 part 6).

- `certdir ca backup` of a data directory from `certdir init` (CA and KMS):
  the archive, decrypted the way `ca restore` reads it, lists secrets/ as an
  empty folder: no secrets/ca-passphrase, secrets/kms-passphrase or
  secrets/root-password (before: the last two were inside).
- `ca restore` without them names each file to put back (and its
  environment variable), one line each.
- `ca restore --ca-passphrase-file --kms-passphrase-file --root-password-file`
  writes them (0600); the restored server starts (CA and KMS unlocked), the
  root DN binds with the restored root-password file and `kms status`
  unlocks the vault.
"""

from __future__ import annotations

import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ca.backup import OpeningReader
from tests.integration.conftest import CERTDIR, STORAGE, Server, make_server

PASSPHRASE = "backup passphrase for scenario 072"
SECRETS = ("ca-passphrase", "kms-passphrase", "root-password")


@dataclass
class Backed:
    server: Server
    archive: Path
    passphrase: Path
    kept: Path  # the operator's own copies of the secrets


@pytest.fixture(scope="module")
def backed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backed]:
    tmp = tmp_path_factory.mktemp("backup")
    server = make_server(tmp)
    passphrase = tmp / "backup-passphrase"
    passphrase.write_text(PASSPHRASE + "\n")
    kept = tmp / "kept"
    shutil.copytree(server.data_dir / "secrets", kept)
    archive = tmp / "certdir.backup"
    server.certdir("ca", "backup", "--data-dir", str(server.data_dir), "--out", str(archive),
                   "--passphrase-file", str(passphrase))
    yield Backed(server, archive, passphrase, kept)


def members(archive: Path) -> list[str]:
    with archive.open("rb") as source:
        reader = OpeningReader(source, PASSPHRASE.encode(), archive)
        with tarfile.open(fileobj=reader, mode="r|") as tar:  # type: ignore[call-overload]
            return [member.name for member in tar]


def restore(backed: Backed, target: Path, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CERTDIR, "ca", "restore", "--data-dir", str(target), str(backed.archive),
         "--passphrase-file", str(backed.passphrase), *STORAGE.init_args(), *options],
        capture_output=True, text=True, env=backed.server.env(), timeout=300, check=False)


def test_archive_holds_no_passphrase_or_password(backed: Backed) -> None:
    names = members(backed.archive)
    assert [name for name in names if name.startswith("secrets")] == ["secrets"]
    assert {"certdir.yaml", "ca/key.pem", "tls/server.key"} <= set(names)


def test_restore_without_them_names_each_file(backed: Backed, tmp_path: Path) -> None:
    target = tmp_path / "restored"
    result = restore(backed, target)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1:] == [
        f"restored into {target}",
        f"put the root DN's password (certdir.yaml has only its hash) back in "
        f"{target}/secrets/root-password (or give --root-password-file)",
        f"put the CA key passphrase back in {target}/secrets/ca-passphrase or set "
        "$CERTDIR_CA_PASSPHRASE (or give --ca-passphrase-file)",
        f"put the KMS passphrase back in {target}/secrets/kms-passphrase or set "
        "$CERTDIR_KMS_PASSPHRASE (or give --kms-passphrase-file)"]
    assert sorted(p.name for p in (target / "secrets").iterdir()) == []


def test_restore_with_them_starts_and_unlocks(backed: Backed, tmp_path: Path) -> None:
    target = tmp_path / "restored"
    result = restore(backed, target, *(
        arg for name in SECRETS for arg in (f"--{name}-file", str(backed.kept / name))))
    assert result.returncode == 0, result.stderr
    for name in SECRETS:
        written = target / "secrets" / name
        assert (written.read_bytes(), written.stat().st_mode & 0o777) == (
            (backed.kept / name).read_bytes(), 0o600)
    original = backed.server
    restored = Server(target, original.port, original.ldaps_port, original.http_port,
                      original.https_port)
    restored.start()
    try:
        whoami = subprocess.run(
            ["ldapwhoami", "-H", restored.uri, "-x", "-D", restored.root_dn,
             "-y", str(target / "secrets" / "root-password")],
            capture_output=True, text=True, timeout=60, check=False)
        assert (whoami.returncode, whoami.stdout) == (0, f"dn:{restored.root_dn}\n")
        status = restored.certdir("kms", "status", "--data-dir", str(target))
        assert b"unlocked with the configured passphrase" in status.stdout
    finally:
        assert "Traceback" not in restored.stop()
