"""Scenario 094: OpenLDAP's tests/scripts/test004-modify, replayed.

certdir and slapd hold the tree and schema of scenario 093 (test003). The
script's changes, tests/data/test-modify.ldif (comments and folded comment
lines inside records; adds and deletes of values and of object classes in
one modify; replace; a delete of every value; an add; a delete; increments,
RFC 4525; a modify with no changes), go to both with the same ldapmodify
command, as the root DN; then the add of an entry with no attributes; then
the anonymous search of the whole tree. Result codes and the entries must be
alike, with scenario 093's differences (superclasses in objectClass,
RFC 4512 §2.4.1; userPassword not shown to anonymous).

One difference from slapd, which RFC 4511 requires: the add of an entry
with no attributes is objectClassViolation (65), not slapd's (and the
script's) protocolError (2). The request is well-formed: `AttributeList ::=
SEQUENCE OF attribute Attribute` has no lower bound (§4.7; an Attribute
without values would not be, its `vals` being SIZE (1..MAX)), and
protocolError is for data that is not well-formed (Appendix A.2). The
server must make entries conform to the schema (§4.7), and every entry has
an objectClass attribute (RFC 4512 §3.3).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.conftest import SUFFIX, Server
from tests.integration.slapd import Slapd
from tests.integration.test093_openldap_search import (
    DATA,
    assert_same_entries,
    load_certdir,
    load_slapd,
    search,
    superclasses,
)

CHANGES = DATA / "094_test_modify.ldif"
EMPTY_ADD = f"""dn: cn=Foo Bar,{SUFFIX}
changetype: add
# EMPTY SEQUENCE OF ATTRS
""".encode()


@pytest.fixture(scope="module")
def certdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = load_certdir(tmp_path_factory.mktemp("certdir-test004"))
    yield server
    log = server.stop()
    assert "Traceback" not in log, log


@pytest.fixture(scope="module")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    server = load_slapd(tmp_path_factory.mktemp("slapd-test004"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def modified(certdir: Server, slapd: Slapd) -> tuple[int, int]:
    """The changes sent to both: ldapmodify's exit status on certdir and on slapd."""
    ours = certdir.tool("ldapmodify", "-v", "-f", str(CHANGES))
    theirs = slapd.tool("ldapmodify", "-v", "-f", str(CHANGES))
    assert theirs.returncode == 0, theirs.stderr.decode()
    return ours.returncode, theirs.returncode


def test_changes_succeed_as_on_slapd(modified: tuple[int, int]) -> None:
    ours, theirs = modified
    assert ours == theirs


def test_add_without_attributes_is_object_class_violation(certdir: Server, slapd: Slapd,
                                                  modified: tuple[int, int]) -> None:
    theirs = slapd.tool("ldapmodify", input=EMPTY_ADD)
    ours = certdir.tool("ldapmodify", input=EMPTY_ADD)
    assert theirs.returncode == 2, theirs.stderr.decode()
    assert ours.returncode == 65, ours.stderr.decode()


def test_tree_after_the_changes_as_on_slapd(certdir: Server, slapd: Slapd,
                                            modified: tuple[int, int]) -> None:
    args = ("-S", "", "-b", SUFFIX, "objectClass=*")
    assert_same_entries(search(certdir.uri, *args), search(slapd.uri, *args),
                        superclasses(slapd.uri))



GROUP = f"cn=DN Forms,ou=Groups,{SUFFIX}"
FORMS = ("CN=Foo,  OU=Bar,dc=example,dc=com", "userid=x,dc=example,dc=com",
         "2.5.4.3=Foo Two,dc=example,dc=com", "cn=a+SN=b,dc=example,dc=com",
         "commonName=Y,DC=EXAMPLE,DC=COM", "cn=  lead,dc=example,dc=com",
         "cn=s p  ace,dc=example,dc=com", "cn=Ünïcode , dc=example,dc=com",
         'cn=q\\"uote,dc=example,dc=com', "cn=back\\\\slash,dc=example,dc=com",
         "cn=\\ lead two,dc=example,dc=com", "cn=tr\\ ,dc=example,dc=com",
         "cn=e\\=q\\;s\\<l\\>,dc=example,dc=com", "cn=p\\+l,dc=example,dc=com",
         "cn=c\\,m,dc=example,dc=com", "cn=in#side,dc=example,dc=com")
FORMS_ADD = (f"dn: {GROUP}\nobjectClass: groupOfNames\nobjectClass: extensibleObject\n"
             f"cn: DN Forms\n" + "".join(f"member: {form}\n" for form in FORMS)
             + "uniqueMember: CN=Foo, OU=Bar#'0101'B\nuniqueMember: cn=x,DC=y\n").encode()
FORMS_MODIFY = (f"dn: {GROUP}\nchangetype: modify\nreplace: owner\n"
                + "".join(f"owner: {form}\n" for form in FORMS[:4])
                + "-\nadd: seeAlso\n" + "".join(f"seeAlso: {form}\n" for form in FORMS[4:])
                + "-\nadd: uniqueMember\nuniqueMember: UID=z , dc=example\n").encode()


def test_dn_values_are_stored_as_on_slapd(certdir: Server, slapd: Slapd,
                                          modified: tuple[int, int]) -> None:
    # Not in test004: the forms of DN a client may write (types by another
    # name or OID, case, spaces, multi-valued RDNs, escapes, an optional
    # UID), added
    # and then modified, are returned as slapd returns them.
    for changes in (FORMS_ADD, FORMS_MODIFY):
        theirs = slapd.tool("ldapmodify", "-a", input=changes)
        assert theirs.returncode == 0, theirs.stderr.decode()
        ours = certdir.tool("ldapmodify", "-a", input=changes)
        assert ours.returncode == 0, ours.stderr.decode()
    args = ("-b", GROUP, "-s", "base", "(objectClass=*)")
    assert_same_entries(search(certdir.uri, *args), search(slapd.uri, *args),
                        superclasses(slapd.uri))
