"""CPython's cyclic garbage collector in the long runs: the server and
`certdir ldif import`.

- `settle()`: what was made so far (modules, schema, configuration) is
  frozen out of the collector, and a full collection runs after
  `FULL_COLLECTION_AFTER` middle ones (each after ten young ones) instead
  of CPython's 10. A full collection walks every object the process
  holds: the server's entry cache, an import's buffered rows. With the
  default, one ran every few seconds (a quarter of a second each at
  100,000 entries, measured), for nearly no garbage: everything but
  reference cycles is freed by reference counting as it ends, and cycles
  are still freed, within minutes.
- A young collection runs after `YOUNG_COLLECTION_AFTER` allocations
  (net of frees) instead of CPython's 700. Each walks what is young and
  still alive. With 700, that was mostly the objects of the requests in
  progress, walked again and again (a sixth of the server's CPU under a
  mail client's type-ahead at 100,000 entries, py-spy). With 10,000, the
  entry cache turned over between two young collections under that load
  (an entry decoded and one evicted leave the count as it was), so each
  walked every cached entry: 200,000 objects, 70 to 130 ms a pause, 1.1 s
  in 10 s of load, and the pauses made the p99 (115 to 125 ms). With
  100,000, three pauses in 14 s took 0.22 s and the p99 was 46 to 58 ms
  (gc.callbacks, measured); cyclic garbage waits longer, a few MB at most.
  Full collections come after as many allocations as before.
- `freeze()` before forking workers: their collections then never write
  to the pages the parent made, which stay shared instead of being copied
  into each worker.
"""

from __future__ import annotations

import gc

FULL_COLLECTION_AFTER = 100
YOUNG_COLLECTION_AFTER = 100_000


def settle() -> None:
    _, middle, _ = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_AFTER, middle, FULL_COLLECTION_AFTER)


def freeze() -> None:
    gc.freeze()
