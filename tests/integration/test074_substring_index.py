"""Scenario 074: substring searches served by the substring index (issue 11 part 3).

Two servers hold the same people: one with equality and substring indexes
on cn, sn, givenName, displayName and mail, one with no index but
objectClass's, where every substring search is a scan. Each search must
find the same entries on both, with the tricky values: repeated spaces,
case, non-ASCII, a cn;lang-en subtype, assertions shorter than a gram.
A last scenario changes storage.indexes between starts and checks that the
index is rebuilt, not left stale.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import SUFFIX, Server, make_server

PEOPLE = f"ou=people,{SUFFIX}"
SUB = ["eq", "sub"]
INDEXED = {"cn": SUB, "sn": SUB, "givenName": SUB, "displayName": SUB, "mail": SUB}
POPULATION = 150


def person(uid: str, **values: str) -> str:
    """An entry with base64 values; `cn_lang_en` stands for cn;lang-en."""
    lines = [f"dn: uid={uid},{PEOPLE}", "objectClass: inetOrgPerson", f"uid: {uid}"]
    for name, value in values.items():
        description = name.replace("_lang_", ";lang-")
        lines.append(f"{description}:: {base64.b64encode(value.encode()).decode()}")
    return "\n".join(lines) + "\n\n"


def book() -> bytes:
    entries = [f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n\n"]
    entries += [person(f"user{n}", cn=f"User {n}", sn=f"{n}", givenName="User",
                       mail=f"user{n}@example.com") for n in range(POPULATION)]
    entries += [
        person("amlee", cn="Anna  Maria   Lee", sn="Lee", givenName="Anna Maria",
               mail="anna.lee@other.org"),
        person("emuller", cn="Émile MÜLLER", sn="Müller", givenName="Émile",
               displayName="Émile Müller (Zürich)", mail="emile@example.com"),
        person("hschmidt", cn="Hans", cn_lang_en="Hans Schmidt", sn="Schmidt",
               mail="hans@other.org"),
        person("ab", cn="Ab", sn="Ab", mail="ab@x.org"),
        person("obrien", cn="Pat O'Brien", sn="O'Brien", displayName="pat  o'brien"),
    ]
    return "".join(entries).encode()


def start(tmp: Path, indexes: object) -> Server:
    server = make_server(tmp, "--no-ca")
    server.configure("storage", indexes=indexes)
    server.start()
    return server


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Server]]:
    indexed = start(tmp_path_factory.mktemp("indexed"), INDEXED)
    scanned = start(tmp_path_factory.mktemp("scanned"), ["objectClass"])
    for server in (indexed, scanned):
        added = server.tool("ldapadd", input=book())
        assert added.returncode == 0, added.stderr
    yield indexed, scanned
    for server in (indexed, scanned):
        log = server.stop()
        assert "Traceback" not in log, log


def found(server: Server, text: str) -> list[str]:
    result = server.tool("ldapsearch", "-LLL", "-o", "ldif-wrap=no", "-b", PEOPLE, text, "1.1")
    assert result.returncode == 0, result.stderr
    return sorted(line for line in result.stdout.decode().splitlines() if line)


SEARCHES = [
    # (why, filter, how many entries match)
    ("any substring", "(cn=*user 12*)", 11),
    ("two grams", "(cn=*er 14*)", 11),
    ("repeated spaces collapse in value and assertion", "(cn=*anna maria l*)", 1),
    ("spaces in the assertion collapse too", "(cn=*Maria    Lee*)", 1),
    ("case", "(cn=*MARIA*)", 1),
    ("non-ASCII, other case", "(cn=*müller*)", 1),
    ("non-ASCII piece of a gram's length in bytes", "(sn=*ül*)", 1),
    ("final substring", "(mail=*@other.org)", 2),
    ("final substring of every address", "(mail=*@example.com)", POPULATION + 1),
    ("initial, any and final", "(cn=us*er 1*9)", 6),
    ("pieces shorter than a gram", "(cn=*a*i*)", 3),
    ("one letter", "(cn=*b*)", 2),
    ("a short whole value", "(cn=*ab*)", 1),
    ("a value of a subtype with options", "(cn=*schmidt*)", 1),
    ("the subtype named with its option", "(cn;lang-en=*schmidt*)", 1),
    ("the option excludes values without it", "(cn;lang-en=*user 1*)", 0),
    ("an apostrophe", "(displayName=*o'brien*)", 1),
    ("parentheses, escaped", "(displayName=*\\28zürich\\29*)", 1),
    ("type-ahead over initial substrings", "(|(cn=anna*)(mail=anna*)(sn=anna*))", 1),
    ("type-ahead over any substrings",
     "(|(cn=*lee*)(mail=*lee*)(sn=*lee*)(givenName=*lee*))", 1),
    ("a substring in every entry", "(givenName=*ser*)", POPULATION),
    ("an AND of a class and a substring", "(&(objectClass=person)(cn=*user 14*))", 11),
    ("nothing matches", "(cn=*zzz*)", 0),
]


@pytest.mark.parametrize("why, text, count", SEARCHES)
def test_index_finds_what_a_scan_finds(pair: tuple[Server, Server], why: str, text: str,
                                       count: int) -> None:
    indexed, scanned = pair
    expected = found(scanned, text)
    assert len(expected) == count
    assert found(indexed, text) == expected


def test_changing_the_indexes_rebuilds_them(tmp_path: Path) -> None:
    """Grams dropped while cn had no sub index come back for the values
    written meanwhile."""
    server = start(tmp_path, {"cn": SUB})
    people = f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n\n"
    added = server.tool("ldapadd", input=(people + person("a", cn="Alpha Centauri", sn="A")
                                          ).encode())
    assert added.returncode == 0, added.stderr
    server.stop()
    server.configure("storage", indexes={"cn": ["eq"]})
    server.start()
    changes = (f"dn: uid=a,{PEOPLE}\nchangetype: modify\nreplace: cn\ncn: Beta Pictoris\n\n"
               + person("b", cn="Gamma Draconis", sn="B"))
    modified = server.tool("ldapmodify", "-a", input=changes.encode())
    assert modified.returncode == 0, modified.stderr
    server.stop()
    server.configure("storage", indexes={"cn": SUB})
    server.start()
    try:
        assert found(server, "(cn=*pictoris*)") == [f"dn: uid=a,{PEOPLE}"]
        assert found(server, "(cn=*draconis*)") == [f"dn: uid=b,{PEOPLE}"]
        assert found(server, "(cn=*centauri*)") == []
    finally:
        log = server.stop()
    assert "Traceback" not in log, log
