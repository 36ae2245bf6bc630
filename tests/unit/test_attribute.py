"""Attribute descriptions (RFC 4512 §2.5): types, options, `binary` (RFC 4522)."""

from __future__ import annotations

import pytest

from directory.protocol.attribute import AttributeDescription, AttributeDescriptionError

VALID = [
    # (text, type, options, binary, tagging options)
    ("cn", "cn", (), False, ()),
    ("CN", "CN", (), False, ()),
    ("commonName", "commonName", (), False, ()),
    ("x-my-attr", "x-my-attr", (), False, ()),
    ("2.5.4.3", "2.5.4.3", (), False, ()),
    ("0.9.2342.19200300.100.1.1", "0.9.2342.19200300.100.1.1", (), False, ()),
    ("userCertificate;binary", "userCertificate", ("binary",), True, ()),
    ("userCertificate;BINARY", "userCertificate", ("binary",), True, ()),
    ("cn;lang-en", "cn", ("lang-en",), False, ("lang-en",)),
    ("cn;Lang-EN", "cn", ("lang-en",), False, ("lang-en",)),
    ("cn;lang-fr;lang-en", "cn", ("lang-fr", "lang-en"), False, ("lang-en", "lang-fr")),
    ("cn;x-1;binary", "cn", ("x-1", "binary"), True, ("x-1",)),
    ("2.5.4.3;lang-de", "2.5.4.3", ("lang-de",), False, ("lang-de",)),
]


@pytest.mark.parametrize("text, type_, options, binary, tagging", VALID)
def test_parse(text: str, type_: str, options: tuple[str, ...], binary: bool,
               tagging: tuple[str, ...]) -> None:
    description = AttributeDescription.parse(text)
    assert description.type == type_
    assert description.options == options
    assert description.binary is binary
    assert description.tagging_options == tagging


@pytest.mark.parametrize("text, type_, options, binary, tagging", VALID)
def test_str_parses_back(text: str, type_: str, options: tuple[str, ...], binary: bool,
                         tagging: tuple[str, ...]) -> None:
    description = AttributeDescription.parse(text)
    assert AttributeDescription.parse(str(description)) == description
    assert str(description).lower() == text.lower()


def test_options_are_unordered_for_tagging() -> None:
    one = AttributeDescription.parse("cn;lang-en;x-a")
    other = AttributeDescription.parse("cn;X-A;lang-EN")
    assert one.tagging_options == other.tagging_options


INVALID = [
    # (why, text) — RFC 4512 §2.5 / §1.4 grammar violations
    ("empty", ""),
    ("starts with digit", "1cn"),
    ("starts with hyphen", "-cn"),
    ("underscore", "c_n"),
    ("space", "c n"),
    ("non-ASCII letter", "c\u00e9"),
    ("single-arc OID", "2"),
    ("OID with leading zero", "2.05.4.3"),
    ("OID with empty arc", "2..4"),
    ("OID with trailing dot", "2.5."),
    ("empty option", "cn;"),
    ("empty option in the middle", "cn;;binary"),
    ("option with underscore", "cn;lang_en"),
    ("option with space", "cn;lang en"),
    ("no type", ";binary"),
]


@pytest.mark.parametrize("why, text", INVALID)
def test_invalid(why: str, text: str) -> None:
    with pytest.raises(AttributeDescriptionError):
        AttributeDescription.parse(text)
