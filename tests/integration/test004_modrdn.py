"""Scenario 004: ldapmodrdn renames and moves (RFC 4511 §4.9).

- The new RDN's values are added to the entry; with deleteoldrdn (-r) the
  old RDN's values are removed, without it they stay.
- newSuperior (-s) moves the entry with its whole subtree: every
  descendant is found at the new place and none at the old one; the entry
  keeps its entryUUID (RFC 4530).
- ldapmodrdn prints `Rename Result: <name> (<code>)` on stdout.
- A target that exists: entryAlreadyExists (68); a missing entry or new
  superior: noSuchObject (32); an RDN attribute the object classes do not
  allow: objectClassViolation (65) or namingViolation (64); moving an entry
  below itself is refused and changes nothing.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.integration.conftest import Server
from tests.integration.ldif_compare import assert_same_ldif, by_dn, parse

DATA = Path(__file__).parents[1] / "data" / "integration"
SUFFIX = "dc=example,dc=com"
PEOPLE = f"ou=people,{SUFFIX}"
STAFF = f"ou=staff,{SUFFIX}"
TEAMS = f"ou=teams,{SUFFIX}"


@pytest.fixture(scope="module")
def tree(server: Server) -> Server:
    added = server.tool("ldapadd", input=(DATA / "004_tree.ldif").read_bytes())
    assert added.returncode == 0, added.stderr.decode()
    return server


def modrdn(server: Server, *args: str) -> subprocess.CompletedProcess[bytes]:
    return server.tool("ldapmodrdn", *args)


def search(server: Server, base: str, scope: str = "base",
           *attributes: str) -> subprocess.CompletedProcess[bytes]:
    return server.tool("ldapsearch", "-LLL", "-b", base, "-s", scope, "(objectClass=*)",
                       *attributes, bind=False)


def values(server: Server, dn: str, attribute: str) -> tuple[str, ...]:
    result = search(server, dn, "base", attribute)
    assert result.returncode == 0, result.stderr.decode()
    return by_dn(result.stdout)[dn.lower()].values(attribute)


def assert_gone(server: Server, dn: str) -> None:
    assert search(server, dn).returncode == 32


def test_rename_keeping_old_rdn_value(tree: Server) -> None:
    result = modrdn(tree, f"uid=ann,{PEOPLE}", "uid=anna")
    assert result.returncode == 0, result.stderr.decode()
    assert set(values(tree, f"uid=anna,{PEOPLE}", "uid")) == {"ann", "anna"}
    assert_gone(tree, f"uid=ann,{PEOPLE}")


def test_rename_deleting_old_rdn_value(tree: Server) -> None:
    result = modrdn(tree, "-r", f"uid=ben,{PEOPLE}", "uid=benny")
    assert result.returncode == 0, result.stderr.decode()
    assert values(tree, f"uid=benny,{PEOPLE}", "uid") == ("benny",)
    assert_gone(tree, f"uid=ben,{PEOPLE}")


def test_rename_to_another_attribute(tree: Server) -> None:
    # The new RDN value already exists in the entry; deleteoldrdn drops uid.
    result = modrdn(tree, "-r", f"uid=carl,{PEOPLE}", "cn=Carl Cox")
    assert result.returncode == 0, result.stderr.decode()
    entry = by_dn(search(tree, f"cn=Carl Cox,{PEOPLE}", "base", "uid", "cn").stdout)
    record = entry[f"cn=carl cox,{PEOPLE}"]
    assert record.values("cn") == ("Carl Cox",)
    assert record.values("uid") == ()


def test_rename_via_ldif_changetype(tree: Server) -> None:
    ldif = (f"dn: uid=dora,{PEOPLE}\nchangetype: modrdn\nnewrdn: uid=dorothy\n"
            "deleteoldrdn: 1\n")
    result = tree.tool("ldapmodify", input=ldif.encode())
    assert result.returncode == 0, result.stderr.decode()
    assert values(tree, f"uid=dorothy,{PEOPLE}", "uid") == ("dorothy",)


def test_move_subtree_with_new_superior(tree: Server) -> None:
    red = f"ou=red,{TEAMS}"
    uuid_before = values(tree, f"cn=deep,ou=sub,{red}", "entryUUID")
    result = modrdn(tree, "-s", STAFF, red, "ou=red")
    assert result.returncode == 0, result.stderr.decode()
    moved = search(tree, f"ou=red,{STAFF}", "sub")
    assert moved.returncode == 0, moved.stderr.decode()
    assert_same_ldif(moved.stdout, DATA / "004_expected_moved.ldif", ignore=("objectClass",))
    assert values(tree, f"cn=deep,ou=sub,ou=red,{STAFF}", "entryUUID") == uuid_before
    assert_gone(tree, red)
    assert_gone(tree, f"cn=deep,ou=sub,{red}")
    left = search(tree, TEAMS, "sub", "1.1")
    assert [record.dn.lower() for record in parse(left.stdout)] == [TEAMS]


def test_rename_and_move_at_once(tree: Server) -> None:
    result = modrdn(tree, "-r", "-s", STAFF, f"uid=benny,{PEOPLE}", "uid=benjamin")
    assert result.returncode == 0, result.stdout.decode()
    assert values(tree, f"uid=benjamin,{STAFF}", "uid") == ("benjamin",)
    assert_gone(tree, f"uid=benny,{PEOPLE}")


def test_children_found_by_filter_at_new_place(tree: Server) -> None:
    result = tree.tool("ldapsearch", "-LLL", "-b", SUFFIX, "(cn=deep)", "1.1", bind=False)
    assert [record.dn.lower() for record in parse(result.stdout)] == [
        f"cn=deep,ou=sub,ou=red,{STAFF}"]


def test_rename_non_leaf_in_place(tree: Server) -> None:
    red = f"ou=red,{STAFF}"
    result = modrdn(tree, "-r", red, "ou=crimson")
    assert result.returncode == 0, result.stdout.decode()
    crimson = f"ou=crimson,{STAFF}"
    assert values(tree, f"cn=deep,ou=sub,{crimson}", "cn") == ("deep",)
    assert_gone(tree, f"cn=deep,ou=sub,{red}")
    back = modrdn(tree, "-r", crimson, "ou=red")
    assert back.returncode == 0, back.stdout.decode()


def test_target_exists(tree: Server) -> None:
    result = modrdn(tree, f"uid=ed,{PEOPLE}", "uid=anna")
    assert result.returncode == 68, result.stderr.decode()
    assert "Rename Result: Already exists (68)" in result.stdout.decode()
    assert values(tree, f"uid=ed,{PEOPLE}", "uid") == ("ed",)


def test_new_superior_missing(tree: Server) -> None:
    result = modrdn(tree, "-s", f"ou=nowhere,{SUFFIX}", f"uid=ed,{PEOPLE}", "uid=ed")
    assert result.returncode == 32, result.stderr.decode()
    assert "Rename Result: No such object (32)" in result.stdout.decode()
    assert f"Matched DN: {SUFFIX}" in result.stdout.decode()
    assert values(tree, f"uid=ed,{PEOPLE}", "uid") == ("ed",)


def test_entry_missing(tree: Server) -> None:
    result = modrdn(tree, f"uid=ghost,{PEOPLE}", "uid=spirit")
    assert result.returncode == 32, result.stderr.decode()


def test_rdn_attribute_not_allowed(tree: Server) -> None:
    result = modrdn(tree, f"uid=ed,{PEOPLE}", "dnQualifier=ed")
    assert result.returncode == 65, result.stderr.decode()
    assert values(tree, f"uid=ed,{PEOPLE}", "uid") == ("ed",)


def test_move_below_itself_is_refused(tree: Server) -> None:
    result = modrdn(tree, "-s", f"ou=sub,ou=red,{STAFF}", f"ou=red,{STAFF}", "ou=red")
    # unwillingToPerform (directory/ops/moddn.py); RFC 4511 §4.9 names no code, and
    # slapd's noSuchObject ("new superior not found") misnames an existing entry.
    assert result.returncode == 53, result.stderr.decode()
    assert search(tree, f"cn=deep,ou=sub,ou=red,{STAFF}").returncode == 0


def test_anonymous_rename_is_refused(tree: Server) -> None:
    result = tree.tool("ldapmodrdn", f"uid=ed,{PEOPLE}", "uid=eddie", bind=False)
    assert result.returncode == 50, result.stderr.decode()


def test_rename_to_multi_valued_rdn(tree: Server) -> None:
    # RFC 4514 §2.2: an RDN may hold several attribute values joined by `+`.
    result = modrdn(tree, "-r", f"uid=ed,{PEOPLE}", "cn=Ed Eames+uid=ed")
    assert result.returncode == 0, result.stdout.decode()
    found = tree.tool("ldapsearch", "-LLL", "-b", PEOPLE, "(&(cn=Ed Eames)(uid=ed))", "1.1",
                      bind=False)
    (record,) = parse(found.stdout)
    assert record.dn == f"cn=Ed Eames+uid=ed,{PEOPLE}"
    alias = search(tree, f"UID=Ed+CN=Ed Eames,{PEOPLE}")
    assert alias.returncode == 0, alias.stderr.decode()
