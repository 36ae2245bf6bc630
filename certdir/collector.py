"""CPython's cyclic garbage collector in the long runs: the server and
`certdir ldif import`.

- `settle()`: what was made so far (modules, schema, configuration) is
  frozen out of the collector, and a full collection runs after
  `FULL_COLLECTION_AFTER` young ones instead of CPython's 10. A full
  collection walks every object the process holds: the server's entry
  cache, an import's buffered rows. With the default, one ran every few
  seconds (a quarter of a second each at 100,000 entries, measured), for
  nearly no garbage: everything but reference cycles is freed by reference
  counting as it ends, and cycles are still freed, within minutes.
- A young collection runs after `YOUNG_COLLECTION_AFTER` allocations
  instead of CPython's 700. Each walks what is young and still alive: with
  700, that was mostly the objects of the requests in progress, walked
  again and again (a sixth of the server's CPU under a mail client's
  type-ahead at 100,000 entries, py-spy); with 10,000 most of them are
  gone by then, and a pause took 1.6 ms on average (measured).
- `freeze()` before forking workers: their collections then never write
  to the pages the parent made, which stay shared instead of being copied
  into each worker.
"""

from __future__ import annotations

import gc

FULL_COLLECTION_AFTER = 1000
YOUNG_COLLECTION_AFTER = 10_000


def settle() -> None:
    _, middle, _ = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_AFTER, middle, FULL_COLLECTION_AFTER)


def freeze() -> None:
    gc.freeze()
