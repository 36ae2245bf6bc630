"""Scenario 022: refused inputs fail cleanly and leave nothing behind.

1. `certdir ca issue` refuses, each with exit status 1 and exactly one line
   `certdir: error: ...` naming the cause (no Traceback): MD5- and SHA-1-signed
   requests (issue 4: SHA-256 or stronger only), a request whose signature
   does not verify (RFC 2986 §3), an RSA 1024-bit key, an unknown profile, a
   subject entry not in the directory, an S/MIME profile for an entry without
   mail (the rfc822Name source), garbage instead of a request, and a wrong
   CA passphrase.
2. After each refusal `ca list`, the CA's certificate and request tables and
   the subject entry read over LDAP are exactly what they were before.
3. `certdir serve` without the CA passphrase (file moved away, no
   environment variable) and with a wrong one exits non-zero with one clear
   error and never listens.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.conftest import CERTDIR, SUFFIX, Server, database_rows, make_server

DATA = Path(__file__).resolve().parents[1] / "data"
WITH_MAIL = f"cn=Erin,{SUFFIX}"
WITHOUT_MAIL = f"cn=Frank,{SUFFIX}"


@dataclass(frozen=True, slots=True)
class Refusal:
    csr: Path
    profile: str
    entry: str
    says: str
    passphrase: str | None = None


@dataclass(frozen=True, slots=True)
class World:
    server: Server
    good_csr: Path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("ca-refusals")
    srv = make_server(tmp)
    srv.start()
    ldif = (f"dn: {WITH_MAIL}\nobjectClass: inetOrgPerson\ncn: Erin\nsn: E\n"
            "mail: erin@example.com\n\n"
            f"dn: {WITHOUT_MAIL}\nobjectClass: inetOrgPerson\ncn: Frank\nsn: F\n")
    added = srv.tool("ldapadd", input=ldif.encode())
    assert added.returncode == 0, added.stderr
    good = tmp / "good.csr"
    subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(tmp / "good.key"),
                    "-subj", "/CN=erin", "-out", str(good)], check=True, capture_output=True)
    yield World(srv, good)
    log = srv.stop()
    assert "Traceback" not in log, log


REFUSALS: dict[str, Refusal] = {
    "md5": Refusal(DATA / "pki" / "csr-md5.pem", "smime-user", WITH_MAIL, "MD5"),
    "sha1": Refusal(DATA / "pki" / "csr-sha1.pem", "smime-user", WITH_MAIL, "SHA-1"),
    "bad-signature": Refusal(DATA / "ca" / "csr-bad-signature.pem", "smime-user", WITH_MAIL,
                             "signature"),
    "rsa1024": Refusal(DATA / "pki" / "csr-rsa1024.pem", "smime-user", WITH_MAIL, "1024"),
    "unknown-profile": Refusal(Path("good"), "no-such-profile", WITH_MAIL, "no-such-profile"),
    "not-in-directory": Refusal(Path("good"), "smime-user", f"cn=Nobody,{SUFFIX}",
                                "cn=Nobody"),
    "no-mail": Refusal(Path("good"), "smime-user", WITHOUT_MAIL, "mail"),
    "garbage": Refusal(DATA / "ca" / "garbage.txt", "smime-user", WITH_MAIL, "PKCS#10"),
    "wrong-passphrase": Refusal(Path("good"), "smime-user", WITH_MAIL, "passphrase",
                                passphrase="wrong"),
}


def snapshot(server: Server, entry: str) -> tuple[object, ...]:
    """`ca list`, the CA's tables (requests included) and the entry over LDAP."""
    ldap = server.tool("ldapsearch", "-LLL", "-b", entry, "-s", "base", "(objectClass=*)",
                       "*", "+")
    tables = tuple(tuple(database_rows(server.data_dir, f"SELECT * FROM {table} ORDER BY 1"))
                   for table in ("ca_certificates", "ca_requests"))
    listing = server.certdir("ca", "list", "--data-dir", str(server.data_dir)).stdout
    return listing, tables, ldap.stdout


def assert_one_clear_line(done: subprocess.CompletedProcess[bytes], says: str) -> None:
    stderr = done.stderr.decode()
    assert done.returncode == 1, stderr
    assert "Traceback" not in stderr
    assert stderr.startswith("certdir: error: "), stderr
    assert stderr.count("\n") == 1, stderr
    assert says.lower() in stderr.lower(), stderr


@pytest.mark.parametrize("case", tuple(REFUSALS))
def test_issue_refused(world: World, case: str) -> None:
    refusal, server = REFUSALS[case], world.server
    csr = world.good_csr if refusal.csr == Path("good") else refusal.csr
    before = snapshot(server, refusal.entry)
    env = {**server.env()}
    if refusal.passphrase is not None:
        env["CERTDIR_CA_PASSPHRASE"] = refusal.passphrase
    done = subprocess.run([*CERTDIR, "ca", "issue", "--data-dir", str(server.data_dir),
                           "--csr", str(csr), "--profile", refusal.profile,
                           "--entry", refusal.entry],
                          capture_output=True, env=env, timeout=120, check=False)
    assert_one_clear_line(done, refusal.says)
    assert snapshot(server, refusal.entry) == before


def test_good_request_still_issues(world: World) -> None:
    """The refusals above are about their inputs, not a CA that refuses everything."""
    done = world.server.certdir("ca", "issue", "--data-dir", str(world.server.data_dir),
                                "--csr", str(world.good_csr), "--profile", "smime-user",
                                "--entry", WITH_MAIL)
    assert int(done.stdout.decode().strip(), 16) > 0


@pytest.fixture(scope="module")
def locked(tmp_path_factory: pytest.TempPathFactory) -> Server:
    """A data directory whose CA passphrase file was moved off the machine."""
    srv = make_server(tmp_path_factory.mktemp("ca-locked"))
    passphrase = srv.data_dir / "secrets" / "ca-passphrase"
    passphrase.rename(srv.data_dir.parent / "ca-passphrase.offline")
    return srv


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.mark.parametrize(("passphrase", "says"),
                         ((None, "passphrase"), ("wrong", "wrong passphrase")))
def test_serve_refuses_without_the_passphrase(locked: Server, passphrase: str | None,
                                              says: str) -> None:
    env = {key: value for key, value in locked.env().items()
           if key != "CERTDIR_CA_PASSPHRASE"}
    if passphrase is not None:
        env["CERTDIR_CA_PASSPHRASE"] = passphrase
    done = subprocess.run([*CERTDIR, "serve", "--data-dir", str(locked.data_dir)],
                          capture_output=True, env=env, timeout=60, check=False,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 1
    output = (done.stdout + done.stderr).decode()
    assert "Traceback" not in output, output
    errors = [line for line in output.splitlines() if line.startswith("certdir: error: ")]
    assert len(errors) == 1, output
    assert says in errors[0], output
    assert not listening(locked.port)
