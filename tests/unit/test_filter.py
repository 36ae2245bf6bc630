"""Search filters: RFC 4515 string form, RFC 4511 §4.5.1.7 BER, decoding limits."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from directory.protocol.ber import read_tlv
from directory.protocol.filter import (
    And,
    Approx,
    Equality,
    Extensible,
    Filter,
    FilterLimits,
    FilterSyntaxError,
    GreaterOrEqual,
    LessOrEqual,
    Not,
    Or,
    Present,
    Substrings,
    format,
    from_ber,
    parse,
    to_ber,
)
from directory.protocol.results import ProtocolError

DEFAULT_LIMITS = FilterLimits()


def decode(wire: bytes, limits: FilterLimits = DEFAULT_LIMITS) -> Filter:
    tag, start, end = read_tlv(wire, 0, len(wire))
    assert end == len(wire)
    return from_ber(wire, start, end, tag, 0, limits)


RFC4515_EXAMPLES = [
    # (RFC 4515 §4 example, filter, what `format` writes back)
    ("(cn=Babs Jensen)", Equality("cn", b"Babs Jensen"), "(cn=Babs Jensen)"),
    ("(!(cn=Tim Howes))", Not(Equality("cn", b"Tim Howes")), "(!(cn=Tim Howes))"),
    ("(&(objectClass=Person)(|(sn=Jensen)(cn=Babs J*)))",
     And((Equality("objectClass", b"Person"),
          Or((Equality("sn", b"Jensen"), Substrings("cn", b"Babs J", (), None))))),
     "(&(objectClass=Person)(|(sn=Jensen)(cn=Babs J*)))"),
    ("(o=univ*of*mich*)", Substrings("o", b"univ", (b"of", b"mich"), None), "(o=univ*of*mich*)"),
    ("(seeAlso=)", Equality("seeAlso", b""), "(seeAlso=)"),
    ("(cn:caseExactMatch:=Fred Flintstone)",
     Extensible("caseExactMatch", "cn", b"Fred Flintstone"),
     "(cn:caseExactMatch:=Fred Flintstone)"),
    ("(cn:=Betty Rubble)", Extensible(None, "cn", b"Betty Rubble"), "(cn:=Betty Rubble)"),
    ("(sn:dn:2.4.6.8.10:=Barney Rubble)",
     Extensible("2.4.6.8.10", "sn", b"Barney Rubble", dn_attributes=True),
     "(sn:dn:2.4.6.8.10:=Barney Rubble)"),
    ("(o:dn:=Ace Industry)", Extensible(None, "o", b"Ace Industry", dn_attributes=True),
     "(o:dn:=Ace Industry)"),
    ("(:1.2.3:=Wilma Flintstone)", Extensible("1.2.3", None, b"Wilma Flintstone"),
     "(:1.2.3:=Wilma Flintstone)"),
    ("(:DN:2.4.6.8.10:=Dino)", Extensible("2.4.6.8.10", None, b"Dino", dn_attributes=True),
     "(:dn:2.4.6.8.10:=Dino)"),
    ("(o=Parens R Us \\28for all your parenthetical needs\\29)",
     Equality("o", b"Parens R Us (for all your parenthetical needs)"),
     "(o=Parens R Us \\28for all your parenthetical needs\\29)"),
    ("(cn=*\\2A*)", Substrings("cn", None, (b"*",), None), "(cn=*\\2a*)"),
    ("(filename=C:\\5cMyFile)", Equality("filename", b"C:\\MyFile"), "(filename=C:\\5cMyFile)"),
    ("(sn=Lu\\c4\\8di\\c4\\87)", Equality("sn", "Lu\u010di\u0107".encode()),
     "(sn=Lu\u010di\u0107)"),
    ("(1.3.6.1.4.1.1466.0=\\04\\02\\48\\69)", Equality("1.3.6.1.4.1.1466.0", b"\x04\x02Hi"),
     "(1.3.6.1.4.1.1466.0=\\04\\02Hi)"),
]


@pytest.mark.parametrize("text, expected, formatted", RFC4515_EXAMPLES)
def test_parse_rfc4515_examples(text: str, expected: Filter, formatted: str) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize("text, expected, formatted", RFC4515_EXAMPLES)
def test_format_rfc4515_examples(text: str, expected: Filter, formatted: str) -> None:
    assert format(expected) == formatted
    assert parse(formatted) == expected


ITEMS = [
    # (filter text, filter) — every item kind, escapes and substring shapes
    ("(cn=*)", Present("cn")),
    ("(cn>=5)", GreaterOrEqual("cn", b"5")),
    ("(cn<=5)", LessOrEqual("cn", b"5")),
    ("(cn~=smith)", Approx("cn", b"smith")),
    ("(cn=a*)", Substrings("cn", b"a", (), None)),
    ("(cn=*a)", Substrings("cn", None, (), b"a")),
    ("(cn=*a*)", Substrings("cn", None, (b"a",), None)),
    ("(cn=a*b)", Substrings("cn", b"a", (), b"b")),
    ("(cn=a*b*c)", Substrings("cn", b"a", (b"b",), b"c")),
    ("(cn=*a*b*c*)", Substrings("cn", None, (b"a", b"b", b"c"), None)),
    ("(cn=\\2a)", Equality("cn", b"*")),
    ("(cn=\\28\\29)", Equality("cn", b"()")),
    ("(cn=\\5c)", Equality("cn", b"\\")),
    ("(cn=\\00)", Equality("cn", b"\x00")),
    ("(cn=\\C3\\A9)", Equality("cn", "\u00e9".encode())),
    ("(cn=\u00e9)", Equality("cn", "\u00e9".encode())),
    ("(cn=a=b)", Equality("cn", b"a=b")),
    ("(cn=x~=y)", Equality("cn", b"x~=y")),
    ("(cn;lang-en=x)", Equality("cn;lang-en", b"x")),
    ("(2.5.4.3=x)", Equality("2.5.4.3", b"x")),
    ("cn=no parentheses", Equality("cn", b"no parentheses")),
    ("(&)", And(())),
    ("(|)", Or(())),
    ("(&(a=1)(b=2)(c=3))", And((Equality("a", b"1"), Equality("b", b"2"), Equality("c", b"3")))),
    ("(|(a=*)(!(b=*)))", Or((Present("a"), Not(Present("b"))))),
    ("(cn:dn:caseExactMatch:=x)", Extensible("caseExactMatch", "cn", b"x", dn_attributes=True)),
    ("(cn:caseExactMatch:=\\2a)", Extensible("caseExactMatch", "cn", b"*")),
]


@pytest.mark.parametrize("text, expected", ITEMS)
def test_parse_items(text: str, expected: Filter) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize("text, expected", ITEMS)
def test_format_items_parse_back(text: str, expected: Filter) -> None:
    assert parse(format(expected)) == expected


BAD_FILTERS = [
    # (why, text) — RFC 4515 §3 grammar violations
    ("empty", ""),
    ("empty parentheses", "()"),
    ("unbalanced open", "(cn=x"),
    ("unbalanced close", "(cn=x))"),
    ("no operator", "(cn)"),
    ("no attribute", "(=x)"),
    ("bad attribute", "(c n=x)"),
    ("unescaped open paren in value", "(cn=a(b)"),
    ("bad escape", "(cn=\\zz)"),
    ("short escape", "(cn=\\2)"),
    ("escape with sign", "(cn=\\+1)"),
    ("escape with space", "(cn=\\ a)"),
    ("trailing junk", "(cn=x)(sn=y)"),
    ("not with two", "(!(a=b)(c=d))"),
    ("not with none", "(!)"),
    ("and with item", "(&cn=x)"),
    ("extensible without type or rule", "(:=x)"),
    ("extensible dn only", "(:dn:=x)"),
    ("extensible two rules", "(cn:r1:r2:=x)"),
    ("extensible empty rule", "(cn::=x)"),
]


@pytest.mark.parametrize("why, text", BAD_FILTERS)
def test_bad_filters(why: str, text: str) -> None:
    with pytest.raises(FilterSyntaxError):
        parse(text)


def test_string_depth_is_bounded() -> None:
    with pytest.raises(FilterSyntaxError):
        parse("(!" * 200 + "(a=b)" + ")" * 200)


WIRE = [
    # (filter, BER written by hand from RFC 4511 §4.5.1.7 tags)
    (Present("objectClass"), "870b6f626a656374436c617373"),
    (Equality("cn", b"Babs Jensen"), "a3110402636e040b42616273204a656e73656e"),
    (GreaterOrEqual("a", b"1"), "a506040161040131"),
    (LessOrEqual("a", b"1"), "a606040161040131"),
    (Approx("a", b"1"), "a806040161040131"),
    (And((Equality("a", b"b"),)), "a008a306040161040162"),
    (Or((Present("a"), Present("b"))), "a106870161870162"),
    (Not(Present("a")), "a203870161"),
    (And(()), "a000"),
    (Or(()), "a100"),
    (Substrings("cn", b"a", (b"b",), b"c"), "a40f0402636e3009800161810162820163"),
    (Substrings("cn", None, (b"b",), None), "a4090402636e3003810162"),
    (Extensible("caseExactMatch", "cn", b"Fred", dn_attributes=True),
     "a91d810e636173654578616374" "4d61746368" "8202636e" "830446726564" "8401ff"),
    (Extensible(None, "o", b"Ace"), "a9088201" "6f" "8303416365"),
    (Extensible("1.2.3", None, b"W"), "a90a8105312e322e33830157"),
]


@pytest.mark.parametrize("f, hexed", WIRE)
def test_encode(f: Filter, hexed: str) -> None:
    assert to_ber(f).hex() == hexed


@pytest.mark.parametrize("f, hexed", WIRE)
def test_decode(f: Filter, hexed: str) -> None:
    assert decode(bytes.fromhex(hexed)) == f


def test_decode_dn_attributes_false_and_any_true_octet() -> None:
    assert decode(bytes.fromhex("a90a8202636e830178840100")) == Extensible(None, "cn", b"x")
    assert decode(bytes.fromhex("a90a8202636e830178840101")).dn_attributes  # type: ignore[union-attr]


BAD_WIRE = [
    # (why, BER) — RFC 4511 §4.5.1.7 violations
    ("unknown choice", "aa00"),
    ("primitive and", "8000"),
    ("not without filter", "a200"),
    ("not with two filters", "a206870161870162"),
    ("equality without value", "a3030401" "61"),
    ("equality with trailing data", "a309040161040162870161"),
    ("substrings without pieces", "a4060402636e3000"),
    ("initial not first", "a40c0402636e3006810161800162"),
    ("final not last", "a40c0402636e3006820161810162"),
    ("unknown piece tag", "a4090402636e3003830161"),
    ("extensible without value", "a9048202636e"),
    ("extensible without rule or type", "a903830178"),
    ("extensible out of order", "a9088301788202636e"),
    ("extensible repeated element", "a90c8202636e8202636e830178"),
    ("attribute not UTF-8", "8702fffe"),
    ("length past end", "a3ff"),
    ("truncated child", "a0058701"),
]


@pytest.mark.parametrize("why, hexed", BAD_WIRE)
def test_decode_rejects(why: str, hexed: str) -> None:
    wire = bytes.fromhex(hexed)
    with pytest.raises(ProtocolError):
        tag, start, end = read_tlv(wire, 0, len(wire))
        from_ber(wire, start, end, tag, 0, FilterLimits())


def nested_nots(count: int) -> Filter:
    f: Filter = Present("a")
    for _ in range(count):
        f = Not(f)
    return f


def test_depth_limit() -> None:
    limits = FilterLimits(max_depth=5, max_items=1024)
    assert decode(to_ber(nested_nots(5)), limits) == nested_nots(5)
    with pytest.raises(ProtocolError):
        decode(to_ber(nested_nots(6)), limits)


def test_default_depth_limit_stops_hostile_nesting() -> None:
    with pytest.raises(ProtocolError):
        decode(to_ber(nested_nots(500)))


def test_item_limit() -> None:
    limits = FilterLimits(max_depth=64, max_items=10)
    nine = And(tuple(Present(f"a{i}") for i in range(9)))
    assert decode(to_ber(nine), limits) == nine
    with pytest.raises(ProtocolError):
        decode(to_ber(And(tuple(Present(f"a{i}") for i in range(10)))), limits)


def test_default_item_limit_stops_huge_filters() -> None:
    with pytest.raises(ProtocolError):
        decode(to_ber(Or(tuple(Present("a") for _ in range(5000)))))


ATTRIBUTES = st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,8}(;[a-z0-9-]{1,5})?", fullmatch=True)
RULES = (st.from_regex(r"[A-Za-z][A-Za-z0-9]{2,12}", fullmatch=True)
         | st.from_regex(r"[12](\.[0-9]{1,3}){1,4}", fullmatch=True))
VALUES = st.binary(max_size=12) | st.text(max_size=8).map(lambda t: t.encode("utf-8", "replace"))
PIECES = VALUES.filter(bool)


@st.composite
def extensibles(draw: st.DrawFn) -> Extensible:
    rule = draw(st.none() | RULES)
    attribute = draw(ATTRIBUTES) if rule is None else draw(st.none() | ATTRIBUTES)
    return Extensible(rule, attribute, draw(VALUES), draw(st.booleans()))


ITEM_FILTERS: st.SearchStrategy[Filter] = st.one_of(
    st.builds(Present, ATTRIBUTES),
    st.builds(Equality, ATTRIBUTES, VALUES),
    st.builds(GreaterOrEqual, ATTRIBUTES, VALUES),
    st.builds(LessOrEqual, ATTRIBUTES, VALUES),
    st.builds(Approx, ATTRIBUTES, VALUES),
    st.builds(Substrings, ATTRIBUTES, st.none() | PIECES,
              st.lists(PIECES, max_size=3).map(tuple), st.none() | PIECES).filter(
        lambda s: s.initial is not None or bool(s.any) or s.final is not None),
    extensibles(),
)

FILTERS: st.SearchStrategy[Filter] = st.recursive(
    ITEM_FILTERS,
    lambda children: st.one_of(
        st.lists(children, max_size=4).map(lambda fs: And(tuple(fs))),
        st.lists(children, max_size=4).map(lambda fs: Or(tuple(fs))),
        children.map(Not),
    ),
    max_leaves=12,
)


@given(FILTERS)
def test_string_round_trip(f: Filter) -> None:
    assert parse(format(f)) == f


@given(FILTERS)
def test_ber_round_trip(f: Filter) -> None:
    assert decode(to_ber(f)) == f
