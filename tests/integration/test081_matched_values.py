"""Scenario 081: the matched values control (RFC 3876), as slapd answers it.

- The root DSE lists 1.2.826.0.1.3344810.2.3 in supportedControl.
- `ldapsearch -E mv=<filter>`: each returned entry keeps only the values
  its ValuesReturnFilter matches; attributes without a matching value are
  left out, and entries are returned as without the control (RFC 3876 §2).
  The expected answers are slapd 2.5's for the same entries.
- An item covers subtypes and language ranges as a filter does; several
  items `((a=x)(b=y))` keep the values any of them matches; the attribute
  list still limits what is returned; with `-A` (typesOnly), which
  returns no values, every attribute's name comes back as without it.
- Computed operational attributes (hasSubordinates) are restricted too.
- Approximate items match by sound, as in filters (slapd 2.5 matches
  nothing with one: a difference clients asking for it would want).
- An item that is not a SimpleFilterItem (an and, or, not) is a
  protocolError (2) (slapd ignores such an item's values instead).
"""

from __future__ import annotations

import ldap
import pytest
from ldap.controls import LDAPControl

from tests.integration.conftest import Server
from tests.integration.ldif_compare import parse

SUFFIX = "dc=example,dc=com"
ALICE = f"cn=Alice Archer,{SUFFIX}"
BOB = f"cn=Bob Brown,{SUFFIX}"
MATCHED_VALUES = "1.2.826.0.1.3344810.2.3"

ENTRIES = f"""\
dn: {ALICE}
objectClass: inetOrgPerson
cn: Alice Archer
sn: Archer
mail: alice@example.com
mail: aa@other.org
mail: archer@example.com
description;lang-en: English
description;lang-en-us: American
description: untagged

dn: {BOB}
objectClass: inetOrgPerson
cn: Bob Brown
sn: Brown
mail: bob@example.com
""".encode()


@pytest.fixture(scope="module")
def loaded(server: Server) -> Server:
    added = server.tool("ldapadd", input=ENTRIES)
    assert added.returncode == 0, added.stderr.decode()
    return server


def returned(server: Server, values_return: str, search_filter: str,
             *args: str) -> dict[str, set[tuple[str, str]]]:
    result = server.tool("ldapsearch", "-LLL", "-b", SUFFIX, "-E", f"mv={values_return}",
                         search_filter, *args, bind=False)
    assert result.returncode == 0, result.stderr.decode()
    return {record.dn: set(record.attributes) for record in parse(result.stdout)}


def test_control_is_advertised(loaded: Server) -> None:
    result = loaded.tool("ldapsearch", "-LLL", "-b", "", "-s", "base", "(objectClass=*)",
                         "supportedControl", bind=False)
    assert MATCHED_VALUES in parse(result.stdout)[0].values("supportedControl")


CASES = [
    # (ValuesReturnFilter, attributes asked for, what Alice's entry returns)
    ("(mail=a*)", ("cn", "sn", "mail"),
     {("mail", "alice@example.com"), ("mail", "aa@other.org"),
      ("mail", "archer@example.com")}),
    ("(mail=*@example.com)", ("mail",),
     {("mail", "alice@example.com"), ("mail", "archer@example.com")}),
    ("(mail=nobody@example.com)", ("mail",), set()),
    ("(mail=*)", ("cn",), set()),
    ("((mail=aa@other.org)(sn=archer))", ("*",),
     {("mail", "aa@other.org"), ("sn", "Archer")}),
    ("(name=Alice Archer)", ("*",), {("cn", "Alice Archer")}),
    ("(description;lang-en-=*)", ("description",),
     {("description;lang-en", "English"), ("description;lang-en-us", "American")}),
    ("(description=untagged)", ("description",), {("description", "untagged")}),
    ("(mail:caseExactIA5Match:=aa@other.org)", ("mail",), {("mail", "aa@other.org")}),
    ("(mail~=archer@example.com)", ("mail",), {("mail", "archer@example.com")}),
    ("(mail>=b)", ("mail",), set()),
    ("(hasSubordinates=FALSE)", ("hasSubordinates",), {("hassubordinates", "FALSE")}),
    ("(hasSubordinates=TRUE)", ("hasSubordinates",), set()),
]


@pytest.mark.parametrize("values_return, attributes, expected", CASES,
                         ids=[c[0] for c in CASES])
def test_values_returned(loaded: Server, values_return: str, attributes: tuple[str, ...],
                         expected: set[tuple[str, str]]) -> None:
    found = returned(loaded, values_return, "(cn=Alice Archer)", *attributes)
    assert found == {ALICE: expected}


def test_entries_are_those_of_the_filter(loaded: Server) -> None:
    found = returned(loaded, "(mail=a*)", "(objectClass=inetOrgPerson)", "mail")
    assert found == {ALICE: {("mail", "alice@example.com"), ("mail", "aa@other.org"),
                             ("mail", "archer@example.com")},
                     BOB: set()}


def test_types_only(loaded: Server) -> None:
    result = loaded.tool("ldapsearch", "-LLL", "-A", "-b", SUFFIX, "-E", "mv=(sn=archer)",
                         "(cn=Alice Archer)", bind=False)
    assert result.returncode == 0, result.stderr.decode()
    (record,) = parse(result.stdout)
    assert record.names() == {"objectclass", "cn", "sn", "mail", "description;lang-en",
                              "description;lang-en-us", "description"}


def raw_search(server: Server, value: bytes) -> int:
    connection = ldap.initialize(server.uri)
    try:
        connection.search_ext_s(SUFFIX, ldap.SCOPE_SUBTREE, "(cn=Alice Archer)", ["mail"],
                                serverctrls=[LDAPControl(MATCHED_VALUES, True,
                                                         encodedControlValue=value)])
    except ldap.LDAPError as error:
        return int(error.args[0]["result"])
    finally:
        connection.unbind_s()
    return 0


def ber(tag: int, body: bytes) -> bytes:
    return bytes([tag, len(body)]) + body


EQUALITY = ber(0xA3, ber(0x04, b"mail") + ber(0x04, b"aa@other.org"))


def test_raw_equality_item(loaded: Server) -> None:
    assert raw_search(loaded, ber(0x30, EQUALITY)) == 0


def test_and_is_not_a_simple_filter_item(loaded: Server) -> None:
    assert raw_search(loaded, ber(0x30, ber(0xA0, EQUALITY))) == ldap.PROTOCOL_ERROR.errnum


def test_empty_values_return_filter(loaded: Server) -> None:
    assert raw_search(loaded, ber(0x30, b"")) == ldap.PROTOCOL_ERROR.errnum


def test_extensible_item_with_dn_attributes(loaded: Server) -> None:
    item = ber(0xA9, ber(0x82, b"mail") + ber(0x83, b"a") + ber(0x84, b"\xff"))
    assert raw_search(loaded, ber(0x30, item)) == ldap.PROTOCOL_ERROR.errnum
