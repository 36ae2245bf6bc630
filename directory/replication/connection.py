"""The consumer's connection to its provider, on the reactor.

- certdir's own codec (`directory.protocol.client`) frames and decodes the
  provider's responses: syncrepl's Sync Info messages are intermediate
  responses (RFC 4511 §4.13), which ldaptor's client cannot decode.
- Opening: TCP, or TLS from the first byte for ldaps://; StartTLS when
  configured; the certificate checked against `ca_file` (the system's
  trust roots without it) and the provider's host name; then a simple
  bind as `bind_dn` with the password of `password_file`, or anonymous.
  Each step ends within `timeout_s`; a refusal fails the opening, and so
  does the connection ending (with its reason: a certificate not trusted).
- Each request's responses go to the handler given with it until it says
  it is done. A response the codec refuses, or a Notice of Disconnection
  (message id 0, RFC 4511 §4.4.1), drops the connection; `lost` fires
  then, whatever closed it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import ssl
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import SSL4ClientEndpoint, TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure

from directory.config import Peer
from directory.protocol.client import LDAPClientConnection
from directory.protocol.codec import Limits
from directory.protocol.messages import (
    START_TLS,
    BindRequest,
    Control,
    ExtendedRequest,
    LDAPMessage,
    Request,
    UnbindRequest,
)
from directory.protocol.results import ProtocolError, ResultCode

# True when the request has had its last response.
Handler = Callable[[LDAPMessage], bool]


class Refused(Exception):
    """The provider answered a step of the opening with a failure."""


_CLOSED = Failure(ConnectionError("connection closed"))


class ProviderConnection(Protocol):
    def __init__(self) -> None:
        self.codec = LDAPClientConnection(Limits(max_pdu=64 * 1024 * 1024))
        self.handlers: dict[int, Handler] = {}
        # Fires with why the connection ended, whatever ended it (an exception
        # as the result, not a failure: nobody need be listening).
        self.lost: Deferred[BaseException] = Deferred()

    def send(self, op: Request, handler: Handler | None,
             controls: tuple[Control, ...] = ()) -> None:
        message_id, wire = self.codec.request(op, controls)
        if handler is not None:
            self.handlers[message_id] = handler
        assert self.transport is not None
        self.transport.write(wire)

    def ask(self, op: Request) -> Deferred[LDAPMessage]:
        """The one response to `op`; the reason the connection ended if it
        ends first (a TLS handshake refused shows here)."""
        answer: Deferred[LDAPMessage] = Deferred()

        def handle(message: LDAPMessage) -> bool:
            if not answer.called:
                answer.callback(message)
            return True

        def lost(why: BaseException) -> BaseException:
            if not answer.called:
                answer.errback(Failure(why))
            return why

        self.lost.addCallback(lost)
        self.send(op, handle)
        return answer

    def dataReceived(self, data: bytes) -> None:
        self.codec.receive_data(data)
        try:
            for message in self.codec.responses():
                handler = self.handlers.get(message.message_id)
                if message.message_id == 0:
                    raise ProtocolError(f"notice of disconnection: {message.op}")
                if handler is not None and handler(message):
                    del self.handlers[message.message_id]
        except ProtocolError as e:
            self.close(e)

    def close(self, why: Exception | None = None) -> None:
        if why is not None and not self.lost.called:
            self.lost.callback(why)
        if self.transport is not None:
            self.transport.abortConnection()  # type: ignore[attr-defined]

    def unbind(self) -> None:
        if self.transport is not None and self.connected:
            self.send(UnbindRequest(), None)
            self.transport.loseConnection()

    def connectionLost(self, reason: Failure = _CLOSED) -> None:
        if not self.lost.called:
            self.lost.callback(reason.value or ConnectionError("connection closed"))


def _checked(message: LDAPMessage, what: str) -> LDAPMessage:
    result = getattr(message.op, "result", None)
    if result is None or result.code != ResultCode.SUCCESS:
        text = "no result" if result is None else f"{result.code.name} {result.message}"
        raise Refused(f"{what}: {text}")
    return message


async def open_connection(peer: Peer, password: bytes, trust: Any,
                          reactor: Any) -> ProviderConnection:
    """A connection to `peer`, TLS and bind done as configured."""
    tls = ssl.optionsForClientTLS(peer.host, trustRoot=trust)
    if peer.tls == "ldaps":
        endpoint: Any = SSL4ClientEndpoint(reactor, peer.host, peer.port, tls,
                                           timeout=int(peer.timeout_s))
    else:
        endpoint = TCP4ClientEndpoint(reactor, peer.host, peer.port, timeout=int(peer.timeout_s))
    opening: Deferred[ProviderConnection] = connectProtocol(endpoint, ProviderConnection())
    connection = await opening.addTimeout(peer.timeout_s, reactor)
    try:
        if peer.tls == "starttls":
            _checked(await connection.ask(ExtendedRequest(START_TLS))
                     .addTimeout(peer.timeout_s, reactor), "StartTLS")
            connection.transport.startTLS(tls)  # type: ignore[union-attr]
        if peer.bind_dn:
            _checked(await connection.ask(BindRequest(3, peer.bind_dn, password))
                     .addTimeout(peer.timeout_s, reactor), f"bind as {peer.bind_dn}")
    except BaseException:
        connection.close()
        raise
    return connection
