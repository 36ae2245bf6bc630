"""Normalised comparison of LDIF printed by ldap-utils (RFC 2849).

- Comment lines (`#`, including `# numResponses`) and the `search:` /
  `result:` / `control:` / `pagedresults:` trailer ldapsearch prints
  without -LLL are not content.
- A line starting with one space continues the previous line (RFC 2849
  `SEP SPACE` folding); folding width differs between tools, so lines are
  unwrapped before comparing.
- `attr:: base64` is decoded; the value is shown plain when it is printable
  UTF-8, so a value compares equal whether a tool chose to base64 it or not.
- Attribute descriptions are case-insensitive (RFC 4512 §2.5), so they are
  lowercased; values are compared exactly, as their ordering is
  significant only through the matching rules the server applies.
- Records are sorted by lowercased DN, attributes by name then value: a
  search returns entries and values in no defined order (RFC 4511 §4.5.2).
- A record without `dn:` (a search reference printed as `ref:` lines) is
  kept, keyed by its first line.
- `superclasses` maps an object class (lowercased) to the superclasses a
  server adds to an entry holding it (RFC 4512 §2.4.1); those missing from
  a record's objectClass values are added, so a server that stores them and
  one that does not (slapd) compare alike.
"""

from __future__ import annotations

import base64
import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

TRAILER_KEYS = frozenset({"search", "result", "text", "matched", "control", "pagedresults",
                          "sortresult"})
MASKED = "<masked>"
NO_SUPERCLASSES: Mapping[str, tuple[str, ...]] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Record:
    """One LDIF record: its DN (or reference key) and (type, value) pairs."""

    dn: str
    attributes: tuple[tuple[str, str], ...]

    def values(self, attribute: str) -> tuple[str, ...]:
        name = attribute.lower()
        return tuple(value for key, value in self.attributes if key == name)

    def names(self) -> frozenset[str]:
        return frozenset(key for key, _ in self.attributes)


def unfold(text: str) -> list[str]:
    """Logical lines: continuations joined, comments (and their continuations) dropped."""
    lines: list[str | None] = []
    for raw in text.splitlines():
        if raw.startswith(" ") and lines:
            last = lines[-1]
            if last is not None:
                lines[-1] = last + raw[1:]
            continue
        lines.append(None if raw.startswith("#") else raw)
    return [line for line in lines if line is not None]


def _value(line: str) -> tuple[str, str]:
    name, sep, rest = line.partition(":")
    if not sep:
        raise ValueError(f"not an LDIF line: {line!r}")
    if rest.startswith(":"):
        raw = base64.b64decode(rest[1:].strip())
        try:
            decoded = raw.decode("utf-8")
        except UnicodeDecodeError:
            return name.lower(), "::" + base64.b64encode(raw).decode("ascii")
        return name.lower(), decoded if decoded.isprintable() else "::" + rest[1:].strip()
    if rest.startswith("<"):
        return name.lower(), "<" + rest[1:].strip()
    return name.lower(), rest[1:] if rest.startswith(" ") else rest


def _blocks(lines: Iterable[str]) -> Iterable[list[str]]:
    block: list[str] = []
    for line in lines:
        if line.strip():
            block.append(line)
        elif block:
            yield block
            block = []
    if block:
        yield block


def parse(text: str | bytes) -> tuple[Record, ...]:
    """Records of `text` in the order printed; trailer records dropped."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    records: list[Record] = []
    for block in _blocks(unfold(text)):
        pairs = [_value(line) for line in block]
        if pairs[0][0] == "version":
            pairs = pairs[1:]
        if not pairs or all(name in TRAILER_KEYS for name, _ in pairs):
            continue
        if pairs[0][0] == "dn":
            records.append(Record(pairs[0][1], tuple(pairs[1:])))
        else:
            records.append(Record(f"{pairs[0][0]}: {pairs[0][1]}", tuple(pairs)))
    return tuple(records)


def _with_superclasses(pairs: tuple[tuple[str, str], ...],
                       superclasses: Mapping[str, tuple[str, ...]]) -> tuple[tuple[str, str], ...]:
    given = [value for name, value in pairs if name == "objectclass"]
    held = {value.lower() for value in given}
    added: list[tuple[str, str]] = []
    for value in given:
        for superclass in superclasses.get(value.lower(), ()):
            if superclass.lower() not in held:
                held.add(superclass.lower())
                added.append(("objectclass", superclass))
    return pairs + tuple(added)


def normalise(text: str | bytes, *, ignore: Iterable[str] = (), mask: Iterable[str] = (),
              superclasses: Mapping[str, tuple[str, ...]] = NO_SUPERCLASSES) -> str:
    """Canonical LDIF of `text`: sorted, unfolded, comment-free.

    `ignore` names attributes left out entirely; `mask` names attributes whose
    values vary from run to run (timestamps, UUIDs) and are replaced by a
    placeholder, so their presence and count are still compared;
    `superclasses` adds the implied object classes.
    """
    ignored = frozenset(name.lower() for name in ignore)
    masked = frozenset(name.lower() for name in mask)
    out: list[str] = []
    for record in sorted(parse(text), key=lambda r: r.dn.lower()):
        pairs = sorted(
            (name, MASKED if name in masked else value)
            for name, value in _with_superclasses(record.attributes, superclasses)
            if name not in ignored
        )
        if not record.dn.startswith("ref: "):
            out.append(f"dn: {record.dn}")
        out.extend(f"{name}: {value}" for name, value in pairs)
        out.append("")
    return "\n".join(out)


def by_dn(text: str | bytes) -> Mapping[str, Record]:
    """Records keyed by lowercased DN, for assertions on single entries."""
    return {record.dn.lower(): record for record in parse(text)}


def assert_same_ldif(actual: str | bytes, expected: str | bytes | Path, *,
                     ignore: Iterable[str] = (), mask: Iterable[str] = ()) -> None:
    """Fail with a unified diff unless both normalise to the same LDIF."""
    if isinstance(expected, Path):
        expected = expected.read_text(encoding="utf-8")
    ignore, mask = tuple(ignore), tuple(mask)
    want = normalise(expected, ignore=ignore, mask=mask)
    got = normalise(actual, ignore=ignore, mask=mask)
    if want != got:
        diff = "\n".join(difflib.unified_diff(
            want.splitlines(), got.splitlines(), "expected", "actual", lineterm=""))
        raise AssertionError(f"LDIF differs:\n{diff}")
