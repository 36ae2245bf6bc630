"""Index rows (backend/index_keys.py) and the planner's choices (search_plan.py),
the statistics-driven ones (backend/index_stats.py) on a real backend of each
kind: SQLite, and PostgreSQL on the session's throwaway cluster.

- Keys many entries hold are counted, the others are estimated at the
  bound; prefixes and presence are counted up to a quarter of the
  directory; the planner leaves unselective parts for a scan.
- The keys are counted again at open once the directory's size moved by
  more than `MIN_DRIFT` since the last count, and not before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from certdir.config import ConfigError, from_mapping
from directory.backend import Backend, Equal, Intersection, Prefix, Presence, Union
from directory.backend.index_keys import EQ, MAX_PROBES, SUB, IndexKeys, IndexSpec, probes
from directory.backend.index_stats import MIN_DRIFT, MIN_HEAVY
from directory.backend.opening import Storage, open_backend, sqlite_url
from directory.backend.sqlite import INDEX_BATCH, SQLiteBackend
from directory.entry import Entry
from directory.predicates import compile_filter
from directory.protocol.dn import DN
from directory.protocol.filter import parse
from directory.protocol.messages import Scope
from directory.resolved_filter import resolve_filter
from directory.schema import Schema
from directory.search_plan import plan
from tests import pg_cluster

SCHEMA = Schema.load([Path(__file__).resolve().parents[2] / "schema"])
HASH = "{ARGON2}$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2g"
EQ_SUB = frozenset({EQ, SUB})
KEYS = IndexKeys(SCHEMA, [IndexSpec("cn", EQ_SUB), IndexSpec("mail", EQ_SUB), "uid"])
INDEXED = KEYS.names


def sub_rows(attributes: Mapping[str, tuple[bytes, ...]]) -> set[bytes]:
    return {key for name, key in KEYS.rows(attributes) if name == "cn:sub"}


ROWS = [
    ("equality keys under the type, grams under type:sub",
     {"cn": (b"Ann  Lee",)},
     {("cn", b"ann lee"), ("cn:sub", b"ann"), ("cn:sub", b"nn "), ("cn:sub", b"n l"),
      ("cn:sub", b" le"), ("cn:sub", b"lee")}),
    ("a value with options is indexed under its type",
     {"cn;lang-en": (b"Bob",)},
     {("cn", b"bob"), ("cn:sub", b"bob")}),
    ("a value shorter than a gram has only its equality row",
     {"cn": (b"Al",)},
     {("cn", b"al")}),
    ("an equality-only type has no grams", {"uid": (b"jdoe",)}, {("uid", b"jdoe")}),
    ("objectClass always has its equality index (keys are OIDs)",
     {"objectclass": (b"Person",)}, {("objectclass", b"2.5.6.6")}),
    ("an unindexed type has no rows", {"sn": (b"Lee",)}, set()),
    ("a value the rule refuses has no rows (mail is IA5)", {"mail": ("é@x.org".encode(),)},
     set()),
]


@pytest.mark.parametrize("why, attributes, rows", ROWS)
def test_rows(why: str, attributes: dict[str, tuple[bytes, ...]],
              rows: set[tuple[str, bytes]]) -> None:
    assert KEYS.rows(attributes) == rows


def test_grams_are_bytes_of_the_normalised_value() -> None:
    assert sub_rows({"cn": ("MÜLLER".encode(),)}) == {
        b"m\xc3\xbc", b"\xc3\xbcl", b"\xbcll", b"lle", b"ler"}


def test_probes_are_bounded_and_spread() -> None:
    assert probes([b"abcdefgh"]) == (b"abc", b"def", b"fgh")
    assert probes([b"ab", b"xyz"]) == (b"xyz",)
    assert len(probes([bytes(range(65, 123))])) == MAX_PROBES


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="cn: index kinds"):
        IndexSpec("cn", frozenset({"approx"}))


names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1,
                max_size=20)


@given(value=names, data=st.data())
def test_a_matching_assertion_only_probes_grams_of_the_value(value: str,
                                                             data: st.DataObject) -> None:
    """Soundness: whatever pieces of a value an assertion takes, in whatever
    case, every gram the planner looks up is one of the value's rows."""
    start = data.draw(st.integers(0, len(value)))
    end = data.draw(st.integers(start, len(value)))
    piece = value[start:end]
    if not piece.strip():
        return
    asked = data.draw(st.sampled_from([piece, piece.upper(), piece.lower()]))
    f = parse(f"(cn=*{escape(asked)}*)")
    entry = Entry(DN.parse("cn=x", SCHEMA), {"cn": (value.encode(),)})
    if compile_filter(SCHEMA, resolve_filter(SCHEMA, f))(entry) is not True:
        return
    query = plan(INDEXED, resolve_filter(SCHEMA, f))
    wanted = [] if query is None else list(
        query.queries if isinstance(query, Intersection) else (query,))
    assert all(isinstance(q, Equal) and q.key in sub_rows(entry.attributes)
               for q in wanted)


def escape(text: str) -> str:
    """Every byte escaped, as RFC 4515 allows."""
    return "".join(f"\\{b:02x}" for b in text.encode())


PLANS = [
    ("any substring: its grams", "(cn=*abcd*)",
     Intersection((Equal("cn:sub", b"abc"), Equal("cn:sub", b"bcd")))),
    ("final substring: its grams", "(mail=*@example.com)",
     Intersection(tuple(Equal("mail:sub", g) for g in (b"@ex", b"amp", b"le.", b"com")))),
    ("initial by prefix, the rest by grams", "(cn=ab*cde*efg)",
     Intersection((Prefix("cn", b"ab"), Equal("cn:sub", b"cde"), Equal("cn:sub", b"efg")))),
    ("pieces too short for a gram: the prefix", "(cn=ab*cd*ef)", Prefix("cn", b"ab")),
    ("pieces too short and no initial: a scan", "(cn=*ab*cd*)", None),
    ("initial alone: the prefix, no grams", "(cn=abcd*)", Prefix("cn", b"abcd")),
    ("no sub index: a scan for any substrings", "(uid=*abcd*)", None),
    ("a type with subtypes is never planned", "(name=*abcd*)", None),
    ("spaces and case normalised as the predicate does", "(cn=* AB  C *)",
     Intersection((Equal("cn:sub", b"ab "), Equal("cn:sub", b"b c")))),
    ("type-ahead: every part indexed", "(|(cn=jo*)(mail=jo*)(uid=jo*))",
     Union((Prefix("cn", b"jo"), Prefix("mail", b"jo"), Prefix("uid", b"jo")))),
    ("type-ahead over any substrings", "(|(cn=*john*)(mail=*john*))",
     Union((Intersection((Equal("cn:sub", b"joh"), Equal("cn:sub", b"ohn"))),
            Intersection((Equal("mail:sub", b"joh"), Equal("mail:sub", b"ohn")))))),
]


@pytest.mark.parametrize("why, text, query", PLANS)
def test_plan(why: str, text: str, query: object) -> None:
    assert plan(INDEXED, resolve_filter(SCHEMA, parse(text))) == query


def test_a_sub_only_index_serves_initial_substrings_by_grams() -> None:
    indexed = IndexKeys(SCHEMA, [IndexSpec("cn", frozenset({SUB}))]).names
    assert plan(indexed, resolve_filter(SCHEMA, parse("(cn=abc*)"))) == Equal("cn:sub", b"abc")


# --- statistics: a real backend holding 1,000 people ---------------------------

PEOPLE = 1000


BACKENDS = ("sqlite", "postgresql")


def book_url(kind: str, request: pytest.FixtureRequest,
             tmp_path_factory: pytest.TempPathFactory) -> str:
    """A new, empty database of the kind named."""
    if kind == "sqlite":
        return sqlite_url(tmp_path_factory.mktemp("stats") / "book.db")
    cluster: pg_cluster.Cluster = request.getfixturevalue("cluster")
    return cluster.database("stats")


def opened(url: str) -> Backend:
    return open_backend(Storage(url, SCHEMA, [IndexSpec("cn", EQ_SUB), "sn"], (), 10_000,
                                64 << 20))


def add_people(backend: Backend, first: int, last: int) -> None:
    """People `first` up to `last` (below o=book, made with the first), in ten families."""
    with backend.transaction() as txn:
        if first == 0:
            txn.add(Entry(DN.parse("o=book", SCHEMA),
                          {"objectclass": (b"organization",), "o": (b"book",)}), root=True)
        for i in range(first, last):
            txn.add(Entry(DN.parse(f"cn=person {i:04d},o=book", SCHEMA), {
                "objectclass": (b"person",), "cn": (f"person {i:04d}".encode(),),
                "sn": (f"family{i % 10}".encode(),)}))


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    url = book_url(request.param, request, tmp_path_factory)
    first = opened(url)
    add_people(first, 0, PEOPLE)
    first.close()
    # Statistics are counted at open, once the directory's size moved.
    reopened = opened(url)
    yield reopened
    reopened.close()


STATISTICS = [
    ("a class every entry has: a scan", "(objectClass=person)", None),
    ("a gram every entry has: a scan", "(cn=*son*)", None),
    ("an intersection keeps a few-entry gram alone", "(cn=*son 0042*)",
     Equal("cn:sub", b"042")),
    ("the unselective parts of an AND are dropped",
     "(&(objectClass=person)(sn=family7)(cn=*erson 01*))",
     Intersection((Equal("sn", b"family7"), Equal("cn:sub", b" 01")))),
    ("a gram in nine entries in ten is dropped", "(cn=*erson 01*)",
     Equal("cn:sub", b" 01")),
    ("an OR of selective parts is kept", "(|(cn=person 0001)(sn=family3))",
     Union((Equal("cn", b"person 0001"), Equal("sn", b"family3")))),
    ("an OR with an unselective part: a scan", "(|(cn=*son*)(sn=family3))", None),
]


@pytest.mark.parametrize("why, text, query", STATISTICS)
def test_statistics(backend: Backend, why: str, text: str, query: object) -> None:
    assert plan(backend.indexed, resolve_filter(SCHEMA, parse(text)), backend.estimate) == query


def test_estimates(backend: Backend) -> None:
    # Keys held by many entries are counted; the others are at most the bound.
    assert backend.estimate(Equal("sn", b"family7")) == PEOPLE // 10
    assert backend.estimate(Equal("objectclass", b"2.5.6.6")) == PEOPLE
    assert backend.estimate(Equal("cn:sub", b"042")) == MIN_HEAVY
    assert backend.estimate(Presence("objectclass")) == PEOPLE + 1
    # Prefixes are counted, up to one entry in four.
    assert backend.estimate(Prefix("cn", b"person 00")) == 100
    assert backend.estimate(Prefix("cn", b"person")) == (PEOPLE + 1) // 4 + 1


@pytest.fixture(params=BACKENDS)
def reopen(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Callable[[], Backend]:
    """Opens one new database of each kind, again at every call."""
    url = book_url(request.param, request, tmp_path_factory)
    return lambda: opened(url)


def family_count(reopen: Callable[[], Backend]) -> int:
    backend = reopen()
    try:
        return backend.estimate(Equal("sn", b"family3"))
    finally:
        backend.close()


def test_keys_are_counted_again_once_the_size_drifted(reopen: Callable[[], Backend]) -> None:
    backend = reopen()
    # Counted for an empty directory; MIN_DRIFT entries later, still current.
    add_people(backend, 0, MIN_DRIFT - 1)
    backend.close()
    few = family_count(reopen)
    backend = reopen()
    add_people(backend, MIN_DRIFT - 1, 2 * MIN_DRIFT)
    backend.close()
    assert (few, family_count(reopen)) == (MIN_HEAVY, 2 * MIN_DRIFT // 10)


# --- storage.indexes in certdir.yaml --------------------------------------------

def config(indexes: object) -> dict[str, object]:
    return {"suffix": "dc=example,dc=com", "root": {"password_hash": HASH},
            "storage": {"indexes": indexes}}


def test_a_list_of_names_means_equality(tmp_path: Path) -> None:
    indexes = from_mapping(config(["cn", "mail"]), tmp_path).directory.indexes
    assert indexes == (IndexSpec("cn"), IndexSpec("mail"))


def test_a_mapping_gives_kinds(tmp_path: Path) -> None:
    indexes = from_mapping(config({"cn": ["eq", "sub"], "uid": ["eq"]}),
                           tmp_path).directory.indexes
    assert indexes == (IndexSpec("cn", EQ_SUB), IndexSpec("uid"))


def test_the_defaults_index_type_ahead(tmp_path: Path) -> None:
    indexes = from_mapping({"suffix": "o=x", "root": {"password_hash": HASH}},
                           tmp_path).directory.indexes
    names = IndexKeys(SCHEMA, indexes).names
    text = "(|(cn=*john*)(sn=*john*)(givenName=*john*)(displayName=*john*))"
    assert plan(names, resolve_filter(SCHEMA, parse(text))) is not None
    assert plan(names, resolve_filter(SCHEMA, parse("(mail=*john*)"))) is None
    typeahead = parse("(|(cn=jo*)(mail=jo*)(sn=jo*)(givenName=jo*))")
    assert plan(names, resolve_filter(SCHEMA, typeahead)) is not None


BAD = [
    ({"cn": ["eq", "approx"]}, "storage.indexes.cn[1]: unknown index kind 'approx'"),
    ({"cn": []}, "storage.indexes.cn: expected a list of index kinds"),
    ({"cn": "eq"}, "storage.indexes.cn: expected a list of index kinds"),
    (["cn", 3], "storage.indexes[1]: expected a string"),
    ("cn", "storage.indexes: expected a list or a mapping"),
]


@pytest.mark.parametrize("indexes, message", BAD)
def test_bad_indexes(tmp_path: Path, indexes: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        from_mapping(config(indexes), tmp_path)


def test_a_rolled_back_savepoint_takes_its_parked_rows(tmp_path: Path) -> None:
    """An entry with more index rows than one batch parks them; a savepoint
    rolled back after that leaves no row of it, and the transaction goes on."""
    opened = SQLiteBackend(tmp_path / "book.db", SCHEMA, [IndexSpec("cn", EQ_SUB)])
    many = tuple(f"tail {n}".encode() for n in range(INDEX_BATCH))
    with opened.transaction() as txn:
        txn.add(Entry(DN.parse("o=book", SCHEMA), {"objectclass": (b"organization",)}),
                root=True)
        with pytest.raises(RuntimeError), txn.savepoint():
            txn.add(Entry(DN.parse("cn=big,o=book", SCHEMA),
                          {"objectclass": (b"person",), "cn": many}))
            raise RuntimeError("the request failed")
        txn.add(Entry(DN.parse("cn=small,o=book", SCHEMA),
                      {"objectclass": (b"person",), "cn": (b"small one",)}))
    assert [e.dn for e in opened.search(DN.parse("o=book", SCHEMA), Scope.SUB,
                                        Equal("cn:sub", b"tai"))] == []
    assert [str(e.dn) for e in opened.search(DN.parse("o=book", SCHEMA), Scope.SUB,
                                             Equal("cn:sub", b"one"))] == ["cn=small,o=book"]
    opened.close()
