"""Scenario 005: ldapdelete (RFC 4511 §4.8).

- Only leaf entries can be deleted; an entry with children gives
  notAllowedOnNonLeaf (66) and stays.
- A missing entry gives noSuchObject (32) with the deepest existing
  ancestor as matchedDN (RFC 4511 §4.1.9).
- `ldapdelete -r` deletes a subtree client side, leaves first.
- Deleting needs an authenticated bind: anonymous gets 50 (or 8).
- ldapdelete exits with the result code; with -c it goes on after errors.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.integration.conftest import Server
from tests.integration.ldif_compare import parse

DATA = Path(__file__).parents[1] / "data" / "integration"
SUFFIX = "dc=example,dc=com"
GROUPS = f"ou=groups,{SUFFIX}"
OLD = f"ou=old,{SUFFIX}"


@pytest.fixture(scope="module")
def tree(server: Server) -> Server:
    added = server.tool("ldapadd", input=(DATA / "005_tree.ldif").read_bytes())
    assert added.returncode == 0, added.stderr.decode()
    return server


def exists(server: Server, dn: str) -> bool:
    result = server.tool("ldapsearch", "-LLL", "-b", dn, "-s", "base", "1.1", bind=False)
    assert result.returncode in (0, 32), result.stderr.decode()
    return result.returncode == 0


def delete(server: Server, *args: str, bind: bool = True) -> subprocess.CompletedProcess[bytes]:
    return server.tool("ldapdelete", *args, bind=bind)


def test_delete_leaf(tree: Server) -> None:
    result = delete(tree, f"cn=leaf1,{GROUPS}")
    assert result.returncode == 0, result.stderr.decode()
    assert not exists(tree, f"cn=leaf1,{GROUPS}")
    assert exists(tree, f"cn=leaf2,{GROUPS}")


def test_delete_non_leaf(tree: Server) -> None:
    result = delete(tree, GROUPS)
    assert result.returncode == 66
    assert "Operation not allowed on non-leaf (66)" in result.stderr.decode()
    assert exists(tree, GROUPS)


def test_delete_suffix_with_children(tree: Server) -> None:
    assert delete(tree, SUFFIX).returncode == 66
    assert exists(tree, SUFFIX)


def test_delete_missing_entry_names_matched_dn(tree: Server) -> None:
    result = delete(tree, f"cn=ghost,ou=nowhere,{GROUPS}")
    assert result.returncode == 32
    stderr = result.stderr.decode()
    assert "No such object (32)" in stderr
    assert f"matched DN: {GROUPS}" in stderr


def test_delete_via_ldif_changetype(tree: Server) -> None:
    ldif = f"dn: cn=leaf2,{GROUPS}\nchangetype: delete\n"
    result = tree.tool("ldapmodify", input=ldif.encode())
    assert result.returncode == 0, result.stderr.decode()
    assert f'deleting entry "cn=leaf2,{GROUPS}"' in result.stdout.decode()
    assert not exists(tree, f"cn=leaf2,{GROUPS}")


def test_continue_after_error(tree: Server) -> None:
    result = delete(tree, "-c", f"cn=leaf3,{GROUPS}", f"cn=missing,{GROUPS}", f"cn=leaf4,{GROUPS}")
    assert result.returncode == 32, result.stderr.decode()
    assert not exists(tree, f"cn=leaf3,{GROUPS}")
    assert not exists(tree, f"cn=leaf4,{GROUPS}")


def test_recursive_delete(tree: Server) -> None:
    result = delete(tree, "-r", OLD)
    assert result.returncode == 0, result.stderr.decode()
    for dn in (OLD, f"cn=a,{OLD}", f"ou=nested,{OLD}", f"cn=c,ou=nested,{OLD}"):
        assert not exists(tree, dn), dn
    left = tree.tool("ldapsearch", "-LLL", "-b", SUFFIX, "(cn=c)", "1.1", bind=False)
    assert parse(left.stdout) == ()


def test_anonymous_delete_is_refused(tree: Server) -> None:
    result = delete(tree, f"cn=leaf5,{GROUPS}", bind=False)
    assert result.returncode == 50, result.stderr.decode()
    assert exists(tree, f"cn=leaf5,{GROUPS}")


def test_delete_then_add_again(tree: Server) -> None:
    dn = f"cn=leaf5,{GROUPS}"
    uuid = tree.tool("ldapsearch", "-LLL", "-b", dn, "-s", "base", "entryUUID").stdout
    assert delete(tree, dn).returncode == 0
    ldif = f"dn: {dn}\nobjectClass: organizationalRole\ncn: leaf5\n"
    assert tree.tool("ldapadd", input=ldif.encode()).returncode == 0
    again = tree.tool("ldapsearch", "-LLL", "-b", dn, "-s", "base", "entryUUID").stdout
    # A new entry under an old name is a different entry (RFC 4530 §2).
    assert parse(again)[0].values("entryUUID") != parse(uuid)[0].values("entryUUID")
