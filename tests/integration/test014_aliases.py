"""Scenario 014: alias entries and search dereferencing (RFC 4511 §4.5.1.3, RFC 4512 §2.6).

- neverDerefAliases (-a never, ldapsearch's default) returns alias entries as
  they are, with their aliasedObjectName.
- derefFindingBaseObj (-a find) dereferences the base object only;
  derefInSearching (-a search) dereferences aliases found below the base
  only; derefAlways (-a always) does both.
- Dereferencing an alias whose target does not exist is aliasProblem (33)
  (RFC 4511 Appendix A.2); a chain of aliases is followed to its end.
- An entry reached twice through aliases is returned once (RFC 4511 §4.5.1.3).
- Update operations never dereference: modifying an alias changes the alias.
"""

from __future__ import annotations

import subprocess

import pytest

from tests.integration.conftest import Server
from tests.integration.ldif_compare import by_dn, parse

BASE = "dc=example,dc=com"
PEOPLE = f"ou=people,{BASE}"
ALIASES = f"ou=aliases,{BASE}"
ALICE = f"uid=alice,{PEOPLE}"
BOB = f"uid=bob,{PEOPLE}"
ALLY = f"uid=ally,{ALIASES}"
STAFF = f"ou=staff,{ALIASES}"
CHAIN = f"uid=chain,{ALIASES}"
DANGLING = f"uid=dangling,{ALIASES}"

TREE = f"""dn: {PEOPLE}
objectClass: organizationalUnit
ou: people

dn: {ALICE}
objectClass: inetOrgPerson
uid: alice
cn: Alice
sn: Liddell

dn: {BOB}
objectClass: inetOrgPerson
uid: bob
cn: Bob
sn: Builder

dn: {ALIASES}
objectClass: organizationalUnit
ou: aliases

dn: {ALLY}
objectClass: alias
objectClass: extensibleObject
uid: ally
aliasedObjectName: {ALICE}

dn: {STAFF}
objectClass: alias
objectClass: extensibleObject
ou: staff
aliasedObjectName: {PEOPLE}

dn: {CHAIN}
objectClass: alias
objectClass: extensibleObject
uid: chain
aliasedObjectName: {ALLY}
"""

DANGLING_LDIF = f"""dn: {DANGLING}
objectClass: alias
objectClass: extensibleObject
uid: dangling
aliasedObjectName: uid=nobody,{PEOPLE}
"""


@pytest.fixture(scope="module")
def tree(server: Server) -> Server:
    added = server.tool("ldapadd", input=TREE.encode())
    assert added.returncode == 0, added.stderr
    return server


def search(server: Server, deref: str | None, base: str, scope: str,
           filter_: str = "(objectClass=*)", *attrs: str) -> subprocess.CompletedProcess[bytes]:
    option = ("-a", deref) if deref else ()
    return server.tool("ldapsearch", "-LLL", *option, "-b", base, "-s", scope, filter_,
                       *(attrs or ("1.1",)), bind=False)


def found(result: subprocess.CompletedProcess[bytes]) -> list[str]:
    assert result.returncode == 0, result.stderr
    return sorted(record.dn.lower() for record in parse(result.stdout))


def test_default_does_not_dereference(tree: Server) -> None:
    result = search(tree, None, ALLY, "base", "(objectClass=*)", "aliasedObjectName")
    assert result.returncode == 0, result.stderr
    assert by_dn(result.stdout)[ALLY].values("aliasedObjectName") == (ALICE,)


def test_never_returns_alias_entries_in_subtree(tree: Server) -> None:
    result = search(tree, "never", ALIASES, "sub")
    assert found(result) == sorted([ALIASES, ALLY, STAFF, CHAIN])


def test_never_filters_alias_entries_not_targets(tree: Server) -> None:
    assert found(search(tree, "never", ALIASES, "sub", "(objectClass=inetOrgPerson)")) == []
    assert found(search(tree, "never", ALIASES, "sub", "(objectClass=alias)")) == sorted(
        [ALLY, STAFF, CHAIN])


@pytest.mark.parametrize("deref", ["always", "find"])
def test_base_object_dereferenced(tree: Server, deref: str) -> None:
    result = search(tree, deref, ALLY, "base", "(objectClass=*)", "cn")
    assert result.returncode == 0, result.stderr
    assert list(by_dn(result.stdout)) == [ALICE]
    assert by_dn(result.stdout)[ALICE].values("cn") == ("Alice",)


def test_search_mode_leaves_base_alone(tree: Server) -> None:
    assert found(search(tree, "search", ALLY, "base")) == [ALLY]


@pytest.mark.parametrize("deref", ["always", "search"])
def test_aliases_below_base_dereferenced(tree: Server, deref: str) -> None:
    result = search(tree, deref, ALIASES, "sub", "(objectClass=inetOrgPerson)")
    assert found(result) == sorted([ALICE, BOB])


def test_one_level_search_dereferences_children(tree: Server) -> None:
    # The aliases directly below the base stand for their targets themselves,
    # not for the targets' children.
    assert found(search(tree, "search", ALIASES, "one")) == sorted([ALICE, PEOPLE])
    assert found(search(tree, "never", ALIASES, "one")) == sorted([ALLY, STAFF, CHAIN])


def test_find_mode_leaves_subordinates_alone(tree: Server) -> None:
    assert found(search(tree, "find", ALIASES, "sub", "(objectClass=inetOrgPerson)")) == []


@pytest.mark.parametrize("deref", ["always", "find"])
def test_alias_base_searched_at_target(tree: Server, deref: str) -> None:
    assert found(search(tree, deref, STAFF, "one")) == sorted([ALICE, BOB])
    assert found(search(tree, deref, STAFF, "sub", "(uid=bob)")) == [BOB]


def test_entry_reached_twice_returned_once(tree: Server) -> None:
    result = search(tree, "always", ALIASES, "sub", "(uid=alice)")
    assert result.returncode == 0, result.stderr
    assert [record.dn.lower() for record in parse(result.stdout)] == [ALICE]


def test_alias_chain_followed(tree: Server) -> None:
    assert found(search(tree, "always", CHAIN, "base")) == [ALICE]


def test_dangling_alias_is_alias_problem(tree: Server) -> None:
    added = tree.tool("ldapadd", input=DANGLING_LDIF.encode())
    assert added.returncode == 0, added.stderr
    result = search(tree, "always", DANGLING, "base")
    assert result.returncode == 33, result.stderr
    assert found(search(tree, "never", DANGLING, "base")) == [DANGLING]


def test_modify_changes_the_alias_not_its_target(tree: Server) -> None:
    modify = tree.tool("ldapmodify", input=(
        f"dn: {ALLY}\nchangetype: modify\nadd: description\ndescription: alias note\n"
    ).encode())
    assert modify.returncode == 0, modify.stderr
    alias = search(tree, "never", ALLY, "base", "(objectClass=*)", "description")
    assert by_dn(alias.stdout)[ALLY].values("description") == ("alias note",)
    target = search(tree, "never", ALICE, "base", "(objectClass=*)", "description")
    assert by_dn(target.stdout)[ALICE].values("description") == ()


def test_alias_needs_aliased_object_name(tree: Server) -> None:
    added = tree.tool("ldapadd", input=(
        f"dn: uid=empty,{ALIASES}\nobjectClass: alias\nobjectClass: extensibleObject\n"
        "uid: empty\n").encode())
    assert added.returncode == 65, added.stderr
