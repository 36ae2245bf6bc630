"""Privileges and access levels, as slapd names them (slapd.access(5)).

- Privileges: disclose (d), auth (x), compare (c), search (s), read (r),
  add (a) and delete (z) of values or entries.
- A level is cumulative: none < disclose < auth < compare < search < read
  < write, where write is add and delete together and `add` / `delete`
  alone are read plus that half of write.
- `=xw`-style sets name privileges exactly, without the lower ones (self
  may change its password without being able to read it).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntFlag


class Rights(IntFlag):
    NONE = 0
    DISCLOSE = 1
    AUTH = 2
    COMPARE = 4
    SEARCH = 8
    READ = 16
    ADD = 32
    DELETE = 64


_READ = Rights.DISCLOSE | Rights.AUTH | Rights.COMPARE | Rights.SEARCH | Rights.READ
ALL = _READ | Rights.ADD | Rights.DELETE
WRITE = Rights.ADD | Rights.DELETE

LEVELS: Mapping[str, Rights] = {
    "none": Rights.NONE,
    "disclose": Rights.DISCLOSE,
    "auth": Rights.DISCLOSE | Rights.AUTH,
    "compare": Rights.DISCLOSE | Rights.AUTH | Rights.COMPARE,
    "search": Rights.DISCLOSE | Rights.AUTH | Rights.COMPARE | Rights.SEARCH,
    "read": _READ,
    "add": _READ | Rights.ADD,
    "delete": _READ | Rights.DELETE,
    "write": ALL,
}

LETTERS: Mapping[str, Rights] = {
    "d": Rights.DISCLOSE, "x": Rights.AUTH, "c": Rights.COMPARE, "s": Rights.SEARCH,
    "r": Rights.READ, "a": Rights.ADD, "z": Rights.DELETE, "w": WRITE,
}


def parse_level(text: str) -> Rights:
    """A level name (`read`) or an exact set (`=xw`); ValueError names what is wrong."""
    if text.startswith("="):
        rights = Rights.NONE
        for letter in text[1:]:
            if letter not in LETTERS:
                raise ValueError(f"{text!r}: unknown privilege {letter!r} (one of "
                                 f"{''.join(LETTERS)})")
            rights |= LETTERS[letter]
        return rights
    if text not in LEVELS:
        raise ValueError(f"{text!r}: unknown level (one of {', '.join(LEVELS)} or =letters)")
    return LEVELS[text]


def letters(rights: Rights) -> str:
    """The `=letters` form: `=dxcsr` for read."""
    return "=" + "".join(letter for letter, r in LETTERS.items() if letter != "w" and r in rights)


def describe(rights: Rights) -> str:
    """The level's name when `rights` is one, else its `=letters` form."""
    for name, level in LEVELS.items():
        if level == rights:
            return name
    return letters(rights)
