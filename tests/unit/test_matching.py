"""Syntaxes and matching rules (RFC 4517, RFC 4518, RFC 4523 §2.5, RFC 4530)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from hypothesis import given
from hypothesis import strategies as st

from directory.matching import InvalidValue, MatchingRule
from directory.schema import Schema

SCHEMA = Schema.load([Path(__file__).resolve().parents[2] / "schema"])


@pytest.fixture(scope="module")
def schema() -> Schema:
    return SCHEMA


def rule_of(schema: Schema, name: str) -> MatchingRule:
    rule = schema.matching_rule(name)
    assert rule is not None, name
    return rule


EQUAL = [
    # (rule, stored value, assertion value) — the rule says they match
    ("caseIgnoreMatch", b"John Smith", b"john smith"),
    ("caseIgnoreMatch", b"  John   Smith ", b"JOHN SMITH"),
    ("caseIgnoreMatch", "Stra\u00dfe".encode(), b"STRASSE"),
    ("caseIgnoreMatch", "\uff21".encode(), b"a"),
    ("caseIgnoreMatch", "e\u0301".encode(), "\u00e9".encode()),
    ("caseExactMatch", b"John  Smith", b"John Smith"),
    ("caseIgnoreIA5Match", b"Foo@Example.COM", b"foo@example.com"),
    ("caseExactIA5Match", b"foo  bar", b"foo bar"),
    ("telephoneNumberMatch", b"+1 555-123-4567", b"+15551234567"),
    ("numericStringMatch", b"123 456", b"123456"),
    ("integerMatch", b"42", b"42"),
    ("integerMatch", b"-7", b"-7"),
    ("booleanMatch", b"TRUE", b"TRUE"),
    ("generalizedTimeMatch", b"20240101120000Z", b"20240101120000Z"),
    ("generalizedTimeMatch", b"20240101120000Z", b"20240101130000+0100"),
    ("generalizedTimeMatch", b"20240101120000Z", b"20240101063000-0530"),
    ("generalizedTimeMatch", b"202401011230Z", b"20240101123000Z"),
    ("generalizedTimeMatch", b"2024010112Z", b"20240101120000Z"),
    ("generalizedTimeMatch", b"2024010112.5Z", b"20240101123000Z"),
    ("generalizedTimeMatch", b"202401011230.5Z", b"20240101123030Z"),
    ("generalizedTimeMatch", b"20240101123030.25Z", b"20240101123030,25Z"),
    ("generalizedTimeMatch", b"20240101000000+0100", b"20231231230000Z"),
    ("UUIDMatch", b"F81D4FAE-7DEC-11D0-A765-00A0C91E6BF6",
     b"f81d4fae-7dec-11d0-a765-00a0c91e6bf6"),
    ("objectIdentifierMatch", b"2.5.4.3", b"2.5.4.3"),
    ("objectIdentifierMatch", b"Person", b"person"),
    ("distinguishedNameMatch", b"CN=John,DC=Example", b"cn=john,dc=example"),
    ("distinguishedNameMatch", b"2.5.4.3=x", b"cn=X"),
    ("octetStringMatch", b"\x00\xff", b"\x00\xff"),
    ("bitStringMatch", b"'0101'B", b"'0101'B"),
]


@pytest.mark.parametrize("name, value, assertion", EQUAL)
def test_equal(schema: Schema, name: str, value: bytes, assertion: bytes) -> None:
    rule = rule_of(schema, name)
    assert rule.value_key(value) == rule.assertion_key(assertion)


DIFFERENT = [
    # (rule, stored value, assertion value) — the rule says they differ
    ("caseIgnoreMatch", b"John Smith", b"John Smyth"),
    ("caseIgnoreMatch", b"JohnSmith", b"John Smith"),
    ("caseExactMatch", b"John Smith", b"john smith"),
    ("caseExactIA5Match", b"Foo", b"foo"),
    ("telephoneNumberMatch", b"+1 555 1234", b"+1 555 1235"),
    ("numericStringMatch", b"123", b"1234"),
    ("integerMatch", b"42", b"-42"),
    ("booleanMatch", b"TRUE", b"FALSE"),
    ("generalizedTimeMatch", b"20240101120000Z", b"20240101120000+0100"),
    ("generalizedTimeMatch", b"20240101120000Z", b"20240101120000.5Z"),
    ("UUIDMatch", b"f81d4fae-7dec-11d0-a765-00a0c91e6bf6",
     b"f81d4fae-7dec-11d0-a765-00a0c91e6bf7"),
    ("distinguishedNameMatch", b"cn=x,dc=example", b"cn=x"),
    ("octetStringMatch", b"abc", b"ABC"),
]


@pytest.mark.parametrize("name, value, assertion", DIFFERENT)
def test_different(schema: Schema, name: str, value: bytes, assertion: bytes) -> None:
    rule = rule_of(schema, name)
    assert rule.value_key(value) != rule.assertion_key(assertion)


INVALID = [
    # (rule, value the rule's syntax rejects)
    ("caseIgnoreMatch", b"\xff\xfe"),
    ("caseIgnoreIA5Match", "\u00e9".encode()),
    ("caseExactIA5Match", "\u00e9".encode()),
    ("numericStringMatch", b"12a"),
    ("numericStringMatch", b""),
    ("integerMatch", b"1.5"),
    ("integerMatch", b"+5"),
    ("integerMatch", b"007"),
    ("integerMatch", b""),
    ("integerMatch", b"-"),
    ("integerMatch", b"-0"),
    ("booleanMatch", b"true"),
    ("booleanMatch", b"yes"),
    ("generalizedTimeMatch", b"20240101120000"),
    ("generalizedTimeMatch", b"20241301120000Z"),
    ("generalizedTimeMatch", b"20240230120000Z"),
    ("generalizedTimeMatch", b"20240101250000Z"),
    ("generalizedTimeMatch", b"2024-01-01T12:00:00Z"),
    ("generalizedTimeMatch", b"20240101120000+1"),
    ("generalizedTimeMatch", b"20240101120000+2460"),
    ("UUIDMatch", b"f81d4fae7dec11d0a76500a0c91e6bf6"),
    ("UUIDMatch", b"g81d4fae-7dec-11d0-a765-00a0c91e6bf6"),
    ("objectIdentifierMatch", b"2.05.4"),
    ("objectIdentifierMatch", b"1cn"),
    ("distinguishedNameMatch", b"not a dn"),
    ("distinguishedNameMatch", b"noSuchType=x"),
    ("bitStringMatch", b"'012'B"),
]


@pytest.mark.parametrize("name, value", INVALID)
def test_invalid(schema: Schema, name: str, value: bytes) -> None:
    with pytest.raises(InvalidValue):
        rule_of(schema, name).value_key(value)


def test_generalized_time_zone_with_hours_only(schema: Schema) -> None:
    """RFC 4517 §3.3.13: g-differential = ( MINUS / PLUS ) hour [ minute ]."""
    rule = rule_of(schema, "generalizedTimeMatch")
    assert rule.value_key(b"20240101130000+01") == rule.value_key(b"20240101120000Z")


def test_generalized_time_leap_second(schema: Schema) -> None:
    """RFC 4517 §3.3.13: g-time allows leap-second = "60"."""
    rule = rule_of(schema, "generalizedTimeOrderingMatch")
    assert rule.value_key(b"20161231235960Z") > rule.value_key(b"20161231235959Z")


OID_ALIASES = [
    # (descriptor, numeric OID) — RFC 4517 §4.2.26: both name the same object identifier
    (b"person", b"2.5.6.6"),
    (b"inetOrgPerson", b"2.16.840.1.113730.3.2.2"),
    (b"cn", b"2.5.4.3"),
    (b"commonName", b"cn"),
]


@pytest.mark.parametrize("descriptor, oid", OID_ALIASES)
def test_object_identifier_match_resolves_descriptors(schema: Schema, descriptor: bytes,
                                                      oid: bytes) -> None:
    rule = rule_of(schema, "objectIdentifierMatch")
    assert rule.value_key(descriptor) == rule.assertion_key(oid)


ORDERED = [
    # (ordering rule, values in ascending order)
    ("integerOrderingMatch", [b"-1000", b"-999", b"-10", b"-9", b"-1", b"0", b"1", b"9", b"10",
                              b"999", b"1000"]),
    ("generalizedTimeOrderingMatch", [b"19991231235959Z", b"20000101000000.5Z",
                                      b"20000101010000+0000", b"20000101000000-0200",
                                      b"2000010103Z"]),
    ("caseIgnoreOrderingMatch", [b"alpha", b"Beta", b"gamma"]),
    ("caseExactOrderingMatch", [b"Beta", b"alpha", b"gamma"]),
    ("numericStringOrderingMatch", [b"1", b"12", b"2"]),
    ("UUIDOrderingMatch", [b"00000000-0000-0000-0000-000000000001",
                           b"F0000000-0000-0000-0000-000000000000"]),
]


@pytest.mark.parametrize("name, ascending", ORDERED)
def test_ordering(schema: Schema, name: str, ascending: list[bytes]) -> None:
    rule = rule_of(schema, name)
    assert rule.kind == "ordering"
    keys = [rule.value_key(v) for v in ascending]
    assert keys == sorted(keys)
    assert len(set(keys)) == len(keys)


@given(st.integers(min_value=-(10**30), max_value=10**30),
       st.integers(min_value=-(10**30), max_value=10**30))
def test_integer_key_order_is_integer_order(a: int, b: int) -> None:
    rule = rule_of(SCHEMA, "integerOrderingMatch")
    ka, kb = rule.value_key(str(a).encode()), rule.value_key(str(b).encode())
    assert (ka < kb) == (a < b)
    assert (ka == kb) == (a == b)


@given(st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2999, 1, 1),
                    timezones=st.just(dt.UTC)),
       st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2999, 1, 1),
                    timezones=st.just(dt.UTC)))
def test_time_key_order_is_time_order(a: dt.datetime, b: dt.datetime) -> None:
    rule = rule_of(SCHEMA, "generalizedTimeOrderingMatch")
    ka = rule.value_key(a.strftime("%Y%m%d%H%M%S.%fZ").encode())
    kb = rule.value_key(b.strftime("%Y%m%d%H%M%S.%fZ").encode())
    assert (ka < kb) == (a < b)


# --- certificateExactMatch (RFC 4523 §2.5) -----------------------------------

TEST_CA = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example"),
                     x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")])


def make_certificate(serial: int, issuer: x509.Name = TEST_CA) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "leaf")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
            .public_key(key.public_key()).serial_number(serial)
            .not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(Encoding.DER)


@pytest.fixture(scope="module")
def certificate() -> bytes:
    return make_certificate(123)


CERTIFICATE_ASSERTIONS = [
    # (GSER or OpenLDAP's serial$issuer assertion, matches the certificate with
    # serial 123 from CN=Test CA,O=Example)
    (b'{ serialNumber 123, issuer rdnSequence:"cn=test ca,o=example" }', True),
    (b'{ serialNumber 123, issuer rdnSequence:"CN=Test CA,O=Example" }', True),
    (b'{ serialNumber \'7b\'H, issuer rdnSequence:"cn=test ca,o=example" }', True),
    (b'{ serialNumber \'7B\'H, issuer rdnSequence:"cn=test ca,o=example" }', True),
    (b'{ serialNumber 123, issuer "cn=test ca,o=example" }', True),
    (b'{serialNumber 123,issuer rdnSequence:"cn=Test  CA, o=Example"}', True),
    (b'{ serialNumber 124, issuer rdnSequence:"cn=test ca,o=example" }', False),
    (b'{ serialNumber 123, issuer rdnSequence:"cn=other ca,o=example" }', False),
    (b'{ serialNumber 123, issuer rdnSequence:"o=example,cn=test ca" }', False),
    (b'{ serialNumber 0x7b, issuer "cn=test ca,o=example" }', True),
    (b'{ issuer "cn=test ca,o=example", serialNumber 123 }', True),
    (b"123$cn=test ca,o=example", True),
    (b"0123$CN=Test CA, O=Example", True),
    (b"0x7B$cn=test ca,o=example", True),
    (b"124$cn=test ca,o=example", False),
]


@pytest.mark.parametrize("assertion, matches", CERTIFICATE_ASSERTIONS)
def test_certificate_exact_match(schema: Schema, certificate: bytes, assertion: bytes,
                                 matches: bool) -> None:
    rule = rule_of(schema, "certificateExactMatch")
    assert (rule.value_key(certificate) == rule.assertion_key(assertion)) is matches


MALFORMED_CERTIFICATE_ASSERTIONS = [
    # (why, assertion)
    ("empty", b""),
    ("neither form", b"123 cn=test ca,o=example"),
    ("older form without a number", b"$cn=test ca,o=example"),
    ("older form with a hex string", b"'7b'H$cn=test ca,o=example"),
    ("GSER with text after it", b'{ serialNumber 123, issuer "cn=x" } x'),
    ("GSER with a part twice", b'{ serialNumber 123, serialNumber 123, issuer "cn=x" }'),
    ("no braces", b'serialNumber 123, issuer rdnSequence:"cn=test ca,o=example"'),
    ("no issuer", b"{ serialNumber 123 }"),
    ("no serial", b'{ issuer rdnSequence:"cn=test ca,o=example" }'),
    ("serial not a number", b'{ serialNumber abc, issuer rdnSequence:"cn=x" }'),
    ("issuer not quoted", b"{ serialNumber 123, issuer rdnSequence:cn=x }"),
    ("not UTF-8", b"{ serialNumber 123, issuer \xff }"),
]


@pytest.mark.parametrize("why, assertion", MALFORMED_CERTIFICATE_ASSERTIONS)
def test_certificate_exact_match_malformed(schema: Schema, why: str, assertion: bytes) -> None:
    with pytest.raises(InvalidValue):
        rule_of(schema, "certificateExactMatch").assertion_key(assertion)


def test_certificate_issuer_with_types_outside_the_schema(schema: Schema) -> None:
    issuer = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example, Inc."),
        x509.NameAttribute(NameOID.EMAIL_ADDRESS, "ca@example.com"),
        x509.NameAttribute(NameOID.COMMON_NAME, "Issuing CA")])
    rule = rule_of(schema, "certificateExactMatch")
    key = rule.value_key(make_certificate(2**70, issuer))
    assertion = ('{ serialNumber 1180591620717411303424, issuer rdnSequence:'
                 '"CN=Issuing CA,1.2.840.113549.1.9.1=ca@example.com,O=Example\\, Inc.,C=US" }')
    assert key == rule.assertion_key(assertion.encode())


def test_certificate_value_must_be_der(schema: Schema) -> None:
    with pytest.raises(InvalidValue):
        rule_of(schema, "certificateExactMatch").value_key(b"not a certificate")
