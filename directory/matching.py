"""LDAP syntaxes and matching rules (RFC 4517, RFC 4518, RFC 4523, RFC 4530).

- A syntax validates a value; a value that fails gets
  invalidAttributeSyntax on add and modify.
- A matching rule turns a stored value and an assertion value into keys;
  two values match when their keys are equal. Keys of ordering rules sort
  as the values do, so `>=`, `<=`, sorting and the index share one form.
- String preparation (RFC 4518) is approximated by NFKC, case folding for
  the caseIgnore rules, and collapsing of insignificant spaces.
- Rules that need the schema (distinguishedNameMatch, the certificate
  rules, whose issuer is a DN) are built by `builtin(normalizer)`.
- presentationAddressMatch and protocolInformationMatch (X.520) compare
  the string forms case-insensitively; authzMatch (OpenLDAP's authz
  syntax) compares `dn:` values by their normalised DN.
- The RFC 2307 syntaxes: a netgroup triple is `(host,user,domain)`, a
  boot parameter `key=server:path`, both ASCII.
- certificateExactMatch (RFC 4523 §2.5) compares a certificate's serial
  number and issuer; its assertion is the GSER form
  `{ serialNumber 123, issuer rdnSequence:"cn=CA" }` (the two in either
  order, and the `rdnSequence:` prefix may be left out, as OpenLDAP
  accepts) or OpenLDAP's older `123$cn=CA`. The serial is decimal, hex as
  `0x7b` (how `certdir ca issue` prints serials, and how OpenLDAP writes
  them in GSER; certdir takes it in the older form too), or `'7b'H`.
- attributeCertificateExactMatch (X.509 §17.3.2) compares an attribute
  certificate's (RFC 5755 §4.1) serial number and its issuer's
  baseCertificateID (issuer directoryName and serial), the parts slapd
  compares; a certificate whose issuer names no baseCertificateID with a
  directoryName has no key and is refused as invalidAttributeSyntax. Its
  assertion is slapd's GSER form, components in ASN.1 order:
  `{ serialNumber 5, issuer { baseCertificateID { issuer
  { directoryName:rdnSequence:"cn=AA" }, serial 7 } } }`. pyasn1-modules'
  RFC 5755 structures are imported at the first attribute certificate:
  building them costs 0.1 s of CPU, which every process would pay.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from cryptography import x509
from pyasn1.codec.der import decoder
from pyasn1.error import PyAsn1Error

from directory.protocol import ber
from directory.protocol.dn import DN, PLAIN, Normalizer
from directory.protocol.results import LDAPError, ProtocolError

if TYPE_CHECKING:
    from pyasn1_modules import rfc5280


class InvalidValue(ValueError):
    """A value or assertion that does not fit the syntax or rule."""


Keyer = Callable[[bytes], bytes]
Validator = Callable[[bytes], None]


@dataclass(frozen=True, slots=True)
class Syntax:
    oid: str
    description: str
    validate: Validator
    binary: bool = False


@dataclass(frozen=True, slots=True, eq=False)
class MatchingRule:
    oid: str
    names: tuple[str, ...]
    syntax: str
    kind: str  # "equality", "ordering" or "substrings"
    value_key: Keyer
    assertion_key: Keyer

    @property
    def name(self) -> str:
        return self.names[0] if self.names else self.oid


# --- string preparation ------------------------------------------------------

def _text(value: bytes) -> str:
    try:
        return value.decode()
    except UnicodeDecodeError:
        raise InvalidValue("value is not UTF-8") from None


def _spaces(text: str) -> str:
    return " ".join(text.split())


def _nfkc(value: bytes) -> str:
    text = _text(value)
    # ASCII is its own NFKC form; most directory values are ASCII.
    return text if value.isascii() else unicodedata.normalize("NFKC", text)


def case_ignore(value: bytes) -> bytes:
    return _spaces(_nfkc(value).casefold()).encode()


def case_exact(value: bytes) -> bytes:
    return _spaces(_nfkc(value)).encode()


def _ia5(value: bytes) -> str:
    if not value.isascii():
        raise InvalidValue("value is not IA5 (ASCII)")
    return value.decode()


def case_exact_ia5(value: bytes) -> bytes:
    return _spaces(_ia5(value)).encode()


def case_ignore_ia5(value: bytes) -> bytes:
    return _spaces(_ia5(value).lower()).encode()


def telephone_number(value: bytes) -> bytes:
    return "".join(c for c in _text(value).casefold() if c not in " -").encode()


def numeric_string(value: bytes) -> bytes:
    digits = value.replace(b" ", b"")
    if not digits.isdigit():
        raise InvalidValue("value is not a numeric string")
    return digits


def octet_string(value: bytes) -> bytes:
    return value


def boolean(value: bytes) -> bytes:
    if value not in (b"TRUE", b"FALSE"):
        raise InvalidValue("boolean is TRUE or FALSE")
    return value


_INTEGER = re.compile(rb"(0|-?[1-9][0-9]*)\Z")


def integer(value: bytes) -> bytes:
    """Order-preserving key: sign, then digit count, then digits; a negative
    number's count and digits are complemented so larger magnitudes sort
    lower."""
    value = value.strip()
    if not _INTEGER.match(value):
        raise InvalidValue("value is not an integer")
    if value.startswith(b"-"):
        digits = value[1:]
        return b"\x00" + bytes(255 - b for b in len(digits).to_bytes(4, "big") + digits)
    return b"\x01" + len(value).to_bytes(4, "big") + value


_TIME = re.compile(
    r"(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})?(\d{2})?(?:[.,](\d+))?"
    r"(Z|[+-](?:[01]\d|2[0-3])(?:[0-5]\d)?)\Z")


def generalized_time(value: bytes) -> bytes:
    """Key: the UTC instant as `YYYYmmddHHMMSS.ffffff`, fixed width."""
    m = _TIME.match(_text(value).strip())
    if not m:
        raise InvalidValue("value is not a GeneralizedTime")
    year, month, day, hour, minute, second, fraction, zone = m.groups()
    leap = second == "60"  # RFC 4517 §3.3.13 allows a leap second
    try:
        when = dt.datetime(int(year), int(month), int(day), int(hour),
                           int(minute or 0), 59 if leap else int(second or 0), tzinfo=dt.UTC)
    except ValueError as e:
        raise InvalidValue(f"bad GeneralizedTime: {e}") from None
    if leap:
        when += dt.timedelta(seconds=1)
    if fraction:
        unit = 1 if second else 60 if minute else 3600
        when += dt.timedelta(seconds=unit * float("0." + fraction))
    if zone != "Z":
        offset = dt.timedelta(hours=int(zone[1:3]), minutes=int(zone[3:5] or 0))
        when = when - offset if zone[0] == "+" else when + offset
    return when.strftime("%Y%m%d%H%M%S.%f").encode()


_OID = re.compile(r"([0-2](\.(0|[1-9][0-9]*))+|[A-Za-z][A-Za-z0-9-]*)\Z")


@lru_cache(maxsize=1024)
def object_identifier(value: bytes) -> bytes:
    text = _text(value).strip()
    if not _OID.match(text):
        raise InvalidValue("value is not an OID or descriptor")
    return text.lower().encode()


def _object_identifier_key(oid_of: Callable[[str], str | None]) -> Keyer:
    """objectIdentifierMatch with names the schema knows replaced by their
    OIDs, so `person` and `2.5.6.6` are the same value (RFC 4517 §4.2.26)."""
    @lru_cache(maxsize=4096)
    def key(value: bytes) -> bytes:
        text = object_identifier(value).decode()
        return (oid_of(text) or text).encode()

    return key


_UUID = re.compile(rb"[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}\Z")


def uuid(value: bytes) -> bytes:
    if not _UUID.match(value):
        raise InvalidValue("value is not a UUID")
    return value.lower()


def first_component(value: bytes) -> bytes:
    """The OID or integer that opens an RFC 4512 description."""
    text = _text(value).strip()
    if text.startswith("("):
        text = text[1:].strip()
    return text.split(None, 1)[0].lower().encode() if text else b""


def case_ignore_list(value: bytes) -> bytes:
    return b"$".join(case_ignore(line) for line in value.split(b"$"))


_NETGROUP_TRIPLE = re.compile(rb"\(\s*[^,()\s]*\s*,\s*[^,()\s]*\s*,\s*[^,()\s]*\s*\)\Z")
_BOOT_PARAMETER = re.compile(rb"[^=\s]+=[^:\s]*:\S*\Z")


def _netgroup_triple(value: bytes) -> None:
    """RFC 2307 §2.4: `(host,user,domain)`, any part may be empty."""
    if not value.isascii() or not _NETGROUP_TRIPLE.match(value):
        raise InvalidValue("value is not a netgroup triple (host,user,domain)")


def _boot_parameter(value: bytes) -> None:
    """RFC 2307 §2.4: `key=server:path`."""
    if not value.isascii() or not _BOOT_PARAMETER.match(value):
        raise InvalidValue("value is not a boot parameter key=server:path")


def bit_string(value: bytes) -> bytes:
    if not re.fullmatch(rb"'[01]*'B", value):
        raise InvalidValue("value is not a bit string")
    return value


# --- syntax validators -----------------------------------------------------

def _keyer_check(keyer: Keyer) -> Validator:
    def validate(value: bytes) -> None:
        keyer(value)

    return validate


def _non_empty_utf8(value: bytes) -> None:
    if not _text(value):
        raise InvalidValue("value is empty")


def _any(value: bytes) -> None:
    return None


_PRINTABLE = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 '()+,-./:?=")


def _printable(value: bytes) -> None:
    if not value or not frozenset(value) <= _PRINTABLE:
        raise InvalidValue("value is not a PrintableString")


def _country(value: bytes) -> None:
    _printable(value)
    if len(value) != 2:
        raise InvalidValue("country string has two letters")


def _telephone(value: bytes) -> None:
    _printable(value)


def _certificate(value: bytes) -> None:
    _parse_certificate(value)


def _certificate_list(value: bytes) -> None:
    try:
        x509.load_der_x509_crl(value)
    except ValueError as e:
        raise InvalidValue(f"value is not a DER certificate list: {e}") from None


def _der_sequence(value: bytes) -> None:
    if len(value) < 2 or value[0] != 0x30:
        raise InvalidValue("value is not a DER SEQUENCE")


def _dn_validator(normalizer: Normalizer) -> Validator:
    def validate(value: bytes) -> None:
        _dn_key(normalizer, _text(value))

    return validate


# --- rules that need the schema ----------------------------------------------

def _dn_key(normalizer: Normalizer, text: str) -> bytes:
    try:
        return DN.parse(text, normalizer).normalized.encode()
    except LDAPError as e:
        raise InvalidValue(e.message) from None


def authz(normalizer: Normalizer) -> Keyer:
    """authzMatch (OpenLDAP's authzTo/authzFrom): a `dn:` or `dn.exact:`
    value compares by its normalised DN, any other by its text with
    insignificant spaces collapsed."""
    def key(value: bytes) -> bytes:
        text = _spaces(_text(value))
        style, colon, dn = text.partition(":")
        if colon and style.lower() in ("dn", "dn.exact", "dn.base"):
            return b"dn:" + _dn_key(normalizer, dn.strip())
        return text.encode()

    return key


def _foreign_dn_key(normalizer: Normalizer, text: str) -> bytes:
    """A DN written by another system (a certificate issuer): types the
    schema does not know are compared by name."""
    try:
        return DN.parse(text, normalizer).normalized.encode()
    except LDAPError:
        return _dn_key(PLAIN, text)


@lru_cache(maxsize=4096)
def _parse_certificate(value: bytes) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(value)
    except ValueError as e:
        raise InvalidValue(f"value is not a DER certificate: {e}") from None


_SERIAL = r"-?(?:0x[0-9a-f]+|'[0-9a-f]+'h|[0-9]+)"
_ISSUER = r'(?:rdnSequence\s*:\s*)?"(?P<{}>(?:[^"]|"")*)"'
_GSER = re.compile(
    rf"\{{\s*(?:serialNumber\s+(?P<serial>{_SERIAL})\s*,\s*issuer\s+{_ISSUER.format('issuer')}"
    rf"|issuer\s+{_ISSUER.format('first')}\s*,\s*serialNumber\s+(?P<last>{_SERIAL}))\s*\}}",
    re.IGNORECASE | re.DOTALL)
_SERIAL_AND_ISSUER = re.compile(r"(?P<serial>0x[0-9a-f]+|[0-9]+)\$(?P<issuer>.*)",
                                re.IGNORECASE | re.DOTALL)


def _serial(text: str) -> int:
    """A serial written in decimal, as `0x7b` or as `'7b'H`."""
    sign, digits = (-1, text[1:]) if text.startswith("-") else (1, text)
    if digits[:2].lower() == "0x":
        return sign * int(digits[2:], 16)
    if digits.startswith("'"):
        return sign * int(digits[1:-2], 16)
    return sign * int(digits)


def _exact_assertion(text: str) -> tuple[int, str]:
    """The serial and issuer DN of a certificate exact assertion."""
    gser = _GSER.fullmatch(text)
    if gser is not None:
        serial = gser.group("serial") or gser.group("last")
        issuer = gser.group("issuer") if gser.group("issuer") is not None else gser.group(
            "first")
        return _serial(serial), issuer.replace('""', '"')
    old = _SERIAL_AND_ISSUER.fullmatch(text)
    if old is not None:
        return _serial(old.group("serial")), old.group("issuer")
    raise InvalidValue('certificateExactMatch wants { serialNumber N, issuer rdnSequence:"DN" }'
                       " or N$DN")


def _serial_and_issuer(value: bytes) -> tuple[int, bytes]:
    """The serial number and the issuer's DER, read straight from the
    certificate's DER (RFC 5280 §4.1): cheaper than a full parse, and the
    issuer's DER is a good cache key because few issuers sign many
    certificates."""
    try:
        _, start, end = ber.read_tlv(value, 0, len(value))
        _, pos, tbs_end = ber.read_tlv(value, start, end)
        tag, s, e = ber.read_tlv(value, pos, tbs_end)
        if tag == 0xA0:  # explicit version
            tag, s, e = ber.read_tlv(value, e, tbs_end)
        if tag != ber.INTEGER:
            raise InvalidValue("certificate has no serial number")
        serial = int.from_bytes(value[s:e], "big", signed=True)
        _, _, algorithm_end = ber.read_tlv(value, e, tbs_end)
        tag, _, issuer_end = ber.read_tlv(value, algorithm_end, tbs_end)
    except ProtocolError as error:
        raise InvalidValue(f"value is not a DER certificate: {error.message}") from None
    return serial, value[algorithm_end:issuer_end]


def _certificate_keys(normalizer: Normalizer) -> tuple[Keyer, Keyer]:
    issuers: dict[bytes, bytes] = {}

    def value_key(value: bytes) -> bytes:
        serial, issuer_der = _serial_and_issuer(value)
        issuer = issuers.get(issuer_der)
        if issuer is None:
            if len(issuers) >= 1024:
                issuers.clear()
            name = _parse_certificate(value).issuer.rfc4514_string()
            issuer = issuers[issuer_der] = _foreign_dn_key(normalizer, name)
        return str(serial).encode() + b"$" + issuer

    def assertion_key(value: bytes) -> bytes:
        number, dn = _exact_assertion(_text(value).strip())
        return str(number).encode() + b"$" + _foreign_dn_key(normalizer, dn)

    return value_key, assertion_key


def _name_text(name: rfc5280.Name) -> str:
    """An X.509 Name decoded by pyasn1 as an RFC 4514 string."""
    rdns = []
    for rdn in name["rdnSequence"]:
        attributes = []
        for ava in rdn:
            value, _ = decoder.decode(bytes(ava["value"]))
            attributes.append(x509.NameAttribute(
                x509.ObjectIdentifier(str(ava["type"])), str(value)))
        rdns.append(x509.RelativeDistinguishedName(attributes))
    return x509.Name(rdns).rfc4514_string()


def _attribute_certificate_parts(value: bytes) -> tuple[int, int, str]:
    """The serial number, the baseCertificateID serial and its issuer's
    directoryName of a DER attribute certificate."""
    from pyasn1_modules import rfc5755

    try:
        certificate, _ = decoder.decode(value, asn1Spec=rfc5755.AttributeCertificate())
        info = certificate["acinfo"]
        base = info["issuer"]["v2Form"]["baseCertificateID"]
        names = [n["directoryName"] for n in base["issuer"] if n.getName() == "directoryName"]
        if not names:
            raise InvalidValue("attribute certificate issuer has no directoryName")
        return int(info["serialNumber"]), int(base["serial"]), _name_text(names[0])
    except (PyAsn1Error, ValueError) as e:
        raise InvalidValue(f"value is not an attribute certificate with a "
                           f"baseCertificateID: {e}") from None


_AC_ASSERTION = re.compile(
    rf"\{{\s*serialNumber\s+(?P<serial>{_SERIAL})\s*,\s*issuer\s*\{{\s*baseCertificateID\s*"
    rf"\{{\s*issuer\s*\{{\s*directoryName\s*:\s*{_ISSUER.format('issuer')}\s*\}}\s*,\s*"
    rf"serial\s+(?P<base_serial>{_SERIAL})\s*\}}\s*\}}\s*\}}",
    re.IGNORECASE | re.DOTALL)


def _attribute_certificate_keys(normalizer: Normalizer) -> tuple[Keyer, Keyer]:
    def key(serial: int, base_serial: int, issuer: str) -> bytes:
        return f"{serial}${base_serial}$".encode() + _foreign_dn_key(normalizer, issuer)

    def value_key(value: bytes) -> bytes:
        return key(*_attribute_certificate_parts(value))

    def assertion_key(value: bytes) -> bytes:
        found = _AC_ASSERTION.fullmatch(_text(value).strip())
        if found is None:
            raise InvalidValue("attributeCertificateExactMatch wants { serialNumber N, issuer "
                               "{ baseCertificateID { issuer { directoryName:rdnSequence:\"DN\" "
                               "}, serial M } } }")
        return key(_serial(found.group("serial")), _serial(found.group("base_serial")),
                   found.group("issuer").replace('""', '"'))

    return value_key, assertion_key


# --- the tables ------------------------------------------------------------

_S = "1.3.6.1.4.1.1466.115.121.1."
DIRECTORY_STRING = _S + "15"
NIS_NETGROUP_TRIPLE = "1.3.6.1.1.1.0.0"
BOOT_PARAMETER = "1.3.6.1.1.1.0.1"
AUTHZ = "1.3.6.1.4.1.4203.666.2.7"


def builtin(normalizer: Normalizer, oid_of: Callable[[str], str | None] = lambda _: None,
            ) -> tuple[dict[str, Syntax], dict[str, MatchingRule]]:
    """The syntaxes and matching rules certdir implements, by OID; `oid_of`
    maps a schema name to its OID."""
    dn_key: Keyer = lambda v: _dn_key(normalizer, _text(v))  # noqa: E731
    oid_key = _object_identifier_key(oid_of)
    cert_value, cert_assertion = _certificate_keys(normalizer)
    ac_value, ac_assertion = _attribute_certificate_keys(normalizer)
    authz_key = authz(normalizer)
    syntaxes = [
        Syntax(_S + "3", "Attribute Type Description", _non_empty_utf8),
        Syntax(_S + "4", "Audio", _any, True),
        Syntax(_S + "5", "Binary", _any, True),
        Syntax(_S + "6", "Bit String", _keyer_check(bit_string)),
        Syntax(_S + "7", "Boolean", _keyer_check(boolean)),
        Syntax(_S + "8", "Certificate", _certificate, True),
        Syntax(_S + "9", "Certificate List", _certificate_list, True),
        Syntax(_S + "10", "Certificate Pair", _der_sequence, True),
        Syntax(_S + "11", "Country String", _country),
        Syntax(_S + "12", "DN", _dn_validator(normalizer)),
        Syntax(_S + "13", "Data Quality", _non_empty_utf8),
        Syntax(_S + "14", "Delivery Method", _non_empty_utf8),
        Syntax(DIRECTORY_STRING, "Directory String", _non_empty_utf8),
        Syntax(_S + "16", "DIT Content Rule Description", _non_empty_utf8),
        Syntax(_S + "17", "DIT Structure Rule Description", _non_empty_utf8),
        Syntax(_S + "19", "DSA Quality", _non_empty_utf8),
        Syntax(_S + "21", "Enhanced Guide", _non_empty_utf8),
        Syntax(_S + "22", "Facsimile Telephone Number", _non_empty_utf8),
        Syntax(_S + "23", "Fax", _any, True),
        Syntax(_S + "24", "Generalized Time", _keyer_check(generalized_time)),
        Syntax(_S + "25", "Guide", _non_empty_utf8),
        Syntax(_S + "26", "IA5 String", _keyer_check(case_exact_ia5)),
        Syntax(_S + "27", "INTEGER", _keyer_check(integer)),
        Syntax(_S + "28", "JPEG", _any, True),
        Syntax(_S + "30", "Matching Rule Description", _non_empty_utf8),
        Syntax(_S + "31", "Matching Rule Use Description", _non_empty_utf8),
        Syntax(_S + "34", "Name And Optional UID", _non_empty_utf8),
        Syntax(_S + "35", "Name Form Description", _non_empty_utf8),
        Syntax(_S + "36", "Numeric String", _keyer_check(numeric_string)),
        Syntax(_S + "37", "Object Class Description", _non_empty_utf8),
        Syntax(_S + "38", "OID", _keyer_check(object_identifier)),
        Syntax(_S + "39", "Other Mailbox", _non_empty_utf8),
        Syntax(_S + "40", "Octet String", _any),
        Syntax(_S + "41", "Postal Address", _non_empty_utf8),
        Syntax(_S + "42", "Protocol Information", _non_empty_utf8),
        Syntax(_S + "43", "Presentation Address", _non_empty_utf8),
        Syntax(_S + "44", "Printable String", _printable),
        Syntax(_S + "49", "Supported Algorithm", _der_sequence, True),
        Syntax(_S + "50", "Telephone Number", _telephone),
        Syntax(_S + "51", "Teletex Terminal Identifier", _non_empty_utf8),
        Syntax(_S + "52", "Telex Number", _non_empty_utf8),
        Syntax(_S + "54", "LDAP Syntax Description", _non_empty_utf8),
        Syntax(_S + "58", "Substring Assertion", _non_empty_utf8),
        Syntax("1.3.6.1.1.16.1", "UUID", _keyer_check(uuid)),
        Syntax("1.3.6.1.1.15.1", "X.509 Certificate Exact Assertion", _non_empty_utf8),
        Syntax("1.3.6.1.4.1.4203.666.11.2.1", "CSN", _non_empty_utf8),
        Syntax("1.3.6.1.4.1.4203.666.11.10.2.1", "X.509 AttributeCertificate", _der_sequence,
               True),
        Syntax("1.3.6.1.4.1.4203.666.11.10.2.2", "AttributeCertificate Exact Assertion",
               _non_empty_utf8),
        Syntax(NIS_NETGROUP_TRIPLE, "RFC2307 NIS Netgroup Triple", _netgroup_triple),
        Syntax(BOOT_PARAMETER, "RFC2307 Boot Parameter", _boot_parameter),
        Syntax(AUTHZ, "OpenLDAP authz", _keyer_check(authz_key)),
    ]
    rules = [
        _rule("2.5.13.0", "objectIdentifierMatch", "38", "equality", oid_key),
        _rule("2.5.13.1", "distinguishedNameMatch", "12", "equality", dn_key),
        _rule("2.5.13.2", "caseIgnoreMatch", "15", "equality", case_ignore),
        _rule("2.5.13.3", "caseIgnoreOrderingMatch", "15", "ordering", case_ignore),
        _rule("2.5.13.4", "caseIgnoreSubstringsMatch", "58", "substrings", case_ignore),
        _rule("2.5.13.5", "caseExactMatch", "15", "equality", case_exact),
        _rule("2.5.13.6", "caseExactOrderingMatch", "15", "ordering", case_exact),
        _rule("2.5.13.7", "caseExactSubstringsMatch", "58", "substrings", case_exact),
        _rule("2.5.13.8", "numericStringMatch", "36", "equality", numeric_string),
        _rule("2.5.13.9", "numericStringOrderingMatch", "36", "ordering", numeric_string),
        _rule("2.5.13.10", "numericStringSubstringsMatch", "58", "substrings", numeric_string),
        _rule("2.5.13.11", "caseIgnoreListMatch", "41", "equality", case_ignore_list),
        _rule("2.5.13.12", "caseIgnoreListSubstringsMatch", "58", "substrings", case_ignore),
        _rule("2.5.13.13", "booleanMatch", "7", "equality", boolean),
        _rule("2.5.13.14", "integerMatch", "27", "equality", integer),
        _rule("2.5.13.15", "integerOrderingMatch", "27", "ordering", integer),
        _rule("2.5.13.16", "bitStringMatch", "6", "equality", bit_string),
        _rule("2.5.13.17", "octetStringMatch", "40", "equality", octet_string),
        _rule("2.5.13.18", "octetStringOrderingMatch", "40", "ordering", octet_string),
        _rule("2.5.13.20", "telephoneNumberMatch", "50", "equality", telephone_number),
        _rule("2.5.13.21", "telephoneNumberSubstringsMatch", "58", "substrings",
              telephone_number),
        _rule("2.5.13.22", "presentationAddressMatch", "43", "equality", case_ignore),
        _rule("2.5.13.23", "uniqueMemberMatch", "34", "equality", dn_key),
        _rule("2.5.13.24", "protocolInformationMatch", "42", "equality", case_ignore),
        _rule("2.5.13.27", "generalizedTimeMatch", "24", "equality", generalized_time),
        _rule("2.5.13.28", "generalizedTimeOrderingMatch", "24", "ordering", generalized_time),
        _rule("2.5.13.29", "integerFirstComponentMatch", "27", "equality", first_component,
              first_component),
        _rule("2.5.13.30", "objectIdentifierFirstComponentMatch", "38", "equality",
              first_component, oid_key),
        _rule("2.5.13.34", "certificateExactMatch", "1.3.6.1.1.15.1", "equality",
              cert_value, cert_assertion),
        _rule("2.5.13.45", "attributeCertificateExactMatch", "1.3.6.1.4.1.4203.666.11.10.2.2",
              "equality", ac_value, ac_assertion),
        _rule("1.3.6.1.4.1.1466.109.114.1", "caseExactIA5Match", "26", "equality",
              case_exact_ia5),
        _rule("1.3.6.1.4.1.1466.109.114.2", "caseIgnoreIA5Match", "26", "equality",
              case_ignore_ia5),
        _rule("1.3.6.1.4.1.1466.109.114.3", "caseIgnoreIA5SubstringsMatch", "58", "substrings",
              case_ignore_ia5),
        _rule("1.3.6.1.4.1.4203.1.2.1", "caseExactIA5SubstringsMatch", "58", "substrings",
              case_exact_ia5),
        _rule("1.3.6.1.4.1.4203.666.4.12", "authzMatch", AUTHZ, "equality", authz_key),
        _rule("1.3.6.1.1.16.2", "UUIDMatch", "1.3.6.1.1.16.1", "equality", uuid),
        _rule("1.3.6.1.1.16.3", "UUIDOrderingMatch", "1.3.6.1.1.16.1", "ordering", uuid),
        _rule("1.3.6.1.4.1.4203.666.11.2.2", "CSNMatch", "1.3.6.1.4.1.4203.666.11.2.1",
              "equality", octet_string),
        _rule("1.3.6.1.4.1.4203.666.11.2.3", "CSNOrderingMatch", "1.3.6.1.4.1.4203.666.11.2.1",
              "ordering", octet_string),
    ]
    return {s.oid: s for s in syntaxes}, {r.oid: r for r in rules}


# Syntaxes whose values are all values of a wider syntax too (RFC 4517 §3.3):
# a rule asserting the wider one applies to attributes of these.
_NARROWER: dict[str, frozenset[str]] = {
    DIRECTORY_STRING: frozenset(_S + n for n in ("11", "26", "36", "44", "50")),
    _S + "26": frozenset(_S + n for n in ("11", "36", "44")),
}


def covers(assertion_syntax: str, value_syntax: str) -> bool:
    """Whether a rule asserting `assertion_syntax` can compare values of
    `value_syntax`."""
    return assertion_syntax == value_syntax or value_syntax in _NARROWER.get(
        assertion_syntax, frozenset())


def _rule(oid: str, name: str, syntax: str, kind: str, value_key: Keyer,
          assertion_key: Keyer | None = None) -> MatchingRule:
    return MatchingRule(oid, (name,), syntax if "." in syntax else _S + syntax, kind,
                        value_key, assertion_key or value_key)


def rule_names(rules: Iterable[MatchingRule]) -> dict[str, MatchingRule]:
    """Rules by lower-cased name and by OID."""
    table: dict[str, MatchingRule] = {}
    for rule in rules:
        table[rule.oid] = rule
        for name in rule.names:
            table[name.lower()] = rule
    return table
