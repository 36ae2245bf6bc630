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
- Chasing a referral (`chase`) asks the server its URL names
  (`directory.chaining.urls`), the URL's alternatives in order until one
  answers, at the URL's DN and scope (the search's own without one), with
  no mapping. A server of the list is asked through its client (its bind,
  its TLS); another anonymously, one client each, at most
  `MAX_CHASED_SERVERS` of them (then the referral stays as it is).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, gatherResults, succeed
from twisted.python.failure import Failure

from directory.chaining.client import PeerClient, RemoteEntry
from directory.chaining.mapping import Namespace, inbound, namespaces, outbound
from directory.chaining.urls import Target, parse_url
from directory.config import Peer, ReferralList
from directory.entry import Entry, find
from directory.protocol.cache import BoundedCache
from directory.protocol.dn import DN
from directory.protocol.filter import to_ber
from directory.protocol.messages import Scope, SearchRequest
from directory.protocol.results import LDAPError
from directory.schema import Schema

CACHE_BYTES = 16 * 1024 * 1024
# Servers that referrals name outside the list, each with its connection.
MAX_CHASED_SERVERS = 64
# A chased referral is in the peer's namespace as it stands: no mapping.
_SAME = (Namespace(DN.ROOT, DN.ROOT),)
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
        # Neither a list to ask nor referrals to chase unless a client asks.
        self.idle = not settings.peers and not settings.chase
        # Servers named by referrals and not in the list, asked anonymously.
        self._chased: dict[tuple[str, int, str], PeerClient] = {}

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
        for client, spaces in zip(self.clients, self.spaces, strict=True):
            target = outbound(spaces, base, request.scope)
            if target is not None:
                wait = min(seconds, client.peer.timeout_s)
                outgoing = _outgoing(request, str(target[0]), target[1],
                                     client.peer.size_limit, size_limit, wait)
                asked.append(self._ask(client, spaces, outgoing, wait).addCallback(
                    lambda answer: answer or []))
        if self.settings.mode == "merge":
            return gatherResults(asked).addCallback(_merged)
        return _first(asked)

    def chase(self, uris: tuple[str, ...], request: SearchRequest, size_limit: int,
              seconds: float) -> Deferred[Answer | None]:
        """The entries of the first of `uris` (alternatives, RFC 4511 §4.1.10)
        whose server answers; None when none does or none can be chased."""
        targets = [t for t in (parse_url(uri) for uri in uris) if t is not None]
        return self._chase(targets, request, size_limit, seconds)

    def _chase(self, targets: list[Target], request: SearchRequest, size_limit: int,
               seconds: float) -> Deferred[Answer | None]:
        if not targets:
            return succeed(None)
        target, rest = targets[0], targets[1:]
        client = self._client_for(target)
        if client is None:
            return self._chase(rest, request, size_limit, seconds)
        wait = min(seconds, client.peer.timeout_s)
        scope = request.scope if target.scope is None else target.scope
        outgoing = _outgoing(request, target.dn, scope, client.peer.size_limit, size_limit, wait)
        d = self._ask(client, _SAME, outgoing, wait)
        return d.addCallback(lambda answer: answer if answer is not None else self._chase(
            rest, request, size_limit, seconds))

    def _client_for(self, target: Target) -> PeerClient | None:
        """The configured peer's client for the server (its bind and TLS), else
        an anonymous one of its own; None beyond `MAX_CHASED_SERVERS`."""
        tls = "ldaps" if target.scheme == "ldaps" else "none"
        for client in self.clients:
            peer = client.peer
            if (peer.host.lower(), peer.port, peer.tls == "ldaps") == (
                    target.host.lower(), target.port, tls == "ldaps"):
                return client
        key = (target.host.lower(), target.port, tls)
        known = self._chased.get(key)
        if known is None and len(self._chased) < MAX_CHASED_SERVERS:
            url = f"{target.scheme}://{target.host}:{target.port}/"
            known = self._chased[key] = PeerClient(
                Peer(url, target.host, target.port, "", tls), self.reactor)
        return known

    def _ask(self, client: PeerClient, spaces: tuple[Namespace, ...], request: SearchRequest,
             seconds: float) -> Deferred[Answer | None]:
        peer = client.peer
        key = (peer.host, peer.port, peer.tls, request.base, request.scope, request.deref,
               request.size_limit, to_ber(request.filter))
        now = self.reactor.seconds()
        kept = self._cache.get(key)
        if kept is not None and kept[0] > now:
            return succeed(kept[1])
        answer: Deferred[Answer] = client.search(request, seconds).addCallback(
            self._entries, spaces)
        answer.addCallback(self._keep, key)
        return answer.addErrback(_nothing)

    def _entries(self, found: list[RemoteEntry], spaces: tuple[Namespace, ...]) -> Answer:
        entries = []
        for remote in found:
            try:
                dn = inbound(spaces, self.parse(remote.dn))
            except LDAPError:
                continue
            if dn is not None:
                entries.append(_entry(self.schema, dn, remote))
        return entries

    def _keep(self, entries: Answer, key: tuple[Any, ...]) -> Answer:
        seconds = self.settings.positive_s if entries else self.settings.negative_s
        if seconds:
            cost = _KEY_COST + len(key[-1]) + len(key[3]) + sum(
                _VALUE_COST + sum(len(v) + _VALUE_COST for vs in e.attributes.values()
                                  for v in vs) for e in entries)
            self._cache.put(key, (self.reactor.seconds() + seconds, entries), cost)
        return entries


def _nothing(failure: Failure) -> Answer | None:
    """A peer that failed (`PeerFailed`, logged by its client) found nothing."""
    return None


def _outgoing(request: SearchRequest, base: str, scope: Scope, peer_limit: int,
              size_limit: int, seconds: float) -> SearchRequest:
    """The search sent: the client's, at the peer's base, asking for every
    attribute, within the smaller size limit and our time."""
    limit = min((n for n in (peer_limit, size_limit) if n > 0), default=0)
    return SearchRequest(base, scope, request.deref, limit, math.ceil(seconds),
                         False, request.filter, ALL_ATTRIBUTES)


def _entry(schema: Schema, dn: DN, remote: RemoteEntry) -> Entry:
    attributes: dict[str, tuple[bytes, ...]] = {}
    for name, values in remote.attributes:
        resolved = find(schema, name)
        if resolved is not None and values:
            attributes[resolved.key] = attributes.get(resolved.key, ()) + values
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

