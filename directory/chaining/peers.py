"""The referral list at run time: its peers asked in parallel, their answers
in the list's order, and a short cache of what they answered.

- A search goes to every peer whose namespaces hold it
  (`directory.chaining.mapping`), all at once; each answer is awaited in
  the list's order. `first` takes the first peer that found an entry and
  waits for no later one; `merge` takes every peer's entries, each DN once
  (the earlier peer's entry wins).
- The peer is asked for all user and operational attributes (`*`, `+`):
  certdir itself then tests the filter, access and the attribute selection
  on the entries, as on its own (`directory.overlays.chaining`).
- A peer that fails (`PeerFailed`) counts as one that found nothing; its
  circuit breaker keeps it from costing a timeout again soon.
- Answers are kept `cache.positive_s` seconds when they hold entries,
  `cache.negative_s` when empty, in a cache bounded in bytes (the key holds
  the client's filter); failures are not kept.
- DNs come back mapped to ours; an entry outside the peer's namespaces is
  dropped, as is one that does not parse.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, gatherResults, succeed

from directory.chaining.client import PeerClient, RemoteEntry
from directory.chaining.mapping import inbound, namespaces, outbound
from directory.config import ReferralList
from directory.entry import Entry, find
from directory.protocol.cache import BoundedCache
from directory.protocol.dn import DN
from directory.protocol.filter import to_ber
from directory.protocol.messages import Scope, SearchRequest
from directory.protocol.results import LDAPError
from directory.schema import Schema

CACHE_BYTES = 16 * 1024 * 1024
ALL_ATTRIBUTES = ("*", "+")
_KEY_COST = 200
_VALUE_COST = 64

Answer = list[Entry]


class Peers:
    def __init__(self, settings: ReferralList, schema: Schema, parse: Callable[[str], DN],
                 reactor: Any) -> None:
        self.settings = settings
        self.schema = schema
        self.parse = parse
        self.reactor = reactor
        self.clients = tuple(PeerClient(peer, reactor) for peer in settings.peers)
        self.spaces = tuple(namespaces(peer.mapping, parse) for peer in settings.peers)
        self._cache: BoundedCache[tuple[Any, ...], tuple[float, Answer]] = BoundedCache(
            CACHE_BYTES)

    def references(self, base: DN, scope: Scope) -> list[str]:
        """The URLs of the peers that serve the search (`mode: refer`), with the
        base on the peer and an explicit scope (RFC 4516, RFC 3296 §5.3)."""
        scopes = {Scope.BASE: "base", Scope.ONE: "one", Scope.SUB: "sub", Scope.CHILDREN: "sub"}
        urls = []
        for client, spaces in zip(self.clients, self.spaces, strict=True):
            target = outbound(spaces, base, scope)
            if target is not None:
                peer = client.peer
                scheme = "ldaps" if peer.tls == "ldaps" else "ldap"
                urls.append(f"{scheme}://{peer.host}:{peer.port}/{target[0]}??{scopes[target[1]]}")
        return urls

    def search(self, request: SearchRequest, base: DN, size_limit: int,
               seconds: float) -> Deferred[Answer]:
        """The peers' entries for `request` (based at `base`), at most `seconds`."""
        asked = []
        for index, (client, spaces) in enumerate(zip(self.clients, self.spaces, strict=True)):
            target = outbound(spaces, base, request.scope)
            if target is None:
                continue
            limit = min(n for n in (client.peer.size_limit, size_limit, 2**31 - 1) if n > 0)
            outgoing = SearchRequest(str(target[0]), target[1], request.deref, limit,
                                     math.ceil(min(seconds, client.peer.timeout_s)), False,
                                     request.filter, ALL_ATTRIBUTES)
            asked.append(self._ask(index, outgoing, target[0].normalized,
                                   min(seconds, client.peer.timeout_s)))
        if self.settings.mode == "merge":
            return gatherResults(asked).addCallback(_merged)
        return _first(asked)

    def _ask(self, index: int, request: SearchRequest, base: str,
             seconds: float) -> Deferred[Answer]:
        key = (index, base, request.scope, request.deref, request.size_limit,
               to_ber(request.filter))
        now = self.reactor.seconds()
        kept = self._cache.get(key)
        if kept is not None and kept[0] > now:
            return succeed(kept[1])
        d = self.clients[index].search(request, seconds).addCallback(self._entries, index)
        return d.addCallback(self._keep, key).addErrback(lambda _: [])

    def _entries(self, found: list[RemoteEntry], index: int) -> Answer:
        entries = []
        for remote in found:
            try:
                dn = inbound(self.spaces[index], self.parse(remote.dn))
            except LDAPError:
                continue
            if dn is not None:
                entries.append(_entry(self.schema, dn, remote))
        return entries

    def _keep(self, entries: Answer, key: tuple[Any, ...]) -> Answer:
        seconds = self.settings.positive_s if entries else self.settings.negative_s
        if seconds:
            cost = _KEY_COST + len(key[-1]) + len(key[1]) + sum(
                _VALUE_COST + sum(len(v) + _VALUE_COST for vs in e.attributes.values()
                                  for v in vs) for e in entries)
            self._cache.put(key, (self.reactor.seconds() + seconds, entries), cost)
        return entries


def _entry(schema: Schema, dn: DN, remote: RemoteEntry) -> Entry:
    attributes: dict[str, tuple[bytes, ...]] = {}
    for name, values in remote.attributes:
        resolved = find(schema, name)
        if resolved is not None and values:
            attributes[resolved.key] = attributes.get(resolved.key, ()) + tuple(values)
    return Entry(dn, attributes)


def _merged(answers: list[Answer]) -> Answer:
    seen: dict[DN, Entry] = {}
    for answer in answers:
        for entry in answer:
            seen.setdefault(entry.dn, entry)
    return list(seen.values())


def _first(asked: list[Deferred[Answer]]) -> Deferred[Answer]:
    """The first non-empty answer, in the list's order."""
    if not asked:
        return succeed([])
    head, rest = asked[0], asked[1:]
    return head.addCallback(lambda entries: entries or _first(rest))

