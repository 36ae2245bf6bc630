"""Scenario 008: request controls through ldap-utils.

- Paged results (RFC 2696): pages of at most the requested size, a cookie
  on every page but the last, every entry exactly once.
- Server side sort (RFC 2891): ascending and descending (`-attr`) by the
  named ordering rule, also across pages.
- Assertion (RFC 4528): the operation runs only if the entry matches the
  filter, otherwise assertionFailed (122) and nothing changes.
- Pre-read / post-read (RFC 4527): the entry as it was before and after
  the update, limited to the requested attributes.
- An unrecognised critical control: unavailableCriticalExtension (12) and
  the operation is not performed; a non-critical one is ignored
  (RFC 4511 §4.1.11).
- Subtree delete (1.2.840.113556.1.4.805) deletes an entry with all its
  descendants; without it, the same delete is notAllowedOnNonLeaf (66).
"""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.integration.conftest import Server
from tests.integration.ldif_compare import Record, by_dn, parse

SUFFIX = "dc=example,dc=com"
PAGED = f"ou=paged,{SUFFIX}"
TREE = f"ou=tree,{SUFFIX}"
CASE_IGNORE_ORDERING = "2.5.13.3"
SUBTREE_DELETE = "1.2.840.113556.1.4.805"
# Surnames in mixed case, so only a case-insensitive ordering rule sorts them.
SURNAMES = ("adams", "Baker", "carter", "Davis", "evans", "Foster", "green", "Hughes",
            "irwin", "Jones", "king", "Lewis", "moore", "Nash", "owens", "Price",
            "quinn", "Reed", "scott", "Turner", "upton", "Vance", "walsh", "Young", "zimmer")
PAGE_COOKIE = re.compile(r"^pagedresults: estimate=\d+ cookie=(\S*)$", re.MULTILINE)


def person(surname: str) -> str:
    return (f"dn: cn={surname},{PAGED}\nobjectClass: inetOrgPerson\ncn: {surname}\n"
            f"sn: {surname}\n\n")


@pytest.fixture(scope="module")
def loaded(server: Server) -> Server:
    # Added in a scrambled order, so storage order is not the sorted order.
    scrambled = [SURNAMES[(i * 7) % len(SURNAMES)] for i in range(len(SURNAMES))]
    ldif = (f"dn: {PAGED}\nobjectClass: organizationalUnit\nou: paged\n\n"
            + "".join(person(surname) for surname in scrambled)
            + f"dn: {TREE}\nobjectClass: organizationalUnit\nou: tree\n\n"
            + f"dn: ou=branch,{TREE}\nobjectClass: organizationalUnit\nou: branch\n\n"
            + f"dn: cn=leaf,ou=branch,{TREE}\nobjectClass: organizationalRole\ncn: leaf\n\n"
            + f"dn: cn=other,{TREE}\nobjectClass: organizationalRole\ncn: other\n")
    added = server.tool("ldapadd", input=ldif.encode())
    assert added.returncode == 0, added.stderr.decode()
    return server


def search(server: Server, *args: str) -> subprocess.CompletedProcess[bytes]:
    return server.tool("ldapsearch", "-b", PAGED, "-s", "one", *args, bind=False)


def surnames(records: tuple[Record, ...]) -> list[str]:
    return [record.values("sn")[0] for record in records]


def test_paged_results(loaded: Server) -> None:
    result = search(loaded, "-E", "pr=10/noprompt", "(objectClass=*)", "sn")
    assert result.returncode == 0, result.stderr.decode()
    out = result.stdout.decode()
    entries_per_page = [block.count("\ndn: ") for block in out.split("# search result")[:-1]]
    assert entries_per_page == [10, 10, 5]
    cookies = PAGE_COOKIE.findall(out)
    assert len(cookies) == 3
    assert all(cookies[:2])
    assert cookies[2] == ""
    assert sorted(surnames(parse(out))) == sorted(SURNAMES)


def test_page_larger_than_result(loaded: Server) -> None:
    result = search(loaded, "-E", "pr=100/noprompt", "(objectClass=*)", "1.1")
    assert result.returncode == 0, result.stderr.decode()
    assert PAGE_COOKIE.findall(result.stdout.decode()) == [""]
    assert len(parse(result.stdout)) == len(SURNAMES)


@pytest.mark.parametrize(("key", "reverse"), [
    (f"sn:{CASE_IGNORE_ORDERING}", False),
    (f"-sn:{CASE_IGNORE_ORDERING}", True),
])
def test_server_side_sort(loaded: Server, key: str, reverse: bool) -> None:
    result = search(loaded, "-LLL", "-E", f"sss={key}", "(objectClass=*)", "sn")
    assert result.returncode == 0, result.stderr.decode()
    assert surnames(parse(result.stdout)) == sorted(SURNAMES, key=str.lower, reverse=reverse)


def test_sorted_pages(loaded: Server) -> None:
    result = search(loaded, "-E", f"sss=-sn:{CASE_IGNORE_ORDERING}", "-E", "pr=10/noprompt",
                    "(objectClass=*)", "sn")
    assert result.returncode == 0, result.stderr.decode()
    assert surnames(parse(result.stdout)) == sorted(SURNAMES, key=str.lower, reverse=True)


def test_sort_key_missing_from_entries(loaded: Server) -> None:
    # Entries without the key are kept together after the others when
    # ascending; descending reverses the entries that have it.
    for surname, title in (("irwin", "Alpha"), ("Jones", "beta")):
        changes = f"dn: cn={surname},{PAGED}\nchangetype: modify\nadd: title\ntitle: {title}\n"
        assert modify(loaded, changes).returncode == 0
    key = f"title:{CASE_IGNORE_ORDERING}"
    up = search(loaded, "-LLL", "-E", f"sss={key}", "(objectClass=*)", "sn")
    assert surnames(parse(up.stdout))[:2] == ["irwin", "Jones"]
    down = surnames(parse(search(loaded, "-LLL", "-E", f"sss=-{key}", "(objectClass=*)",
                                 "sn").stdout))
    titled = [surname for surname in down if surname in {"irwin", "Jones"}]
    assert titled == ["Jones", "irwin"]
    assert down[:2] == ["Jones", "irwin"]


def modify(server: Server, changes: str, *controls: str) -> subprocess.CompletedProcess[bytes]:
    return server.tool("ldapmodify", *controls, input=changes.encode())


def sn_of(server: Server, dn: str) -> tuple[str, ...]:
    result = server.tool("ldapsearch", "-LLL", "-b", dn, "-s", "base", "sn", bind=False)
    return by_dn(result.stdout)[dn.lower()].values("sn")


def test_assertion_that_holds(loaded: Server) -> None:
    dn = f"cn=adams,{PAGED}"
    changes = f"dn: {dn}\nchangetype: modify\nadd: sn\nsn: Adamson\n"
    result = modify(loaded, changes, "-e", "assert=(sn=ADAMS)")
    assert result.returncode == 0, result.stderr.decode()
    assert set(sn_of(loaded, dn)) == {"adams", "Adamson"}


def test_assertion_that_fails_on_modify(loaded: Server) -> None:
    dn = f"cn=Baker,{PAGED}"
    changes = f"dn: {dn}\nchangetype: modify\nreplace: sn\nsn: Butcher\n"
    result = modify(loaded, changes, "-e", "assert=(sn=Carter)")
    assert result.returncode == 122
    assert "Assertion Failed (122)" in result.stderr.decode()
    assert sn_of(loaded, dn) == ("Baker",)


def test_assertion_that_fails_on_delete(loaded: Server) -> None:
    dn = f"cn=carter,{PAGED}"
    result = loaded.tool("ldapdelete", "-e", "assert=(sn=nobody)", dn)
    assert result.returncode == 122
    assert sn_of(loaded, dn) == ("carter",)


def test_assertion_on_search(loaded: Server) -> None:
    base = ("-LLL", "-b", f"cn=Foster,{PAGED}", "-s", "base")
    held = loaded.tool("ldapsearch", *base, "-e", "assert=(sn=foster)", "1.1", bind=False)
    assert held.returncode == 0, held.stderr.decode()
    assert len(parse(held.stdout)) == 1
    failed = loaded.tool("ldapsearch", *base, "-e", "!assert=(sn=green)", "1.1", bind=False)
    assert failed.returncode == 122
    assert parse(failed.stdout) == ()


def read_control_entries(stdout: str, which: str) -> tuple[Record, ...]:
    """The entry ldapmodify prints between `# ==> preread` and `# <== preread`."""
    sections = re.findall(rf"^# ==> {which}\n(.*?)^# <== {which}$", stdout,
                          re.MULTILINE | re.DOTALL)
    return tuple(record for section in sections for record in parse(section))


def test_pre_and_post_read(loaded: Server) -> None:
    dn = f"cn=Davis,{PAGED}"
    changes = f"dn: {dn}\nchangetype: modify\nreplace: sn\nsn: Davison\n-\nadd: title\ntitle: X\n"
    result = modify(loaded, changes, "-e", "preread=sn,title", "-e", "postread=sn,title")
    assert result.returncode == 0, result.stderr.decode()
    out = result.stdout.decode()
    (before,) = read_control_entries(out, "preread")
    (after,) = read_control_entries(out, "postread")
    assert before.dn.lower() == after.dn.lower() == dn.lower()
    assert before.attributes == (("sn", "Davis"),)
    assert sorted(after.attributes) == [("sn", "Davison"), ("title", "X")]


def test_post_read_on_add(loaded: Server) -> None:
    dn = f"cn=new,{TREE}"
    result = loaded.tool("ldapadd", "-e", "postread=cn,entryUUID",
                         input=f"dn: {dn}\nobjectClass: organizationalRole\ncn: new\n".encode())
    assert result.returncode == 0, result.stderr.decode()
    (after,) = read_control_entries(result.stdout.decode(), "postread")
    assert after.values("cn") == ("new",)
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
                        after.values("entryUUID")[0])


def test_pre_read_on_delete_and_post_read_on_rename(loaded: Server) -> None:
    deleted = loaded.tool("ldapdelete", "-e", "preread=sn", f"cn=green,{PAGED}")
    assert deleted.returncode == 0, deleted.stderr.decode()
    (before,) = read_control_entries(deleted.stdout.decode(), "preread")
    assert before.values("sn") == ("green",)
    renamed = loaded.tool("ldapmodrdn", "-e", "postread=cn", f"cn=Hughes,{PAGED}", "cn=Hugh")
    assert renamed.returncode == 0, renamed.stderr.decode()
    (after,) = read_control_entries(renamed.stdout.decode(), "postread")
    assert after.dn.lower() == f"cn=hugh,{PAGED}"
    assert set(after.values("cn")) == {"Hughes", "Hugh"}


def test_unknown_critical_control_on_search(loaded: Server) -> None:
    result = search(loaded, "-E", "!1.2.3.4.5", "(objectClass=*)", "1.1")
    assert result.returncode == 12
    assert "result: 12 Critical extension is unavailable" in result.stdout.decode()
    assert parse(result.stdout) == ()


def test_unknown_critical_control_on_delete(loaded: Server) -> None:
    dn = f"cn=evans,{PAGED}"
    result = loaded.tool("ldapdelete", "-e", "!1.2.3.4.5", dn)
    assert result.returncode == 12
    assert sn_of(loaded, dn) == ("evans",)


def test_unknown_non_critical_control_is_ignored(loaded: Server) -> None:
    result = search(loaded, "-LLL", "-E", "1.2.3.4.5", "(objectClass=*)", "1.1")
    assert result.returncode == 0, result.stderr.decode()
    plain = search(loaded, "-LLL", "(objectClass=*)", "1.1")
    assert len(parse(result.stdout)) == len(parse(plain.stdout)) >= len(SURNAMES) - 1


def test_subtree_delete_control(loaded: Server) -> None:
    assert loaded.tool("ldapdelete", TREE).returncode == 66
    result = loaded.tool("ldapdelete", "-e", f"!{SUBTREE_DELETE}", TREE)
    assert result.returncode == 0, result.stderr.decode()
    for dn in (TREE, f"ou=branch,{TREE}", f"cn=leaf,ou=branch,{TREE}", f"cn=other,{TREE}"):
        gone = loaded.tool("ldapsearch", "-b", dn, "-s", "base", "1.1", bind=False)
        assert gone.returncode == 32, dn
    remaining = parse(search(loaded, "-LLL", "(objectClass=*)", "1.1").stdout)
    assert len(remaining) == len(SURNAMES) - 1


def test_supported_controls_are_advertised(loaded: Server) -> None:
    result = loaded.tool("ldapsearch", "-LLL", "-b", "", "-s", "base", "(objectClass=*)",
                         "supportedControl", bind=False)
    assert result.returncode == 0, result.stderr.decode()
    advertised = set(parse(result.stdout)[0].values("supportedControl"))
    assert {"1.2.840.113556.1.4.319", "1.2.840.113556.1.4.473", "1.3.6.1.1.12",
            "1.3.6.1.1.13.1", "1.3.6.1.1.13.2", "2.16.840.1.113730.3.4.2",
            SUBTREE_DELETE} <= advertised
