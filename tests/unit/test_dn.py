"""Distinguished names: RFC 4514 string form, escaping, schema-aware equality."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from directory.protocol.dn import DN, escape
from directory.protocol.results import LDAPError, ResultCode
from directory.schema import Schema

SCHEMA = Schema.load([Path(__file__).resolve().parents[2] / "schema"])


@pytest.fixture(scope="module")
def schema() -> Schema:
    return SCHEMA


def avas(dn: DN) -> list[list[tuple[str, str]]]:
    return [[(a.attribute, a.value) for a in rdn.avas] for rdn in dn.rdns]


RFC4514_EXAMPLES = [
    # (RFC 4514 §4 example, RDNs leaf first as (type, value) pairs)
    ("UID=jsmith,DC=example,DC=net",
     [[("UID", "jsmith")], [("DC", "example")], [("DC", "net")]]),
    ("OU=Sales+CN=J.  Smith,DC=example,DC=net",
     [[("OU", "Sales"), ("CN", "J.  Smith")], [("DC", "example")], [("DC", "net")]]),
    ('CN=James \\"Jim\\" Smith\\, III,DC=example,DC=net',
     [[("CN", 'James "Jim" Smith, III')], [("DC", "example")], [("DC", "net")]]),
    ("CN=Before\\0dAfter,DC=example,DC=net",
     [[("CN", "Before\rAfter")], [("DC", "example")], [("DC", "net")]]),
    ("1.3.6.1.4.1.1466.0=#04024869,DC=example,DC=com",
     [[("1.3.6.1.4.1.1466.0", "Hi")], [("DC", "example")], [("DC", "com")]]),
    ("CN=Lu\\C4\\8Di\\C4\\87", [[("CN", "Lu\u010di\u0107")]]),
]


@pytest.mark.parametrize("text, expected", RFC4514_EXAMPLES)
def test_rfc4514_examples_parse(text: str, expected: list[list[tuple[str, str]]]) -> None:
    assert avas(DN.parse(text)) == expected


@pytest.mark.parametrize("text, expected", RFC4514_EXAMPLES)
def test_rfc4514_examples_reparse(text: str, expected: list[list[tuple[str, str]]]) -> None:
    assert avas(DN.parse(str(DN.parse(text)))) == expected


ESCAPES = [
    # (value, RFC 4514 §2.4 string form)
    (" leading", "\\ leading"),
    ("trailing ", "trailing\\ "),
    (" ", "\\ "),
    ("  ", "\\ \\ "),
    ("#hash", "\\#hash"),
    ("in#side", "in#side"),
    ("nul\x00byte", "nul\\00byte"),
    ("a,b", "a\\,b"),
    ("a+b", "a\\+b"),
    ('a"b', 'a\\"b'),
    ("a\\b", "a\\\\b"),
    ("a<b>", "a\\<b\\>"),
    ("a;b", "a\\;b"),
    ("a=b", "a=b"),
    ("Lu\u010di\u0107", "Lu\u010di\u0107"),
    ("", ""),
]


@pytest.mark.parametrize("value, escaped", ESCAPES)
def test_escape(value: str, escaped: str) -> None:
    assert escape(value) == escaped


@pytest.mark.parametrize("value, escaped", ESCAPES)
def test_escape_round_trip(value: str, escaped: str) -> None:
    dn = DN.parse(f"cn={escaped},dc=example")
    assert dn.rdn.avas[0].value == value
    assert str(dn) == f"cn={escaped},dc=example"


ACCEPTED_FORMS = [
    # (as written, value of the leaf) — RFC 4514 §3 escapes and lenient spacing
    ("cn=\\41\\42", "AB"),
    ("cn=a\\ b", "a b"),
    ("cn = x , dc = example", "x"),
    ("cn=x;dc=example", "x"),
    ('cn="quoted, value",dc=example', "quoted, value"),
    ("cn=x   ,dc=example", "x"),
    ("cn=x\\ ,dc=example", "x "),
    ("OID.2.5.4.3=x", "x"),
    ("cn=", ""),
]


@pytest.mark.parametrize("text, value", ACCEPTED_FORMS)
def test_accepted_forms(text: str, value: str) -> None:
    assert DN.parse(text).rdn.avas[0].value == value


EQUAL_UNDER_SCHEMA = [
    # (why, one DN, another DN the schema says is the same)
    ("type names ignore case", "CN=x,DC=example", "cn=x,dc=example"),
    ("caseIgnoreMatch values", "cn=John Smith,dc=Example", "cn=john smith,dc=example"),
    ("insignificant spaces", "cn=  John   Smith ,dc=example", "cn=john smith,dc=example"),
    ("OID vs name", "2.5.4.3=x,dc=example", "cn=x,dc=example"),
    ("OID. prefix", "OID.2.5.4.3=x", "cn=x"),
    ("alias name", "commonName=x", "cn=x"),
    ("multi-valued RDN order", "ou=Sales+cn=J Smith,dc=example", "cn=j smith+ou=sales,dc=example"),
    ("hex escapes", "cn=\\4a\\6f\\68\\6e", "cn=john"),
    ("separator ;", "cn=x;dc=example", "cn=x,dc=example"),
    ("empty DN", "", ""),
]


@pytest.mark.parametrize("why, one, other", EQUAL_UNDER_SCHEMA)
def test_equal_under_schema(schema: Schema, why: str, one: str, other: str) -> None:
    a, b = DN.parse(one, schema), DN.parse(other, schema)
    assert a == b
    assert hash(a) == hash(b)
    assert a.normalized == b.normalized


DIFFERENT_UNDER_SCHEMA = [
    ("different values", "cn=x,dc=example", "cn=y,dc=example"),
    ("different types", "cn=x", "sn=x"),
    ("different depth", "cn=x,dc=example", "cn=x"),
    ("RDN order matters between RDNs", "cn=x,ou=y", "ou=y,cn=x"),
    ("multi-valued vs two RDNs", "cn=x+ou=y", "cn=x,ou=y"),
]


@pytest.mark.parametrize("why, one, other", DIFFERENT_UNDER_SCHEMA)
def test_different_under_schema(schema: Schema, why: str, one: str, other: str) -> None:
    assert DN.parse(one, schema) != DN.parse(other, schema)


def test_normalized_form(schema: Schema) -> None:
    dn = DN.parse("CN=Smith\\, John,OU=People,DC=Example,DC=Com", schema)
    assert dn.normalized == "cn=smith\\, john,ou=people,dc=example,dc=com"
    assert str(dn) == "CN=Smith\\, John,OU=People,DC=Example,DC=Com"


INVALID = [
    # (why, text) — RFC 4514 §3 grammar violations
    ("no equals", "cn"),
    ("empty type", "=x"),
    ("trailing separator", "cn=x,"),
    ("empty RDN", "cn=x,,dc=example"),
    ("trailing plus", "cn=x+"),
    ("lone backslash", "cn=x\\"),
    ("bad hex escape", "cn=\\zz"),
    ("half hex escape", "cn=\\4"),
    ("escaped non-special", "cn=\\q"),
    ("unescaped quote", 'cn=a"b'),
    ("unescaped <", "cn=a<b"),
    ("unescaped >", "cn=a>b"),
    ("unescaped NUL", "cn=a\x00b"),
    ("odd hex string", "cn=#123"),
    ("empty hex string", "cn=#"),
    ("non-hex after #", "cn=#zz"),
    ("type starts with digit", "1cn=x"),
    ("type with underscore", "c_n=x"),
    ("OID leading zero", "2.05.4.3=x"),
    ("OID empty arc", "2..4.3=x"),
    ("unterminated quotes", 'cn="abc'),
    ("escapes not UTF-8", "cn=\\ff\\fe"),
]


@pytest.mark.parametrize("why, text", INVALID)
def test_invalid(why: str, text: str) -> None:
    with pytest.raises(LDAPError) as caught:
        DN.parse(text)
    assert caught.value.code == ResultCode.INVALID_DN_SYNTAX


def test_unknown_type_under_schema_is_invalid_dn(schema: Schema) -> None:
    with pytest.raises(LDAPError) as caught:
        DN.parse("noSuchAttribute=x,dc=example", schema)
    assert caught.value.code == ResultCode.INVALID_DN_SYNTAX


def test_root() -> None:
    assert DN.parse("") == DN.ROOT
    assert not DN.ROOT
    assert len(DN.ROOT) == 0
    assert str(DN.ROOT) == ""
    with pytest.raises(LDAPError) as caught:
        _ = DN.ROOT.rdn
    assert caught.value.code == ResultCode.INVALID_DN_SYNTAX


def test_parent_and_child(schema: Schema) -> None:
    dn = DN.parse("cn=Leaf,ou=People,dc=example,dc=com", schema)
    assert dn.parent == DN.parse("ou=people,dc=example,dc=com", schema)
    assert dn.parent.parent.parent.parent == DN.ROOT
    assert dn.parent.child(dn.rdn) == dn
    assert str(dn.rdn) == "cn=Leaf"
    assert len(dn) == 4
    assert [str(r) for r in dn] == ["cn=Leaf", "ou=People", "dc=example", "dc=com"]


DESCENDANTS = [
    # (dn, base, strict, expected)
    ("cn=a,dc=example,dc=com", "dc=example,dc=com", False, True),
    ("cn=a,dc=example,dc=com", "dc=example,dc=com", True, True),
    ("dc=example,dc=com", "dc=example,dc=com", False, True),
    ("dc=example,dc=com", "dc=example,dc=com", True, False),
    ("DC=Example,DC=COM", "dc=example,dc=com", True, False),
    ("cn=a,DC=Example,DC=COM", "dc=example,dc=com", True, True),
    ("dc=com", "dc=example,dc=com", False, False),
    ("cn=a,dc=other,dc=com", "dc=example,dc=com", False, False),
    ("cn=a,dc=example,dc=com", "", False, True),
    ("", "", True, False),
    ("cn=dc=example,dc=com", "dc=example,dc=com", True, False),
]


@pytest.mark.parametrize("text, base, strict, expected", DESCENDANTS)
def test_is_descendant_of(schema: Schema, text: str, base: str, strict: bool,
                          expected: bool) -> None:
    dn, ancestor = DN.parse(text, schema), DN.parse(base, schema)
    assert dn.is_descendant_of(ancestor, strict=strict) is expected


RELATIVE = [
    # (dn, old ancestor, new ancestor, result) — a subtree moved by ModifyDN
    ("cn=a,ou=old,dc=example", "ou=old,dc=example", "ou=new,dc=example", "cn=a,ou=new,dc=example"),
    ("cn=a,ou=old,dc=example", "ou=old,dc=example", "ou=x,ou=y,dc=z", "cn=a,ou=x,ou=y,dc=z"),
    ("ou=old,dc=example", "ou=old,dc=example", "ou=new", "ou=new"),
    ("cn=a,cn=b,dc=example", "dc=example", "", "cn=a,cn=b"),
    ("cn=a", "", "dc=example", "cn=a,dc=example"),
]


@pytest.mark.parametrize("text, old, new, expected", RELATIVE)
def test_relative_to(schema: Schema, text: str, old: str, new: str, expected: str) -> None:
    moved = DN.parse(text, schema).relative_to(DN.parse(old, schema), DN.parse(new, schema))
    assert moved == DN.parse(expected, schema)
    assert str(moved) == expected


ATTRIBUTE_TYPES = st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,8}", fullmatch=True)
VALUES = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)
GENERATED_RDNS = st.lists(
    st.lists(st.tuples(ATTRIBUTE_TYPES, VALUES), min_size=1, max_size=3),
    min_size=1, max_size=4)


@given(GENERATED_RDNS)
def test_generated_dn_round_trip(rdns: list[list[tuple[str, str]]]) -> None:
    text = ",".join("+".join(f"{t}={escape(v)}" for t, v in rdn) for rdn in rdns)
    dn = DN.parse(text)
    assert avas(dn) == rdns
    assert str(dn) == text
    assert DN.parse(str(dn)) == dn


SCHEMA_TYPES = st.sampled_from(["cn", "CN", "2.5.4.3", "sn", "ou", "dc", "uid", "mail", "c"])


@given(st.lists(st.lists(st.tuples(SCHEMA_TYPES, VALUES), min_size=1, max_size=2),
                min_size=1, max_size=3))
def test_normalized_form_is_a_fixed_point(rdns: list[list[tuple[str, str]]]) -> None:
    text = ",".join("+".join(f"{t}={escape(v)}" for t, v in rdn) for rdn in rdns)
    dn = DN.parse(text, SCHEMA)
    again = DN.parse(dn.normalized, SCHEMA)
    assert again.normalized == dn.normalized
    assert again == dn


def test_hex_string_value_equals_its_contents(schema: Schema) -> None:
    assert DN.parse("cn=#04024869,dc=example", schema) == DN.parse("cn=hi,dc=example", schema)
