"""Scenario 080: referrals and continuation references as RFC 3296 words them.

The tree is OpenLDAP's tests/data/referrals.ldif (test016-subref) under our
suffix, with a person and a referral object one level deeper. The expected
answers are slapd's (2.5, back-mdb, with equality indexes on objectClass,
cn and mail): the same searches are sent to a slapd loaded with the same
tree, and both must answer alike.

- A `ref` value's label (`ldap://hostA/... HostA`) is never returned, in a
  referral or in a continuation reference (RFC 3296 §2.2).
- A search based at or below a referral object answers referral (10) with
  matchedDN the referral object and URLs naming the base, with the search's
  scope (`??base`, `??one`, `??sub`; `??subordinate` for children, as
  slapd writes it; RFC 3296 §5.3); a URL without a DN gets the base; DNs in
  URLs are percent-encoded (RFC 4516 §2.1). Other operations' referrals
  carry no scope (RFC 3296 §5.2); an Add's names the new entry.
- A base outside the naming context gets the default referral, its URL
  naming the base, with the search's scope (RFC 4511 §4.1.10, as slapd).
- A one-level or subtree search returns the continuation reference of
  every referral object in its scope whatever the filter, indexed
  attributes included (RFC 3296 §5.4), with `??base` for one-level and
  `??sub` for subtree; a URL without a DN gets the referral object's.
- A URI that is not an LDAP URL is returned as it is, label dropped.
- A referral object below another one is not reached: only the upper one's
  reference is returned.
- ldap3 and python-ldap (libldap) see the same URLs raw on the wire.

One difference from slapd, which RFC 3296 §3 requires: with ManageDsaIT a
missing base below a referral object is noSuchObject (32), not slapd's
referral, since the control forbids referrals built from referral objects.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import ldap
import ldap3
import pytest

from tests.integration.conftest import SUFFIX, Server, make_server
from tests.integration.slapd import start_slapd

ABC = f"o=ABC,{SUFFIX}"
XYZ = f"o=XYZ,{SUFFIX}"
EXAMPLE = f"o=Example,{SUFFIX}"
JOHN = f"cn=John Smith,{EXAMPLE}"
ROLES = f"ou=Roles,{EXAMPLE}"
BELOW_ROLES = f"cn=John Smith,{ROLES}"
BELOW_ABC = f"uid=xxx,o=abc,{SUFFIX}"
WEB = f"ou=Web,{EXAMPLE}"
WEB_URL = "http://directory.example.net/people"
UPSTREAM = "ldap://upstream.example.org/"
OUTSIDE = "dc=other,dc=org"

TREE = f"""dn: {ABC}
o: ABC
ref: ldap://hostA/o=abc,{SUFFIX} HostA
ref: ldap://hostB HostB
objectClass: referral
objectClass: extensibleObject

dn: {XYZ}
o: XYZ
ref: ldap://hostC/o=xyz,{SUFFIX} HostC
objectClass: referral
objectClass: extensibleObject

dn: {EXAMPLE}
o: Example
objectClass: organization

dn: {JOHN}
objectClass: inetOrgPerson
cn: John Smith
sn: Smith
mail: john@example.com
description: x

dn: {ROLES}
ou: Roles
ref: ldap://hostD/{ROLES}
objectClass: referral
objectClass: extensibleObject

dn: {WEB}
ou: Web
ref: {WEB_URL} Web pages
objectClass: referral
objectClass: extensibleObject
"""

SUFFIX_ENTRY = f"""dn: {SUFFIX}
objectClass: dcObject
objectClass: organization
dc: example
o: example

"""

INDEXES = """\
index objectClass eq
index cn,mail eq
"""

SUB_REFS = frozenset({
    (f"ldap://hostA/o=abc,{SUFFIX}??sub", f"ldap://hostB/{ABC}??sub"),
    (f"ldap://hostC/o=xyz,{SUFFIX}??sub",),
    (f"ldap://hostD/{ROLES}??sub",),
    (WEB_URL,),
})
# Filters on indexed (objectClass, cn, mail) and unindexed (description) attributes,
# matching entries or none.
FILTERS = ["(objectClass=*)", "(mail=*)", "(cn=John Smith)", "(objectClass=person)",
           "(objectClass=inetOrgPerson)", "(description=x)", "(mail=nobody@example.com)",
           "(cn=nobody)"]


@dataclass(frozen=True)
class Answer:
    """What ldapsearch printed: result code, matchedDN, the referral's URLs,
    the entries' DNs and the continuation references' URLs (in no order)."""

    code: int
    matched: str
    referral: tuple[str, ...]
    entries: frozenset[str]
    references: frozenset[tuple[str, ...]]


def answer(output: bytes) -> Answer:
    code, matched = -1, ""
    referral: tuple[str, ...] = ()
    entries: set[str] = set()
    references: set[tuple[str, ...]] = set()
    for block in output.decode().split("\n\n"):
        lines = [line for line in block.splitlines() if not line.startswith("#")]
        refs = tuple(line[5:] for line in lines if line.startswith("ref: "))
        dns = [line[4:].lower() for line in lines if line.startswith("dn: ")]
        results = [line for line in lines if line.startswith("result: ")]
        if results:
            code = int(results[0].split()[1])
            matched = next((line[11:].lower() for line in lines
                            if line.startswith("matchedDN: ")), "")
            referral = refs
        elif dns:
            entries.update(dns)
        elif refs:
            references.add(refs)
    return Answer(code, matched, referral, frozenset(entries), frozenset(references))


def search(uri: str, base: str, scope: str, filter: str, *args: str) -> Answer:
    result = subprocess.run(["ldapsearch", "-x", "-H", uri, "-o", "ldif_wrap=no", "-b", base,
                             "-s", scope, *args, filter, "1.1"],
                            capture_output=True, timeout=60, check=False)
    found = answer(result.stdout)
    assert found.code == result.returncode, result.stderr
    return found


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = make_server(tmp_path_factory.mktemp("certdir-references"), "--no-ca")
    server.configure("referral", default=[UPSTREAM])
    server.start()
    added = server.tool("ldapadd", input=TREE.encode())
    assert added.returncode == 0, added.stderr
    yield server
    log = server.stop()
    assert "Traceback" not in log, log


@pytest.fixture(scope="module")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Debian's slapd holding the same tree, on a free loopback port: its URI."""
    server = start_slapd(tmp_path_factory.mktemp("slapd-referrals"), SUFFIX,
                         SUFFIX_ENTRY + TREE, global_lines=f"referral {UPSTREAM}",
                         database_lines=INDEXES)
    yield server.uri
    server.stop()


# (base, scope): the referral's URLs, matchedDN the referral object.
AT_OR_BELOW = [
    (ABC, "base", (f"ldap://hostA/o=abc,{SUFFIX}??base", f"ldap://hostB/{ABC}??base")),
    (ABC, "one", (f"ldap://hostA/o=abc,{SUFFIX}??one", f"ldap://hostB/{ABC}??one")),
    (ABC, "sub", (f"ldap://hostA/o=abc,{SUFFIX}??sub", f"ldap://hostB/{ABC}??sub")),
    (ABC, "children", (f"ldap://hostA/o=abc,{SUFFIX}??subordinate",
                       f"ldap://hostB/{ABC}??subordinate")),
    (BELOW_ABC, "base", (f"ldap://hostA/uid=xxx,o=abc,{SUFFIX}??base",
                         f"ldap://hostB/{BELOW_ABC}??base")),
    (BELOW_ABC, "sub", (f"ldap://hostA/uid=xxx,o=abc,{SUFFIX}??sub",
                        f"ldap://hostB/{BELOW_ABC}??sub")),
    (ROLES, "sub", (f"ldap://hostD/{ROLES}??sub",)),
    (BELOW_ROLES, "one", (f"ldap://hostD/cn=John%20Smith,{ROLES}??one",)),
    (BELOW_ROLES, "base", (f"ldap://hostD/cn=John%20Smith,{ROLES}??base",)),
    (f"cn=x,{WEB}", "sub", (WEB_URL,)),
]


@pytest.mark.parametrize("base, scope, urls", AT_OR_BELOW)
def test_search_at_or_below_referral_object(tree: Server, base: str, scope: str,
                                            urls: tuple[str, ...]) -> None:
    found = search(tree.uri, base, scope, "(objectClass=*)")
    assert found.code == 10
    assert found.referral == urls
    referral_object = next(dn for dn in (ROLES, WEB, ABC) if dn.lower() in base.lower())
    assert found.matched == referral_object.lower()
    assert not found.entries and not found.references


@pytest.mark.parametrize("scope, name", [("base", "base"), ("one", "one"), ("sub", "sub"),
                                         ("children", "subordinate")])
def test_search_outside_naming_context_gets_default_referral(tree: Server, scope: str,
                                                             name: str) -> None:
    found = search(tree.uri, OUTSIDE, scope, "(objectClass=*)")
    assert found.code == 10
    assert found.referral == (f"{UPSTREAM}{OUTSIDE}??{name}",)


@pytest.mark.parametrize("filter", FILTERS)
def test_subtree_search_returns_every_reference_whatever_the_filter(
        tree: Server, filter: str) -> None:
    found = search(tree.uri, SUFFIX, "sub", filter)
    assert found.code == 0
    assert found.references == SUB_REFS


@pytest.mark.parametrize("filter", FILTERS)
def test_one_level_search_returns_every_reference_whatever_the_filter(
        tree: Server, filter: str) -> None:
    found = search(tree.uri, EXAMPLE, "one", filter)
    assert found.code == 0
    assert found.references == {(f"ldap://hostD/{ROLES}??base",), (WEB_URL,)}


def test_one_level_search_of_the_suffix(tree: Server) -> None:
    found = search(tree.uri, SUFFIX, "one", "(mail=*)")
    assert found.code == 0
    assert found.entries == frozenset()
    assert found.references == {
        (f"ldap://hostA/o=abc,{SUFFIX}??base", f"ldap://hostB/{ABC}??base"),
        (f"ldap://hostC/o=xyz,{SUFFIX}??base",),
    }


def test_subtree_search_entries_beside_references(tree: Server) -> None:
    found = search(tree.uri, SUFFIX, "sub", "(mail=*)")
    assert found.entries == {JOHN.lower()}


def test_children_search_returns_references_with_subtree_scope(tree: Server) -> None:
    found = search(tree.uri, EXAMPLE, "children", "(cn=John Smith)")
    assert found.code == 0
    assert found.entries == {JOHN.lower()}
    assert found.references == {(f"ldap://hostD/{ROLES}??sub",), (WEB_URL,)}


def test_paged_subtree_search_keeps_the_references(tree: Server) -> None:
    found = search(tree.uri, SUFFIX, "sub", "(mail=*)", "-E", "pr=1/noprompt")
    assert found.code == 0
    assert found.references == SUB_REFS


def test_manage_dsa_it_returns_referral_objects_as_entries(tree: Server) -> None:
    found = search(tree.uri, SUFFIX, "sub", "(objectClass=referral)", "-MM")
    assert found.code == 0
    assert found.entries == {ABC.lower(), XYZ.lower(), ROLES.lower(), WEB.lower()}
    assert found.references == frozenset()


def test_manage_dsa_it_below_referral_object_is_no_such_object(tree: Server) -> None:
    # slapd answers referral (10) here; RFC 3296 §3 forbids it.
    found = search(tree.uri, BELOW_ABC, "base", "(objectClass=*)", "-MM")
    assert found.code == 32
    assert found.matched == ABC.lower()


def test_labels_are_kept_in_the_ref_values(tree: Server) -> None:
    result = tree.tool("ldapsearch", "-LLL", "-MM", "-b", ABC, "-s", "base",
                       "(objectClass=*)", "ref")
    assert result.returncode == 0, result.stderr
    assert re.findall(r"^ref: (.*)$", result.stdout.decode(), re.M) == [
        f"ldap://hostA/o=abc,{SUFFIX} HostA", "ldap://hostB HostB"]


def test_nested_referral_object_is_not_reached(tree: Server) -> None:
    nested = f"ou=inner,{ROLES}"
    added = tree.tool("ldapadd", "-MM", input=(
        f"dn: {nested}\nou: inner\nref: ldap://hostE/{nested}\n"
        "objectClass: referral\nobjectClass: extensibleObject\n").encode())
    assert added.returncode == 0, added.stderr
    try:
        found = search(tree.uri, EXAMPLE, "sub", "(objectClass=*)")
        assert found.references == {(f"ldap://hostD/{ROLES}??sub",), (WEB_URL,)}
    finally:
        deleted = tree.tool("ldapdelete", "-MM", nested)
        assert deleted.returncode == 0, deleted.stderr


def connect(server: Server) -> ldap3.Connection:
    return ldap3.Connection(ldap3.Server(server.uri), server.root_dn, server.root_password,
                            auto_bind=True, auto_referrals=False, raise_exceptions=False)


def test_ldap3_sees_continuation_references_raw(tree: Server) -> None:
    with connect(tree) as conn:
        conn.search(SUFFIX, "(cn=John Smith)", ldap3.SUBTREE, attributes=["1.1"])
        assert conn.result["result"] == 0
        refs = {tuple(item["uri"]) for item in conn.response
                if item["type"] == "searchResRef"}
        assert refs == SUB_REFS


def test_python_ldap_sees_continuation_references(tree: Server) -> None:
    conn = ldap.initialize(tree.uri)
    conn.set_option(ldap.OPT_REFERRALS, 0)
    try:
        results = conn.search_ext_s(SUFFIX, ldap.SCOPE_SUBTREE, "(mail=*)", ["1.1"])
    finally:
        conn.unbind_s()
    assert {tuple(refs) for dn, refs in results if dn is None} == SUB_REFS
    assert {dn.lower() for dn, _ in results if dn is not None} == {JOHN.lower()}


def test_python_ldap_referral_at_referral_object(tree: Server) -> None:
    conn = ldap.initialize(tree.uri)
    conn.set_option(ldap.OPT_REFERRALS, 0)
    try:
        with pytest.raises(ldap.REFERRAL) as error:
            conn.search_s(XYZ, ldap.SCOPE_ONELEVEL, "(mail=*)")
    finally:
        conn.unbind_s()
    assert error.value.args[0]["matched"].lower() == XYZ.lower()
    assert error.value.args[0]["info"].split() == ["Referral:", f"ldap://hostC/o=xyz,{SUFFIX}??one"]


def test_ldap3_compare_referral_has_no_label_and_no_scope(tree: Server) -> None:
    with connect(tree) as conn:
        conn.compare(ABC, "o", "ABC")
        assert conn.result["result"] == 10
        assert conn.result["referrals"] == [f"ldap://hostA/o=abc,{SUFFIX}",
                                            f"ldap://hostB/{ABC}"]


def test_ldap3_modify_below_referral_names_the_target(tree: Server) -> None:
    with connect(tree) as conn:
        conn.modify(BELOW_ROLES, {"sn": [(ldap3.MODIFY_REPLACE, ["x"])]})
        assert conn.result["result"] == 10
        assert conn.result["referrals"] == [f"ldap://hostD/cn=John%20Smith,{ROLES}"]


def test_ldap3_add_below_referral_names_the_new_entry(tree: Server) -> None:
    with connect(tree) as conn:
        conn.add(f"cn=New Guy,{ROLES}", ["person"], {"cn": "New Guy", "sn": "Guy"})
        assert conn.result["result"] == 10
        assert conn.result["referrals"] == [f"ldap://hostD/cn=New%20Guy,{ROLES}"]
        assert conn.result["dn"].lower() == ROLES.lower()


def test_ldap3_add_outside_naming_context_names_the_new_entry(tree: Server) -> None:
    with connect(tree) as conn:
        conn.add(f"cn=New Guy,{OUTSIDE}", ["person"], {"cn": "New Guy", "sn": "Guy"})
        assert conn.result["result"] == 10
        assert conn.result["referrals"] == [f"{UPSTREAM}cn=New%20Guy,{OUTSIDE}"]


CASES = [
    *[(base, scope, "(objectClass=*)") for base, scope, _ in AT_OR_BELOW],
    *[(SUFFIX, "sub", f) for f in FILTERS],
    *[(EXAMPLE, "one", f) for f in FILTERS],
    (SUFFIX, "one", "(mail=*)"),
    (SUFFIX, "base", "(objectClass=*)"),
    *[(OUTSIDE, scope, "(objectClass=*)") for scope in ("base", "one", "sub", "children")],
]


@pytest.mark.parametrize("base, scope, filter", CASES)
def test_same_answer_as_slapd(tree: Server, slapd: str, base: str, scope: str,
                              filter: str) -> None:
    assert search(tree.uri, base, scope, filter) == search(slapd, base, scope, filter)
