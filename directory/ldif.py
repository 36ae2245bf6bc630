"""LDIF reader and writer (RFC 2849, with RFC 4525 increment).

- A file holds records separated by blank lines, optionally preceded by
  `version: 1`. Lines end in LF or CRLF; a line starting with one space
  continues the previous one; a line starting with `#` is a comment
  (continuations of a comment are comment too).
- `attr: value` is a SAFE-STRING, `attr:: value` base64, `attr:< URL` the
  content of a `file://` URL (relative paths resolve against `base`).
- Content records are `dn:` plus attribute lines. Change records carry
  `control:` lines, then `changetype: add|delete|modify|modrdn|moddn`;
  modify records are blocks `add|delete|replace|increment: attr`, value
  lines for that attribute, and `-`; modrdn records have `newrdn:`,
  `deleteoldrdn: 0|1` and optionally `newsuperior:`.
- An attribute description is a name or a numeric OID with options
  (RFC 2849 AttributeDescription); anything else is an error.
- Every error names the line where it was found.
- The writer base64-encodes any value that is not a SAFE-STRING (leading
  space, `:` or `<`, trailing space, NUL, CR, LF or non-ASCII) and folds
  lines at 76 columns.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from io import BytesIO
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlparse

MOD_OPS = frozenset({"add", "delete", "replace", "increment"})
CHANGE_TYPES = frozenset({"add", "delete", "modify", "modrdn", "moddn"})
# RFC 2849 AttributeDescription: a name or numeric OID, then ;options.
_DESCRIPTION = re.compile(r"(?:[A-Za-z][A-Za-z0-9-]*|[0-9]+(?:\.[0-9]+)*)(?:;[A-Za-z0-9-]+)*")
# Descriptions already checked, as written (a file repeats a few on every
# record): the first `_KNOWN_LIMIT` seen, so a hostile file cannot grow it.
_KNOWN: dict[bytes, str] = {}
_KNOWN_LIMIT = 1024


class LDIFError(ValueError):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message


@dataclass(frozen=True, slots=True)
class LDIFModification:
    op: str
    attribute: str
    values: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class LDIFControl:
    oid: str
    critical: bool
    value: bytes | None


@dataclass(frozen=True, slots=True)
class LDIFRecord:
    line: int
    dn: str
    changetype: str | None = None
    attributes: tuple[tuple[str, bytes], ...] = ()
    modifications: tuple[LDIFModification, ...] = ()
    newrdn: str | None = None
    deleteoldrdn: bool = False
    newsuperior: str | None = None
    controls: tuple[LDIFControl, ...] = ()
    # The line each of `attributes` starts on (for messages; not compared).
    attribute_lines: tuple[int, ...] = field(default=(), compare=False)


Line = tuple[int, str, bytes]  # line number, attribute (lower-case kept as written), value


def _logical_lines(source: BinaryIO, first_line: int) -> Iterator[tuple[int, bytes | None]]:
    """(line number, unfolded line) pairs; None marks a record separator."""
    pending: bytes | None = None  # the last logical line, not yet yielded
    parts: list[bytes] | None = None  # its pieces, once it is folded
    start = number = first_line - 1
    comment = False
    for number, raw in enumerate(source, first_line):
        line = raw.rstrip(b"\r\n")
        first = line[:1]
        if first == b" ":
            if comment:
                continue
            if pending is None:
                raise LDIFError(number, "continuation line without a line to continue")
            if parts is None:
                parts = [pending]
            parts.append(line[1:])
            continue
        if pending is not None:
            yield start, pending if parts is None else b"".join(parts)
            pending = parts = None
        comment = first == b"#"
        if comment:
            continue
        if not line:
            yield number, None
            continue
        pending, start = line, number
    if pending is not None:
        yield start, pending if parts is None else b"".join(parts)
    yield number + 1, None


def _split(number: int, line: bytes, base: Path | None) -> tuple[str, bytes]:
    if line == b"-":
        return "-", b""
    colon = line.find(b":")
    if colon <= 0:
        raise LDIFError(number, f"expected 'attribute: value', got {line[:40]!r}")
    raw_name = line[:colon]
    name = _KNOWN.get(raw_name) or _description(number, raw_name)
    rest = line[colon + 1:]
    marker = rest[:1]
    if marker == b" " or not marker:
        return name, rest.lstrip(b" ")
    if marker == b":":
        try:
            return name, base64.b64decode(rest[1:].strip(), validate=True)
        except binascii.Error:
            raise LDIFError(number, f"bad base64 value for {name}") from None
    if marker == b"<":
        return name, _read_url(number, rest[1:].strip().decode(errors="replace"), base)
    return name, rest


def _description(number: int, raw_name: bytes) -> str:
    """The attribute description of a line, checked (RFC 2849)."""
    if not raw_name.isascii():
        raise LDIFError(number, "attribute description is not ASCII")
    name = raw_name.decode().strip()
    if not _DESCRIPTION.fullmatch(name):
        raise LDIFError(number, f"bad attribute description {name!r}")
    if len(_KNOWN) < _KNOWN_LIMIT:
        _KNOWN[raw_name] = name
    return name


def _read_url(number: int, url: str, base: Path | None) -> bytes:
    parsed = urlparse(url)
    if parsed.scheme != "file":
        raise LDIFError(number, f"only file:// URLs are supported, not {url!r}")
    path = Path(unquote(parsed.path))
    if not path.is_absolute() and base is not None:
        path = base / path
    try:
        return path.read_bytes()
    except OSError as e:
        raise LDIFError(number, f"cannot read {url}: {e.strerror}") from None


def _text(number: int, value: bytes, what: str) -> str:
    try:
        return value.decode()
    except UnicodeDecodeError:
        raise LDIFError(number, f"{what} is not UTF-8") from None


def parse(source: BinaryIO, *, base: Path | None = None,
          first_line: int = 1) -> Iterator[LDIFRecord]:
    """Stream the records of an LDIF file, or of a piece of one that starts
    at a record boundary on line `first_line`."""
    lines: list[Line] = []
    first = first_line == 1
    for number, line in _logical_lines(source, first_line):
        if line is not None:
            name, value = _split(number, line, base)
            if first and not lines and name.lower() == "version":
                if value.strip() != b"1":
                    raise LDIFError(number, "only LDIF version 1 is supported")
                first = False
                continue
            lines.append((number, name, value))
            continue
        if lines:
            first = False
            yield _record(lines)
            lines = []


def parse_bytes(data: bytes, *, base: Path | None = None) -> list[LDIFRecord]:
    return list(parse(BytesIO(data), base=base))


def _record(lines: list[Line]) -> LDIFRecord:
    number, name, value = lines[0]
    if name.lower() != "dn":
        raise LDIFError(number, f"a record starts with 'dn:', not {name!r}")
    dn = _text(number, value, "dn")
    rest = lines[1:]
    controls = []
    while rest and rest[0][1].lower() == "control":
        controls.append(_control(*rest.pop(0)))
    if not rest or rest[0][1].lower() != "changetype":
        if controls:
            raise LDIFError(number, "controls need a changetype")
        return LDIFRecord(number, dn, attributes=_attributes(rest),
                          attribute_lines=tuple(n for n, _, _ in rest))
    ct_number, _, ct_value = rest.pop(0)
    changetype = ct_value.decode(errors="replace").strip().lower()
    if changetype not in CHANGE_TYPES:
        raise LDIFError(ct_number, f"unknown changetype {changetype!r}")
    record = LDIFRecord(number, dn, changetype, controls=tuple(controls))
    if changetype == "add":
        if not rest:
            raise LDIFError(number, "an add record needs attributes")
        return replace(record, attributes=_attributes(rest))
    if changetype == "delete":
        if rest:
            raise LDIFError(rest[0][0], "a delete record has no other lines")
        return record
    if changetype == "modify":
        return replace(record, modifications=_modifications(rest))
    return _modrdn(record, rest)


def _attributes(lines: list[Line]) -> tuple[tuple[str, bytes], ...]:
    for number, name, _ in lines:
        if name == "-":
            raise LDIFError(number, "'-' ends a block of a modify record only")
    return tuple((name, value) for _, name, value in lines)


def _control(number: int, _name: str, value: bytes) -> LDIFControl:
    text = value.decode(errors="replace")
    head, colon, payload = text.partition(":")
    parts = head.split()
    if not parts or len(parts) > 2 or (len(parts) == 2 and parts[1] not in ("true", "false")):
        raise LDIFError(number, f"bad control line {text!r}")
    data: bytes | None = None
    if colon:
        if payload.startswith(":"):
            try:
                data = base64.b64decode(payload[1:].strip(), validate=True)
            except ValueError:  # binascii.Error, or text that is not ASCII
                raise LDIFError(number, "bad base64 control value") from None
        else:
            data = payload.lstrip(" ").encode()
    return LDIFControl(parts[0], len(parts) == 2 and parts[1] == "true", data)


def _modifications(lines: list[Line]) -> tuple[LDIFModification, ...]:
    mods: list[LDIFModification] = []
    i = 0
    while i < len(lines):
        number, op, attr_value = lines[i]
        op = op.lower()
        if op not in MOD_OPS:
            raise LDIFError(number, f"expected add/delete/replace/increment, got {op!r}")
        attribute = _text(number, attr_value, "attribute").strip()
        values: list[bytes] = []
        i += 1
        while i < len(lines) and lines[i][1] != "-":
            n2, name, value = lines[i]
            if name.lower() != attribute.lower():
                raise LDIFError(n2, f"attribute {name!r} inside a block for {attribute!r}")
            values.append(value)
            i += 1
        i += 1  # the "-" (may be left out after the last block, as ldapmodify allows)
        mods.append(LDIFModification(op, attribute, tuple(values)))
    return tuple(mods)


def _modrdn(record: LDIFRecord, lines: list[Line]) -> LDIFRecord:
    fields = {name.lower(): (number, value) for number, name, value in lines}
    unknown = set(fields) - {"newrdn", "deleteoldrdn", "newsuperior"}
    if unknown:
        raise LDIFError(fields[min(unknown)][0], f"unexpected {min(unknown)!r} in modrdn")
    if "newrdn" not in fields:
        raise LDIFError(record.line, "modrdn needs newrdn")
    number, flag = fields.get("deleteoldrdn", (record.line, b"0"))
    if flag.strip() not in (b"0", b"1"):
        raise LDIFError(number, "deleteoldrdn is 0 or 1")
    superior = fields.get("newsuperior")
    return replace(
        record,
        newrdn=_text(fields["newrdn"][0], fields["newrdn"][1], "newrdn"),
        deleteoldrdn=flag.strip() == b"1",
        newsuperior=None if superior is None else _text(superior[0], superior[1], "newsuperior"),
    )


# --- writer ------------------------------------------------------------------

def _safe(value: bytes) -> bool:
    if not value:
        return True
    if value[0] in b" :<" or value[-1:] == b" ":
        return False
    return value.isascii() and not any(b in value for b in (b"\x00", b"\r", b"\n"))


def _fold(line: bytes, wrap: int) -> bytes:
    if wrap <= 0 or len(line) <= wrap:
        return line + b"\n"
    parts = [line[:wrap]]
    parts.extend(b" " + line[i:i + wrap - 1] for i in range(wrap, len(line), wrap - 1))
    return b"\n".join(parts) + b"\n"


def write_line(name: str, value: bytes, wrap: int = 76) -> bytes:
    if _safe(value):
        return _fold(name.encode() + b": " + value, wrap)
    return _fold(name.encode() + b":: " + base64.b64encode(value), wrap)


def write_entry(dn: str, attributes: Iterable[tuple[str, bytes]], *, wrap: int = 76) -> bytes:
    """One content record followed by a blank line."""
    out = [write_line("dn", dn.encode(), wrap)]
    out.extend(write_line(name, value, wrap) for name, value in attributes)
    out.append(b"\n")
    return b"".join(out)
