"""Scenario 023: issuing and publishing are one transaction, even under kill -9.

1. `certdir ca issue` runs one after another for a few holders while the
   test kills the issuing process with SIGKILL at random moments (20 kills,
   spread over the whole run time of an issue, so some land between signing
   and publishing); some issues are left to finish. Then `ca revoke` is
   killed the same way 10 times (leaving the CA's records and leaving the
   entry are one transaction too, issue 4 part 5): the 30 kills of issue 4.
2. Afterwards, for the CA's records (the ca_certificates table) and the
   directory as read over LDAP, never one without the other (issue 4,
   part 4): every valid certificate of a publishing profile is in its
   holder's userCertificate;binary, and every userCertificate;binary value
   this CA signed on any entry is a valid certificate in the CA's records
   for that same entry.
3. The database still passes its engine's integrity check (SQLite's
   `PRAGMA integrity_check`, PostgreSQL's amcheck on every table and
   index), the server keeps answering, and `ca list` still works.
"""

from __future__ import annotations

import base64
import os
import random
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509

from tests import pg_cluster
from tests.integration.conftest import (
    CERTDIR,
    SUFFIX,
    Server,
    database_rows,
    make_server,
    storage_url,
)
from tests.integration.ldif_compare import parse

KILLS = 20
REVOKE_KILLS = 10
HOLDERS = tuple(f"Crash{i}" for i in range(4))
PUBLISHING_PROFILES = frozenset({"smime-user", "smime-signing", "smime-encryption"})
CA_NAME = x509.Name.from_rfc4514_string("CN=Example Root CA,DC=example,DC=com")


@dataclass(frozen=True, slots=True)
class Outcome:
    server: Server
    seed: int
    killed: int
    finished: int


def holder_dn(cn: str) -> str:
    return f"cn={cn},{SUFFIX}"


def issue_command(server: Server, csr: Path, cn: str) -> list[str]:
    return [*CERTDIR, "ca", "issue", "--data-dir", str(server.data_dir), "--csr", str(csr),
            "--profile", "smime-user", "--entry", holder_dn(cn)]


def revoke_command(server: Server, serial: str) -> list[str]:
    return [*CERTDIR, "ca", "revoke", "--data-dir", str(server.data_dir), serial,
            "--reason", "keyCompromise"]


def timed(server: Server, command: list[str]) -> float:
    start = time.monotonic()
    subprocess.run(command, check=True, capture_output=True, env=server.env(), timeout=120)
    return time.monotonic() - start


def kill_at_random(server: Server, command: list[str], delay: float) -> int:
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=server.env())
    time.sleep(delay)
    proc.kill()
    return proc.wait(timeout=120)


def valid_serials(server: Server) -> list[str]:
    return [serial for serial, _, profile, status, _ in ca_records(server)
            if profile in PUBLISHING_PROFILES and status == "valid"]


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outcome]:
    tmp = tmp_path_factory.mktemp("ca-crash")
    srv = make_server(tmp)
    srv.start()
    ldif = "\n".join(f"dn: {holder_dn(cn)}\nobjectClass: inetOrgPerson\ncn: {cn}\nsn: {cn}\n"
                     f"mail: {cn.lower()}@example.com\n" for cn in HOLDERS)
    added = srv.tool("ldapadd", input=ldif.encode())
    assert added.returncode == 0, added.stderr
    csr = tmp / "crash.csr"
    subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(tmp / "crash.key"),
                    "-subj", "/CN=crash", "-out", str(csr)], check=True, capture_output=True)
    # The run time of one whole command, so kills cover start-up, signing and publishing.
    issuing = max(timed(srv, issue_command(srv, csr, HOLDERS[0])) for _ in range(2))
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    killed = finished = 0
    for attempt in range(KILLS * 4 // 3):
        command = issue_command(srv, csr, rng.choice(HOLDERS))
        if attempt % 4 == 3:
            timed(srv, command)
            finished += 1
            continue
        returncode = kill_at_random(srv, command, rng.uniform(0.4, 1.1) * issuing)
        killed += returncode == -9
        finished += returncode == 0
    revoking = timed(srv, revoke_command(srv, valid_serials(srv)[0]))
    for _ in range(REVOKE_KILLS):
        command = revoke_command(srv, rng.choice(valid_serials(srv)))
        killed += kill_at_random(srv, command, rng.uniform(0.4, 1.1) * revoking) == -9
    yield Outcome(srv, seed, killed, finished)
    log = srv.stop()
    assert "Traceback" not in log, log


def ca_records(server: Server) -> list[tuple[str, str | None, str, str, bytes]]:
    return database_rows(server.data_dir,
                         "SELECT serial, entry, profile, status, der FROM ca_certificates")


def integrity_problems(data_dir: Path) -> str:
    """What the database engine's own check finds wrong ('' when nothing)."""
    url = storage_url(data_dir)
    if url is None:
        [(verdict,)] = database_rows(data_dir, "PRAGMA integrity_check")
        return "" if verdict == "ok" else str(verdict)
    checked = subprocess.run([pg_cluster.tool("pg_amcheck"), "--install-missing",
                              "--heapallindexed", url], capture_output=True, text=True,
                             timeout=300, check=False)
    return checked.stdout + checked.stderr + ("" if checked.returncode == 0 else
                                              f"pg_amcheck exited with {checked.returncode}")


def published(server: Server) -> dict[str, set[bytes]]:
    """userCertificate;binary values of every entry that has any, read over LDAP."""
    done = server.tool("ldapsearch", "-LLL", "-b", SUFFIX, "(userCertificate=*)",
                       "userCertificate;binary", bind=False)
    assert done.returncode == 0, done.stderr
    return {record.dn.lower(): {base64.b64decode(value[2:])
                        for value in record.values("usercertificate;binary")}
            for record in parse(done.stdout)}


def test_kills_happened(outcome: Outcome) -> None:
    assert outcome.killed >= KILLS // 2, outcome
    assert outcome.finished >= KILLS // 3, outcome


def test_every_record_is_published(outcome: Outcome) -> None:
    entries = published(outcome.server)
    missing = [serial for serial, entry, profile, status, der in ca_records(outcome.server)
               if profile in PUBLISHING_PROFILES and status == "valid"
               and der not in entries.get((entry or "").lower(), set())]
    assert missing == [], f"seed {outcome.seed}: issued but not published: {missing}"


def test_every_published_certificate_is_recorded(outcome: Outcome) -> None:
    recorded = {(der, (entry or "").lower())
                for _, entry, _, status, der in ca_records(outcome.server) if status == "valid"}
    ours = [(dn, der) for dn, values in published(outcome.server).items() for der in values
            if x509.load_der_x509_certificate(der).issuer == CA_NAME]
    assert ours, "no certificate of this CA on any entry: the check below would be empty"
    orphans = [(dn, x509.load_der_x509_certificate(der).serial_number)
               for dn, der in ours if (der, dn) not in recorded]
    assert orphans == [], f"seed {outcome.seed}: published but not recorded: {orphans}"


def test_database_intact_and_usable(outcome: Outcome) -> None:
    server = outcome.server
    assert integrity_problems(server.data_dir) == ""
    listing = server.certdir("ca", "list", "--data-dir", str(server.data_dir))
    assert b"smime-user" in listing.stdout
    search = server.tool("ldapsearch", "-LLL", "-b", SUFFIX, "-s", "base", "1.1", bind=False)
    assert search.returncode == 0, search.stderr
