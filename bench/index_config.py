"""What both servers of the directory benchmark index, written in each one's configuration.

- One table, `INDEXES`, names every indexed attribute and its kinds: `eq` (equality, which
  in certdir also answers initial substrings) and `sub` (initial, any and final substrings).
  It is certdir's default index list, with `sub` where a mail client's type-ahead and
  `(cn=*x*)` need it.
- slapd gets one `index ATTRS KINDS` line per distinct set of kinds.
- certdir gets `storage.indexes` either as the mapping `{cn: [eq, sub], ...}` (`KINDS`) or,
  where certdir's configuration only knows a list of names (equality indexes), as that list
  (`NAMES`): `storage_indexes` writes the form asked for.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

IndexForm = Literal["kinds", "names"]

KINDS: IndexForm = "kinds"
NAMES: IndexForm = "names"

INDEXES: Mapping[str, tuple[str, ...]] = {
    "objectClass": ("eq",),
    "cn": ("eq", "sub"),
    "sn": ("eq", "sub"),
    "givenName": ("eq", "sub"),
    "mail": ("eq", "sub"),
    "uid": ("eq", "sub"),
    "member": ("eq",),
    "uniqueMember": ("eq",),
    "userCertificate": ("eq",),
}


def slapd_index_lines() -> str:
    """`index` directives of slapd.conf, attributes with the same kinds on one line."""
    groups: dict[tuple[str, ...], list[str]] = {}
    for attribute, kinds in INDEXES.items():
        groups.setdefault(kinds, []).append(attribute)
    return "".join(
        f"index {','.join(attributes)} {','.join(kinds)}\n" for kinds, attributes in groups.items()
    )


def storage_indexes(form: IndexForm) -> list[str] | dict[str, list[str]]:
    """The value of certdir's `storage.indexes` in `form`."""
    if form == KINDS:
        return {attribute: list(kinds) for attribute, kinds in INDEXES.items()}
    return list(INDEXES)
