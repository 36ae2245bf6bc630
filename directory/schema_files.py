"""Reading schema files as slapd reads them (slapd.conf(5), RFC 4512 §4.1).

- A statement starts in the first column; a line that starts with white
  space continues the line before it. A line starting with `#` is a
  comment and an empty line is blank: either ends the statement, and the
  lines that continue a comment are comment too, as in slapd.conf.
- The keyword and its description are parted by any white space (tabs
  too). Keywords, in any case: a word that starts with `attribute` (as
  slapd takes `attributetype`, `attributeTypes` and the like) other than
  slapd's `attributeoptions` directive, `objectclass` or `objectclasses`,
  `objectidentifier`, `ldapsyntax`, `ditcontentrule` or `ditcontentrules`
  (RFC 4512 §4.1.6); a trailing `:` (the LDIF spelling) is dropped. Any
  other is refused.
- `objectidentifier NAME OID` defines an OID macro (slapd's oidm): `NAME`
  and `NAME:suffix` stand for `OID` and `OID.suffix` in the OID of a
  later attribute type, object class, syntax, DIT content rule or macro
  and in a SYNTAX, across every file of one load. A macro defined again
  with the same OID is accepted, with another OID refused naming both
  places; an unknown macro is refused.
- A description is `( oid KEYWORD value ... )` in RFC 4512 §4.1 form;
  after its closing parenthesis a `#` comment may follow, nothing else
  (slapd drops any text there, which would hide a mistake). Its
  definition, as cn=Subschema publishes it, holds the OIDs the macros
  stand for, and its SYNTAX unquoted (slapd takes `SYNTAX '1.2.3'`,
  RFC 4512 does not).
- A `.ldif` file is the cn=config form slapd also ships (olcSchemaConfig
  entries): each olcObjectIdentifier, olcLdapSyntaxes, olcAttributeTypes,
  olcObjectClasses and olcDitContentRules value is the statement of the
  same name, its `{n}` order prefix dropped; the macros of an entry come
  first.
- Every refusal is a SchemaError naming the file and the line.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from directory import ldif

ATTRIBUTE_TYPE = "attributetype"
OBJECT_CLASS = "objectclass"
LDAP_SYNTAX = "ldapsyntax"
OBJECT_IDENTIFIER = "objectidentifier"
DIT_CONTENT_RULE = "ditcontentrule"

_KEYWORDS: Mapping[str, str] = {
    "objectclass": OBJECT_CLASS,
    "objectclasses": OBJECT_CLASS,
    "objectidentifier": OBJECT_IDENTIFIER,
    "ldapsyntax": LDAP_SYNTAX,
    "ditcontentrule": DIT_CONTENT_RULE,
    "ditcontentrules": DIT_CONTENT_RULE,
}
_ATTRIBUTE_PREFIX = "attribute"
# slapd's one other directive with that prefix: configuration, not schema.
_ATTRIBUTE_OPTIONS = "attributeoptions"

_TOKEN = re.compile(r"\s*(\(|\)|\$|'(?:[^'\\]|\\.)*'|[^\s()$']+)")
_FLAGS = frozenset({"OBSOLETE", "SINGLE-VALUE", "COLLECTIVE", "NO-USER-MODIFICATION",
                    "ABSTRACT", "STRUCTURAL", "AUXILIARY"})
_DEPTH: Mapping[str, int] = {"(": 1, ")": -1}
_NUMERIC_OID = re.compile(r"[0-2](\.(0|[1-9][0-9]*))*\Z")


class SchemaError(Exception):
    """A schema file that cannot be loaded."""


@dataclass(frozen=True, slots=True)
class Description:
    """One definition of a schema file, its macros expanded."""

    where: str  # "file:line"
    kind: str  # ATTRIBUTE_TYPE, OBJECT_CLASS, LDAP_SYNTAX or DIT_CONTENT_RULE
    oid: str
    fields: Mapping[str, list[str]]
    definition: str


def _tokens(text: str) -> list[str]:
    found, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise SchemaError(f"cannot read {text[pos:pos + 20]!r}")
        found.append(m.group(1))
        pos = m.end()
    return found


def _unquote(token: str) -> str:
    return token[1:-1] if token.startswith("'") else token


def _closed(words: list[str]) -> list[str]:
    """The tokens up to the parenthesis that closes the first one; a `#`
    comment may follow it, nothing else."""
    depth, end = 0, None
    for i, word in enumerate(words):
        depth += _DEPTH.get(word, 0)
        if depth == 0:
            end = i + 1
            break
    if not words or words[0] != "(" or end is None:
        raise SchemaError("a description is `( oid ... )`")
    rest = words[end:]
    if rest and not rest[0].startswith("#"):
        raise SchemaError(f"text after the closing parenthesis: {' '.join(rest)[:40]!r}")
    return words[:end]


def parse_description(words: list[str]) -> tuple[str, dict[str, list[str]]]:
    """Split the tokens of `( oid KEYWORD value ... )` into the OID and
    keyword values."""
    if len(words) < 3:
        raise SchemaError("a description is `( oid ... )`")
    oid, rest = words[1], iter(words[2:-1])
    fields: dict[str, list[str]] = {}
    for keyword in rest:
        word = keyword.upper()
        if word in _FLAGS:
            fields[word] = []
            continue
        value = next(rest, None)
        if value is None:
            raise SchemaError(f"{keyword} has no value")
        if value == "(":
            items = []
            for token in rest:
                if token == ")":
                    break
                if token != "$":
                    items.append(_unquote(token))
            fields[word] = items
        else:
            fields[word] = [_unquote(value)]
    return oid, fields


def _keyword(word: str) -> str | None:
    word = word.rstrip(":").lower()
    if word.startswith(_ATTRIBUTE_PREFIX) and word != _ATTRIBUTE_OPTIONS:
        return ATTRIBUTE_TYPE
    return _KEYWORDS.get(word)


def _statements(path: Path) -> Iterator[tuple[int, str]]:
    """(line, text) of each statement of a schema file, comments dropped."""
    try:
        text = path.read_text()
    except UnicodeDecodeError as e:
        raise SchemaError(f"{path}: not UTF-8 (byte {e.start})") from None
    start, lines, comment = 0, list[str](), False
    for number, line in enumerate([*text.splitlines(), ""], 1):
        if line[:1].isspace():
            if comment:
                continue
            if not lines:
                raise SchemaError(f"{path}:{number}: continuation line outside a statement")
            lines.append(line.strip())
            continue
        if lines:
            yield start, " ".join(lines)
        comment = line.startswith("#")
        start, lines = number, [] if comment or not line else [line.strip()]


class Macros:
    """The objectidentifier macros of one load."""

    def __init__(self) -> None:
        self._oids: dict[str, tuple[str, str]] = {}  # name -> (OID, where)

    def define(self, where: str, name: str, oid: str) -> None:
        expanded = self.expand(oid)
        known = self._oids.get(name.lower())
        if known is not None and known[0] != expanded:
            raise SchemaError(f"objectidentifier {name} is {expanded} here "
                              f"but {known[0]} at {known[1]}")
        if known is None:
            self._oids[name.lower()] = (expanded, where)

    def expand(self, token: str) -> str:
        """`NAME` or `NAME:suffix` as the OID it stands for; any other
        token as it is."""
        if _NUMERIC_OID.match(token):
            return token
        name, colon, suffix = token.partition(":")
        known = self._oids.get(name.lower())
        if known is None:
            if colon:
                raise SchemaError(f"unknown objectidentifier macro {name}")
            return token
        return f"{known[0]}.{suffix}" if colon else known[0]


# cn=config's schema attributes (the .ldif form of slapd's schema files) and
# the statements they hold.
_CONFIG_ATTRIBUTES: Mapping[str, str] = {
    "olcobjectidentifier": OBJECT_IDENTIFIER,
    "olcldapsyntaxes": LDAP_SYNTAX,
    "olcattributetypes": ATTRIBUTE_TYPE,
    "olcobjectclasses": OBJECT_CLASS,
    "olcditcontentrules": DIT_CONTENT_RULE,
}
_NAMING = frozenset({"objectclass", "cn"})
_ORDER_PREFIX = re.compile(r"\A\s*\{\d+\}")


def _ldif_statements(path: Path) -> Iterator[tuple[int, str]]:
    """(line, text) of each statement of a cn=config schema entry file:
    its olc* values as statements, `{n}` order prefixes dropped, macros
    first; objectClass and cn name the entry and are passed over."""
    try:
        records = ldif.parse_bytes(path.read_bytes())
    except ldif.LDIFError as e:
        raise SchemaError(f"{path}:{e.line}: {str(e).split(': ', 1)[1]}") from None
    for record in records:
        found = []
        for line, (name, value) in zip(record.attribute_lines, record.attributes, strict=True):
            if name.lower() in _NAMING:
                continue
            keyword = _CONFIG_ATTRIBUTES.get(name.lower())
            if keyword is None:
                raise SchemaError(f"{path}:{line}: unknown schema attribute {name!r}")
            try:
                text = _ORDER_PREFIX.sub("", value.decode(), count=1)
            except UnicodeDecodeError:
                raise SchemaError(f"{path}:{line}: {name} value is not UTF-8") from None
            found.append((keyword != OBJECT_IDENTIFIER, line, f"{keyword} {text}"))
        for _, line, text in sorted(found, key=lambda each: each[0]):
            yield line, text


def read(path: Path, macros: Macros) -> Iterator[Description]:
    """The definitions of one schema file (a `.ldif` file: the cn=config
    entry slapd's schema files also ship as), defining its macros on the
    way."""
    statements = _ldif_statements(path) if path.suffix == ".ldif" else _statements(path)
    for line, text in statements:
        where = f"{path}:{line}"
        word, *rest = text.split(None, 1)
        kind = _keyword(word)
        try:
            if kind is None:
                raise SchemaError(f"unknown statement {word!r}")
            if kind == OBJECT_IDENTIFIER:
                args = " ".join(rest).split()
                if len(args) != 2:
                    raise SchemaError("objectidentifier takes a name and an OID")
                macros.define(where, *args)
                continue
            yield _description(where, kind, _tokens(" ".join(rest)), macros)
        except SchemaError as e:
            raise SchemaError(f"{where}: {e}") from None


def _description(where: str, kind: str, words: list[str], macros: Macros) -> Description:
    words = _closed(words)
    if len(words) > 1:
        words[1] = macros.expand(words[1])
    for i, word in enumerate(words[:-1]):
        if word.upper() == "SYNTAX":
            oid, brace, bound = _unquote(words[i + 1]).partition("{")
            words[i + 1] = macros.expand(oid) + brace + bound
    oid, fields = parse_description(words)
    return Description(where, kind, oid, fields, " ".join(words))
