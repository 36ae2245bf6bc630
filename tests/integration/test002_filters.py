"""Scenario 002: every search filter type, evaluated by the server (RFC 4511 §4.5.1.7).

- equalityMatch, substrings, greaterOrEqual, lessOrEqual, present,
  approxMatch and extensibleMatch, combined with and/or/not.
- Matching uses the attribute's rules: caseIgnoreMatch with insignificant
  space handling (RFC 4518 §2.6.1), telephoneNumberMatch ignoring spaces,
  caseIgnoreOrderingMatch; an attribute without an ORDERING rule makes
  >= and <= Undefined, so they match nothing (RFC 4511 §4.5.1.7).
- A filter on a supertype (`name`) also matches its subtypes (`title`).
- `objectClass=person` matches entries of a subclass (RFC 4512 §2.4.1).
- An unknown attribute type is Undefined, and so is its negation.
- Attribute types and object classes may be named by OID; DN-valued and
  UUID-valued attributes match by their own rules (RFC 4517 §4.2.15,
  RFC 4530 §2.3).
- Extensible match: explicit rule by name or OID, rule without type,
  and dnAttributes (`:dn:`) matching RDN values (RFC 4511 §4.5.1.7.7).
- `(&)` is always TRUE and `(|)` always FALSE (RFC 4526).
- Escaped characters in values (RFC 4515 §3) are literals, also `*`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.conftest import Server
from tests.integration.ldif_compare import assert_same_ldif, parse

DATA = Path(__file__).parents[1] / "data" / "integration"
SUFFIX = "dc=example,dc=com"
PERSONS = frozenset({"alice", "bob", "carol", "dan", "eve"})
DEVICES = frozenset({"printer", "scanner", "router"})
EVERYTHING = PERSONS | DEVICES | {"example", "people", "devices"}

CASES: tuple[tuple[str, frozenset[str]], ...] = (
    ("(objectClass=*)", EVERYTHING),
    ("(objectClass=top)", EVERYTHING),
    ("(objectClass=person)", PERSONS),
    ("(uid=alice)", frozenset({"alice"})),
    ("(UID=ALICE)", frozenset({"alice"})),
    ("(mail=ALICE@EXAMPLE.COM)", frozenset({"alice"})),
    ("(telephoneNumber=+15550101)", frozenset({"alice"})),
    ("(cn=alice   adams)", frozenset({"alice"})),
    ("(sn=Adam)", frozenset()),
    ("(title=engineer)", frozenset({"alice", "carol"})),
    ("(name=Engineer)", frozenset({"alice", "carol"})),
    ("(cn=A*)", frozenset({"alice"})),
    ("(cn=*a*)", PERSONS | {"scanner"}),
    ("(cn=*SMITH)", frozenset({"carol"})),
    ("(cn=c*l*h)", frozenset({"carol"})),
    ("(mail=*@example.com)", frozenset({"alice", "carol"})),
    ("(telephoneNumber=+1555*)", frozenset({"alice", "carol"})),
    ("(telephoneNumber=*0103)", frozenset({"carol"})),
    ("(telephoneNumber=*)", frozenset({"alice", "carol"})),
    ("(description=*)", frozenset({"eve"})),
    ("(dnQualifier>=m)", frozenset({"scanner", "router"})),
    ("(dnQualifier<=M)", frozenset({"printer", "scanner"})),
    ("(cn>=a)", frozenset()),
    ("(cn<=z)", frozenset()),
    ("(createTimestamp>=20000101000000Z)", EVERYTHING),
    ("(createTimestamp<=20000101000000Z)", frozenset()),
    ("(&(title=Engineer)(telephoneNumber=*0103))", frozenset({"carol"})),
    ("(|(uid=alice)(uid=bob)(cn=router))", frozenset({"alice", "bob", "router"})),
    ("(&(objectClass=inetOrgPerson)(!(title=Engineer)))", frozenset({"bob", "dan", "eve"})),
    ("(!(objectClass=device))", PERSONS | {"example", "people", "devices"}),
    ("(noSuchAttr=x)", frozenset()),
    ("(!(noSuchAttr=x))", frozenset()),
    ("(|(noSuchAttr=x)(uid=bob))", frozenset({"bob"})),
    ("(cn:caseExactMatch:=Alice Adams)", frozenset({"alice"})),
    ("(cn:caseExactMatch:=alice adams)", frozenset()),
    ("(cn:2.5.13.2:=ALICE ADAMS)", frozenset({"alice"})),
    ("(:caseExactMatch:=Engineer)", frozenset({"alice", "carol"})),
    ("(ou:=people)", frozenset({"people"})),
    ("(ou:dn:=people)", PERSONS | {"people"}),
    ("(:dn:caseIgnoreMatch:=DEVICES)", DEVICES | {"devices"}),
    ("(uid:dn:caseExactMatch:=ALICE)", frozenset()),
    ("(&)", EVERYTHING),
    ("(|)", frozenset()),
    ("(!(|))", EVERYTHING),
    ("(&(&)(uid=dan))", frozenset({"dan"})),
    ("(description=a\\2ab\\28c\\29\\5cd)", frozenset({"eve"})),
    ("(description=a\\2a*)", frozenset({"eve"})),
    ("(description=a*)", frozenset({"eve"})),
    ("(description=ab*)", frozenset()),
    ("(objectClass=2.5.6.6)", PERSONS),
    ("(2.5.4.3=Alice Adams)", frozenset({"alice"})),
    ("(2.5.4.0=*)", EVERYTHING),
    ("(dc:dn:=EXAMPLE)", EVERYTHING),
    ("(cn=*e*a*s)", frozenset({"alice", "eve"})),
    ("(|(&)(uid=none))", EVERYTHING),
)


@pytest.fixture(scope="module")
def loaded(server: Server) -> Server:
    added = server.tool("ldapadd", input=(DATA / "002_filters.ldif").read_bytes())
    assert added.returncode == 0, added.stderr.decode()
    return server


def matching(server: Server, search_filter: str, *attributes: str) -> str:
    # Anonymous: reading is open to anyone, and it spares a password hash per call.
    result = server.tool("ldapsearch", "-LLL", "-b", SUFFIX, "-s", "sub", search_filter,
                         *(attributes or ("1.1",)), bind=False)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


def rdn_values(ldif: str) -> frozenset[str]:
    return frozenset(record.dn.split(",")[0].partition("=")[2].lower()
                     for record in parse(ldif))


@pytest.mark.parametrize(("search_filter", "expected"), CASES, ids=[c[0] for c in CASES])
def test_filter(loaded: Server, search_filter: str, expected: frozenset[str]) -> None:
    assert rdn_values(matching(loaded, search_filter)) == expected


def test_dn_valued_attribute_matches_any_spelling_of_the_dn(loaded: Server) -> None:
    # distinguishedNameMatch compares normalised DNs (RFC 4517 §4.2.15).
    found = rdn_values(matching(loaded, "(creatorsName=CN=Admin, DC=Example, DC=Com)"))
    assert found >= EVERYTHING - {"example"}


def test_entry_uuid_lookup(loaded: Server) -> None:
    out = matching(loaded, "(uid=dan)", "entryUUID")
    (uuid,) = parse(out)[0].values("entryUUID")
    assert rdn_values(matching(loaded, f"(entryUUID={uuid.upper()})")) == {"dan"}


def test_approximate_match_finds_at_least_the_equal_value(loaded: Server) -> None:
    # The approximate rule is implementation-defined (RFC 4511 §4.5.1.7.6);
    # an equal value must match whatever the rule is.
    found = rdn_values(matching(loaded, "(sn~=smith)"))
    assert "carol" in found
    assert found <= PERSONS


def test_matching_entries_as_ldif(loaded: Server) -> None:
    out = matching(loaded, "(|(uid=alice)(cn=router))", "cn", "dnQualifier", "mail")
    assert_same_ldif(out, (
        f"dn: uid=alice,ou=people,{SUFFIX}\ncn: Alice Adams\nmail: alice@example.com\n\n"
        f"dn: cn=router,ou=devices,{SUFFIX}\ncn: router\ndnQualifier: x\n"))


def test_unknown_matching_rule_is_inappropriate_matching(loaded: Server) -> None:
    # RFC 4511 §4.5.1.7.7: an unrecognised matchingRule makes the filter
    # Undefined; OpenLDAP answers inappropriateMatching (18) for the request.
    result = loaded.tool("ldapsearch", "-LLL", "-b", SUFFIX, "(cn:1.2.3.4.5:=x)", "1.1",
                         bind=False)
    assert result.returncode == 0, result.stderr.decode()
    assert rdn_values(result.stdout.decode()) == frozenset()
