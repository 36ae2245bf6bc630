"""Scenario 012: referral objects, ManageDsaIT and default referrals.

- An operation whose target is a referral object, or below one, answers
  referral (10) with the object's `ref` URLs (RFC 3296 §5.2, RFC 4511 §4.1.10).
- A search above a referral object returns a continuation reference for it
  (SearchResultReference, RFC 4511 §4.5.3) instead of the entry, its URL
  carrying scope "sub" for a subtree search and "base" for a one-level one.
- Below a referral object, the URL's DN becomes the target DN and matchedDN
  names the referral object (RFC 3296 §5.2); a search's referral carries
  its scope (RFC 3296 §5.3).
- With ManageDsaIT (ldapsearch -M) the referral object is an ordinary entry
  (RFC 3296 §3).
- A DN outside every naming context answers the configured default referral;
  without one, noSuchObject (32). noSuchObject inside the naming context names
  the closest existing superior as matchedDN (RFC 4511 §4.1.9).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from tests.integration.conftest import Server, make_server
from tests.integration.ldif_compare import by_dn, parse

BASE = "dc=example,dc=com"
PEOPLE = f"ou=people,{BASE}"
REMOTE = f"ou=remote,{BASE}"
REMOTE_URL = f"ldap://other.example.net/{REMOTE}"
DEFAULT_URL = "ldap://upstream.example.org/"

TREE = f"""dn: {PEOPLE}
objectClass: organizationalUnit
ou: people

dn: uid=alice,{PEOPLE}
objectClass: inetOrgPerson
uid: alice
cn: Alice
sn: Liddell

dn: {REMOTE}
objectClass: referral
objectClass: extensibleObject
ou: remote
ref: {REMOTE_URL}
"""


def refs(output: bytes) -> list[str]:
    return [line[5:] for line in output.decode().splitlines() if line.startswith("ref: ")]


def matched_dn(output: bytes) -> str:
    lines = [line for line in output.decode().splitlines() if line.startswith("matchedDN: ")]
    assert lines, output.decode()
    return lines[0][len("matchedDN: "):]


@pytest.fixture(scope="module")
def tree(server: Server) -> Server:
    added = server.tool("ldapadd", input=TREE.encode())
    assert added.returncode == 0, added.stderr
    return server


def search(server: Server, base: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    return server.tool("ldapsearch", "-b", base, *args, bind=False)


def test_subtree_search_returns_continuation_reference(tree: Server) -> None:
    result = search(tree, BASE, "-s", "sub", "(objectClass=*)", "1.1")
    assert result.returncode == 0, result.stderr
    assert refs(result.stdout) == [f"{REMOTE_URL}??sub"]
    entries = {record.dn.lower() for record in parse(result.stdout)
               if not record.dn.startswith("ref: ")}
    assert entries == {BASE, PEOPLE, f"uid=alice,{PEOPLE}"}
    assert "# numReferences: 1" in result.stdout.decode()


def test_one_level_search_returns_continuation_reference(tree: Server) -> None:
    result = search(tree, BASE, "-s", "one", "(objectClass=*)", "1.1")
    assert result.returncode == 0, result.stderr
    assert refs(result.stdout) == [f"{REMOTE_URL}??base"]
    assert REMOTE not in by_dn(result.stdout)


def test_search_not_reaching_the_referral_has_no_reference(tree: Server) -> None:
    result = search(tree, PEOPLE, "-s", "sub", "(objectClass=*)", "1.1")
    assert result.returncode == 0, result.stderr
    assert refs(result.stdout) == []


def test_search_based_at_referral_answers_referral(tree: Server) -> None:
    result = search(tree, REMOTE, "-s", "base", "(objectClass=*)")
    assert result.returncode == 10, result.stderr
    assert "result: 10 Referral" in result.stdout.decode()
    assert refs(result.stdout) == [f"{REMOTE_URL}??base"]


def test_search_below_referral_answers_referral(tree: Server) -> None:
    result = search(tree, f"uid=bob,{REMOTE}", "-s", "base", "(objectClass=*)")
    assert result.returncode == 10, result.stderr
    assert refs(result.stdout) == [f"ldap://other.example.net/uid=bob,{REMOTE}??base"]
    assert matched_dn(result.stdout).lower() == REMOTE


def test_manage_dsa_it_returns_referral_entry(tree: Server) -> None:
    # ref is operational (RFC 3296 §5.1): `*` alone does not return it.
    result = search(tree, REMOTE, "-M", "-LLL", "-s", "base", "(objectClass=*)", "*", "ref")
    assert result.returncode == 0, result.stderr
    entry = by_dn(result.stdout)[REMOTE]
    assert entry.values("ref") == (REMOTE_URL,)
    assert {v.lower() for v in entry.values("objectClass")} >= {"referral", "extensibleobject"}


def test_manage_dsa_it_subtree_has_entry_not_reference(tree: Server) -> None:
    result = search(tree, BASE, "-M", "-s", "sub", "(objectClass=*)", "1.1")
    assert result.returncode == 0, result.stderr
    assert refs(result.stdout) == []
    assert REMOTE in by_dn(result.stdout)


def test_manage_dsa_it_filter_on_ref(tree: Server) -> None:
    result = search(tree, BASE, "-M", "-LLL", "(objectClass=referral)", "ref")
    assert result.returncode == 0, result.stderr
    assert list(by_dn(result.stdout)) == [REMOTE]


def test_compare_at_referral(tree: Server) -> None:
    plain = tree.tool("ldapcompare", REMOTE, "ou:remote")
    assert plain.returncode == 10, plain.stderr
    managed = tree.tool("ldapcompare", "-M", REMOTE, "ou:remote")
    assert managed.returncode == 6, managed.stderr


def test_add_below_referral_answers_referral(tree: Server) -> None:
    added = tree.tool("ldapadd", input=(
        f"dn: ou=child,{REMOTE}\nobjectClass: organizationalUnit\nou: child\n").encode())
    assert added.returncode == 10, added.stderr


def test_delete_below_referral_answers_referral(tree: Server) -> None:
    deleted = tree.tool("ldapdelete", f"uid=ghost,{REMOTE}")
    assert deleted.returncode == 10, deleted.stderr


def test_modify_referral_needs_manage_dsa_it(tree: Server) -> None:
    change = f"dn: {REMOTE}\nchangetype: modify\nreplace: description\ndescription: moved\n"
    plain = tree.tool("ldapmodify", input=change.encode())
    assert plain.returncode == 10, plain.stderr
    managed = tree.tool("ldapmodify", "-M", input=change.encode())
    assert managed.returncode == 0, managed.stderr
    result = search(tree, REMOTE, "-M", "-LLL", "-s", "base", "(objectClass=*)", "description")
    assert by_dn(result.stdout)[REMOTE].values("description") == ("moved",)


def test_missing_entry_names_matched_dn(tree: Server) -> None:
    result = search(tree, f"uid=nobody,{PEOPLE}", "-s", "base", "(objectClass=*)")
    assert result.returncode == 32, result.stderr
    assert matched_dn(result.stdout).lower() == PEOPLE


def test_missing_deep_entry_names_closest_superior(tree: Server) -> None:
    result = search(tree, f"cn=x,ou=gone,{BASE}", "-s", "base", "(objectClass=*)")
    assert result.returncode == 32, result.stderr
    assert matched_dn(result.stdout).lower() == BASE


def test_outside_naming_context_without_default_is_no_such_object(tree: Server) -> None:
    result = search(tree, "dc=other,dc=org", "-s", "base", "(objectClass=*)")
    assert result.returncode == 32, result.stderr
    assert refs(result.stdout) == []


@pytest.fixture(scope="module")
def defaulting(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = make_server(tmp_path_factory.mktemp("certdir-default-referral"))
    srv.configure("referral", default=[DEFAULT_URL])
    srv.start()
    yield srv
    log = srv.stop()
    assert "Traceback" not in log, log


def test_default_referral_outside_naming_context(defaulting: Server) -> None:
    result = search(defaulting, "dc=other,dc=org", "-s", "base", "(objectClass=*)")
    assert result.returncode == 10, result.stderr
    urls = refs(result.stdout)
    assert len(urls) == 1 and urls[0].startswith(DEFAULT_URL.rstrip("/")), urls


def test_default_referral_for_writes_outside_naming_context(defaulting: Server) -> None:
    added = defaulting.tool("ldapadd", input=(
        b"dn: dc=other,dc=org\nobjectClass: dcObject\nobjectClass: organization\n"
        b"dc: other\no: other\n"))
    assert added.returncode == 10, added.stderr


def test_default_referral_not_used_inside_naming_context(defaulting: Server) -> None:
    result = search(defaulting, f"ou=gone,{BASE}", "-s", "base", "(objectClass=*)")
    assert result.returncode == 32, result.stderr
    assert matched_dn(result.stdout).lower() == BASE
