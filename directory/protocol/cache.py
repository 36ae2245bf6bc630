"""A map bounded by what its values cost in bytes, not by how many there are.

- Each item is put with its cost (an estimate of the bytes it keeps alive);
  the total never exceeds `max_bytes`, nor the count `max_items`. An item
  costing more than the whole bound is not kept at all.
- The oldest items go first when room is needed (insertion order: cheaper
  than LRU on every hit, and what is used often is put back soon). An
  ordered dict drops its first item in constant time, where a plain dict
  would scan past the holes earlier deletions left.
- `epoch` moves whenever an item is forgotten or the cache cleared (not
  when room pushes one out): a value read from a source before something
  was forgotten may be older than what the source now holds, so a reader
  notes `epoch` when it reads and puts what it read only while `epoch`
  has not moved since (one int compare per put).
"""

from __future__ import annotations

import sys
from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class BoundedCache(Generic[K, V]):
    __slots__ = ("_items", "epoch", "max_bytes", "max_items", "used")

    def __init__(self, max_bytes: int, max_items: int = sys.maxsize) -> None:
        self.max_bytes = max_bytes
        self.max_items = max_items
        self.used = 0
        self.epoch = 0
        self._items: OrderedDict[K, tuple[V, int]] = OrderedDict()

    def get(self, key: K) -> V | None:
        item = self._items.get(key)
        return None if item is None else item[0]

    def put(self, key: K, value: V, cost: int) -> None:
        if cost > self.max_bytes or self.max_items <= 0:
            return
        self._remove(key)
        items = self._items
        while self.used + cost > self.max_bytes or len(items) >= self.max_items:
            self.used -= items.popitem(last=False)[1][1]
        items[key] = (value, cost)
        self.used += cost

    def forget(self, key: K) -> None:
        self.epoch += 1
        self._remove(key)

    def _remove(self, key: K) -> None:
        item = self._items.pop(key, None)
        if item is not None:
            self.used -= item[1]

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def clear(self) -> None:
        self.epoch += 1
        self._items.clear()
        self.used = 0

    def __len__(self) -> int:
        return len(self._items)
