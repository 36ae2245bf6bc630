"""One peer of the referral list, reached through ldaptor's Twisted client.

- One connection per peer, opened at the first search and kept: LDAP runs
  many searches at once on one connection, so it is the pool. A search
  that finds it closed opens a new one; searches arriving while it opens
  wait for the same opening.
- Opening: TCP (or TLS from the first byte for ldaps://), StartTLS when
  configured, the TLS certificate checked against `ca_file` (the system's
  trust roots without it) and the peer's host name; then a simple bind as
  `bind_dn` with the password in `password_file`, or none (anonymous).
  The client's own credentials are never used.
- Every search carries the chaining behavior control asking for referrals
  (`referralsRequired`, non-critical): a peer that chains too (another
  certdir, slapd with slapo-chain) does not pass the search on again, so
  directories that list each other never loop.
- Each search ends within its timeout, opening included. Any failure
  fails the search with `PeerFailed`. One of the connection (refused,
  reset, timed out, a bind refused) also drops the connection and opens
  the peer's circuit breaker (`directory.chaining.breaker`); while it is
  open, searches fail at once. A result other than success, a size or
  time limit exceeded, or noSuchObject (a referral, a refusal) is the peer
  answering: the search fails, the connection stays and the breaker closes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from ldaptor.protocols import pureldap
from ldaptor.protocols.ldap.ldapclient import LDAPClient
from twisted.internet import ssl
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.endpoints import SSL4ClientEndpoint, TCP4ClientEndpoint, connectProtocol
from twisted.python.failure import Failure

from directory.chaining.breaker import Breaker
from directory.config import Peer
from directory.protocol.codec import ENCODERS
from directory.protocol.controls import Behavior, ChainingBehavior
from directory.protocol.messages import SearchRequest
from directory.protocol.results import ResultCode

log = logging.getLogger("certdir.chaining")

NO_CHAINING = ChainingBehavior(Behavior.REFERRALS_REQUIRED, Behavior.REFERRALS_REQUIRED)
# Results that answer the search, with the entries sent before them (all, or
# as many as the peer's limits let through).
_ANSWERED = (ResultCode.SUCCESS, ResultCode.SIZE_LIMIT_EXCEEDED,
             ResultCode.TIME_LIMIT_EXCEEDED, ResultCode.NO_SUCH_OBJECT)


class PeerFailed(Exception):
    """The peer did not answer the search (or its breaker is open)."""


class PeerRefused(Exception):
    """The peer answered the search with a result that holds no entries for us
    (a referral, insufficientAccessRights, ...): it is alive all the same."""


@dataclass(frozen=True, slots=True)
class RemoteEntry:
    """An entry as the peer sent it: its DN and (description, values) pairs."""
    dn: str
    attributes: tuple[tuple[str, tuple[bytes, ...]], ...]


@dataclass
class _Search:
    """A search on the wire: the entries so far, and its Deferred."""
    done: Deferred[list[RemoteEntry]]
    entries: list[RemoteEntry] = field(default_factory=list)

    def receive(self, response: Any, controls: Any) -> bool:
        if isinstance(response, pureldap.LDAPSearchResultEntry):
            self.entries.append(RemoteEntry(
                _text(response.objectName),
                tuple((_text(t), tuple(bytes(v) for v in vs)) for t, vs in response.attributes)))
            return False
        if isinstance(response, pureldap.LDAPSearchResultReference):
            return False
        code = getattr(response, "resultCode", ResultCode.OTHER)
        if not self.done.called:
            if code in _ANSWERED:
                self.done.callback(self.entries)
            else:
                self.done.errback(PeerRefused(f"result {code}: {_text(response.errorMessage)}"))
        return True

    def lost(self, failure: Failure) -> None:
        if not self.done.called:
            self.done.errback(failure)


def _text(value: str | bytes) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


class _Raw:
    """A protocol op already in BER (certdir's own encoding) for ldaptor to send."""
    needs_answer = True

    def __init__(self, wire: bytes) -> None:
        self.wire = wire

    def toWire(self) -> bytes:
        return self.wire


class PeerClient:
    def __init__(self, peer: Peer, reactor: Any) -> None:
        self.peer = peer
        self.reactor = reactor
        self.breaker = Breaker(reactor.seconds)
        # Read once, at start-up: no file is read on the reactor while serving.
        self._password = (peer.password_file.read_bytes().strip()
                          if peer.password_file is not None else b"")
        self._trust = (ssl.Certificate.loadPEM(peer.ca_file.read_bytes())
                       if peer.ca_file is not None else None)
        self._client: LDAPClient | None = None
        self._waiting: list[Deferred[LDAPClient]] = []

    def search(self, request: SearchRequest, timeout: float) -> Deferred[list[RemoteEntry]]:
        if not self.breaker.allows():
            return fail(PeerFailed(f"{self.peer.url}: skipped while it does not answer"))
        d = self._connected().addCallback(self._send, request)
        d.addTimeout(timeout, self.reactor)
        d.addCallbacks(self._answered, self._failed)
        return d

    def _answered(self, entries: list[RemoteEntry]) -> list[RemoteEntry]:
        self.breaker.succeeded()
        return entries

    def _failed(self, failure: Failure) -> Failure:
        if failure.check(PeerRefused):
            self.breaker.succeeded()
        else:
            self.breaker.failed()
            self.close()
        why = failure.getErrorMessage() or repr(failure.value)
        log.warning("referral list: %s: %s", self.peer.url, why)
        return Failure(PeerFailed(f"{self.peer.url}: {why}"))

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None and client.transport is not None:
            client.transport.abortConnection()

    def _send(self, client: LDAPClient, request: SearchRequest) -> Deferred[list[RemoteEntry]]:
        search = _Search(Deferred(lambda _: self.close()))
        control = NO_CHAINING.to_control()
        wire = client.send_multiResponse_ex(
            _Raw(ENCODERS[SearchRequest](request)),
            [(control.oid, control.critical, control.value)], search.receive)
        wire.addErrback(search.lost)
        return search.done

    def _connected(self) -> Deferred[LDAPClient]:
        client = self._client
        if client is not None and client.connected:
            return succeed(client)
        waiter: Deferred[LDAPClient] = Deferred()
        self._waiting.append(waiter)
        if len(self._waiting) == 1:
            opening = self._open()
            opening.addTimeout(self.peer.timeout_s, self.reactor)
            opening.addBoth(self._opened)
        return waiter

    def _opened(self, result: LDAPClient | Failure) -> None:
        waiting, self._waiting = self._waiting, []
        if isinstance(result, LDAPClient):
            self._client = result
        for waiter in waiting:
            if waiter.called:
                continue
            if isinstance(result, Failure):
                waiter.errback(result)
            else:
                waiter.callback(result)

    def _open(self) -> Deferred[LDAPClient]:
        peer = self.peer
        if peer.tls == "ldaps":
            endpoint: Any = SSL4ClientEndpoint(self.reactor, peer.host, peer.port,
                                               self._tls(), timeout=peer.timeout_s)
        else:
            endpoint = TCP4ClientEndpoint(self.reactor, peer.host, peer.port,
                                          timeout=peer.timeout_s)
        d: Deferred[LDAPClient] = connectProtocol(endpoint, LDAPClient())
        if peer.tls == "starttls":
            d.addCallback(lambda client: client.startTLS(self._tls()))
        if peer.bind_dn:
            d.addCallback(self._bind)
        return d

    def _bind(self, client: LDAPClient) -> Deferred[LDAPClient]:
        d: Deferred[Any] = client.bind(self.peer.bind_dn, self._password)
        return d.addCallback(lambda _: client)

    def _tls(self) -> Any:
        return ssl.optionsForClientTLS(self.peer.host, trustRoot=self._trust)
