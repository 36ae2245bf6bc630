"""Scenario 095: OpenLDAP's tests/scripts/test005-modrdn, replayed.

certdir and slapd hold the tree and schema of scenario 093 (test003); slapd
is configured as the script's tests/data/slapd-2db.conf has it, with a
second database glued below the suffix at cn=Everyone,ou=Groups. Every
ldapmodrdn the script runs goes to both as the root DN, in its order and
with its arguments (DNs written with spaces after the commas, `-r` for
deleteoldrdn, `-s` for newSuperior), each followed by the script's
searches; result codes and entries must be alike, with scenario 093's
differences (superclasses in objectClass, RFC 4512 §2.4.1; userPassword
not shown to anonymous):

- a new RDN whose value the entry lacks is added to it; with deleteoldrdn
  the old one is removed, so a search by the old value finds nothing;
- a new RDN whose value the entry already holds, with deleteoldrdn, keeps
  that value once;
- a move below the entry itself is unwillingToPerform (53);
- a new RDN equal to the old one, or equal but for case, succeeds.

One difference from slapd, which its configuration makes: the rename of
cn=All Staff,ou=Groups to cn=Everyone is affectsMultipleDSAs (71) on slapd,
because the new name falls in its other database; certdir holds its whole
naming context itself, so the rename is done (RFC 4511 §4.9 answers
affectsMultipleDSAs only for a move to another server), and renamed back
before the tree is compared again.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import SUFFIX, Server
from tests.integration.slapd import Slapd
from tests.integration.test093_openldap_search import (
    Answer,
    assert_same_entries,
    load_certdir,
    load_slapd,
    search,
    superclasses,
)

PEOPLE = "ou=People, dc=example, dc=com"
JONES_1 = f"cn=James A Jones 1, ou=Alumni Association, {PEOPLE}"
JONES_2 = f"cn=James A Jones 2, ou=Information Technology Division, {PEOPLE}"
JONES_3 = f"cn=James A Jones III, ou=Alumni Association, {PEOPLE}"
ALL_STAFF = f"cn=All Staff,ou=Groups,{SUFFIX}"
EVERYONE = f"cn=Everyone,ou=Groups,{SUFFIX}"


def second_database(work: Path) -> str:
    """slapd.conf lines of slapd-2db.conf's first database, glued below ours."""
    (work / "everyone").mkdir(parents=True)
    return (f'database mdb\nsuffix "{EVERYONE}"\nsubordinate\n'
            f"directory {work / 'everyone'}\n")


@pytest.fixture(scope="module")
def certdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = load_certdir(tmp_path_factory.mktemp("certdir-test005"))
    yield server
    log = server.stop()
    assert "Traceback" not in log, log


@pytest.fixture(scope="module")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    work = tmp_path_factory.mktemp("slapd-test005")
    server = load_slapd(work, second_database(work))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def classes(slapd: Slapd) -> dict[str, frozenset[str]]:
    return superclasses(slapd.uri)


def modrdn(server: Server | Slapd, *args: str) -> subprocess.CompletedProcess[bytes]:
    return server.tool("ldapmodrdn", "-P", "3", *args)


def both(certdir: Server, slapd: Slapd, *args: str) -> tuple[int, int]:
    """ldapmodrdn's exit status (the result code) on certdir and on slapd."""
    return modrdn(certdir, *args).returncode, modrdn(slapd, *args).returncode


def same_search(certdir: Server, slapd: Slapd, classes: dict[str, frozenset[str]],
                filter: str) -> Answer:
    """The script's search of the tree for `filter`: alike on both; slapd's answer."""
    ours, theirs = search(certdir.uri, "-S", "", "-b", SUFFIX, filter), \
        search(slapd.uri, "-S", "", "-b", SUFFIX, filter)
    assert_same_entries(ours, theirs, classes)
    return theirs


def test_tree_is_searchable(certdir: Server, slapd: Slapd,
                            classes: dict[str, frozenset[str]]) -> None:
    assert same_search(certdir, slapd, classes, "objectClass=*").code == 0


def test_modrdn_keeping_the_old_rdn(certdir: Server, slapd: Slapd) -> None:
    assert both(certdir, slapd, JONES_1, "cn=James A Jones III") == (0, 0)


def test_modrdn_deleting_the_old_rdn(certdir: Server, slapd: Slapd) -> None:
    assert both(certdir, slapd, "-r", JONES_2, "cn=James A Jones II") == (0, 0)


@pytest.mark.parametrize("filter", ["cn=James A Jones III", "cn=James A Jones II"])
def test_found_by_the_new_rdn(certdir: Server, slapd: Slapd,
                              classes: dict[str, frozenset[str]], filter: str) -> None:
    found = same_search(certdir, slapd, classes, filter)
    assert found.code == 0 and found.ldif


def test_not_found_by_the_deleted_rdn(certdir: Server, slapd: Slapd,
                                      classes: dict[str, frozenset[str]]) -> None:
    found = same_search(certdir, slapd, classes, "cn=James A Jones 2")
    assert found.code == 0 and found.ldif == ""


def test_tree_after_the_renames(certdir: Server, slapd: Slapd,
                                classes: dict[str, frozenset[str]]) -> None:
    assert same_search(certdir, slapd, classes, "objectClass=*").code == 0


def test_modrdn_to_a_value_the_entry_holds(certdir: Server, slapd: Slapd,
                                           classes: dict[str, frozenset[str]]) -> None:
    assert both(certdir, slapd, "-r", JONES_3, "cn=James A Jones 1") == (0, 0)
    found = same_search(certdir, slapd, classes, "cn=James A Jones 1")
    assert found.code == 0 and found.ldif


def test_modrdn_into_another_database(certdir: Server, slapd: Slapd) -> None:
    assert modrdn(slapd, ALL_STAFF, "cn=Everyone").returncode == 71
    assert modrdn(certdir, ALL_STAFF, "cn=Everyone").returncode == 0
    assert modrdn(certdir, "-r", EVERYONE, "cn=All Staff").returncode == 0


def test_modrdn_below_itself_is_unwilling(certdir: Server, slapd: Slapd) -> None:
    assert both(certdir, slapd, "-s", JONES_1, JONES_1, "cn=James A Jones 1") == (53, 53)


@pytest.mark.parametrize("rdn", ["cn=James A Jones 1", "cn=James A JONES 1"])
def test_modrdn_to_the_same_rdn(certdir: Server, slapd: Slapd, rdn: str) -> None:
    assert both(certdir, slapd, JONES_1, rdn) == (0, 0)


def test_tree_at_the_end(certdir: Server, slapd: Slapd,
                         classes: dict[str, frozenset[str]]) -> None:
    assert same_search(certdir, slapd, classes, "objectClass=*").code == 0
