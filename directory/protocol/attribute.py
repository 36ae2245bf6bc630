"""Attribute descriptions (RFC 4512 §2.5): a type and options.

- attributedescription = attributetype options; the type is a
  descriptor (`ALPHA *(ALPHA / DIGIT / "-")`) or a numeric OID, and each
  option is `;` followed by `1*(ALPHA / DIGIT / "-")`.
- Options are case-insensitive and unordered (RFC 4512 §2.5).
- `binary` is a transfer option (RFC 4522): it changes how values travel,
  not which attribute is meant, so it is kept apart from tagging options
  such as language tags (`lang-en`, RFC 3866).
- A tagging option ending in `-` is a language range (RFC 3866 §3.1):
  `lang-en-` covers `lang-en` and every tag below it (`lang-en-us`), and
  `lang-` covers every language tag.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache


class AttributeDescriptionError(ValueError):
    """A string that is not an RFC 4512 attribute description."""


def _descriptor(text: str) -> bool:
    return (text[:1].isascii() and text[:1].isalpha()
            and all(c.isascii() and (c.isalnum() or c == "-") for c in text))


def _numeric_oid(text: str) -> bool:
    parts = text.split(".")
    return len(parts) > 1 and all(p.isdigit() and (p == "0" or p[0] != "0") for p in parts)


def _option(text: str) -> bool:
    return bool(text) and all(c.isascii() and (c.isalnum() or c == "-") for c in text)


@dataclass(frozen=True, slots=True)
class AttributeDescription:
    type: str
    options: tuple[str, ...]

    @staticmethod
    def parse(text: str) -> AttributeDescription:
        # A long description is a client's choice: parsed, never cached.
        return _parse(text) if len(text) <= MAX_CACHED else _parse_text(text)

    @property
    def binary(self) -> bool:
        return "binary" in self.options

    @property
    def tagging_options(self) -> tuple[str, ...]:
        """Options other than `binary`, lower-cased and sorted."""
        return tuple(sorted({o for o in self.options if o != "binary"}))

    def __str__(self) -> str:
        return ";".join((self.type, *self.options))


MAX_CACHED = 128


def is_range(option: str) -> bool:
    return option.endswith("-")


def options_cover(wanted: Iterable[str], have: list[str]) -> bool:
    """Whether a stored key's options `have` include every option of
    `wanted`, a range covering the tag it names and the tags below it."""
    return all(any(h == w[:-1] or h.startswith(w) for h in have) if is_range(w)
               else w in have for w in wanted)


def _parse_text(text: str) -> AttributeDescription:
    name, *options = text.split(";")
    if not (_descriptor(name) or _numeric_oid(name)):
        raise AttributeDescriptionError(f"{name!r} is not an attribute type name or OID")
    for option in options:
        if not _option(option):
            raise AttributeDescriptionError(f"bad option {option!r}")
    return AttributeDescription(name, tuple(o.lower() for o in options))


_parse = lru_cache(maxsize=8192)(_parse_text)
