"""Scenario 030: the key-management service through its command line, with a
real server, ldap-utils and openssl.

- `certdir init` creates the KMS (secrets/kms-passphrase, 0600); `kms status`
  unlocks it; a wrong passphrase is refused clearly and changes nothing.
- `kms enroll-user --mail` prints a token (no SMTP configured); `kms enroll
  --data-dir` redeems it with a signing CSR: `openssl pkcs12` reads the
  bundle, ldapsearch sees both certificates on the entry. The same token
  again, a malformed one and another person's are refused; nothing changes.
- Recovery with 2 of 3 officers: one approval is not enough, the same officer
  twice is refused, the second officer's approval yields a token whose
  PKCS#12 decrypts a CMS message encrypted to the original certificate.
- `kms revoke` takes both certificates off the entry; the escrowed key stays.
- `audit verify` passes, and fails after a record is altered in the database.
- After a restart of the server (passphrase from the key file) the escrowed
  key is still recoverable.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.conftest import (
    CERTDIR,
    SUFFIX,
    Server,
    copy_data_dir,
    database_rows,
    make_server,
)
from tests.integration.ldif_compare import by_dn

PEOPLE = f"ou=people,{SUFFIX}"
CAROL = f"uid=carol,{PEOPLE}"
OFFICERS = [f"uid=officer{i},{PEOPLE}" for i in (1, 2, 3)]
P12_PASSWORD = "bundle-secret"


@dataclass
class World:
    server: Server
    tmp: Path

    def kms(self, *args: str, check: bool = True,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
        """A certdir command (`kms ...`, `audit ...`) on this data directory."""
        command = [*args, "--data-dir", str(self.server.data_dir)]
        return subprocess.run([*CERTDIR, *command], capture_output=True, check=check,
                              env={**self.server.env(), **(env or {})}, timeout=300)

    def file(self, name: str, content: str) -> Path:
        path = self.tmp / name
        path.write_text(content + "\n")
        return path


def signing_csr(tmp: Path, name: str) -> Path:
    csr = tmp / f"{name}.csr"
    subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(tmp / f"{name}.key"),
                    "-subj", "/CN=ignored", "-out", str(csr)], check=True, capture_output=True)
    return csr


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("kms")
    server = make_server(tmp)
    server.configure("kms", officers=OFFICERS, recovery_approvals=2)
    server.start()
    people = "".join(
        f"dn: uid={uid},{PEOPLE}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\n"
        f"sn: {uid}\nmail: {uid}@example.com\nuserPassword: {uid}-pw\n\n"
        for uid in ("carol", "dave", "officer1", "officer2", "officer3"))
    added = server.tool("ldapadd", input=(
        f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n\n{people}").encode())
    assert added.returncode == 0, added.stderr
    yield World(server, tmp)
    if server.proc is not None:
        assert "Traceback" not in server.stop()


def certificates_on(server: Server, dn: str) -> list[str]:
    found = server.tool("ldapsearch", "-LLL", "-b", dn, "-s", "base", "(objectClass=*)",
                        "userCertificate;binary", bind=False)
    assert found.returncode == 0, found.stderr
    return list(by_dn(found.stdout)[dn.lower()].values("userCertificate;binary"))


def audit_count(server: Server) -> int:
    [(count,)] = database_rows(server.data_dir, "SELECT count(*) FROM kms_audit")
    return int(count)


@pytest.fixture(scope="module")
def enrolled(world: World) -> tuple[Path, str]:
    token = world.kms("kms", "enroll-user", "--mail", "carol@example.com").stdout.decode().strip()
    assert token.startswith("ct-")
    password = world.file("p12-password", P12_PASSWORD)
    bundle = world.tmp / "carol.p12"
    world.kms("kms", "enroll", "--token", token, "--csr", str(signing_csr(world.tmp, "carol")),
              "--p12-password-file", str(password), "--out", str(bundle))
    return bundle, token


def test_status_unlocks_and_wrong_passphrase_is_refused(world: World) -> None:
    assert b"intact" in world.kms("kms", "status").stdout
    mode = (world.server.data_dir / "secrets" / "kms-passphrase").stat().st_mode & 0o777
    assert mode == 0o600
    wrong = world.kms("kms", "status", check=False, env={"CERTDIR_KMS_PASSPHRASE": "wrong"})
    assert wrong.returncode == 1
    assert wrong.stderr.decode().strip() == "certdir: error: wrong KMS passphrase"


def test_enrollment_publishes_both_certificates(world: World,
                                                enrolled: tuple[Path, str]) -> None:
    bundle, _ = enrolled
    shown = subprocess.run(["openssl", "pkcs12", "-in", str(bundle), "-passin",
                            f"pass:{P12_PASSWORD}", "-nodes"], capture_output=True, check=True)
    assert b"BEGIN PRIVATE KEY" in shown.stdout
    assert shown.stdout.count(b"BEGIN CERTIFICATE") >= 2
    assert len(certificates_on(world.server, CAROL)) == 2


@pytest.mark.parametrize("token, words", [
    ("reuse", "already used"),
    ("ct-notatokenatall", "not a certdir token"),
    ("ct-" + "a" * 32, "unknown"),
])
def test_refused_tokens_change_nothing(world: World, enrolled: tuple[Path, str], token: str,
                                       words: str) -> None:
    if token == "reuse":
        token = enrolled[1]
    before = (certificates_on(world.server, CAROL), audit_count(world.server))
    refused = world.kms("kms", "enroll", "--token", token, "--csr",
                        str(signing_csr(world.tmp, "again")), "--p12-password-file",
                        str(world.file("pw", "x")), "--out", str(world.tmp / "no.p12"),
                        check=False)
    assert refused.returncode == 1
    assert words in refused.stderr.decode(), refused.stderr
    assert b"Traceback" not in refused.stderr
    assert (certificates_on(world.server, CAROL), audit_count(world.server)) == before


def officer(world: World, number: int) -> list[str]:
    return ["--officer", OFFICERS[number - 1], "--password-file",
            str(world.file(f"officer{number}-pw", f"officer{number}-pw"))]


def test_recovery_needs_two_officers_and_decrypts_old_mail(
        world: World, enrolled: tuple[Path, str]) -> None:
    bundle, _ = enrolled
    certificate = world.tmp / "carol-encryption.pem"
    shown = subprocess.run(["openssl", "pkcs12", "-in", str(bundle), "-passin",
                            f"pass:{P12_PASSWORD}", "-clcerts", "-nokeys"],
                           capture_output=True, check=True)
    certificate.write_bytes(shown.stdout)
    message = world.file("message.txt", "the quarterly figures")
    encrypted = world.tmp / "message.cms"
    subprocess.run(["openssl", "cms", "-encrypt", "-aes256", "-in", str(message), "-out",
                    str(encrypted), str(certificate)], check=True, capture_output=True)
    opened = world.kms("kms", "recover-request", *officer(world, 1), "--entry", CAROL)
    serial = opened.stdout.decode().split("serial ")[1].split(")")[0]
    first = world.kms("kms", "recover-approve", *officer(world, 1), "1")
    assert b"needs more" in first.stdout
    again = world.kms("kms", "recover-approve", *officer(world, 1), "1", check=False)
    assert again.returncode == 1 and b"already approved" in again.stderr
    outsider = world.kms("kms", "recover-approve", "--officer", CAROL, "--password-file",
                         str(world.file("carol-pw", "carol-pw")), "1", check=False)
    assert outsider.returncode == 1 and b"officer" in outsider.stderr
    token = world.kms("kms", "recover-approve", *officer(world, 2), "1").stdout.decode().strip()
    recovered = world.tmp / "recovered.p12"
    world.kms("kms", "recover", "--token", token, "--serial", serial, "--p12-password-file",
              str(world.file("p12-password", P12_PASSWORD)), "--out", str(recovered))
    key = world.tmp / "recovered.key"
    subprocess.run(["openssl", "pkcs12", "-in", str(recovered), "-passin",
                    f"pass:{P12_PASSWORD}", "-nocerts", "-nodes", "-out", str(key)],
                   check=True, capture_output=True)
    decrypted = subprocess.run(["openssl", "cms", "-decrypt", "-in", str(encrypted),
                                "-inkey", str(key), "-recip", str(certificate)],
                               capture_output=True, check=True)
    assert decrypted.stdout.strip() == b"the quarterly figures"


def test_restart_keeps_keys_recoverable(world: World, enrolled: tuple[Path, str]) -> None:
    """The server unlocks the vault from its key file again; the escrowed
    key is still there and comes back whole."""
    world.server.stop()
    world.server.start()
    assert len(certificates_on(world.server, CAROL)) == 2
    opened = world.kms("kms", "recover-request", *officer(world, 2), "--entry", CAROL)
    number = opened.stdout.decode().split()[1]
    serial = opened.stdout.decode().split("serial ")[1].split(")")[0]
    world.kms("kms", "recover-approve", *officer(world, 2), number)
    token = world.kms("kms", "recover-approve", *officer(world, 3),
                      number).stdout.decode().strip()
    recovered = world.tmp / "after-restart.p12"
    world.kms("kms", "recover", "--token", token, "--serial", serial, "--p12-password-file",
              str(world.file("p12-password", P12_PASSWORD)), "--out", str(recovered))
    original = subprocess.run(["openssl", "pkcs12", "-in", str(enrolled[0]), "-passin",
                               f"pass:{P12_PASSWORD}", "-nocerts", "-nodes"],
                              capture_output=True, check=True).stdout
    again = subprocess.run(["openssl", "pkcs12", "-in", str(recovered), "-passin",
                            f"pass:{P12_PASSWORD}", "-nocerts", "-nodes"],
                           capture_output=True, check=True).stdout
    assert _key(again) == _key(original)


def _key(pem_output: bytes) -> bytes:
    start = pem_output.index(b"-----BEGIN PRIVATE KEY-----")
    return pem_output[start:]


def test_revoke_removes_certificates_and_keeps_the_key(world: World,
                                                       enrolled: tuple[Path, str]) -> None:
    dave = world.kms("kms", "enroll-user", "--dn", f"uid=dave,{PEOPLE}").stdout.decode().strip()
    world.kms("kms", "enroll", "--token", dave, "--csr", str(signing_csr(world.tmp, "dave")),
              "--p12-password-file", str(world.file("pw-dave", "dave-bundle")), "--out",
              str(world.tmp / "dave.p12"))
    assert len(certificates_on(world.server, f"uid=dave,{PEOPLE}")) == 2
    revoked = world.kms("kms", "revoke", "dave@example.com", "--reason", "keyCompromise")
    assert revoked.stdout.count(b"revoked") == 2
    assert certificates_on(world.server, f"uid=dave,{PEOPLE}") == []
    [(kept,)] = database_rows(world.server.data_dir,
                              "SELECT count(*) FROM kms_escrow WHERE owner_key LIKE 'uid=dave%'")
    assert kept == 1


def test_audit_log_detects_tampering(world: World, enrolled: tuple[Path, str],
                                     tmp_path: Path) -> None:
    assert b"intact" in world.kms("audit", "verify").stdout
    copy = tmp_path / "copy"
    copy_data_dir(world.server.data_dir, copy)
    database_rows(copy, "UPDATE kms_audit SET actor='someone else' WHERE seq=2")
    tampered = subprocess.run([*CERTDIR, "audit", "verify", "--data-dir", str(copy)],
                              capture_output=True, env={**os.environ}, check=False)
    assert tampered.returncode == 1
    assert b"altered" in tampered.stderr


def test_re_enrollment_rolls_the_keys_over(world: World, enrolled: tuple[Path, str]) -> None:
    before = set(certificates_on(world.server, CAROL))
    token = world.kms("kms", "enroll-user", "--dn", CAROL).stdout.decode().strip()
    world.kms("kms", "enroll", "--token", token, "--csr", str(signing_csr(world.tmp, "roll")),
              "--p12-password-file", str(world.file("pw-roll", "roll-bundle")), "--out",
              str(world.tmp / "roll.p12"))
    after = set(certificates_on(world.server, CAROL))
    assert len(after) == 2 and not after & before
    revoked = world.server.certdir("ca", "list", "--data-dir", str(world.server.data_dir),
                                   "--revoked").stdout.decode()
    assert revoked.count("superseded") >= 2


def test_serve_refuses_a_wrong_kms_passphrase(world: World) -> None:
    started = subprocess.run([*CERTDIR, "serve", "--data-dir", str(world.server.data_dir)],
                             capture_output=True, timeout=60, check=False,
                             env={**world.server.env(), "CERTDIR_KMS_PASSPHRASE": "wrong"})
    assert started.returncode == 1
    assert started.stderr.decode().strip() == "certdir: error: wrong KMS passphrase"
