"""Attribute descriptions (RFC 4512 §2.5): types, options, `binary` (RFC 4522)."""

from __future__ import annotations

import pytest

from directory.protocol.attribute import (
    AttributeDescription,
    AttributeDescriptionError,
    is_range,
    options_cover,
)

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


RANGES = [
    # (description's options, a stored key's options, covered), RFC 3866 §3.1
    (("lang-en-",), ["lang-en"], True),
    (("lang-en-",), ["lang-en-us"], True),
    (("lang-en-",), ["lang-en-us-x"], True),
    (("lang-en-",), ["lang-enx"], False),
    (("lang-en-",), ["lang-fr"], False),
    (("lang-en-",), [], False),
    (("lang-",), ["lang-fr"], True),
    (("lang-",), [], False),
    (("lang-en",), ["lang-en-us"], False),
    (("lang-en",), ["lang-en"], True),
    (("lang-en-", "lang-fr"), ["lang-en-gb", "lang-fr"], True),
    (("lang-en-", "lang-fr"), ["lang-en-gb"], False),
]


@pytest.mark.parametrize("wanted, have, covered", RANGES)
def test_language_ranges(wanted: tuple[str, ...], have: list[str], covered: bool) -> None:
    assert options_cover(wanted, have) is covered


def test_only_an_option_ending_in_a_hyphen_is_a_range() -> None:
    assert [is_range(o) for o in ("lang-", "lang-en-", "lang-en")] == [True, True, False]
