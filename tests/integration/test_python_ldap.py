"""certdir driven by python-ldap (OpenLDAP's libldap underneath).

- Search scopes base, one, sub and subordinates (RFC 4511 §4.5.1.2,
  draft-sermersheim-ldap-subordinate-scope) return exactly the entries they name.
- Simple paged results (RFC 2696) hand out cookies until the set is exhausted.
- Pre-read and post-read controls (RFC 4527) return the entry as it was and
  as it became; the assertion control (RFC 4528) fails with
  assertionFailed (122) and leaves the entry unchanged.
- WhoAmI (RFC 4532) and Password Modify (RFC 3062) answer as libldap expects.
- Result codes reach libldap as their exception classes; a refused request
  never drops the connection (SERVER_DOWN is for network loss only).
- Size limits (§4.5.1.5) end a search with sizeLimitExceeded (4) after that
  many entries; typesOnly returns names without values; an unrecognised
  matching rule makes a filter item Undefined, not an error (§4.5.1.7.7).
- A referral object (RFC 3296) answers referral (10) to operations below it
  and appears as a continuation reference in subtree searches above it;
  ManageDsaIT makes it an ordinary entry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import ldap
import pytest
from ldap.controls import SimplePagedResultsControl
from ldap.controls.libldap import AssertionControl
from ldap.controls.readentry import PostReadControl, PreReadControl
from ldap.controls.simple import ManageDSAITControl
from ldap.controls.sss import SSSRequestControl, SSSResponseControl
from ldap.ldapobject import SimpleLDAPObject

from tests.integration.conftest import SUFFIX
from tests.integration.conftest import Server as Certdir

BASE = f"ou=pyldap,{SUFFIX}"
TREE = f"ou=tree,{BASE}"
REFERRAL_URL = "ldap://elsewhere.example.net/ou=remote,dc=example,dc=net"


def connect(server: Certdir) -> SimpleLDAPObject:
    connection = ldap.initialize(server.uri, bytes_mode=False)
    connection.set_option(ldap.OPT_PROTOCOL_VERSION, 3)
    connection.set_option(ldap.OPT_REFERRALS, 0)
    connection.set_option(ldap.OPT_NETWORK_TIMEOUT, 5)
    connection.set_option(ldap.OPT_TIMEOUT, 10)
    return connection


def person(cn: str, **extra: str) -> list[tuple[str, list[bytes]]]:
    attributes = {"objectClass": "inetOrgPerson", "cn": cn, "sn": cn, **extra}
    return [(name, [value.encode()]) for name, value in attributes.items()]


def unit(ou: str) -> list[tuple[str, list[bytes]]]:
    return [("objectClass", [b"organizationalUnit"]), ("ou", [ou.encode()])]


def dns(results: list[tuple[str | None, Any]]) -> set[str]:
    return {dn.lower() for dn, _ in results if dn is not None}


@pytest.fixture(scope="module")
def conn(server: Certdir) -> Iterator[SimpleLDAPObject]:
    connection = connect(server)
    connection.simple_bind_s(server.root_dn, server.root_password)
    connection.add_s(BASE, unit("pyldap"))
    connection.add_s(TREE, unit("tree"))
    connection.add_s(f"ou=a,{TREE}", unit("a"))
    connection.add_s(f"cn=a1,ou=a,{TREE}", person("a1"))
    connection.add_s(f"cn=a2,ou=a,{TREE}", person("a2"))
    connection.add_s(f"cn=t1,{TREE}", person("t1"))
    yield connection
    connection.unbind_s()


@pytest.mark.parametrize("scope, expected", [
    (ldap.SCOPE_BASE, {TREE}),
    (ldap.SCOPE_ONELEVEL, {f"ou=a,{TREE}", f"cn=t1,{TREE}"}),
    (ldap.SCOPE_SUBTREE, {TREE, f"ou=a,{TREE}", f"cn=t1,{TREE}", f"cn=a1,ou=a,{TREE}",
                          f"cn=a2,ou=a,{TREE}"}),
    (ldap.SCOPE_SUBORDINATE, {f"ou=a,{TREE}", f"cn=t1,{TREE}", f"cn=a1,ou=a,{TREE}",
                              f"cn=a2,ou=a,{TREE}"}),
], ids=["base", "one", "sub", "subordinates"])
def test_search_scopes(conn: SimpleLDAPObject, scope: int, expected: set[str]) -> None:
    results = conn.search_s(TREE, scope, "(objectClass=*)", ["1.1"])
    assert dns(results) == {dn.lower() for dn in expected}
    assert all(attributes == {} for _, attributes in results)


def test_search_filter_and_attribute_selection(conn: SimpleLDAPObject) -> None:
    results = conn.search_s(TREE, ldap.SCOPE_SUBTREE, "(&(objectClass=person)(cn=a*))",
                            ["sn"])
    assert dns(results) == {f"cn=a1,ou=a,{TREE}", f"cn=a2,ou=a,{TREE}"}
    assert all(set(attributes) == {"sn"} for _, attributes in results)


def test_search_missing_base_is_no_such_object(conn: SimpleLDAPObject) -> None:
    with pytest.raises(ldap.NO_SUCH_OBJECT) as error:
        conn.search_s(f"ou=missing,{TREE}", ldap.SCOPE_SUBTREE)
    assert error.value.args[0]["matched"].lower() == TREE


def test_simple_paged_results(conn: SimpleLDAPObject) -> None:
    base = f"ou=paged,{BASE}"
    conn.add_s(base, unit("paged"))
    for n in range(11):
        conn.add_s(f"cn=pg{n},{base}", person(f"pg{n}"))
    control = SimplePagedResultsControl(True, size=4, cookie=b"")
    pages: list[int] = []
    seen: list[str] = []
    while True:
        msgid = conn.search_ext(base, ldap.SCOPE_ONELEVEL, "(cn=pg*)", ["cn"],
                                serverctrls=[control])
        _, results, _, controls = conn.result3(msgid)
        pages.append(len(results))
        seen.extend(dn for dn, _ in results)
        [response] = [c for c in controls if c.controlType == control.controlType]
        if not response.cookie:
            break
        control.cookie = response.cookie
    assert pages == [4, 4, 3]
    assert len(set(seen)) == 11


def test_pre_and_post_read_on_modify(conn: SimpleLDAPObject) -> None:
    dn = f"cn=reader,{BASE}"
    conn.add_s(dn, person("reader", description="before"))
    _, _, _, controls = conn.modify_ext_s(
        dn, [(ldap.MOD_REPLACE, "description", [b"after"])],
        serverctrls=[PreReadControl(True, ["description"]),
                     PostReadControl(True, ["description"])])
    by_type = {control.controlType: control for control in controls}
    pre = by_type[PreReadControl.controlType]
    post = by_type[PostReadControl.controlType]
    assert pre.dn.lower() == dn and post.dn.lower() == dn
    assert pre.entry["description"] == [b"before"]
    assert post.entry["description"] == [b"after"]


def test_post_read_on_add_shows_operational_attributes(conn: SimpleLDAPObject) -> None:
    dn = f"cn=fresh,{BASE}"
    _, _, _, controls = conn.add_ext_s(dn, person("fresh"),
                                       serverctrls=[PostReadControl(True, ["entryUUID", "cn"])])
    [post] = controls
    assert post.entry["cn"] == [b"fresh"]
    assert len(post.entry["entryUUID"][0]) == 36


def test_pre_read_on_delete(conn: SimpleLDAPObject) -> None:
    dn = f"cn=goner,{BASE}"
    conn.add_s(dn, person("goner", mail="goner@example.com"))
    _, _, _, controls = conn.delete_ext_s(dn, serverctrls=[PreReadControl(True, ["mail"])])
    [pre] = controls
    assert pre.entry["mail"] == [b"goner@example.com"]
    with pytest.raises(ldap.NO_SUCH_OBJECT):
        conn.search_s(dn, ldap.SCOPE_BASE)


def test_assertion_control(conn: SimpleLDAPObject) -> None:
    dn = f"cn=asserted,{BASE}"
    conn.add_s(dn, person("asserted", description="v1"))
    change = [(ldap.MOD_REPLACE, "description", [b"v2"])]
    with pytest.raises(ldap.ASSERTION_FAILED):
        conn.modify_ext_s(dn, change, serverctrls=[AssertionControl(True, "(description=v0)")])
    assert conn.search_s(dn, ldap.SCOPE_BASE, attrlist=["description"])[0][1] == {
        "description": [b"v1"]}
    conn.modify_ext_s(dn, change, serverctrls=[AssertionControl(True, "(description=v1)")])
    with pytest.raises(ldap.ASSERTION_FAILED):
        conn.delete_ext_s(dn, serverctrls=[AssertionControl(True, "(description=v1)")])
    conn.delete_ext_s(dn, serverctrls=[AssertionControl(True, "(description=v2)")])


def test_whoami(conn: SimpleLDAPObject, server: Certdir) -> None:
    assert conn.whoami_s() == f"dn:{server.root_dn}"
    anonymous = connect(server)
    anonymous.simple_bind_s("", "")
    assert anonymous.whoami_s() == ""
    anonymous.unbind_s()


def test_passwd(conn: SimpleLDAPObject, server: Certdir) -> None:
    dn = f"cn=changer,{BASE}"
    conn.add_s(dn, person("changer"))
    conn.passwd_s(dn, None, "set by root")
    user = connect(server)
    user.simple_bind_s(dn, "set by root")
    assert user.whoami_s().lower() == f"dn:{dn}"
    _, generated = user.passwd_s(None, "set by root", None, extract_newpw=True)
    assert generated.genPasswd
    user.unbind_s()
    again = connect(server)
    again.simple_bind_s(dn, generated.genPasswd.decode())
    with pytest.raises(ldap.INVALID_CREDENTIALS):
        connect(server).simple_bind_s(dn, "set by root")
    again.unbind_s()


@pytest.mark.parametrize("bind_dn, password, error", [
    ("cn=admin,dc=example,dc=com", "wrong", ldap.INVALID_CREDENTIALS),
    ("cn=nobody,dc=example,dc=com", "whatever", ldap.INVALID_CREDENTIALS),
    ("cn=admin,dc=example,dc=com", "", ldap.UNWILLING_TO_PERFORM),
], ids=["wrong-password", "no-such-dn", "unauthenticated"])
def test_bind_errors(server: Certdir, bind_dn: str, password: str,
                     error: type[ldap.LDAPError]) -> None:
    connection = connect(server)
    with pytest.raises(error):
        connection.simple_bind_s(bind_dn, password)
    connection.unbind_s()


def test_errors_map_and_connection_survives(conn: SimpleLDAPObject) -> None:
    dn = f"cn=errors,{BASE}"
    conn.add_s(dn, person("errors"))
    cases: list[tuple[type[ldap.LDAPError], Any]] = [
        (ldap.ALREADY_EXISTS, lambda: conn.add_s(dn, person("errors"))),
        (ldap.NO_SUCH_OBJECT, lambda: conn.delete_s(f"cn=absent,{BASE}")),
        (ldap.NOT_ALLOWED_ON_NONLEAF, lambda: conn.delete_s(TREE)),
        (ldap.OBJECT_CLASS_VIOLATION,
         lambda: conn.add_s(f"cn=nosn,{BASE}", [("objectClass", [b"person"]),
                                                ("cn", [b"nosn"])])),
        (ldap.UNDEFINED_TYPE,
         lambda: conn.modify_s(dn, [(ldap.MOD_ADD, "noSuchAttribute", [b"x"])])),
        (ldap.INVALID_SYNTAX,
         lambda: conn.modify_s(dn, [(ldap.MOD_REPLACE, "telephoneNumber", [b""])])),
        (ldap.NO_SUCH_ATTRIBUTE,
         lambda: conn.modify_s(dn, [(ldap.MOD_DELETE, "mail", [b"x@example.com"])])),
        (ldap.NOT_ALLOWED_ON_RDN,
         lambda: conn.modify_s(dn, [(ldap.MOD_DELETE, "cn", [b"errors"])])),
        (ldap.INVALID_DN_SYNTAX, lambda: conn.search_s("not a dn", ldap.SCOPE_BASE)),
        (ldap.UNAVAILABLE_CRITICAL_EXTENSION,
         lambda: conn.search_ext_s(dn, ldap.SCOPE_BASE, serverctrls=[
             ldap.controls.LDAPControl("1.3.6.1.4.1.99999.1", True, None)])),
    ]
    for error, call in cases:
        with pytest.raises(error):
            call()
        assert conn.whoami_s().startswith("dn:cn=admin")


def test_unknown_non_critical_control_is_ignored(conn: SimpleLDAPObject) -> None:
    results = conn.search_ext_s(TREE, ldap.SCOPE_BASE, serverctrls=[
        ldap.controls.LDAPControl("1.3.6.1.4.1.99999.1", False, None)])
    assert dns(results) == {TREE}


def test_compare(conn: SimpleLDAPObject) -> None:
    dn = f"cn=t1,{TREE}"
    assert conn.compare_s(dn, "sn", b"T1") is True
    assert conn.compare_s(dn, "sn", b"t2") is False
    with pytest.raises(ldap.UNDEFINED_TYPE):
        conn.compare_s(dn, "noSuchAttribute", b"x")


def test_rename_with_new_superior(conn: SimpleLDAPObject) -> None:
    conn.add_s(f"ou=from,{BASE}", unit("from"))
    conn.add_s(f"ou=to,{BASE}", unit("to"))
    conn.add_s(f"cn=mover,ou=from,{BASE}", person("mover"))
    conn.add_s(f"cn=sub,cn=mover,ou=from,{BASE}", person("sub"))
    conn.rename_s(f"cn=mover,ou=from,{BASE}", "cn=moved", f"ou=to,{BASE}", delold=1)
    results = conn.search_s(f"ou=to,{BASE}", ldap.SCOPE_SUBTREE, "(objectClass=person)",
                            ["cn"])
    assert dns(results) == {f"cn=moved,ou=to,{BASE}", f"cn=sub,cn=moved,ou=to,{BASE}"}
    assert dict(results)[f"cn=moved,ou=to,{BASE}"]["cn"] == [b"moved"]


@pytest.fixture(scope="module")
def referral(conn: SimpleLDAPObject) -> str:
    dn = f"ou=remote,{BASE}"
    conn.add_s(dn, [("objectClass", [b"referral", b"extensibleObject"]),
                    ("ou", [b"remote"]), ("ref", [REFERRAL_URL.encode()])])
    return dn


def test_referral_below_referral_object(conn: SimpleLDAPObject, referral: str) -> None:
    with pytest.raises(ldap.REFERRAL) as error:
        conn.search_s(f"cn=someone,{referral}", ldap.SCOPE_BASE)
    assert REFERRAL_URL.split("/")[2] in error.value.args[0]["info"]


def test_referral_on_write_below_referral_object(conn: SimpleLDAPObject,
                                                 referral: str) -> None:
    with pytest.raises(ldap.REFERRAL):
        conn.add_s(f"cn=someone,{referral}", person("someone"))


def test_continuation_reference_in_subtree_search(conn: SimpleLDAPObject,
                                                  referral: str) -> None:
    results = conn.search_ext_s(BASE, ldap.SCOPE_SUBTREE, "(objectClass=*)", ["1.1"])
    references = [refs for dn, refs in results if dn is None]
    assert len(references) == 1
    assert references[0][0].startswith("ldap://elsewhere.example.net/")
    assert referral not in dns(results)


def test_manage_dsa_it_shows_referral_object(conn: SimpleLDAPObject, referral: str) -> None:
    results = conn.search_ext_s(referral, ldap.SCOPE_BASE, "(objectClass=*)", ["ref"],
                                serverctrls=[ManageDSAITControl(True)])
    assert results == [(referral, {"ref": [REFERRAL_URL.encode()]})]


def test_referral_followed_not_required_for_unrelated_base(conn: SimpleLDAPObject,
                                                           referral: str) -> None:
    results = conn.search_s(TREE, ldap.SCOPE_BASE, attrlist=["1.1"])
    assert dns(results) == {TREE}


def test_anonymous_write_is_refused(server: Certdir) -> None:
    anonymous = connect(server)
    with pytest.raises(ldap.INSUFFICIENT_ACCESS):
        anonymous.add_s(f"cn=intruder,{BASE}", person("intruder"))
    anonymous.unbind_s()


def test_start_tls(server: Certdir) -> None:
    connection = connect(server)
    connection.set_option(ldap.OPT_X_TLS_CACERTFILE, str(server.ca_file))
    connection.set_option(ldap.OPT_X_TLS_REQUIRE_CERT, ldap.OPT_X_TLS_DEMAND)
    connection.set_option(ldap.OPT_X_TLS_NEWCTX, 0)
    connection.start_tls_s()
    connection.simple_bind_s(server.root_dn, server.root_password)
    assert connection.whoami_s() == f"dn:{server.root_dn}"
    connection.unbind_s()


def test_root_dse(server: Certdir) -> None:
    anonymous = connect(server)
    [(dn, attributes)] = anonymous.search_s("", ldap.SCOPE_BASE, "(objectClass=*)",
                                            ["+", "*"])
    assert dn == ""
    assert [context.lower() for context in attributes["namingContexts"]] == [SUFFIX.encode()]
    assert b"3" in attributes["supportedLDAPVersion"]
    assert attributes["subschemaSubentry"] == [b"cn=Subschema"]
    for oid in (PreReadControl.controlType, PostReadControl.controlType,
                AssertionControl.controlType, SimplePagedResultsControl.controlType,
                SSSRequestControl.controlType, ldap.CONTROL_MANAGEDSAIT):
        assert oid.encode() in attributes["supportedControl"], oid
    for oid in (b"1.3.6.1.4.1.4203.1.11.1", b"1.3.6.1.4.1.4203.1.11.3",
                b"1.3.6.1.4.1.1466.20037"):
        assert oid in attributes["supportedExtension"], oid
    anonymous.unbind_s()


def test_size_limit(conn: SimpleLDAPObject) -> None:
    with pytest.raises(ldap.SIZELIMIT_EXCEEDED):
        conn.search_ext_s(TREE, ldap.SCOPE_SUBTREE, "(objectClass=*)", ["1.1"], sizelimit=2)
    msgid = conn.search_ext(TREE, ldap.SCOPE_SUBTREE, "(objectClass=*)", ["1.1"],
                            sizelimit=2)
    entries: list[tuple[str, Any]] = []
    with pytest.raises(ldap.SIZELIMIT_EXCEEDED):
        while True:
            _, page = conn.result(msgid, all=0)
            entries.extend(page)
    assert len(entries) == 2


def test_types_only(conn: SimpleLDAPObject) -> None:
    [(_, attributes)] = conn.search_s(f"cn=t1,{TREE}", ldap.SCOPE_BASE, "(objectClass=*)",
                                      ["cn", "sn"], attrsonly=1)
    assert attributes == {"cn": [], "sn": []}


@pytest.mark.parametrize("filterstr, expected", [
    ("(ou:dn:=a)", {f"ou=a,{TREE}", f"cn=a1,ou=a,{TREE}", f"cn=a2,ou=a,{TREE}"}),
    ("(cn:caseExactMatch:=a1)", {f"cn=a1,ou=a,{TREE}"}),
    ("(cn:2.5.13.2:=A1)", {f"cn=a1,ou=a,{TREE}"}),
    ("(cn:1.2.3.4.5.6:=a1)", set()),
    ("(!(cn:1.2.3.4.5.6:=a1))", set()),
    ("(|(sn=t1)(noSuchAttribute=x))", {f"cn=t1,{TREE}"}),
    ("(&(objectClass=person)(!(cn=a*)))", {f"cn=t1,{TREE}"}),
    ("(cn>=t)", set()),
    ("(&(cn=t1)(createTimestamp>=19700101000000Z))", {f"cn=t1,{TREE}"}),
    ("(createTimestamp<=19700101000000Z)", set()),
    ("(cn~=t1)", {f"cn=t1,{TREE}"}),
], ids=["dn-attributes", "rule-name", "rule-oid", "unknown-rule", "not-undefined",
        "undefined-or", "and-not", "no-ordering-rule", "ordering", "ordering-none",
        "approx"])
def test_filters(conn: SimpleLDAPObject, filterstr: str, expected: set[str]) -> None:
    assert dns(conn.search_s(TREE, ldap.SCOPE_SUBTREE, filterstr, ["1.1"])) == expected


def test_server_side_sort(conn: SimpleLDAPObject) -> None:
    sort = SSSRequestControl(True, ["-cn"])
    msgid = conn.search_ext(TREE, ldap.SCOPE_SUBTREE, "(objectClass=person)", ["cn"],
                            serverctrls=[sort])
    _, results, _, controls = conn.result3(
        msgid, resp_ctrl_classes={SSSResponseControl.controlType: SSSResponseControl})
    assert [attributes["cn"][0] for _, attributes in results] == [b"t1", b"a2", b"a1"]
    [response] = controls
    assert response.result == 0


def test_increment_of_non_integer_is_refused(conn: SimpleLDAPObject) -> None:
    """RFC 4525 §2: only attributes of INTEGER syntax can be incremented; the
    loaded schemas have no user-modifiable one, so only refusal is testable."""
    dn = f"cn=t1,{TREE}"
    with pytest.raises(ldap.CONSTRAINT_VIOLATION):
        conn.modify_s(dn, [(ldap.MOD_INCREMENT, "sn", [b"1"])])
    [(_, attributes)] = conn.search_s(dn, ldap.SCOPE_BASE, attrlist=["sn"])
    assert attributes["sn"] == [b"t1"]


T1 = f"cn=t1,{TREE}"
Call = Callable[[SimpleLDAPObject], object]
BAD_INPUT: dict[str, Call] = {
    "dn-syntax": lambda c: c.search_s(",,,", ldap.SCOPE_BASE),
    "dn-bad-escape": lambda c: c.search_s(r"cn=\zz,dc=example,dc=com", ldap.SCOPE_BASE),
    "dn-nul": lambda c: c.add_s(r"cn=\00bad," + BASE, person("bad")),
    "unknown-option": lambda c: c.modify_s(T1, [(ldap.MOD_ADD, "cn;x-unknown", [b"v"])]),
    "unknown-oid": lambda c: c.modify_s(T1, [(ldap.MOD_ADD, "1.2.3.4.5.6.7", [b"v"])]),
    "unknown-class": lambda c: c.modify_s(T1, [(ldap.MOD_REPLACE, "objectClass",
                                                [b"noSuchClass"])]),
    "missing-superior": lambda c: c.rename_s(T1, "cn=t1", f"ou=nowhere,{TREE}"),
    "compare-undefined": lambda c: c.compare_s(T1, "noSuchAttribute", b"x"),
}


@pytest.mark.parametrize("call", BAD_INPUT.values(), ids=BAD_INPUT.keys())
def test_bad_input_is_refused_without_disconnect(conn: SimpleLDAPObject, call: Call) -> None:
    with pytest.raises(ldap.LDAPError) as error:
        call(conn)
    assert not isinstance(error.value, ldap.SERVER_DOWN), error.value
    assert conn.whoami_s().startswith("dn:cn=admin")


def test_odd_filter_values_are_answered(conn: SimpleLDAPObject) -> None:
    huge = "x" * 200_000
    assert conn.search_s(TREE, ldap.SCOPE_SUBTREE, f"(description={huge})", ["1.1"]) == []
    assert conn.search_s(TREE, ldap.SCOPE_SUBTREE, r"(cn=\00\ff\fe)", ["1.1"]) == []
    assert conn.search_s(TREE, ldap.SCOPE_SUBTREE, "(cn=*\\2a*)", ["1.1"]) == []
    assert conn.whoami_s().startswith("dn:cn=admin")


def test_abandon(conn: SimpleLDAPObject) -> None:
    msgid = conn.search_ext(BASE, ldap.SCOPE_SUBTREE, "(objectClass=*)", ["1.1"])
    conn.abandon(msgid)
    assert conn.whoami_s().startswith("dn:cn=admin")


def test_alias_dereferencing(conn: SimpleLDAPObject, server: Certdir) -> None:
    alias = f"ou=shortcut,{BASE}"
    conn.add_s(alias, [("objectClass", [b"alias", b"extensibleObject"]), ("ou", [b"shortcut"]),
                       ("aliasedObjectName", [f"ou=a,{TREE}".encode()])])
    connection = connect(server)
    for deref, expected in ((ldap.DEREF_NEVER, {alias}),
                            (ldap.DEREF_FINDING, {f"ou=a,{TREE}"}),
                            (ldap.DEREF_ALWAYS, {f"ou=a,{TREE}"})):
        connection.set_option(ldap.OPT_DEREF, deref)
        assert dns(connection.search_s(alias, ldap.SCOPE_BASE, attrlist=["1.1"])) == expected
    connection.set_option(ldap.OPT_DEREF, ldap.DEREF_SEARCHING)
    found = dns(connection.search_s(BASE, ldap.SCOPE_SUBTREE, "(cn=a1)", ["1.1"]))
    assert found == {f"cn=a1,ou=a,{TREE}"}
    connection.unbind_s()


def test_ldaps(server: Certdir) -> None:
    connection = ldap.initialize(server.ldaps_uri, bytes_mode=False)
    connection.set_option(ldap.OPT_X_TLS_CACERTFILE, str(server.ca_file))
    connection.set_option(ldap.OPT_X_TLS_REQUIRE_CERT, ldap.OPT_X_TLS_DEMAND)
    connection.set_option(ldap.OPT_X_TLS_NEWCTX, 0)
    connection.simple_bind_s(server.root_dn, server.root_password)
    assert connection.whoami_s() == f"dn:{server.root_dn}"
    connection.unbind_s()


def test_paged_results_size_zero_ends_the_search(conn: SimpleLDAPObject) -> None:
    """RFC 2696 §3: a request with size 0 and the cookie abandons the paged search."""
    control = SimplePagedResultsControl(True, size=2, cookie=b"")
    msgid = conn.search_ext(TREE, ldap.SCOPE_SUBTREE, "(objectClass=*)", ["1.1"],
                            serverctrls=[control])
    _, first, _, [response] = conn.result3(msgid)
    assert len(first) == 2 and response.cookie
    control.size, control.cookie = 0, response.cookie
    msgid = conn.search_ext(TREE, ldap.SCOPE_SUBTREE, "(objectClass=*)", ["1.1"],
                            serverctrls=[control])
    _, rest, _, [response] = conn.result3(msgid)
    assert rest == []
    assert not response.cookie


def test_paged_results_with_sort(conn: SimpleLDAPObject) -> None:
    paging = SimplePagedResultsControl(True, size=2, cookie=b"")
    sort = SSSRequestControl(True, ["cn"])
    names: list[bytes] = []
    while True:
        msgid = conn.search_ext(TREE, ldap.SCOPE_SUBTREE, "(objectClass=person)", ["cn"],
                                serverctrls=[paging, sort])
        _, results, _, controls = conn.result3(msgid)
        names.extend(attributes["cn"][0] for _, attributes in results)
        [response] = [c for c in controls if c.controlType == paging.controlType]
        if not response.cookie:
            break
        paging.cookie = response.cookie
    assert names == [b"a1", b"a2", b"t1"]


def test_user_cannot_write_another_entry(conn: SimpleLDAPObject, server: Certdir) -> None:
    dn = f"cn=limited user,{BASE}"
    conn.add_s(dn, person("limited user", userPassword="user pw"))
    user = connect(server)
    user.simple_bind_s(dn, "user pw")
    with pytest.raises(ldap.INSUFFICIENT_ACCESS):
        user.modify_s(f"cn=t1,{TREE}", [(ldap.MOD_REPLACE, "description", [b"vandal"])])
    with pytest.raises(ldap.INSUFFICIENT_ACCESS):
        user.passwd_s(f"cn=t1,{TREE}", None, "stolen")
    # slapd: unwillingToPerform, "unwilling to verify old password".
    with pytest.raises(ldap.UNWILLING_TO_PERFORM):
        user.passwd_s(None, "not my password", "new pw")
    user.modify_s(dn, [(ldap.MOD_REPLACE, "userPassword", [b"own change"])])
    user.unbind_s()
    connect(server).simple_bind_s(dn, "own change")
    [(_, attributes)] = conn.search_s(dn, ldap.SCOPE_BASE, attrlist=["userPassword"])
    assert attributes["userPassword"][0].startswith(b"{ARGON2}")


@pytest.mark.parametrize("scope", [ldap.SCOPE_ONELEVEL, ldap.SCOPE_SUBTREE],
                         ids=["one", "sub"])
def test_continuation_reference_scopes(conn: SimpleLDAPObject, referral: str,
                                       scope: int) -> None:
    """RFC 4511 §4.5.3: one-level and subtree searches both return references."""
    results = conn.search_ext_s(BASE, scope, "(ou=*)", ["1.1"])
    assert [refs for dn, refs in results if dn is None] != []


def test_rename_of_referral_object_is_referral(conn: SimpleLDAPObject, referral: str) -> None:
    with pytest.raises(ldap.REFERRAL):
        conn.rename_s(referral, "ou=renamed")
    with pytest.raises(ldap.REFERRAL):
        conn.compare_s(referral, "ou", b"remote")


def test_dn_outside_naming_contexts(conn: SimpleLDAPObject) -> None:
    """No referral.default is configured, so such DNs do not exist (RFC 4511 §4.1.10)."""
    with pytest.raises(ldap.NO_SUCH_OBJECT):
        conn.search_s("dc=other,dc=org", ldap.SCOPE_BASE)
