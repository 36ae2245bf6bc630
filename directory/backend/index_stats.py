"""Index statistics, the same in every backend (DESIGN.md, "Storage"): about
how many entries an index query selects, so the planner (search_plan.py)
leaves an unselective index for a scan.

- The keys held by more than `bound(entries)` entries (one in `HEAVY_SHARE`,
  and more than `MIN_HEAVY`) have their counts in the table `idx_stats`
  (attr, key, entries). They are counted again at open when the number of
  entries moved by more than a quarter (or by `MIN_DRIFT`) since the last
  count, which `meta` keeps under 'stats'; a rebuilt index drops that
  record, so its keys are counted at once.
- A bulk load (`loaded`) writes them itself from the rows its postings
  wrote, key by key, in its own transaction, unless a key's count may be
  off by more than a quarter of the bound: by the entries there before
  and the index rows written or removed otherwise. A directory loaded
  whole (`ldif import` after `init`) then opens without counting 3
  million index rows again (a third of a second at 100,000 people).
- An Equal query is estimated from memory: a heavy key's count, every other
  key at the bound, so the equality lookups of the hot path cost no
  statement. Prefixes, presence and `After` ranges are counted by the
  backend when asked, up to one entry in `SCAN_SHARE` (beyond which the
  number no longer matters); (objectClass=*) selects every entry; an
  intersection selects at most its smallest part, a union at most the sum
  of its parts.
- Stale statistics only misjudge a key's size: a plan is never wrong, only
  slower.
- A bulk load may leave out a substring index's key (a gram) that most of
  the entries it adds hold (`unkept`: more than one in `UNKEPT_SHARE` of
  at least `MIN_UNKEPT` entries): such a key never selects well enough to
  beat a scan, and the grams of a domain every mail address ends with were
  two fifths of an address book's index rows. The key is named in
  `idx_unkept` in the same transaction and from then on is estimated at
  more entries than the directory holds, so the planner (search_plan.py)
  never looks it up: the rows it may still have (written before, or by
  later writes) are never read. A rebuilt index keeps every key again.
- The directory's size is the backend's (its highest id, never less than
  the number of entries).
- The statements are in the portable dialect of `Records`, so both
  backends run them through their own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from directory.backend import (
    Equal,
    IndexQuery,
    Intersection,
    Presence,
    Range,
    Records,
    Union,
)
from directory.backend.index_keys import SCAN_SHARE

HEAVY_SHARE = 100
MIN_HEAVY = 16
MIN_DRIFT = 256
UNKEPT_SHARE = 2
MIN_UNKEPT = 1_000

# Counts the entries of a range query, up to a limit.
Count = Callable[[Range, int], int]


def bound(entries: int) -> int:
    """The most entries a key is held by without having its count kept."""
    return max(MIN_HEAVY, entries // HEAVY_SHARE)


def unkept(held: int, added: int) -> bool:
    """Whether a bulk load that added `added` entries, `held` of them
    holding a substring index's key, leaves the key out."""
    return added >= MIN_UNKEPT and held * UNKEPT_SHARE > added


def stale(records: Records, entries: int) -> bool:
    """Whether the statistics were counted for a directory of another size."""
    row = records.row("SELECT value FROM meta WHERE name = 'stats'")
    if row is None:
        return True
    counted = int(row[0])
    return abs(entries - counted) > max(MIN_DRIFT, counted // 4)


def recount(records: Records, entries: int) -> None:
    """Count the heavy keys again if the statistics are stale (inside the
    write transaction `records` belongs to)."""
    if not stale(records, entries):
        return
    records.run("DELETE FROM idx_stats")
    records.run("INSERT INTO idx_stats SELECT attr, key, count(*) FROM idx "
                "GROUP BY attr, key HAVING count(*) > ?", (bound(entries),))
    _counted(records, entries)


def loaded(records: Records, entries: int, posted: Mapping[tuple[str, bytes], int],
           off: int) -> None:
    """After a bulk load, in its transaction: the heavy keys' counts from
    the rows its postings wrote (`posted`), if `off` (by how many rows any
    count may be wrong) is within a quarter of the bound; else the next
    open judges them as usual."""
    heavy = bound(entries)
    if off * 4 > heavy:
        return
    records.run("DELETE FROM idx_stats")
    for (attr, key), count in posted.items():
        if count > heavy:
            records.run("INSERT INTO idx_stats VALUES (?, ?, ?)", (attr, key, count))
    _counted(records, entries)


def _counted(records: Records, entries: int) -> None:
    records.run("INSERT INTO meta VALUES ('stats', ?) ON CONFLICT (name) "
                "DO UPDATE SET value = excluded.value", (str(entries),))


def forget(records: Records) -> None:
    """Have the next open count the keys again (the index was rebuilt)."""
    records.run("DELETE FROM meta WHERE name = 'stats'")


@dataclass(frozen=True, slots=True)
class Statistics:
    """The heavy keys' counts and the keys left out; a backend that stores
    keys cut to `max_key` bytes has them cut so here too, and looks keys up
    the same way."""

    heavy: Mapping[tuple[str, bytes], int]
    max_key: int | None = None
    left_out: frozenset[tuple[str, bytes]] = frozenset()

    @classmethod
    def read(cls, records: Records, max_key: int | None = None) -> Statistics:
        heavy = {(attr, bytes(key)): int(count) for attr, key, count in records.rows(
            "SELECT attr, key, entries FROM idx_stats")}
        left_out = frozenset((attr, bytes(key)) for attr, key in records.rows(
            "SELECT attr, key FROM idx_unkept"))
        return cls(heavy, max_key, left_out)

    def estimate(self, query: IndexQuery, entries: int, count: Count) -> int:
        """About the entries `query` selects in a directory of `entries`."""
        if isinstance(query, Equal):
            row = (query.attribute, query.key[:self.max_key])
            if row in self.left_out:
                return entries + 1
            return self.heavy.get(row, bound(entries))
        if isinstance(query, Intersection | Union):
            parts = [self.estimate(q, entries, count) for q in query.queries]
            if isinstance(query, Intersection):
                return min(parts, default=0)
            return sum(parts)
        if isinstance(query, Presence) and query.attribute == "objectclass":
            return entries
        return count(query, entries // SCAN_SHARE + 1)
