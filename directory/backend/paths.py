"""Where an entry sits in the tree, as one sortable key (DESIGN.md, "Storage").

- An entry's *path* is its normalised RDNs from the root down, each ended
  by a NUL byte. RFC 4514 escapes NUL in a normalised DN, so a NUL in a
  path is always a separator.
- The paths below an entry are exactly those between its own path and
  `after(path)`, in byte order: a subtree is one range of an ordered index
  in every backend.
- Entries found another way (an index lookup) are kept to a search's scope
  by `in_scope` (RFC 4511 §4.5.1.2: base, one level, subtree; children is
  the subtree without its base).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from functools import lru_cache

from directory.entry import Entry
from directory.protocol.dn import DN
from directory.protocol.messages import Scope

# Above this many ids from an index, a one-level or subtree scan beats
# fetching them one by one (every backend).
MAX_IDS = 5000

# Paths of DNs up to this long are cached (a long one is a client's choice).
MAX_CACHED_PATH = 256


def path_of(dn: DN) -> bytes:
    if len(dn.normalized) > MAX_CACHED_PATH:
        return _path(dn)
    return _cached_path(dn)


def _path(dn: DN) -> bytes:
    return b"".join(rdn.normalized.encode() + b"\x00" for rdn in reversed(dn.rdns))


_cached_path = lru_cache(maxsize=4096)(_path)


def after(path: bytes) -> bytes:
    """The smallest path greater than every path below `path`."""
    return path[:-1] + b"\x01" if path else b"\xff"


def in_scope(entries: Iterable[Entry], base: DN, scope: Scope) -> Iterator[Entry]:
    depth = len(base)
    for entry in entries:
        dn = entry.dn
        if scope == Scope.BASE:
            if dn == base:
                yield entry
        elif not dn.is_descendant_of(base):
            continue
        elif scope == Scope.SUB or (scope == Scope.ONE and len(dn) == depth + 1) or (
                scope == Scope.CHILDREN and len(dn) > depth):
            yield entry
