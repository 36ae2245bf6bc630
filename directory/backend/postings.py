"""The index rows of a batch of new entries, grouped by row, for bulk loads
(`Transaction.insert_many`, `certdir ldif import`); every backend takes them.

- A batch's postings map each index row, attribute then key, to the
  places in the batch (0, 1, ...) of the entries holding it, in increasing
  order and each once.
- One place is an int; several are their decimal numbers joined by commas.
  A row's places cross from a worker process as one object instead of one
  per entry, and SQLite expands the text into rows in C (json_each)
  instead of one Python call per row: the rows of a bulk load cost the
  process that stores them a few operations per distinct key, not per row.
- A gathering may be told keys to leave out (`Transaction.left_out`: the
  rows a bulk load would drop), which it then does not gather.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

Places = int | str
Postings = dict[str, dict[bytes, Places]]
# The keys of each index a gathering leaves out (`Transaction.left_out`).
LeftOut = Mapping[str, frozenset[bytes]]
_NONE_LEFT_OUT: frozenset[bytes] = frozenset()


class Gathering:
    """Postings being gathered, entry by entry in place order, but for the
    keys `left_out` names (`Transaction.left_out`)."""

    def __init__(self, left_out: LeftOut | None = None) -> None:
        self._places: dict[str, dict[bytes, list[int]]] = {}
        self._left_out = left_out or {}

    def add(self, place: int, attribute: str, keys: Iterable[bytes]) -> None:
        """Rows of the entry at `place` (places never decrease from call to
        call; a key given twice for one entry counts once)."""
        held = self._places.get(attribute)
        if held is None:
            held = self._places[attribute] = {}
        left_out = self._left_out.get(attribute, _NONE_LEFT_OUT)
        for key in keys:
            if key in left_out:
                continue
            places = held.get(key)
            if places is None:
                held[key] = [place]
            elif places[-1] != place:
                places.append(place)

    def postings(self) -> Postings:
        return {attribute: {key: places[0] if len(places) == 1 else ",".join(map(str, places))
                            for key, places in held.items()}
                for attribute, held in self._places.items()}


def places(held: Places) -> list[int]:
    """The places a row's postings name."""
    return [held] if isinstance(held, int) else [int(place) for place in held.split(",")]


def merge(into: Postings, other: Postings) -> None:
    """Add the postings of `other` (of the same batch) to `into`."""
    for attribute, keys in other.items():
        held = into.setdefault(attribute, {})
        for key, found in keys.items():
            mine = held.get(key)
            held[key] = found if mine is None else ",".join(
                map(str, sorted({*places(mine), *places(found)})))
