"""Parse once (issue 11 part 1): what a request names is parsed by the
dispatcher, once, and every overlay and operation uses that.

- A search parses its base DN once and resolves each attribute description
  of its filter once, through the overlays, the planner, the predicates
  and the access checks; a compare parses its entry's DN once.
- A DN that does not parse is answered where it was before: a proxied
  authorization control that names no identity is refused first
  (authorizationDenied), and without one the base gives invalidDNSyntax.

The DSA is a real one over an SQLite database; the counters wrap DN parsing
and attribute resolution and call through to them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import directory.entry
from directory import dispatch
from directory.backend.opening import Storage, open_backend
from directory.config import DirectoryConfig
from directory.dsa import DSA
from directory.entry import Entry
from directory.operation import Operation, Reply, Session
from directory.protocol.controls import PROXIED_AUTHZ, AuthzId
from directory.protocol.dn import DN
from directory.protocol.filter import parse as parse_filter
from directory.protocol.messages import (
    CompareRequest,
    CompareResponse,
    Deref,
    EncodedSearchResultEntry,
    Request,
    Scope,
    SearchRequest,
)
from directory.protocol.results import LDAPError, ResultCode
from directory.schema import Schema

SCHEMA = Schema.load([Path(__file__).resolve().parents[2] / "schema"])
SUFFIX = "dc=example,dc=com"
PEOPLE = f"ou=people,{SUFFIX}"


def person(uid: str, cn: str, sn: str) -> Entry:
    return Entry(DN.parse(f"uid={uid},{PEOPLE}", SCHEMA), {
        "objectclass": (b"top", b"person", b"organizationalPerson", b"inetOrgPerson"),
        "uid": (uid.encode(),), "cn": (cn.encode(),), "sn": (sn.encode(),),
        "mail": (f"{uid}@example.com".encode(),)})


@pytest.fixture
def dsa(tmp_path: Path) -> Iterator[DSA]:
    config = DirectoryConfig(SUFFIX, f"cn=admin,{SUFFIX}", "", tmp_path / "db")
    backend = open_backend(Storage(f"sqlite://{tmp_path / 'db'}", SCHEMA, config.indexes, (),
                                   1000, 1024 * 1024))
    with backend.transaction() as txn:
        txn.add(Entry(DN.parse(SUFFIX, SCHEMA), {"objectclass": (b"domain",),
                                                 "dc": (b"example",)}), root=True)
        txn.add(Entry(DN.parse(PEOPLE, SCHEMA), {"objectclass": (b"organizationalUnit",),
                                                 "ou": (b"people",)}))
        txn.add(person("alice", "Alice Smith", "Smith"))
        txn.add(person("bob", "Bob Jones", "Jones"))
    backend.refresh()
    found = DSA(config, SCHEMA, backend, None)
    yield found
    backend.close()


def run(dsa: DSA, request: Request, controls: dict[str, Any] | None = None) -> list[Reply]:
    op = Operation(dsa, Session(1), 1, request, controls or {})
    outcome = dispatch.handle(op)
    assert isinstance(outcome, list | Iterator)
    return [r for r in outcome if isinstance(r, Reply)]


def search(base: str, text: str) -> SearchRequest:
    return SearchRequest(base, Scope.SUB, Deref.NEVER, 0, 0, False, parse_filter(text), ("uid",))


def counting(counts: Counter[str], what: Callable[..., Any], text: int) -> Callable[..., Any]:
    """`what`, counting its calls by their argument `text` (a position)."""
    def counted(*args: Any) -> Any:
        counts[args[text]] += 1
        return what(*args)

    return counted


@pytest.fixture
def parsed(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """DN texts parsed, each time they are."""
    counts: Counter[str] = Counter()
    monkeypatch.setattr(DN, "parse", staticmethod(counting(counts, DN.parse, 0)))
    return counts


@pytest.fixture
def resolved(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Attribute descriptions resolved against the schema, each time they are."""
    counts: Counter[str] = Counter()
    monkeypatch.setattr(directory.entry, "_resolve",
                        counting(counts, directory.entry._resolve, 1))
    return counts


def test_a_search_parses_its_base_once(dsa: DSA, parsed: Counter[str]) -> None:
    replies = run(dsa, search(PEOPLE.upper(), "(mail=alice@example.com)"))
    assert sum(isinstance(r.op, EncodedSearchResultEntry) for r in replies) == 1
    assert parsed[PEOPLE.upper()] == 1


def test_a_search_resolves_each_filter_attribute_once(dsa: DSA,
                                                      resolved: Counter[str]) -> None:
    run(dsa, search(SUFFIX, "(objectClass=*)"))
    resolved.clear()
    replies = run(dsa, search(PEOPLE, "(&(MAIL=*@example.com)(|(cN=alice*)(sN=Jones)))"))
    assert sum(isinstance(r.op, EncodedSearchResultEntry) for r in replies) == 2
    assert {text: resolved[text] for text in ("MAIL", "cN", "sN")} == {
        "MAIL": 1, "cN": 1, "sN": 1}


def test_a_compare_parses_its_entry_once(dsa: DSA, parsed: Counter[str]) -> None:
    target = f"UID=alice,{PEOPLE}"
    replies = run(dsa, CompareRequest(target, "sn", b"smith"))
    answer = replies[-1].op
    assert isinstance(answer, CompareResponse)
    assert answer.result.code == ResultCode.COMPARE_TRUE
    assert parsed[target] == 1


def test_a_bad_base_is_invalid_dn_syntax(dsa: DSA) -> None:
    with pytest.raises(LDAPError) as refused:
        run(dsa, search("not a dn", "(cn=x)"))
    assert refused.value.code == ResultCode.INVALID_DN_SYNTAX


def test_a_refused_proxy_comes_before_a_bad_base(dsa: DSA) -> None:
    with pytest.raises(LDAPError) as refused:
        run(dsa, search("not a dn", "(cn=x)"), {PROXIED_AUTHZ: AuthzId("u:bob")})
    assert refused.value.code == ResultCode.AUTHORIZATION_DENIED
