"""Scenario 063: what a requester may not read stays hidden everywhere.

With the default rules (slapd.access(5) semantics, issue 10 part 1):

- anonymous_read false: an anonymous search based at the empty DN, in any
  scope, finds no entry (it used to return every one: the check exempted
  the empty base); a bound user's finds every entry, as each entry is
  checked, not the base. The root DSE and cn=Subschema stay public
  (RFC 4512 §5.1). An entry not disclosed to the requester is noSuchObject
  (32), with no matchedDN naming a hidden ancestor.
- userPassword, which no one but the root DN may read or search: a filter
  testing it is Undefined on every entry, whether the entry has a password
  or not (presence, negation, equality, substrings, ordering, untyped
  extensible match), so no filter separates the entries with a password
  from those without; sorting by it (RFC 2891) finds no values, so the
  order is the unsorted one; the assertion control (RFC 4528) cannot test
  it; compare is insufficientAccessRights (50) even for the entry itself;
  pre- and post-read (RFC 4527) leave it out.
- Paged-results cursors (RFC 2696) are forgotten when the connection binds
  again: a cookie from one identity is unknown (53) to the next.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator

import ldap
import pytest
from ldap.controls import SimplePagedResultsControl

from tests.integration.conftest import Server, make_server
from tests.integration.ldif_compare import by_dn, parse

BASE = "dc=example,dc=com"
PEOPLE = f"ou=people,{BASE}"
WITH_PASSWORD = ("alice", "bob")
WITHOUT_PASSWORD = ("carol", "dave")
EVERYONE = (*WITH_PASSWORD, *WITHOUT_PASSWORD)


def dn(uid: str) -> str:
    return f"uid={uid},{PEOPLE}"


def password(uid: str) -> str:
    return f"{uid}-secret-063"


def tree_ldif() -> str:
    people = "".join(
        f"\ndn: {dn(uid)}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid.title()}\n"
        f"sn: {uid.title()}\n"
        + (f"userPassword: {password(uid)}\n" if uid in WITH_PASSWORD else "")
        for uid in EVERYONE)
    return f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n{people}"


def start(srv: Server) -> Server:
    srv.start()
    added = srv.tool("ldapadd", input=tree_ldif().encode())
    assert added.returncode == 0, added.stderr
    return srv


@pytest.fixture(scope="module")
def private(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = make_server(tmp_path_factory.mktemp("certdir-063-private"), "--no-ca")
    srv.configure("access", anonymous_read=False)
    yield start(srv)
    log = srv.stop()
    assert "Traceback" not in log, log


@pytest.fixture(scope="module")
def public(server: Server) -> Server:
    added = server.tool("ldapadd", input=tree_ldif().encode())
    assert added.returncode == 0, added.stderr
    return server


def as_alice(server: Server, name: str, *args: str,
             input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return server.tool(name, "-D", dn("alice"), "-w", password("alice"), *args, input=input,
                       bind=False)


def uids(stdout: bytes) -> list[str]:
    """The uids of the entries, in the order the server sent them."""
    return re.findall(rf"^dn: uid=(\w+),{PEOPLE}$", stdout.decode(), re.MULTILINE)


@pytest.mark.parametrize("scope", ["sub", "one", "children"])
def test_anonymous_empty_base_finds_nothing(private: Server, scope: str) -> None:
    search = private.tool("ldapsearch", "-LLL", "-b", "", "-s", scope, "(objectClass=*)",
                          "1.1", bind=False)
    assert search.returncode == 0, search.stderr
    assert parse(search.stdout) == ()


def test_user_empty_base_finds_every_entry(private: Server) -> None:
    search = as_alice(private, "ldapsearch", "-LLL", "-b", "", "-s", "sub",
                      "(objectClass=*)", "1.1")
    assert search.returncode == 0, search.stderr
    assert sorted(by_dn(search.stdout)) == sorted(
        [BASE, PEOPLE, *(dn(uid) for uid in EVERYONE)])


@pytest.mark.parametrize("base", ["", "cn=Subschema"])
def test_root_dse_and_subschema_stay_public(private: Server, base: str) -> None:
    search = private.tool("ldapsearch", "-LLL", "-b", base, "-s", "base", "(objectClass=*)",
                          "objectClass", bind=False)
    assert search.returncode == 0, search.stderr
    assert len(parse(search.stdout)) == 1


@pytest.mark.parametrize("base", [PEOPLE, dn("alice"), dn("nobody")])
def test_undisclosed_base_is_no_such_object(private: Server, base: str) -> None:
    search = private.tool("ldapsearch", "-b", base, "-s", "base", "(objectClass=*)", "1.1",
                          bind=False)
    assert search.returncode == 32, search.stdout + search.stderr
    assert b"matched" not in (search.stdout + search.stderr).lower()


def test_anonymous_compare_of_undisclosed_entry(private: Server) -> None:
    compare = private.tool("ldapcompare", dn("alice"), "uid:alice", bind=False)
    assert compare.returncode == 32, compare.stdout + compare.stderr


def stored_hash(server: Server, uid: str) -> str:
    search = server.tool("ldapsearch", "-LLL", "-b", dn(uid), "-s", "base", "userPassword")
    (value,) = by_dn(search.stdout)[dn(uid)].values("userPassword")
    return value


PROBES = ["(userPassword=*)", "(!(userPassword=*))", "(userPassword>=0)",
          "(userPassword<=~)", "(userPassword=*A*)", "(userPassword={ARGON2}*)",
          "(&(uid=*)(!(userPassword=*)))", "(!(|(userPassword=*)(uid=nobody)))"]


@pytest.mark.parametrize("probe", PROBES)
def test_password_filters_find_nothing(public: Server, probe: str) -> None:
    for run in (as_alice, lambda srv, *args: srv.tool(*args, bind=False)):
        search = run(public, "ldapsearch", "-LLL", "-b", PEOPLE, probe, "1.1")
        assert search.returncode == 0, search.stderr
        assert uids(search.stdout) == [], probe


def test_undefined_password_part_leaves_the_rest(public: Server) -> None:
    search = as_alice(public, "ldapsearch", "-LLL", "-b", PEOPLE,
                      "(|(userPassword=*)(uid=carol))", "1.1")
    assert search.returncode == 0, search.stderr
    assert uids(search.stdout) == ["carol"]


def test_root_filters_do_see_passwords(public: Server) -> None:
    having = public.tool("ldapsearch", "-LLL", "-b", PEOPLE, "(userPassword=*)", "1.1")
    lacking = public.tool("ldapsearch", "-LLL", "-b", PEOPLE,
                          "(&(uid=*)(!(userPassword=*)))", "1.1")
    assert sorted(uids(having.stdout)) == sorted(WITH_PASSWORD)
    assert sorted(uids(lacking.stdout)) == sorted(WITHOUT_PASSWORD)


def test_untyped_extensible_match_skips_password(public: Server) -> None:
    probe = f"(:octetStringMatch:={stored_hash(public, 'bob')})"
    mine = as_alice(public, "ldapsearch", "-LLL", "-b", PEOPLE, probe, "1.1")
    assert mine.returncode == 0, mine.stderr
    assert uids(mine.stdout) == []
    root = public.tool("ldapsearch", "-LLL", "-b", PEOPLE, probe, "1.1")
    assert uids(root.stdout) == ["bob"]


@pytest.mark.parametrize("key", ["userPassword", "-userPassword"])
def test_sort_by_password_keeps_unsorted_order(public: Server, key: str) -> None:
    args = ("-LLL", "-b", PEOPLE, "-s", "one", "(objectClass=*)", "uid")
    plain = as_alice(public, "ldapsearch", *args)
    sorted_ = as_alice(public, "ldapsearch", "-E", f"!sss={key}", *args)
    assert sorted_.returncode == 0, sorted_.stderr
    assert uids(sorted_.stdout) == uids(plain.stdout)
    assert sorted(uids(plain.stdout)) == sorted(EVERYONE)


@pytest.mark.parametrize("condition", ["(userPassword=*)", "(!(userPassword=*))"])
def test_assertion_cannot_test_password(public: Server, condition: str) -> None:
    for uid in ("alice", "carol"):
        search = as_alice(public, "ldapsearch", "-LLL", "-b", dn(uid), "-s", "base",
                          "-e", f"!assert={condition}", "1.1")
        assert search.returncode == 122, (uid, search.stderr)
        assert parse(search.stdout) == ()


@pytest.mark.parametrize("uid", ["alice", "bob"])
def test_compare_password_refused(public: Server, uid: str) -> None:
    compare = as_alice(public, "ldapcompare", dn(uid), f"userPassword:{password(uid)}")
    assert compare.returncode == 50, compare.stdout + compare.stderr


def read_section(stdout: bytes, which: str) -> list[str]:
    """The attribute lines ldapmodify prints between `# ==> which` and `# <== which`."""
    (section,) = re.findall(rf"^# ==> {which}\n(.*?)^# <== {which}$", stdout.decode(),
                            re.MULTILINE | re.DOTALL)
    return [line for line in section.splitlines() if line and not line.startswith("dn:")]


def test_read_controls_leave_password_out(public: Server) -> None:
    changed = as_alice(public, "ldapmodify", "-e", "preread=userPassword,uid",
                       "-e", "postread=userPassword,uid", input=(
                           f"dn: {dn('alice')}\nchangetype: modify\nreplace: userPassword\n"
                           f"userPassword: {password('alice')}\n").encode())
    assert changed.returncode == 0, changed.stderr
    assert read_section(changed.stdout, "preread") == ["uid: alice"]
    assert read_section(changed.stdout, "postread") == ["uid: alice"]


def test_paged_cursor_forgotten_on_bind(public: Server) -> None:
    conn = ldap.initialize(public.uri)
    conn.simple_bind_s(dn("alice"), password("alice"))
    page = SimplePagedResultsControl(True, size=1, cookie=b"")
    msgid = conn.search_ext(PEOPLE, ldap.SCOPE_ONELEVEL, "(objectClass=*)", ["uid"],
                            serverctrls=[page])
    _, first, _, controls = conn.result3(msgid)
    assert len(first) == 1
    (returned,) = [c for c in controls if c.controlType == SimplePagedResultsControl.controlType]
    assert returned.cookie
    conn.simple_bind_s(dn("bob"), password("bob"))
    page.cookie = returned.cookie
    msgid = conn.search_ext(PEOPLE, ldap.SCOPE_ONELEVEL, "(objectClass=*)", ["uid"],
                            serverctrls=[page])
    with pytest.raises(ldap.UNWILLING_TO_PERFORM):
        conn.result3(msgid)
    conn.unbind_s()
