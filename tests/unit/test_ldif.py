"""LDIF (RFC 2849): the RFC's examples, change records, errors, and the writer."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from directory import ldif
from directory.ldif import (
    LDIFControl,
    LDIFError,
    LDIFModification,
    LDIFRecord,
    parse_bytes,
    write_entry,
)

VECTORS = Path(__file__).resolve().parents[1] / "data" / "ldif"
OU_JA = "\u55b6\u696d\u90e8"


def vector(name: str) -> bytes:
    return (VECTORS / name).read_bytes()


def values(record: LDIFRecord, name: str) -> list[bytes]:
    return [v for n, v in record.attributes if n.lower() == name.lower()]


# --- RFC 2849 examples ---------------------------------------------------------

def test_example1_two_entries() -> None:
    first, second = parse_bytes(vector("rfc2849-example1.ldif"))
    assert first.dn == "cn=Barbara Jensen, ou=Product Development, dc=airius, dc=com"
    assert first.line == 2
    assert first.changetype is None
    assert values(first, "objectclass") == [b"top", b"person", b"organizationalPerson"]
    assert values(first, "cn") == [b"Barbara Jensen", b"Barbara J Jensen", b"Babs Jensen"]
    assert values(first, "telephonenumber") == [b"+1 408 555 1212"]
    assert values(first, "description") == [b"A big sailing fan."]
    assert len(first.attributes) == 10
    assert second.dn == "cn=Bjorn Jensen, ou=Accounting, dc=airius, dc=com"
    assert second.line == 14
    assert len(second.attributes) == 6


def test_example2_folded_value_and_no_space_after_colon() -> None:
    (record,) = parse_bytes(vector("rfc2849-example2.ldif"))
    assert record.dn == "cn=Barbara Jensen, ou=Product Development, dc=airius, dc=com"
    assert values(record, "description") == [
        b"Babs is a big sailing fan, and travels extensively in search of perfect "
        b"sailing conditions."]
    assert values(record, "title") == [b"Product Manager, Rod and Reel Division"]
    assert values(record, "objectclass") == [b"top", b"person", b"organizationalPerson"]


def test_example3_base64_value() -> None:
    (record,) = parse_bytes(vector("rfc2849-example3.ldif"))
    assert values(record, "description") == [
        b"What a careful reader you are!  This value is base-64-encoded because it has a "
        b"control character in it (a CR).\r  By the way, you should really get out more."]


def test_example4_utf8_values_and_language_tags() -> None:
    first, second = parse_bytes(vector("rfc2849-example4.ldif"))
    assert first.dn == f"ou={OU_JA},o=Airius"
    assert values(first, "ou") == [OU_JA.encode()]
    assert values(first, "ou;lang-ja") == [OU_JA.encode()]
    assert values(first, "ou;lang-ja;phonetic") == [
        "\u3048\u3044\u304e\u3087\u3046\u3076".encode()]
    assert values(first, "ou;lang-en") == [b"Sales"]
    assert second.dn == f"uid=rogasawara,ou={OU_JA},o=Airius"
    assert values(second, "cn;lang-ja") == ["\u5c0f\u7b20\u539f \u30ed\u30c9\u30cb\u30fc".encode()]
    assert values(second, "userpassword") == [b"{SHA}O3HSv1MusyL4kTjP+HKI5uxuNoM="]
    assert values(second, "title;lang-en") == [b"Sales, Director"]
    assert len(second.attributes) == 24


def with_photo(name: str, tmp_path: Path, photo: bytes) -> bytes:
    """The vector with its `file:///usr/local/...` URL pointed at a real file."""
    path = tmp_path / "photo.jpg"
    path.write_bytes(photo)
    text = vector(name).decode()
    start = text.index("file:///usr/local/directory/photos/")
    end = text.index(".jpg", start) + len(".jpg")
    return (text[:start] + path.as_uri() + text[end:]).encode()


def test_example5_file_url(tmp_path: Path) -> None:
    photo = bytes(range(256))
    (record,) = parse_bytes(with_photo("rfc2849-example5.ldif", tmp_path, photo))
    assert values(record, "jpegphoto") == [photo]
    assert values(record, "cn") == [b"Horatio Jensen", b"Horatio N Jensen"]


def test_example6_change_records(tmp_path: Path) -> None:
    photo = b"\xff\xd8\xff\xe0 not really a JPEG"
    add, delete, modrdn, moddn, modify, replace_empty = parse_bytes(
        with_photo("rfc2849-example6.ldif", tmp_path, photo))
    assert (add.line, add.changetype) == (3, "add")
    assert add.dn == "cn=Fiona Jensen, ou=Marketing, dc=airius, dc=com"
    assert values(add, "jpegphoto") == [photo]
    assert values(add, "uid") == [b"fiona"]
    assert delete == LDIFRecord(15, "cn=Robert Jensen, ou=Marketing, dc=airius, dc=com",
                                "delete")
    assert modrdn == LDIFRecord(19, "cn=Paul Jensen, ou=Product Development, dc=airius, dc=com",
                                "modrdn", newrdn="cn=Paula Jensen", deleteoldrdn=True)
    assert moddn == LDIFRecord(
        26, "ou=PD Accountants, ou=Product Development, dc=airius, dc=com", "modrdn",
        newrdn="ou=Product Development Accountants", deleteoldrdn=False,
        newsuperior="ou=Accounting, dc=airius, dc=com")
    assert (modify.line, modify.changetype) == (36, "modify")
    assert modify.modifications == (
        LDIFModification("add", "postaladdress", (b"123 Anystreet $ Sunnyvale, CA $ 94086",)),
        LDIFModification("delete", "description", ()),
        LDIFModification("replace", "telephonenumber", (b"+1 408 555 1234", b"+1 408 555 5678")),
        LDIFModification("delete", "facsimiletelephonenumber", (b"+1 408 555 9876",)),
    )
    assert replace_empty.line == 56
    assert replace_empty.dn == "cn=Ingrid Jensen, ou=Product Support, dc=airius, dc=com"
    assert replace_empty.modifications == (
        LDIFModification("replace", "postaladdress", ()),
        LDIFModification("delete", "description", ()),
    )


def test_example7_control() -> None:
    (record,) = parse_bytes(vector("rfc2849-example7.ldif"))
    assert record == LDIFRecord(
        6, "ou=Product Development, dc=airius, dc=com", "delete",
        controls=(LDIFControl("1.2.840.113556.1.4.805", True, None),))


WITHOUT_URLS = sorted(p.name for p in VECTORS.glob("rfc2849-example[12347].ldif"))


@pytest.mark.parametrize("name", WITHOUT_URLS)
def test_crlf_reads_like_lf(name: str) -> None:
    data = vector(name)
    assert parse_bytes(data.replace(b"\n", b"\r\n")) == parse_bytes(data)


# --- lines, folding, comments, values -----------------------------------------

FORMS = [
    # (why, LDIF, dn, attributes)
    ("fold inside the dn", b"dn: cn=a,dc=ex\n ample\ncn: a\n", "cn=a,dc=example", [("cn", b"a")]),
    ("fold inside the name", b"dn: cn=a\ndescr\n iption: x\n", "cn=a", [("description", b"x")]),
    ("fold keeps spaces after the first", b"dn: cn=a\ncn: a\n  b\n", "cn=a", [("cn", b"a b")]),
    ("many folds", b"dn: cn=a\ncn: a\n b\n c\n d\n", "cn=a", [("cn", b"abcd")]),
    ("folded base64", b"dn: cn=a\ncn:: aGVs\n bG8=\n", "cn=a", [("cn", b"hello")]),
    ("comment", b"# hello\ndn: cn=a\n# inside\ncn: a\n", "cn=a", [("cn", b"a")]),
    ("folded comment", b"dn: cn=a\n# comment\n continued: no\ncn: a\n", "cn=a", [("cn", b"a")]),
    ("empty value", b"dn: cn=a\ndescription:\n", "cn=a", [("description", b"")]),
    ("empty base64", b"dn: cn=a\ndescription::\n", "cn=a", [("description", b"")]),
    ("base64 dn", b"dn:: Y249YQ==\ncn: a\n", "cn=a", [("cn", b"a")]),
    ("colons in value", b"dn: cn=a\nlabeledURI: http://x:80/\n", "cn=a",
     [("labeledURI", b"http://x:80/")]),
    ("options kept", b"dn: cn=a\ncn;lang-en: a\n", "cn=a", [("cn;lang-en", b"a")]),
    ("no version line", b"dn: cn=a\ncn: a\n", "cn=a", [("cn", b"a")]),
    ("several blank lines", b"\n\ndn: cn=a\ncn: a\n\n\n", "cn=a", [("cn", b"a")]),
    ("no final newline", b"dn: cn=a\ncn: a", "cn=a", [("cn", b"a")]),
]


@pytest.mark.parametrize("why, data, dn, attributes", FORMS)
def test_forms(why: str, data: bytes, dn: str, attributes: list[tuple[str, bytes]]) -> None:
    (record,) = parse_bytes(data)
    assert record.dn == dn
    assert list(record.attributes) == attributes


@pytest.mark.parametrize("data", [b"", b"\n\n", b"version: 1\n", b"# only a comment\n"])
def test_no_records(data: bytes) -> None:
    assert parse_bytes(data) == []


def test_relative_file_url_resolves_against_base(tmp_path: Path) -> None:
    (tmp_path / "value.bin").write_bytes(b"\x00\x01")
    (record,) = parse_bytes(b"dn: cn=a\naudio:< file:value.bin\n", base=tmp_path)
    assert values(record, "audio") == [b"\x00\x01"]


def test_absolute_file_url(tmp_path: Path) -> None:
    path = tmp_path / "with space.txt"
    path.write_bytes(b"content")
    (record,) = parse_bytes(b"dn: cn=a\ndescription:< " + path.as_uri().encode() + b"\n")
    assert values(record, "description") == [b"content"]


# --- change records -----------------------------------------------------------

CHANGES = [
    # (why, LDIF, record)
    ("add", b"dn: cn=a\nchangetype: add\ncn: a\nsn: b\n",
     LDIFRecord(1, "cn=a", "add", attributes=(("cn", b"a"), ("sn", b"b")))),
    ("delete", b"dn: cn=a\nchangetype: delete\n", LDIFRecord(1, "cn=a", "delete")),
    ("changetype is case-insensitive", b"dn: cn=a\nchangetype: Delete\n",
     LDIFRecord(1, "cn=a", "delete")),
    ("modify with every operation",
     b"dn: cn=a\nchangetype: modify\nadd: mail\nmail: a@x\nmail: b@x\n-\ndelete: sn\n-\n"
     b"replace: cn\ncn: b\n-\nincrement: uidNumber\nuidNumber: 5\n-\n",
     LDIFRecord(1, "cn=a", "modify", modifications=(
         LDIFModification("add", "mail", (b"a@x", b"b@x")),
         LDIFModification("delete", "sn", ()),
         LDIFModification("replace", "cn", (b"b",)),
         LDIFModification("increment", "uidNumber", (b"5",))))),
    ("modify with base64 value", b"dn: cn=a\nchangetype: modify\nreplace: cn\ncn:: IGE=\n-\n",
     LDIFRecord(1, "cn=a", "modify", modifications=(
         LDIFModification("replace", "cn", (b" a",)),))),
    ("modify with options", b"dn: cn=a\nchangetype: modify\nadd: cn;lang-en\ncn;lang-en: a\n-\n",
     LDIFRecord(1, "cn=a", "modify", modifications=(
         LDIFModification("add", "cn;lang-en", (b"a",)),))),
    ("last '-' left out", b"dn: cn=a\nchangetype: modify\nreplace: cn\ncn: b\n",
     LDIFRecord(1, "cn=a", "modify", modifications=(
         LDIFModification("replace", "cn", (b"b",)),))),
    ("modrdn", b"dn: cn=a,dc=x\nchangetype: modrdn\nnewrdn: cn=b\ndeleteoldrdn: 1\n",
     LDIFRecord(1, "cn=a,dc=x", "modrdn", newrdn="cn=b", deleteoldrdn=True)),
    ("moddn with newsuperior",
     b"dn: cn=a,dc=x\nchangetype: moddn\nnewrdn: cn=a\ndeleteoldrdn: 0\nnewsuperior: dc=y\n",
     LDIFRecord(1, "cn=a,dc=x", "moddn", newrdn="cn=a", newsuperior="dc=y")),
    ("control without criticality or value",
     b"dn: cn=a\ncontrol: 1.2.3\nchangetype: delete\n",
     LDIFRecord(1, "cn=a", "delete", controls=(LDIFControl("1.2.3", False, None),))),
    ("control false with value",
     b"dn: cn=a\ncontrol: 1.2.3 false: abc\nchangetype: delete\n",
     LDIFRecord(1, "cn=a", "delete", controls=(LDIFControl("1.2.3", False, b"abc"),))),
    ("control with base64 value",
     b"dn: cn=a\ncontrol: 1.2.3 true:: AAE=\nchangetype: delete\n",
     LDIFRecord(1, "cn=a", "delete", controls=(LDIFControl("1.2.3", True, b"\x00\x01"),))),
    ("two controls",
     b"dn: cn=a\ncontrol: 1.2.3 true\ncontrol: 1.2.4\nchangetype: delete\n",
     LDIFRecord(1, "cn=a", "delete", controls=(LDIFControl("1.2.3", True, None),
                                               LDIFControl("1.2.4", False, None)))),
    ("version then change", b"version: 1\n\ndn: cn=a\nchangetype: delete\n",
     LDIFRecord(3, "cn=a", "delete")),
]


@pytest.mark.parametrize("why, data, record", CHANGES)
def test_change_records(why: str, data: bytes, record: LDIFRecord) -> None:
    assert parse_bytes(data) == [record]


def test_records_in_sequence_keep_their_lines() -> None:
    data = (b"version: 1\n# one\ndn: cn=a\nchangetype: delete\n\n"
            b"dn: cn=b\nchangetype: modify\ndelete: sn\n-\n\n# three\ndn: cn=c\ncn: c\n")
    assert [(r.line, r.dn) for r in parse_bytes(data)] == [(3, "cn=a"), (6, "cn=b"), (12, "cn=c")]


ERRORS = [
    # (why, LDIF, line the error must name)
    ("continuation first", b" dn: cn=a\n", 1),
    ("record without dn", b"cn: a\n", 1),
    ("second record without dn", b"dn: cn=a\ncn: a\n\ncn: b\n", 4),
    ("line without colon", b"dn: cn=a\ncn a\n", 2),
    ("empty attribute name", b"dn: cn=a\n: a\n", 2),
    ("bad base64", b"dn: cn=a\ncn: a\ncn:: !!!!\n", 3),
    ("unsupported version", b"version: 2\ndn: cn=a\ncn: a\n", 1),
    ("dn not UTF-8", b"dn:: //4=\ncn: a\n", 1),
    ("unknown changetype", b"dn: cn=a\nchangetype: frobnicate\n", 2),
    ("delete with attributes", b"dn: cn=a\nchangetype: delete\ncn: a\n", 3),
    ("add without attributes", b"dn: cn=a\nchangetype: add\n", 1),
    ("controls without changetype", b"dn: cn=a\ncontrol: 1.2.3\ncn: a\n", 1),
    ("bad control criticality", b"dn: cn=a\ncontrol: 1.2.3 maybe\nchangetype: delete\n", 2),
    ("bad control base64", b"dn: cn=a\ncontrol: 1.2.3 true:: !!\nchangetype: delete\n", 2),
    ("unknown modify operation", b"dn: cn=a\nchangetype: modify\nfrob: cn\ncn: a\n-\n", 3),
    ("wrong attribute in block",
     b"dn: cn=a\nchangetype: modify\nadd: cn\ncn: a\nsn: b\n-\n", 5),
    ("second block wrong attribute",
     b"dn: cn=a\nchangetype: modify\nadd: cn\ncn: a\n-\nreplace: sn\nsn: b\nmail: c\n-\n", 8),
    ("modrdn without newrdn", b"dn: cn=a\nchangetype: modrdn\ndeleteoldrdn: 1\n", 1),
    ("modrdn bad deleteoldrdn", b"dn: cn=a\nchangetype: modrdn\nnewrdn: cn=b\ndeleteoldrdn: 2\n",
     4),
    ("modrdn unknown line", b"dn: cn=a\nchangetype: modrdn\nnewrdn: cn=b\ncn: b\n", 4),
    ("URL scheme other than file", b"dn: cn=a\ncn:< http://example.com/x\n", 2),
    ("missing file", b"dn: cn=a\ncn:< file:///nonexistent/certdir/test\n", 2),
    ("error after a folded line",
     b"dn: cn=a\ndescription: folded\n  over\n two lines\ncn:: !!\n", 5),
    ("bad description", b"dn: cn=a\nc_n: a\n", 2),
    ("bad description again, in a later record",
     b"dn: cn=a\nc_n: a\n\ndn: cn=b\nc_n: b\n", 2),
    ("non-ASCII description", b"dn: cn=a\nc\xc3\xa9: a\n", 2),
]


@pytest.mark.parametrize("why, data, line", ERRORS)
def test_errors_name_the_line(why: str, data: bytes, line: int) -> None:
    with pytest.raises(LDIFError) as caught:
        parse_bytes(data)
    assert caught.value.line == line
    assert str(caught.value).startswith(f"line {line}:")


def test_a_bad_description_is_refused_each_time_it_is_read() -> None:
    for _ in range(2):
        with pytest.raises(LDIFError) as caught:
            parse_bytes(b"dn: cn=a\nc_n: a\n")
        assert caught.value.message == "bad attribute description 'c_n'"


def test_the_descriptions_remembered_are_bounded() -> None:
    names = b"".join(b"x%d: v\n" % n for n in range(ldif._KNOWN_LIMIT + 10))
    record, = parse_bytes(b"dn: cn=a\n" + names)
    assert len(record.attributes) == ldif._KNOWN_LIMIT + 10
    assert len(ldif._KNOWN) == ldif._KNOWN_LIMIT


# --- the writer ---------------------------------------------------------------

WRITTEN = [
    # (why, value, line written for attribute `description`)
    ("safe string", b"hello world", b"description: hello world\n"),
    ("empty", b"", b"description: \n"),
    ("inner colon and <", b"a:b<c", b"description: a:b<c\n"),
    ("leading space", b" x", b"description:: IHg=\n"),
    ("leading colon", b":x", b"description:: Ong=\n"),
    ("leading <", b"<x", b"description:: PHg=\n"),
    ("trailing space", b"x ", b"description:: eCA=\n"),
    ("NUL", b"a\x00b", b"description:: YQBi\n"),
    ("CR", b"a\rb", b"description:: YQ1i\n"),
    ("LF", b"a\nb", b"description:: YQpi\n"),
    ("non-ASCII", "\u00e9".encode(), b"description:: w6k=\n"),
]


@pytest.mark.parametrize("why, value, line", WRITTEN)
def test_write_value(why: str, value: bytes, line: bytes) -> None:
    assert write_entry("cn=a", [("description", value)]) == b"dn: cn=a\n" + line + b"\n"


def test_write_non_ascii_dn_in_base64() -> None:
    written = write_entry(f"ou={OU_JA},o=Airius", [])
    assert written == b"dn:: b3U95Za25qWt6YOoLG89QWlyaXVz\n\n"


def test_write_folds_at_76_columns() -> None:
    value = b"abcdefghijklmnopqrstuvwxyz0123456789" * 8
    written = write_entry("cn=a", [("description", value)])
    lines = written.split(b"\n")
    assert all(len(line) <= 76 for line in lines)
    assert lines[1].startswith(b"description: ")
    assert len(lines[1]) == 76
    assert all(line.startswith(b" ") for line in lines[2:-2])
    assert values(parse_bytes(written)[0], "description") == [value]


def test_write_folds_base64() -> None:
    value = bytes(range(256))
    written = write_entry("cn=a", [("jpegPhoto", value)])
    assert all(len(line) <= 76 for line in written.split(b"\n"))
    assert written.startswith(b"dn: cn=a\njpegPhoto:: ")
    assert values(parse_bytes(written)[0], "jpegPhoto") == [value]


def test_write_without_wrapping() -> None:
    value = b"x" * 200
    written = write_entry("cn=a", [("description", value)], wrap=0)
    assert written == b"dn: cn=a\ndescription: " + value + b"\n\n"


def test_written_records_concatenate() -> None:
    data = write_entry("cn=a", [("cn", b"a")]) + write_entry("cn=b", [("cn", b"b")])
    assert [(r.dn, r.attributes) for r in parse_bytes(data)] == [
        ("cn=a", (("cn", b"a"),)), ("cn=b", (("cn", b"b"),))]


def test_written_base64_is_standard() -> None:
    value = b"\xfb\xff\xfe"
    written = write_entry("cn=a", [("x", value)])
    assert written == b"dn: cn=a\nx:: " + base64.b64encode(value) + b"\n\n"


RESERVED = frozenset({"dn", "changetype", "control", "version"})
NAMES = st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,10}(;[a-z0-9-]{1,6})?", fullmatch=True).filter(
    lambda n: n.lower() not in RESERVED)
DNS = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
ATTRIBUTES = st.lists(st.tuples(NAMES, st.binary(max_size=200)), max_size=6)


@given(DNS, ATTRIBUTES, st.sampled_from([0, 20, 76]))
def test_write_parse_round_trip(dn: str, attributes: list[tuple[str, bytes]], wrap: int) -> None:
    (record,) = parse_bytes(write_entry(dn, attributes, wrap=wrap))
    assert record.dn == dn
    assert list(record.attributes) == attributes
