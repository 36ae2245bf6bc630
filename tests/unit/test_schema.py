"""The schema (RFC 4512 §4.1): loading, inheritance, entry checks (§2.4, §3.5), errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from directory.matching import DIRECTORY_STRING
from directory.protocol.dn import DN
from directory.protocol.results import LDAPError, ResultCode
from directory.schema import Schema
from directory.schema_files import SchemaError

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schema"

Entry = dict[str, tuple[bytes, ...]]


@pytest.fixture(scope="module")
def schema() -> Schema:
    return Schema.load([SCHEMA_DIR])


# --- loading and lookups ------------------------------------------------------

def test_every_schema_file_loads(schema: Schema) -> None:
    names = {oc.name for oc in schema.object_classes()}
    assert {"top", "person", "organizationalPerson", "inetOrgPerson", "alias", "referral",
            "extensibleObject", "pkiUser"} <= names


LOOKUPS = [
    # (name as written, canonical name)
    ("cn", "cn"),
    ("CN", "cn"),
    ("commonName", "cn"),
    ("2.5.4.3", "cn"),
    ("userCertificate", "userCertificate"),
    ("countryName", "c"),
]


@pytest.mark.parametrize("written, canonical", LOOKUPS)
def test_attribute_lookup(schema: Schema, written: str, canonical: str) -> None:
    at = schema.attribute(written)
    assert at.name == canonical
    assert schema.find_attribute(written) is at
    assert schema.attribute_name(written) == canonical.lower()


def test_unknown_attribute(schema: Schema) -> None:
    assert schema.find_attribute("noSuchAttribute") is None
    with pytest.raises(LDAPError) as caught:
        schema.attribute("noSuchAttribute")
    assert caught.value.code == ResultCode.UNDEFINED_ATTRIBUTE_TYPE


def test_unknown_object_class(schema: Schema) -> None:
    assert schema.find_object_class("noSuchClass") is None
    with pytest.raises(LDAPError) as caught:
        schema.object_class("noSuchClass")
    assert caught.value.code == ResultCode.OBJECT_CLASS_VIOLATION


INHERITED = [
    # (attribute, equality, ordering, substrings, syntax OID) — RFC 4519 types
    ("cn", "caseIgnoreMatch", None, "caseIgnoreSubstringsMatch", DIRECTORY_STRING),
    ("sn", "caseIgnoreMatch", None, "caseIgnoreSubstringsMatch", DIRECTORY_STRING),
    ("name", "caseIgnoreMatch", None, "caseIgnoreSubstringsMatch", DIRECTORY_STRING),
    ("c", "caseIgnoreMatch", None, "caseIgnoreSubstringsMatch", "1.3.6.1.4.1.1466.115.121.1.11"),
    ("seeAlso", "distinguishedNameMatch", None, None, "1.3.6.1.4.1.1466.115.121.1.12"),
    ("telephoneNumber", "telephoneNumberMatch", None, "telephoneNumberSubstringsMatch",
     "1.3.6.1.4.1.1466.115.121.1.50"),
    ("userCertificate", "certificateExactMatch", None, None, "1.3.6.1.4.1.1466.115.121.1.8"),
]


@pytest.mark.parametrize("name, equality, ordering, substrings, syntax", INHERITED)
def test_syntax_and_rules(schema: Schema, name: str, equality: str | None, ordering: str | None,
                          substrings: str | None, syntax: str) -> None:
    at = schema.attribute(name)
    rules = (schema.equality(at), schema.ordering(at), schema.substrings(at))
    assert tuple(None if r is None else r.name for r in rules) == (equality, ordering, substrings)
    assert at.syntax == syntax


def test_cn_is_a_subtype_of_name(schema: Schema) -> None:
    cn, name = schema.attribute("cn"), schema.attribute("name")
    assert cn.sup == "name"
    assert cn in schema.subtypes(name)
    assert schema.attribute("sn") in schema.subtypes(name)
    assert schema.subtypes(cn) == (cn,)


SUP_CHAINS = [
    ("top", ()),
    ("person", ("top",)),
    ("organizationalPerson", ("person", "top")),
    ("inetOrgPerson", ("organizationalPerson", "person", "top")),
]


@pytest.mark.parametrize("name, chain", SUP_CHAINS)
def test_sup_chain(schema: Schema, name: str, chain: tuple[str, ...]) -> None:
    assert tuple(oc.name for oc in schema.sup_chain(schema.object_class(name))) == chain


def test_object_class_inherits_must_and_may(schema: Schema) -> None:
    oc = schema.object_class("organizationalPerson")
    assert {"cn", "sn", "objectclass"} <= oc.all_must
    assert "telephonenumber" in oc.all_may
    assert oc.kind == "STRUCTURAL"
    assert schema.object_class("top").kind == "ABSTRACT"
    assert schema.object_class("dcObject").kind == "AUXILIARY"


def test_matching_rule_by_name_and_oid(schema: Schema) -> None:
    by_name = schema.matching_rule("caseIgnoreMatch")
    assert by_name is not None
    assert schema.matching_rule("CASEIGNOREMATCH") is by_name
    assert schema.matching_rule("2.5.13.2") is by_name
    assert schema.matching_rule("noSuchMatch") is None


def test_subschema(schema: Schema) -> None:
    subschema = schema.subschema()
    assert set(subschema) == {"ldapSyntaxes", "matchingRules", "matchingRuleUse",
                              "attributeTypes", "objectClasses"}
    assert b"( 2.5.4.3 NAME ( 'cn' 'commonName' ) SUP name )" in subschema["attributeTypes"]
    assert any(b"NAME 'inetOrgPerson'" in v for v in subschema["objectClasses"])
    assert any(b"NAME 'caseIgnoreMatch'" in v for v in subschema["matchingRules"])
    assert any(v.startswith(b"( 2.5.13.2 ") and b"cn" in v
               for v in subschema["matchingRuleUse"])
    assert any(v.startswith(b"( " + DIRECTORY_STRING.encode() + b" ")
               for v in subschema["ldapSyntaxes"])
    assert all(v.startswith(b"( ") and v.endswith(b" )")
               for values in subschema.values() for v in values)


def test_subschema_attribute_types_parse_back(schema: Schema, tmp_path: Path) -> None:
    subschema = schema.subschema()
    file = tmp_path / "dump.schema"
    file.write_text("".join(f"attributetype {v.decode()}\n" for v in subschema["attributeTypes"])
                    + "".join(f"objectclass {v.decode()}\n" for v in subschema["objectClasses"]))
    reloaded = Schema.load([file])
    assert {at.name for at in reloaded.attribute_types()} == {
        at.name for at in schema.attribute_types()}
    assert {oc.name for oc in reloaded.object_classes()} == {
        oc.name for oc in schema.object_classes()}


# --- check_entry ----------------------------------------------------------------

PERSON: Entry = {
    "objectclass": (b"top", b"person"),
    "cn": (b"John Smith",),
    "sn": (b"Smith",),
}


def entry(base: Entry, **changes: tuple[bytes, ...]) -> Entry:
    """`base` with attributes replaced; an empty tuple removes one."""
    merged = {**base, **changes}
    return {k: v for k, v in merged.items() if v}


VALID = [
    # (why, DN, attributes, structural class)
    ("person", "cn=John Smith,dc=example", PERSON, "person"),
    ("RDN value matched by the equality rule", "CN=JOHN  SMITH,dc=example", PERSON, "person"),
    ("objectClass values are case-insensitive", "cn=John Smith",
     entry(PERSON, objectclass=(b"TOP", b"Person")), "person"),
    ("superclasses may be left out", "cn=John Smith",
     entry(PERSON, objectclass=(b"inetOrgPerson",), mail=(b"j@example.com",)), "inetOrgPerson"),
    ("chain of structural classes", "cn=John Smith",
     entry(PERSON, objectclass=(b"top", b"person", b"organizationalPerson", b"inetOrgPerson"),
           displayname=(b"John",)), "inetOrgPerson"),
    ("auxiliary class adds MAY", "cn=John Smith",
     entry(PERSON, objectclass=(b"person", b"pkiUser")), "person"),
    ("multi-valued RDN", "cn=John Smith+sn=Smith", PERSON, "person"),
    ("RDN value among several", "cn=Johnny", entry(PERSON, cn=(b"John Smith", b"Johnny")),
     "person"),
    ("operational attributes always allowed", "cn=John Smith",
     entry(PERSON, createtimestamp=(b"20240101000000Z",)), "person"),
    ("extensibleObject allows any user attribute", "cn=John Smith",
     entry(PERSON, objectclass=(b"person", b"extensibleObject"), mail=(b"j@example.com",),
           c=(b"US",)), "person"),
    ("alias", "cn=a,dc=example",
     {"objectclass": (b"alias", b"extensibleObject"), "cn": (b"a",),
      "aliasedobjectname": (b"cn=target,dc=example",)}, "alias"),
    ("referral", "cn=r,dc=example",
     {"objectclass": (b"referral", b"extensibleObject"), "cn": (b"r",),
      "ref": (b"ldap://other.example/cn=r,dc=example",)}, "referral"),
    ("country", "c=US", {"objectclass": (b"country",), "c": (b"US",)}, "country"),
    ("the root DSE has no RDN to check", "", PERSON, "person"),
    ("tagging options name the same type", "cn=John Smith",
     {**PERSON, "description;lang-en": (b"x",), "cn;lang-de": (b"Johann",)}, "person"),
]


@pytest.mark.parametrize("why, dn, attributes, structural", VALID)
def test_valid_entries(schema: Schema, why: str, dn: str, attributes: Entry,
                       structural: str) -> None:
    assert schema.check_entry(DN.parse(dn, schema), attributes) == structural


VIOLATIONS = [
    # (why, DN, attributes, result code) — RFC 4512 §2.4, §3.5; RFC 4511 Appendix A
    ("no objectClass", "cn=John Smith", entry(PERSON, objectclass=()),
     ResultCode.OBJECT_CLASS_VIOLATION),
    ("unknown object class", "cn=John Smith", entry(PERSON, objectclass=(b"person", b"nosuch")),
     ResultCode.OBJECT_CLASS_VIOLATION),
    ("missing MUST sn", "cn=John Smith", entry(PERSON, sn=()),
     ResultCode.OBJECT_CLASS_VIOLATION),
    ("missing MUST from a superclass", "cn=John Smith",
     entry(PERSON, objectclass=(b"organizationalPerson",), sn=()),
     ResultCode.OBJECT_CLASS_VIOLATION),
    ("attribute not allowed", "cn=John Smith", entry(PERSON, mail=(b"j@example.com",)),
     ResultCode.OBJECT_CLASS_VIOLATION),
    ("no structural class", "dc=example",
     {"objectclass": (b"top", b"dcObject"), "dc": (b"example",)},
     ResultCode.OBJECT_CLASS_VIOLATION),
    ("only abstract top", "cn=x", {"objectclass": (b"top",), "cn": (b"x",)},
     ResultCode.OBJECT_CLASS_VIOLATION),
    ("two structural chains", "cn=John Smith",
     entry(PERSON, objectclass=(b"person", b"organizationalUnit"), ou=(b"x",)),
     ResultCode.OBJECT_CLASS_VIOLATION),
    ("alias without aliasedObjectName", "cn=a",
     {"objectclass": (b"alias", b"extensibleObject"), "cn": (b"a",)},
     ResultCode.OBJECT_CLASS_VIOLATION),
    ("referral without ref", "cn=r",
     {"objectclass": (b"referral", b"extensibleObject"), "cn": (b"r",)},
     ResultCode.OBJECT_CLASS_VIOLATION),
    ("single-valued with two values", "cn=John Smith",
     entry(PERSON, objectclass=(b"inetOrgPerson",), displayname=(b"John", b"Johnny")),
     ResultCode.CONSTRAINT_VIOLATION),
    ("alias with two targets", "cn=a",
     {"objectclass": (b"alias", b"extensibleObject"), "cn": (b"a",),
      "aliasedobjectname": (b"cn=t1", b"cn=t2")},
     ResultCode.CONSTRAINT_VIOLATION),
    ("country of three letters", "c=USA", {"objectclass": (b"country",), "c": (b"USA",)},
     ResultCode.INVALID_ATTRIBUTE_SYNTAX),
    ("telephone number not printable", "cn=John Smith",
     entry(PERSON, telephonenumber=("+1 555 \u00fc".encode(),)),
     ResultCode.INVALID_ATTRIBUTE_SYNTAX),
    ("seeAlso not a DN", "cn=John Smith", entry(PERSON, seealso=(b"not a dn",)),
     ResultCode.INVALID_ATTRIBUTE_SYNTAX),
    ("directory string empty", "cn=John Smith", entry(PERSON, description=(b"",)),
     ResultCode.INVALID_ATTRIBUTE_SYNTAX),
    ("directory string not UTF-8", "cn=John Smith", entry(PERSON, description=(b"\xff",)),
     ResultCode.INVALID_ATTRIBUTE_SYNTAX),
    ("duplicate value", "cn=John Smith", entry(PERSON, sn=(b"Smith", b"Smith")),
     ResultCode.ATTRIBUTE_OR_VALUE_EXISTS),
    ("duplicate under the equality rule", "cn=John Smith",
     entry(PERSON, cn=(b"John Smith", b"JOHN   SMITH")),
     ResultCode.ATTRIBUTE_OR_VALUE_EXISTS),
    ("RDN value missing", "cn=Somebody Else", PERSON, ResultCode.NAMING_VIOLATION),
    ("RDN attribute missing", "uid=jsmith", entry(PERSON, objectclass=(b"inetOrgPerson",)),
     ResultCode.NAMING_VIOLATION),
    ("second AVA of RDN missing", "cn=John Smith+sn=Jones", PERSON,
     ResultCode.NAMING_VIOLATION),
    ("undefined attribute type", "cn=John Smith", entry(PERSON, nosuchattribute=(b"x",)),
     ResultCode.UNDEFINED_ATTRIBUTE_TYPE),
]


@pytest.mark.parametrize("why, dn, attributes, code", VIOLATIONS)
def test_violations(schema: Schema, why: str, dn: str, attributes: Entry,
                    code: ResultCode) -> None:
    with pytest.raises(LDAPError) as caught:
        schema.check_entry(DN.parse(dn, schema), attributes)
    assert caught.value.code == code


# --- broken schema files ----------------------------------------------------------

GOOD_TYPE = "attributetype ( 1.1.1 NAME 'good' SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )\n"

BROKEN = [
    # (why, file text, line of the error, words the message must hold)
    ("unknown syntax", GOOD_TYPE + "attributetype ( 1.1.2 NAME 'x' SYNTAX 9.9.9 )\n", 2,
     ("9.9.9",)),
    ("unknown matching rule",
     GOOD_TYPE + "\n# comment\nattributetype ( 1.1.2 NAME 'x'\n  EQUALITY noSuchMatch\n"
     "  SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )\n", 4, ("noSuchMatch",)),
    ("unknown SUP", GOOD_TYPE + "attributetype ( 1.1.2 NAME 'x' SUP nosuch )\n", 2, ("nosuch",)),
    ("neither SYNTAX nor SUP", "attributetype ( 1.1.2 NAME 'x' )\n", 1, ("SYNTAX",)),
    ("attribute type defined twice", GOOD_TYPE + GOOD_TYPE.replace("1.1.1", "1.1.2"), 2,
     ("good",)),
    ("OID defined twice", GOOD_TYPE + GOOD_TYPE.replace("good", "other"), 2, ("1.1.1",)),
    ("class names unknown attribute",
     GOOD_TYPE + "objectclass ( 1.1.3 NAME 'c' STRUCTURAL MUST ( good $ nosuch ) )\n", 2,
     ("nosuch",)),
    ("class with unknown SUP", "objectclass ( 1.1.3 NAME 'c' SUP nosuch STRUCTURAL )\n", 1,
     ("nosuch",)),
    ("class defined twice",
     "objectclass ( 1.1.3 NAME 'c' )\nobjectclass ( 1.1.4 NAME 'c' )\n", 2, ("c",)),
    ("not a parenthesised description", "attributetype 1.1.2 NAME 'x'\n", 1, ()),
    ("unterminated quote", "attributetype ( 1.1.2 NAME 'x SYNTAX 1.2 )\n", 1, ()),
    ("keyword without value", "attributetype ( 1.1.2 NAME )\n", 1, ("NAME",)),
    ("continuation first", "  ( 1.1.2 NAME 'x' )\n", 1, ()),
    ("unknown statement", GOOD_TYPE + "matchingrule ( 1.1.5 NAME 'm' )\n", 2, ("matchingrule",)),
]


@pytest.mark.parametrize("why, text, line, words", BROKEN)
def test_broken_schema_file(tmp_path: Path, why: str, text: str, line: int,
                            words: tuple[str, ...]) -> None:
    file = tmp_path / "broken.schema"
    file.write_text(text)
    with pytest.raises(SchemaError) as caught:
        Schema.load([file])
    message = str(caught.value)
    assert f"{file}:{line}:" in message
    assert all(word in message for word in words)


def test_redefining_a_standard_type_names_the_second_file(tmp_path: Path) -> None:
    file = tmp_path / "zz-local.schema"
    file.write_text("# local additions\n"
                    "attributetype ( 9.9.9.1 NAME 'cn' SUP name )\n")
    with pytest.raises(SchemaError) as caught:
        Schema.load([SCHEMA_DIR, file])
    assert f"{file}:2:" in str(caught.value)


def test_local_schema_extends_the_standard_one(tmp_path: Path) -> None:
    file = tmp_path / "local.schema"
    file.write_text("attributetype ( 9.9.9.1 NAME 'badgeNumber'\n"
                    "\tEQUALITY integerMatch ORDERING integerOrderingMatch\n"
                    "\tSYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )\n"
                    "objectclass ( 9.9.9.2 NAME 'badgeHolder' SUP top AUXILIARY\n"
                    "\tMUST badgeNumber )\n")
    schema = Schema.load([SCHEMA_DIR, file])
    badge = schema.attribute("badgeNumber")
    assert badge.single_value
    assert schema.ordering(badge) is schema.matching_rule("integerOrderingMatch")
    holder = {**PERSON, "objectclass": (b"person", b"badgeHolder"), "badgenumber": (b"7",)}
    assert schema.check_entry(DN.parse("cn=John Smith", schema), holder) == "person"
    with pytest.raises(LDAPError) as caught:
        schema.check_entry(DN.parse("cn=John Smith", schema), {**holder, "badgenumber": (b"x",)})
    assert caught.value.code == ResultCode.INVALID_ATTRIBUTE_SYNTAX
