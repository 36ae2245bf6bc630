"""Scenario 015: `certdir ldif export` and `certdir ldif import` (RFC 2849).

- Export writes every entry under the suffix (or under --base) as LDIF that
  ldap-utils and import read back: the same entries and values a root search
  returns; operational attributes only with --operational.
- Import is one transaction: a file with a bad record in the middle (LDIF
  syntax or schema violation) imports nothing, exits non-zero and names the
  line of the bad record.
- Exported LDIF imported into a fresh directory reproduces the entries,
  binary values (base64, RFC 2849 §2) byte for byte.
- An import killed -9 midway leaves nothing behind, no worker process
  either, and runs again whole.
  An import into the directory of a running server succeeds, and the
  server serves what it imported.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.integration.conftest import CERTDIR, Server, make_server
from tests.integration.ldif_compare import assert_same_ldif, by_dn, parse

DATA = Path(__file__).parent.parent / "data" / "integration"
BASE = "dc=example,dc=com"
PEOPLE = f"ou=people,{BASE}"
OPERATIONAL = ("entryUUID", "createTimestamp", "modifyTimestamp", "creatorsName",
               "modifiersName", "entryCSN", "structuralObjectClass")
# "line 14", "line: 14" or the compiler-style "file.ldif:14:".
# How long the import of 40,000 people has run with its workers when it is
# killed: its transaction has written many pages by then, and is far from
# its end.
IMPORTING_S = 1.5
LINE_NUMBER = re.compile(rb"(?:\bline\s*:?\s*|\.ldif:)(\d+)", re.IGNORECASE)


def export(server: Server, *args: str) -> bytes:
    result = server.certdir("ldif", "export", "--data-dir", str(server.data_dir), *args,
                            check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


def import_file(server: Server, path: Path) -> subprocess.CompletedProcess[bytes]:
    return server.certdir("ldif", "import", "--data-dir", str(server.data_dir), "--quiet",
                          str(path), check=False)


@pytest.fixture(scope="module")
def loaded(server: Server) -> Server:
    added = server.tool("ldapadd", "-f", str(DATA / "015_tree.ldif"))
    assert added.returncode == 0, added.stderr
    password = server.tool("ldappasswd", "-s", "export-secret", f"uid=ada,{PEOPLE}")
    assert password.returncode == 0, password.stderr
    return server


@pytest.fixture
def stopped(tmp_path: Path) -> Server:
    """A freshly initialised data directory (no CA) whose server is not running."""
    return make_server(tmp_path, "--no-ca")


def test_export_matches_what_was_added(loaded: Server) -> None:
    assert_same_ldif(export(loaded), DATA / "015_expected_export.ldif",
                     ignore=("userPassword",))


def test_export_matches_root_search(loaded: Server) -> None:
    search = loaded.tool("ldapsearch", "-LLL", "-b", BASE, "(objectClass=*)", "*")
    assert search.returncode == 0, search.stderr
    assert_same_ldif(export(loaded), search.stdout)


def test_export_keeps_hashed_password(loaded: Server) -> None:
    ada = by_dn(export(loaded))[f"uid=ada,{PEOPLE}"]
    (password,) = ada.values("userPassword")
    assert password.startswith("{") and "export-secret" not in password


def test_export_has_no_operational_attributes_by_default(loaded: Server) -> None:
    names = frozenset().union(*(record.names() for record in parse(export(loaded))))
    assert not names & {name.lower() for name in OPERATIONAL}


def test_export_operational(loaded: Server) -> None:
    records = parse(export(loaded, "--operational"))
    assert len(records) == 7
    for record in records:
        assert len(record.values("entryUUID")) == 1, record.dn
        assert len(record.values("createTimestamp")) == 1, record.dn
        assert record.values("creatorsName"), record.dn


def test_export_base(loaded: Server) -> None:
    dns = sorted(record.dn.lower() for record in parse(export(loaded, "--base", PEOPLE)))
    assert dns == sorted([PEOPLE, f"uid=ada,{PEOPLE}", f"uid=alan,{PEOPLE}",
                          f"uid=jurgen,{PEOPLE}"])


def test_export_is_readable_by_ldapadd(loaded: Server, stopped: Server) -> None:
    stopped.start()
    try:
        exported = export(loaded, "--base", PEOPLE)
        added = stopped.tool("ldapadd", input=exported)
        assert added.returncode == 0, added.stderr
        search = stopped.tool("ldapsearch", "-LLL", "-b", PEOPLE, "(objectClass=*)", "*")
        assert_same_ldif(search.stdout, exported)
    finally:
        stopped.stop()


def test_round_trip_through_import(loaded: Server, stopped: Server, tmp_path: Path) -> None:
    exported = export(loaded, "--base", PEOPLE)
    dump = tmp_path / "people.ldif"
    dump.write_bytes(exported)
    imported = import_file(stopped, dump)
    assert imported.returncode == 0, imported.stderr
    assert_same_ldif(export(stopped, "--base", PEOPLE), exported)
    stopped.start()
    try:
        search = stopped.tool("ldapsearch", "-LLL", "-b", PEOPLE, "(mail=ada@example.com)",
                              "cn", "entryUUID")
        assert search.returncode == 0, search.stderr
        ada = by_dn(search.stdout)[f"uid=ada,{PEOPLE}"]
        assert ada.values("cn") == ("Ada Lovelace",)
        assert len(ada.values("entryUUID")) == 1
        login = stopped.tool("ldapwhoami", "-D", f"uid=ada,{PEOPLE}", "-w", "export-secret",
                             bind=False)
        assert login.returncode == 0, login.stderr
    finally:
        stopped.stop()


def test_import_added_file(stopped: Server) -> None:
    imported = import_file(stopped, DATA / "015_tree.ldif")
    assert imported.returncode == 0, imported.stderr
    assert_same_ldif(export(stopped), DATA / "015_expected_export.ldif")


@pytest.mark.parametrize(("name", "first", "last"), [
    ("015_bad_syntax_middle.ldif", 14, 14),
    ("015_bad_schema_middle.ldif", 11, 14),
])
def test_bad_record_in_the_middle_imports_nothing(stopped: Server, name: str, first: int,
                                                   last: int) -> None:
    before = export(stopped)
    imported = import_file(stopped, DATA / name)
    assert imported.returncode == 1
    message = imported.stderr + imported.stdout
    assert b"Traceback" not in message, message
    lines = [int(number) for number in LINE_NUMBER.findall(message)]
    assert any(first <= line <= last for line in lines), message
    assert export(stopped) == before


def assert_serves_only_the_base(stopped: Server) -> None:
    """The server starts on the directory, which holds its base entry alone."""
    stopped.start()
    try:
        search = stopped.tool("ldapsearch", "-LLL", "-b", BASE, "(objectClass=*)", "1.1")
        assert search.returncode == 0, search.stderr
        assert [record.dn for record in parse(search.stdout)] == [BASE]
    finally:
        stopped.stop()


def test_failed_import_leaves_server_usable(stopped: Server) -> None:
    imported = import_file(stopped, DATA / "015_bad_schema_middle.ldif")
    assert imported.returncode == 1
    assert_serves_only_the_base(stopped)


def test_import_missing_file_fails_cleanly(stopped: Server, tmp_path: Path) -> None:
    imported = import_file(stopped, tmp_path / "absent.ldif")
    assert imported.returncode == 1
    assert b"Traceback" not in imported.stderr + imported.stdout
    assert b"absent.ldif" in imported.stderr + imported.stdout


def test_binary_value_round_trip(loaded: Server, stopped: Server, tmp_path: Path) -> None:
    der = x509.load_pem_x509_certificate(loaded.ca_file.read_bytes()).public_bytes(
        serialization.Encoding.DER)
    grace = f"uid=grace,{PEOPLE}"
    added = loaded.tool("ldapadd", input=(
        f"dn: {grace}\nobjectClass: inetOrgPerson\nuid: grace\ncn: Grace Hopper\n"
        f"sn: Hopper\nuserCertificate;binary:: {base64.b64encode(der).decode()}\n").encode())
    assert added.returncode == 0, added.stderr
    exported = export(loaded, "--base", grace)
    (value,) = by_dn(exported)[grace].values("userCertificate;binary")
    assert base64.b64decode(value.removeprefix("::")) == der
    dump = tmp_path / "grace.ldif"
    dump.write_bytes(f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n\n".encode()
                     + exported)
    imported = import_file(stopped, dump)
    assert imported.returncode == 0, imported.stderr
    assert_same_ldif(export(stopped, "--base", grace), exported)


def _people(count: int, newline: str = "\n") -> tuple[str, dict[int, int]]:
    """An LDIF of `count` people with a modify record after every 1000th;
    the line number each person's record starts on."""
    lines = [f"dn: {PEOPLE}", "objectClass: organizationalUnit", "ou: people", ""]
    starts = {}
    for i in range(count):
        starts[i] = len(lines) + 1
        lines += [f"dn: uid=p{i},{PEOPLE}", "objectClass: inetOrgPerson", f"uid: p{i}",
                  f"cn: Person {i}", f"sn: {i}", f"mail: p{i}@example.com",
                  "description: " + "x" * 300, ""]
        if i % 1000 == 999:
            lines += [f"dn: uid=p{i - 500},{PEOPLE}", "changetype: modify",
                      "replace: description", "description: changed", "-", ""]
    return newline.join(lines), starts


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_import_larger_than_one_piece(stopped: Server, tmp_path: Path, newline: str) -> None:
    """Several megabytes are prepared in pieces by worker processes; the
    result is the file's, in the file's order."""
    text, _ = _people(8000, newline)
    big = tmp_path / "big.ldif"
    big.write_text(text)
    imported = import_file(stopped, big)
    assert imported.returncode == 0, imported.stderr
    entries = by_dn(export(stopped, "--base", PEOPLE, "--operational"))
    assert len(entries) == 8001
    assert entries[f"uid=p1499,{PEOPLE}"].values("description") == ("changed",)
    csns = [entries[f"uid=p{i},{PEOPLE}"].values("entryCSN")[0] for i in range(8000)
            if i % 1000 != 499]  # not those modified later
    assert csns == sorted(csns) and len(set(csns)) == len(csns)


def test_bad_record_in_a_later_piece_names_its_line(stopped: Server, tmp_path: Path) -> None:
    text, starts = _people(8000)
    bad = 6789
    text = text.replace(f"sn: {bad}\n", "")
    big = tmp_path / "big.ldif"
    big.write_text(text)
    before = export(stopped)
    imported = import_file(stopped, big)
    assert imported.returncode == 1
    message = imported.stderr + imported.stdout
    assert f"big.ldif:{starts[bad]}: uid=p{bad},".encode() in message, message
    assert export(stopped) == before


def workers_of(pid: int) -> set[int]:
    listed = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True,
                            text=True, check=False)
    return {int(line) for line in listed.stdout.split()}


def running(pids: set[int]) -> set[int]:
    return {pid for pid in pids if Path(f"/proc/{pid}").exists()}


def test_import_killed_midway_imports_nothing(stopped: Server, tmp_path: Path) -> None:
    """kill -9 in the middle of the import's one transaction: nothing of it
    is left (on SQLite the rollback journal it writes with is rolled back),
    no worker process outlives it or prints a traceback, the server starts
    and serves, and the import then runs whole."""
    text, _ = _people(40_000)
    big = tmp_path / "big.ldif"
    big.write_text(text)
    before = export(stopped)
    errors = tmp_path / "import.err"
    with errors.open("wb") as err:
        importing = subprocess.Popen(
            [*CERTDIR, "ldif", "import", "--data-dir", str(stopped.data_dir), "--quiet",
             str(big)], stdout=subprocess.DEVNULL, stderr=err, env=stopped.env())
    deadline = time.monotonic() + 60
    while len(workers := workers_of(importing.pid)) < (os.cpu_count() or 1):
        assert time.monotonic() < deadline, "the import never started its workers"
        time.sleep(0.05)
    time.sleep(IMPORTING_S)
    assert importing.poll() is None, "the import ended before it was killed"
    importing.kill()
    importing.wait()
    deadline = time.monotonic() + 10
    while running(workers):
        assert time.monotonic() < deadline, f"workers {running(workers)} outlived the import"
        time.sleep(0.05)
    assert b"Traceback" not in errors.read_bytes()
    assert export(stopped) == before
    assert_serves_only_the_base(stopped)
    imported = import_file(stopped, big)
    assert imported.returncode == 0, imported.stderr
    assert len(by_dn(export(stopped, "--base", PEOPLE))) == 40_001


@pytest.mark.only_on("sqlite", "another process holding the database file is SQLite's concern")
def test_import_while_the_server_runs(stopped: Server, tmp_path: Path) -> None:
    """The running server holds the file open, so the import writes through
    the WAL as the server does; the server then finds the new entries by DN
    and keeps taking writes."""
    text, _ = _people(2_000)
    book = tmp_path / "book.ldif"
    book.write_text(text)
    stopped.start()
    try:
        assert stopped.tool("ldapsearch", "-LLL", "-b", BASE, "-s", "base", "1.1").returncode == 0
        imported = import_file(stopped, book)
        assert imported.returncode == 0, imported.stderr
        search = stopped.tool("ldapsearch", "-LLL", "-b", f"uid=p1999,{PEOPLE}", "-s", "base",
                              "mail")
        assert search.returncode == 0, search.stderr
        assert parse(search.stdout)[0].values("mail") == ("p1999@example.com",)
        added = stopped.tool("ldapadd", input=(
            f"dn: uid=late,{PEOPLE}\nobjectClass: inetOrgPerson\nuid: late\ncn: Late\n"
            "sn: Late\n").encode())
        assert added.returncode == 0, added.stderr
    finally:
        stopped.stop()
    assert len(by_dn(export(stopped, "--base", PEOPLE))) == 2_002
