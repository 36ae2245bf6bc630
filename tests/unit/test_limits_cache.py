"""Caches bounded in bytes, and memos that requests cannot grow (issue 10 part 4).

- `BoundedCache` keeps the total cost of its items within `max_bytes` and
  their number within `max_items`, dropping the oldest first; an item
  costing more than the bound is not kept.
- The entry cache holds at most `storage.cache_bytes` of entries, however
  many entries `storage.cache_entries` allows.
- An attribute list repeating one name 20,000 times selects what the name
  alone selects, at the cost of one.
- Filters naming an attribute with ever new options leave nothing new in
  an entry's memo; an untyped extensible match applies its rule only to
  the attribute types it applies to.
- Compiled filters are cached only when small.
- The entry cache's byte bound holds in memory actually kept, with what
  searches memoise on the cached entries.
"""

from __future__ import annotations

import gc
import time
import tracemalloc
from pathlib import Path

import pytest

from directory.backend.sqlite import SQLiteBackend
from directory.entry import Entry
from directory.predicates import Predicate, _cached, compile_filter
from directory.protocol.cache import BoundedCache
from directory.protocol.dn import DN
from directory.protocol.filter import Equality, Extensible, Filter, Or, parse
from directory.protocol.messages import Scope
from directory.resolved_filter import resolve_filter
from directory.schema import Schema
from directory.selection import encode_entry, select

SCHEMA = Schema.load([Path(__file__).resolve().parents[2] / "schema"])


def compiled(f: Filter, hidden: frozenset[str] = frozenset()) -> Predicate:
    return compile_filter(SCHEMA, resolve_filter(SCHEMA, f), hidden)


def test_bounded_cache_drops_the_oldest_to_stay_within_bytes() -> None:
    cache: BoundedCache[str, int] = BoundedCache(100)
    for i in range(10):
        cache.put(f"k{i}", i, 30)
    assert cache.used == 90
    assert [cache.get(f"k{i}") for i in range(10)] == [None] * 7 + [7, 8, 9]


def test_bounded_cache_does_not_keep_what_costs_more_than_the_bound() -> None:
    cache: BoundedCache[str, int] = BoundedCache(100)
    cache.put("small", 1, 10)
    cache.put("huge", 2, 101)
    assert (cache.get("small"), cache.get("huge"), cache.used) == (1, None, 10)


def test_bounded_cache_counts_items_too() -> None:
    cache: BoundedCache[int, int] = BoundedCache(10**9, max_items=3)
    for i in range(5):
        cache.put(i, i, 1)
    assert len(cache) == 3
    assert cache.get(0) is None and cache.get(4) == 4


def test_bounded_cache_replacing_and_forgetting_keep_the_count_right() -> None:
    cache: BoundedCache[str, int] = BoundedCache(100)
    cache.put("a", 1, 40)
    cache.put("a", 2, 50)
    assert (cache.get("a"), cache.used) == (2, 50)
    cache.forget("a")
    cache.forget("never there")
    assert (len(cache), cache.used) == (0, 0)


def test_no_items_with_a_zero_bound() -> None:
    cache: BoundedCache[str, int] = BoundedCache(10**9, max_items=0)
    cache.put("a", 1, 1)
    assert cache.get("a") is None


def person(i: int, size: int) -> Entry:
    dn = DN.parse(f"uid=u{i},dc=example,dc=com", SCHEMA)
    return Entry(dn, {"objectclass": (b"top", b"inetOrgPerson"), "uid": (f"u{i}".encode(),),
                      "cn": (b"x",), "sn": (b"y",), "description": (b"d" * size,)})


@pytest.fixture
def backend(tmp_path: Path) -> SQLiteBackend:
    store = SQLiteBackend(tmp_path / "cache.db", SCHEMA, (), cache_entries=100_000,
                          cache_bytes=2 * 1024 * 1024)
    with store.transaction() as txn:
        txn.add(Entry(DN.parse("dc=example,dc=com", SCHEMA),
                      {"objectclass": (b"top", b"domain"), "dc": (b"example",)}), root=True)
        for i in range(200):
            txn.add(person(i, 20_000))
    return store


def test_entry_cache_is_bounded_in_bytes(backend: SQLiteBackend) -> None:
    for i in range(200):
        assert backend.get(DN.parse(f"uid=u{i},dc=example,dc=com", SCHEMA)) is not None
    assert 1024 * 1024 < backend._cache.used <= 2 * 1024 * 1024
    assert len(backend._cache) < 200


def test_entry_cache_still_serves_what_it_keeps(backend: SQLiteBackend) -> None:
    dn = DN.parse("uid=u7,dc=example,dc=com", SCHEMA)
    assert backend.get(dn) is backend.get(dn)


def test_twenty_thousand_times_one_name_selects_what_it_does_once() -> None:
    started = time.monotonic()
    repeated = select(SCHEMA, ("name",) * 20_000)
    assert time.monotonic() - started < 0.5
    once = select(SCHEMA, ("name",))
    assert (repeated.names, repeated.options) == (once.names, once.options)
    assert repeated.wants("cn;lang-en", "cn")


def test_many_option_sets_cost_a_key_only_its_own_options() -> None:
    selection = select(SCHEMA, tuple(f"cn;lang-x{i}" for i in range(20_000)))
    started = time.monotonic()
    for _ in range(1000):
        assert not selection.wants("cn;lang-en", "cn")
    assert selection.wants("cn;lang-x7", "cn")
    assert time.monotonic() - started < 0.5


def sample() -> Entry:
    return person(1, 10)


def test_descriptions_with_new_options_leave_the_memo_alone() -> None:
    entry = sample()
    compiled(Equality("cn", b"x"))(entry)
    before = len(entry.memo)
    for i in range(500):
        assert compiled(Equality(f"cn;lang-x{i}", b"x"))(entry) is False
    assert len(entry.memo) == before


def test_rules_and_types_absent_from_the_entry_leave_the_memo_alone() -> None:
    entry = sample()
    for at in list(SCHEMA.attribute_types())[:200]:
        compiled(Extensible("caseIgnoreMatch", at.name, b"x"))(entry)
    assert len(entry.memo) < 10


def test_untyped_extensible_match_skips_types_the_rule_does_not_apply_to() -> None:
    entry = sample()
    # objectClass values are OIDs: caseIgnoreMatch does not apply to them.
    assert compiled(parse("(:caseIgnoreMatch:=inetorgperson)"))(entry) is False
    assert compiled(parse("(:caseIgnoreMatch:=X)"))(entry) is True
    # mail and uid are IA5 strings, which directory strings cover.
    assert compiled(parse("(:caseIgnoreMatch:=U1)"))(entry) is True


def test_untyped_extensible_matches_of_300_cost_linear_time() -> None:
    entries = [person(i, 10) for i in range(300)]
    search = Or(tuple(Extensible("caseIgnoreMatch", None, f"nobody {i}".encode())
                      for i in range(300)))
    predicate = compiled(search)
    started = time.monotonic()
    assert not any(predicate(entry) for entry in entries)
    assert time.monotonic() - started < 0.5


def test_hidden_attributes_are_not_matched_by_untyped_extensible() -> None:
    entry = sample()
    assert compiled(parse("(:caseIgnoreMatch:=u1)"),
                          frozenset({"uid", "mail"}))(entry) is False


def test_entry_cache_bound_holds_in_real_memory(tmp_path: Path) -> None:
    bound = 4 * 1024 * 1024
    store = SQLiteBackend(tmp_path / "memory.db", SCHEMA, (), cache_entries=1_000_000,
                          cache_bytes=bound)
    with store.transaction() as txn:
        txn.add(Entry(DN.parse("dc=example,dc=com", SCHEMA),
                      {"objectclass": (b"top", b"domain"), "dc": (b"example",)}), root=True)
        for i in range(5000):
            txn.add(person(i, 40))
    store.refresh()
    base = DN.parse("dc=example,dc=com", SCHEMA)
    filters = [compiled(parse(text)) for text in (
        "(description=*d*)", "(:caseIgnoreMatch:=x)", "(cn>=a)", "(sn=y)")]
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for entry in store.search(base, Scope.SUB, None):
            encode_entry(SCHEMA, entry, select(SCHEMA, ()), False, frozenset(), {})
            for predicate in filters:
                predicate(entry)
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert store._cache.used <= bound
    assert kept <= bound


def test_only_small_filters_are_kept_compiled() -> None:
    small = Or(tuple(Equality("cn", f"v{i}".encode()) for i in range(10)))
    large = Or(tuple(Equality("cn", f"v{i}".encode()) for i in range(1000)))
    huge_value = Equality("cn", b"x" * 100_000)
    assert compiled(small) is compiled(small)
    assert compiled(large) is not compiled(large)
    kept = _cached.cache_info().currsize
    compiled(huge_value)
    assert _cached.cache_info().currsize == kept
