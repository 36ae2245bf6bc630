"""A map bounded by what its values cost in bytes, not by how many there are.

- Each item is put with its cost (an estimate of the bytes it keeps alive);
  the total never exceeds `max_bytes`, nor the count `max_items`. An item
  costing more than the whole bound is not kept at all.
- The oldest items go first when room is needed (insertion order: cheaper
  than LRU on every hit, and what is used often is put back soon).
"""

from __future__ import annotations

import sys
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class BoundedCache(Generic[K, V]):
    __slots__ = ("_costs", "_values", "max_bytes", "max_items", "used")

    def __init__(self, max_bytes: int, max_items: int = sys.maxsize) -> None:
        self.max_bytes = max_bytes
        self.max_items = max_items
        self.used = 0
        self._values: dict[K, V] = {}
        self._costs: dict[K, int] = {}

    def get(self, key: K) -> V | None:
        return self._values.get(key)

    def put(self, key: K, value: V, cost: int) -> None:
        if cost > self.max_bytes or self.max_items <= 0:
            return
        self.forget(key)
        values, costs = self._values, self._costs
        while self.used + cost > self.max_bytes or len(values) >= self.max_items:
            self.forget(next(iter(values)))
        values[key] = value
        costs[key] = cost
        self.used += cost

    def forget(self, key: K) -> None:
        if key in self._values:
            del self._values[key]
            self.used -= self._costs.pop(key)

    def clear(self) -> None:
        self._values.clear()
        self._costs.clear()
        self.used = 0

    def __len__(self) -> int:
        return len(self._values)
