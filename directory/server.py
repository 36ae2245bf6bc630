"""The Twisted face of the directory: framing, dispatch, TLS, access log.

- Bytes go to the sans-IO codec; a `ProtocolError` gets a Notice of
  Disconnection (RFC 4511 §4.4.1: messageID 0, protocolError) and the
  connection closes. Nothing else is affected.
- Each request's controls are parsed against the registry first
  (unavailableCriticalExtension in one place), then the request goes to its
  handler through the overlay stack.
- `LDAPError` from a handler becomes that request's response, with code,
  matchedDN, message and referrals; any other exception becomes other (80)
  with a log line, and the connection stays up.
- Abandon and Unbind get no response (RFC 4511 §4.3, §4.11). An abandoned
  operation sends nothing more (RFC 4511 §4.11). A cancelled one
  (RFC 3909, `directory.ops.cancel`) sends canceled (118) as its next
  reply, its last; its Cancel answers once it has ended.
- An operation that yields a `Wait` (a persist search between commits)
  takes no turns until its Deferred fires, its seconds pass, or an Abandon
  or a Cancel names it.
- `limits.idle_timeout` closes a connection that has sent nothing for that
  many seconds and has no operation outstanding, as slapd's idletimeout
  (connections_timeout_idle passes over connections with operations
  executing, a persist search among them): one with an operation
  outstanding is looked at again every `idle_timeout / IDLE_CHECKS`
  seconds and closed at the first look that finds none, so a consumer's
  persist search outlives the timeout, and a client whose slow operation
  ends after it is closed soon after unless it sends something. Only what
  the client sends restarts the clock, not what it is sent.
- Replies are written in slices (SLICE replies or SLICE_BYTES, less when the
  handler yields TICK): one slice of one operation per connection and
  reactor turn, INTERLEAVED operations of a connection taking turns and the
  rest waiting. No client holds the reactor; Abandon acts between slices.
- Backpressure: the protocol is its transport's push producer. While the
  transport's write buffer is full (the client does not read), no replies
  are written and no requests are read. With `limits.max_outstanding`
  operations in progress (`max_outstanding_anonymous` when not bound) no
  more requests are read until one ends, as slapd's conn_max_pending; no
  request is refused for it.
- A started PDU must be complete within `limits.pdu_seconds`; otherwise a
  Notice of Disconnection (protocolError: what came cannot be parsed) and
  the connection closes (RFC 4511 §4.4.1).
- A connection that is not bound may send PDUs up to
  `limits.max_pdu_bytes_anonymous` (slapd's sockbuf_max_incoming); each bind
  sets the codec's limit anew: `limits.max_pdu_bytes` once bound, the
  anonymous one after a failed bind.
- A closed connection drops its operations, their unwritten replies and
  its paged-results cursors.
- Replies go out at once when nothing of the connection is waiting to be
  sent (`send_now`), as asyncio's own transports do; Twisted would buffer
  them until the next reactor turn, at the cost of two epoll_ctl calls
  and one more turn per response. What the socket does not take, and
  anything on TLS, goes through the transport as before, in order.
- Connections are TCP_NODELAY, as slapd's are: a search written in several
  slices (a type-ahead answer of more than SLICE entries) would otherwise
  wait, after its first, for the client's delayed acknowledgement
  (Nagle's algorithm; 40 ms on Linux).
- After a StartTLS request (RFC 4511 §4.14), whatever the client sent
  before the TLS handshake is discarded, never run inside the TLS session.
- Once a TLS handshake completes (ldaps:// or StartTLS), the session holds
  the client's certificate when a trusted CA issued it
  (`directory.client_certificate`).
- One access-log line per operation, like slapd's stats log; one run with
  the proxied authorization control names both identities. What a
  client chose (DNs, filters, messages) is logged with control characters,
  line separators and backslashes escaped (\\xNN, \\uNNNN), so no request can forge
  or split a log line.
"""

from __future__ import annotations

import itertools
import logging
import re
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding
from twisted.internet import protocol, tcp
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import (
    IDelayedCall,
    IHandshakeListener,
    IPushProducer,
    IReactorTime,
)
from twisted.python.failure import Failure
from zope.interface import implementer

from directory.client_certificate import peer_certificate
from directory.dispatch import RESPONSE_FOR, handle
from directory.dsa import DSA
from directory.operation import Operation, Replies, Reply, Session, Tick, Wait
from directory.ops import cancel
from directory.protocol.codec import LDAPConnection, Limits, encode
from directory.protocol.controls import parse_controls
from directory.protocol.filter import format as format_filter
from directory.protocol.messages import (
    NOTICE_OF_DISCONNECTION,
    AbandonRequest,
    BindRequest,
    ExtendedResponse,
    LDAPMessage,
    Result,
    SearchRequest,
    UnbindRequest,
)
from directory.protocol.results import LDAPError, ProtocolError, ResultCode

log = logging.getLogger("certdir.directory")
access = logging.getLogger("certdir.access")

SLICE = 64
SLICE_BYTES = 256 * 1024
# Operations of one connection whose replies are written in turn; the others wait.
INTERLEAVED = 4
# slapd looks at idle connections every idletimeout / 4 (daemon.c SLAPD_IDLE_CHECK_LIMIT).
IDLE_CHECKS = 4
# C0 and C1 controls, DEL, the Unicode line and paragraph separators, and the backslash
# that starts an escape.
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\\]")


def _escape(found: re.Match[str]) -> str:
    code = ord(found.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """`text` for one log line: what could end or fake a line becomes \\xNN (\\uNNNN)."""
    return _UNPRINTABLE.sub(_escape, text)


def send_now(transport: Any, data: bytes) -> None:
    """`transport.write(data)`, sent straight to the socket of a plain TCP
    connection with nothing buffered before it."""
    if (type(transport) is tcp.Server and not transport.TLS and transport.connected
            and not transport.disconnecting and not getattr(transport, "_tempDataLen", 1)
            and not transport.dataBuffer):
        sent = transport.writeSomeData(data)
        if isinstance(sent, int):
            data = data[sent:]
    transport.write(data)


@dataclass(eq=False)
class Stream:
    """An operation's replies still to be written."""

    op: Operation
    number: int
    replies: Iterator[Reply | Tick]


def uncounted(change: int) -> None:
    """What a server not counting its connections is told as they open and close."""


@implementer(IPushProducer, IHandshakeListener)
class LDAPServerProtocol(protocol.Protocol):
    def __init__(self, dsa: DSA, session: Session, clock: IReactorTime, tls: Any,
                 counted: Callable[[int], None] = uncounted) -> None:
        self.dsa = dsa
        self._counted = counted
        self.session = session
        self.clock = clock
        self.tls_options = tls
        self.codec = LDAPConnection(self._limits())
        self.closed = False
        self._op_counter = itertools.count()
        self._idle: IDelayedCall | None = None
        self._pdu: IDelayedCall | None = None
        self._turn: IDelayedCall | None = None
        self._running: deque[Stream] = deque()
        self._waiting: deque[Stream] = deque()
        self._write_paused = False
        self._read_paused = False

    def connectionMade(self) -> None:
        peer = self.transport.getPeer() if self.transport is not None else None
        self.session.peer = f"{getattr(peer, 'host', '?')}:{getattr(peer, 'port', '?')}"
        access.info("conn=%d fd=0 ACCEPT from IP=%s", self.session.conn_id, self.session.peer)
        self._counted(1)
        if self.tls_options is not None and not self.session.tls:
            self.session.start_tls = self._start_tls
        if self.dsa.config.idle_timeout:
            self._idle = self.clock.callLater(self.dsa.config.idle_timeout, self._idle_timeout)
        if self.transport is not None:
            self.transport.setTcpNoDelay(True)  # type: ignore[attr-defined]
            self.transport.registerProducer(self, True)  # type: ignore[attr-defined]

    def _idle_timeout(self) -> None:
        if self.session.outstanding:
            self._idle = self.clock.callLater(self.dsa.config.idle_timeout / IDLE_CHECKS,
                                              self._idle_timeout)
            return
        access.info("conn=%d idle timeout", self.session.conn_id)
        self.close()

    def _start_tls(self) -> None:
        if self.transport is None or self.closed:
            return
        self.transport.startTLS(self.tls_options)  # type: ignore[attr-defined]
        self.session.tls = True
        self.session.start_tls = None
        # Whatever the client sent after the StartTLS request came in clear, before
        # the handshake: it must never run inside the TLS session (STARTTLS
        # command injection); it is dropped, as slapd does.
        self.codec = LDAPConnection(self._limits())

    def _limits(self) -> Limits:
        if not self.session.anonymous:
            return self.dsa.limits
        return replace(self.dsa.limits, max_pdu=min(self.dsa.limits.max_pdu,
                                                    self.dsa.config.max_pdu_bytes_anonymous))

    def handshakeCompleted(self) -> None:
        certificate = peer_certificate(self.transport, self.dsa.client_cas)
        if certificate is not None:
            self.session.tls_client_cert = certificate.public_bytes(Encoding.DER)
            self.session.tls_subject = certificate.subject.rfc4514_string()

    def connectionLost(self, reason: Failure = protocol.connectionDone) -> None:
        self.closed = True
        for call in (self._idle, self._pdu, self._turn):
            if call is not None and call.active():
                call.cancel()
        for op in self.session.outstanding.values():
            op.abandoned = True
        self.session.outstanding.clear()
        self.session.paged.clear()
        self._running.clear()
        self._waiting.clear()
        access.info("conn=%d fd=0 closed", self.session.conn_id)
        self._counted(-1)

    # IPushProducer: the transport pauses us while its write buffer is full.
    def pauseProducing(self) -> None:
        self._write_paused = True
        self._pace_reading()

    def resumeProducing(self) -> None:
        self._write_paused = False
        self._schedule()

    def stopProducing(self) -> None:
        self.closed = True

    def dataReceived(self, data: bytes) -> None:
        if self.closed:
            return
        if self._idle is not None and self._idle.active():
            self._idle.reset(self.dsa.config.idle_timeout)
        self.codec.receive_data(data)
        if not self._read_paused:
            self._read_requests()

    def _busy(self) -> bool:
        """Whether to stop reading: the client does not read its responses, or it
        has as many operations in progress as it may."""
        config = self.dsa.config
        most = config.max_outstanding_anonymous if self.session.anonymous else (
            config.max_outstanding)
        return self._write_paused or len(self.session.outstanding) >= most

    def _read_requests(self) -> None:
        """Run the buffered requests, as many as `_busy` lets in."""
        codec = self.codec
        started = False
        try:
            for message in codec.requests():
                started = True
                self.dispatch(message)
                if self.closed or self.codec is not codec:
                    return
                if self._busy():
                    break
        except ProtocolError as e:
            self.disconnect(e)
            return
        self._pace_reading()
        self._time_pdu(started)

    def _pace_reading(self) -> None:
        busy = self._busy()
        if busy != self._read_paused and self.transport is not None and not self.closed:
            self._read_paused = busy
            if busy:
                self.transport.pauseProducing()  # type: ignore[attr-defined]
            else:
                self.transport.resumeProducing()  # type: ignore[attr-defined]

    def _time_pdu(self, started: bool) -> None:
        """A started PDU must be complete within limits.pdu_seconds (a client
        trickling bytes holds the connection no longer); taking a PDU restarts it."""
        timing = self._pdu is not None and self._pdu.active()
        incomplete = self.codec.buffered > 0 and not self._read_paused
        if timing and (started or not incomplete):
            assert self._pdu is not None
            self._pdu.cancel()
            timing = False
        if incomplete and not timing:
            self._pdu = self.clock.callLater(self.dsa.config.pdu_seconds, self._pdu_timeout)

    def _pdu_timeout(self) -> None:
        self.disconnect(ProtocolError(
            f"PDU not complete within {self.dsa.config.pdu_seconds} s"))

    def disconnect(self, error: ProtocolError) -> None:
        access.info("conn=%d PROTOCOL ERROR %s", self.session.conn_id, printable(error.message))
        notice = ExtendedResponse(Result(error.code, "", error.message), NOTICE_OF_DISCONNECTION)
        self.write(LDAPMessage(0, notice))
        self.close()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            # A TLS transport shuts down only once no producer is registered.
            self.transport.unregisterProducer()  # type: ignore[attr-defined]
            self.transport.loseConnection()

    def write(self, message: LDAPMessage) -> None:
        if self.transport is not None and not self.closed:
            send_now(self.transport, encode(message))

    def dispatch(self, message: LDAPMessage) -> None:
        request = message.op
        if isinstance(request, UnbindRequest):
            access.info("conn=%d op=%d UNBIND", self.session.conn_id, next(self._op_counter))
            self.close()
            return
        op = Operation(self.dsa, self.session, message.message_id, request, {})  # type: ignore[arg-type]
        op_number = next(self._op_counter)
        if isinstance(request, AbandonRequest):
            target = self.session.outstanding.get(request.message_id)
            if target is not None and cancel.abandonable(target.request):
                target.abandoned = True
                if target.interrupt is not None:
                    target.interrupt()
            access.info("conn=%d op=%d ABANDON msg=%d", self.session.conn_id, op_number,
                        request.message_id)
            return
        self.session.outstanding[message.message_id] = op
        self.dsa.refresh()
        try:
            op.controls = parse_controls(request, message.controls)  # type: ignore[arg-type]
            op.critical = frozenset(c.oid for c in message.controls if c.critical)
            outcome = handle(op)
        except LDAPError as e:
            self.finish(op, op_number, [self.failure(op, e)])
            return
        except Exception:
            log.exception("conn=%d op=%d failed", self.session.conn_id, op_number)
            self.finish(op, op_number, [self.failure(op, _internal())])
            return
        if isinstance(outcome, Deferred):
            outcome.addCallbacks(lambda replies: self.finish(op, op_number, replies),
                                 lambda failure: self.failed(op, op_number, failure))
        else:
            self.finish(op, op_number, outcome)

    def failure(self, op: Operation, error: LDAPError) -> Reply:
        result = Result(error.code, error.matched, error.message, error.referrals)
        return Reply(RESPONSE_FOR[type(op.request)](result), error.controls)

    def failed(self, op: Operation, op_number: int, failure: Failure) -> None:
        error = failure.value
        if not isinstance(error, LDAPError):
            log.error("conn=%d op=%d failed: %s", self.session.conn_id, op_number,
                      failure.getTraceback())
            error = _internal()
        self.finish(op, op_number, [self.failure(op, error)])

    def finish(self, op: Operation, op_number: int, replies: Replies) -> None:
        """Write `replies` now when nothing else of this connection waits, else in turn."""
        stream = Stream(op, op_number, iter(replies))
        if self.closed:
            self.done(op, op_number, None)
            return
        if self._running or self._waiting or self._write_paused:
            self._waiting.append(stream)
        elif not self.send(stream):
            self._running.append(stream)
        self._schedule()

    def _schedule(self) -> None:
        """A turn when replies wait to be written or requests to be read."""
        if self.closed or self._write_paused or (self._turn is not None and self._turn.active()):
            return
        if self._running or self._waiting or (self._read_paused and not self._busy()):
            self._turn = self.clock.callLater(0, self._take_turn)

    def _take_turn(self) -> None:
        """One slice of one operation per reactor turn, whatever this connection
        asked for, so that other connections are served in between."""
        if self.closed or self._write_paused:
            return
        while self._waiting and len(self._running) < INTERLEAVED:
            self._running.append(self._waiting.popleft())
        if self._running:
            stream = self._running.popleft()
            if not self.send(stream):
                self._running.append(stream)
        if self._read_paused and not self._busy():
            self._read_requests()
        self._schedule()

    def send(self, stream: Stream) -> bool:
        """Write up to SLICE replies (SLICE_BYTES) of `stream`, fewer if it ticks;
        True once it takes no more turns: its final response is written, or it waits."""
        op, op_number = stream.op, stream.number
        out: list[bytes] = []
        size = 0
        try:
            while len(out) < SLICE and size < SLICE_BYTES:
                if op.abandoned or self.closed:
                    self.done(op, op_number, None)
                    return True
                reply: Reply | Tick | None = (
                    self.failure(op, LDAPError(ResultCode.CANCELED, "canceled"))
                    if op.canceled is not None else next(stream.replies, None))
                if reply is None:
                    self.done(op, op_number, None)
                    return True
                if isinstance(reply, Wait):
                    self._park(stream, reply)
                    return True
                if isinstance(reply, Tick):
                    return False
                out.append(encode(LDAPMessage(op.message_id, reply.op, reply.controls)))
                size += len(out[-1])
                result = getattr(reply.op, "result", None)
                if result is not None:
                    self.flush(out)
                    self.done(op, op_number, result)
                    if op.after is not None:
                        op.after()
                    return True
        except LDAPError as e:
            stream.replies = iter([self.failure(op, e)])
        except Exception:
            log.exception("conn=%d op=%d failed", self.session.conn_id, op_number)
            stream.replies = iter([self.failure(op, _internal())])
        finally:
            self.flush(out)
        return False

    def _park(self, stream: Stream, wait: Wait) -> None:
        """Take `stream` up again once `wait` is over, or when interrupted."""
        op = stream.op

        def wake(_: object = None) -> None:
            if op.interrupt is not wake:
                return
            op.interrupt = None
            if timer.active():
                timer.cancel()
            if not self.closed:
                self._running.append(stream)
                self._schedule()

        timer = self.clock.callLater(wait.seconds, wake)
        op.interrupt = wake
        wait.ready.addCallback(wake)

    def flush(self, out: list[bytes]) -> None:
        if out and self.transport is not None and not self.closed:
            send_now(self.transport, b"".join(out))
        out.clear()

    def done(self, op: Operation, op_number: int, result: Result | None) -> None:
        self.session.outstanding.pop(op.message_id, None)
        if op.canceled is not None and not op.canceled.called:
            op.canceled.callback(None)
        if isinstance(op.request, BindRequest):
            self.codec.limits = self._limits()
        if not self.dsa.config.access_log:
            return
        elapsed = (time.monotonic() - op.started) * 1000
        request = op.request
        name = type(request).__name__.removesuffix("Request").upper()
        detail = op.detail
        if isinstance(request, SearchRequest):
            detail = (f'base="{request.base}" scope={int(request.scope)} '
                      f'filter="{format_filter(request.filter)}" entries={op.entries}')
        if op.authz is not None:
            detail += f' authzid="dn:{op.authz}" by="{self.session.bound}"'
        outcome = "abandoned" if result is None else f"result={int(result.code)}"
        access.info("conn=%d op=%d %s %s %s etime=%.3fms", self.session.conn_id, op_number,
                    name, printable(detail), outcome, elapsed)


def _internal() -> LDAPError:
    return LDAPError(ResultCode.OTHER, "internal server error; see the server log")


class LDAPServerFactory(protocol.Factory):
    """`counted` is told +1 when a connection opens, -1 when it closes."""

    def __init__(self, dsa: DSA, clock: IReactorTime, ids: Iterator[int], tls: Any = None,
                 implicit_tls: bool = False, counted: Callable[[int], None] = uncounted,
                 ) -> None:
        self.dsa = dsa
        self.counted = counted
        self.clock = clock
        self.tls = tls
        self.implicit_tls = implicit_tls
        self._ids = ids

    def buildProtocol(self, addr: Any) -> LDAPServerProtocol:
        session = Session(next(self._ids), tls=self.implicit_tls)
        return LDAPServerProtocol(self.dsa, session, self.clock, self.tls, self.counted)
