"""Scenario 077: `certdir ca backup` / `restore` and `certdir ldif import` on
PostgreSQL (issue 11 part 2).

1. A backup taken while the server runs restores, with `--storage-url`,
   into an empty database: the restored certdir.yaml names it, the
   restored server serves the same entries, and the CA lists the same
   certificates and CRLs.
2. A restore into a database that already holds data is refused and
   leaves neither the target directory nor anything in the database.
3. An LDIF file imported into a PostgreSQL database is served: a subtree
   search finds every entry, an indexed equality search finds one, and
   every entryCSN carries the node number the import held (0: nothing
   else had the database open).
4. A duplicate entry thousands of records after its first copy (entries
   below a new parent are copied in batches) stops the import naming the
   duplicate's own line, and nothing is imported.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.integration.conftest import (
    STORAGE,
    SUFFIX,
    Server,
    database_rows,
    make_server,
    storage_url,
)
from tests.ports import free_port

pytestmark = pytest.mark.only_on("postgresql", "the PostgreSQL side of backup and import")

PASSPHRASE = "backup passphrase for scenario 077"
PEOPLE = f"ou=people,{SUFFIX}"
IMPORTED = 300


def person_ldif(count: int) -> str:
    records = [f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n"]
    records += [f"dn: uid=p{i},{PEOPLE}\nobjectClass: inetOrgPerson\nuid: p{i}\ncn: Person {i}\n"
                f"sn: {i}\nmail: p{i}@example.com\n" for i in range(count)]
    return "\n".join(records)


def line_of(text: str, dn: str, occurrence: int) -> int:
    """The line of the `occurrence`-th (0-based) record of `dn` in `text`."""
    lines = [n for n, line in enumerate(text.split("\n"), 1) if line == f"dn: {dn}"]
    return lines[occurrence]


def dns(found: bytes) -> list[str]:
    return re.findall(r"^dn: (.*)$", found.decode(), re.MULTILINE)


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = make_server(tmp_path_factory.mktemp("original"))
    server.start()
    added = server.tool("ldapadd", input=person_ldif(3).encode())
    assert added.returncode == 0, added.stderr
    yield server
    server.stop()


def backup(server: Server, tmp: Path) -> tuple[Path, Path]:
    """An archive of the running server; the passphrase file."""
    passphrase = tmp / "passphrase"
    passphrase.write_text(PASSPHRASE)
    archive = tmp / "certdir.backup"
    server.certdir("ca", "backup", "--data-dir", str(server.data_dir), "--out", str(archive),
                   "--passphrase-file", str(passphrase))
    return archive, passphrase


def restored_server(data_dir: Path) -> Server:
    server = Server(data_dir=data_dir, port=free_port(), ldaps_port=free_port(),
                    http_port=free_port(), https_port=free_port())
    server.configure(listen=[server.uri, server.ldaps_uri])
    server.configure("http", listen=[server.http_url, server.https_url])
    return server


def test_backup_restores_into_an_empty_database(original: Server, tmp_path: Path) -> None:
    archive, passphrase = backup(original, tmp_path)
    assert STORAGE.cluster is not None
    target = STORAGE.cluster.database("restored")
    secrets = original.data_dir / "secrets"
    done = original.certdir(
        "ca", "restore", "--data-dir", str(tmp_path / "restored"), str(archive),
        "--passphrase-file", str(passphrase), "--storage-url", target,
        "--ca-passphrase-file", str(secrets / "ca-passphrase"),
        "--kms-passphrase-file", str(secrets / "kms-passphrase"),
        "--root-password-file", str(secrets / "root-password"), check=False)
    assert done.returncode == 0, done.stderr
    restored = restored_server(tmp_path / "restored")
    settings = yaml.safe_load((restored.data_dir / "certdir.yaml").read_text())
    assert settings["storage"] == {**settings["storage"], "url": target}
    assert not (restored.data_dir / "certdir.pgdump").exists()
    assert (restored.certdir("ca", "list", "--data-dir", str(restored.data_dir)).stdout
            == original.certdir("ca", "list", "--data-dir", str(original.data_dir)).stdout)
    query = "SELECT number FROM ca_crls ORDER BY number"
    assert database_rows(restored.data_dir, query) == database_rows(original.data_dir, query)
    restored.start()
    try:
        found = restored.tool("ldapsearch", "-LLL", "-b", PEOPLE, "(uid=*)", "1.1")
        assert found.returncode == 0, found.stderr
        assert sorted(dns(found.stdout)) == [f"uid=p{i},{PEOPLE}" for i in range(3)]
    finally:
        restored.stop()


def test_restore_into_a_database_holding_data_is_refused(original: Server,
                                                         tmp_path: Path) -> None:
    archive, passphrase = backup(original, tmp_path)
    url = storage_url(original.data_dir)
    assert url is not None
    before = database_rows(original.data_dir, "SELECT count(*) FROM entries")
    done = original.certdir("ca", "restore", "--data-dir", str(tmp_path / "again"),
                            str(archive), "--passphrase-file", str(passphrase),
                            "--storage-url", url, check=False)
    assert done.returncode == 1
    assert b"is not empty; restore only into an empty database" in done.stderr
    assert not (tmp_path / "again").exists()
    assert database_rows(original.data_dir, "SELECT count(*) FROM entries") == before


def test_ldif_import_is_served(tmp_path: Path) -> None:
    server = make_server(tmp_path, "--no-ca")
    ldif = tmp_path / "people.ldif"
    ldif.write_text(person_ldif(IMPORTED))
    server.certdir("ldif", "import", "--data-dir", str(server.data_dir), "--quiet", str(ldif))
    server.start()
    try:
        every = server.tool("ldapsearch", "-LLL", "-b", PEOPLE, "(objectClass=inetOrgPerson)",
                            "entryCSN")
        assert every.returncode == 0, every.stderr
        assert len(dns(every.stdout)) == IMPORTED
        sids = set(re.findall(r"^entryCSN: [^#]+#[0-9a-f]+#([0-9a-f]{3})#",
                              every.stdout.decode(), re.MULTILINE))
        assert sids == {"000"}
        one = server.tool("ldapsearch", "-LLL", "-b", SUFFIX, "(mail=p123@example.com)", "cn")
        assert one.returncode == 0, one.stderr
        assert dns(one.stdout) == [f"uid=p123,{PEOPLE}"]
        assert b"cn: Person 123" in one.stdout
    finally:
        server.stop()


def test_a_late_duplicate_is_named_by_its_own_line(tmp_path: Path) -> None:
    server = make_server(tmp_path, "--no-ca")
    text = person_ldif(IMPORTED * 10) + f"\ndn: uid=p10,{PEOPLE}\nobjectClass: inetOrgPerson" \
        "\nuid: p10\ncn: Again\nsn: 10\n"
    ldif = tmp_path / "twice.ldif"
    ldif.write_text(text)
    done = server.certdir("ldif", "import", "--data-dir", str(server.data_dir), "--quiet",
                          str(ldif), check=False)
    assert done.returncode == 1
    where = line_of(text, f"uid=p10,{PEOPLE}", 1)
    assert f"twice.ldif:{where}: uid=p10,{PEOPLE}: entry uid=p10,{PEOPLE} already exists" \
        in done.stderr.decode(), done.stderr
    assert database_rows(server.data_dir, "SELECT count(*) FROM entries") == [(1,)]
