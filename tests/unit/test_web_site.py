"""ca.web.site on an in-memory transport and a fake clock: the limits at their edges.

The black-box scenarios are tests/integration/test044_http_hostile.py; here the
clock is the test's, so deadlines are checked to the second, and resources can
raise or hold a request open.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from ca.web.config import WebConfig
from ca.web.site import CLOSE_GRACE_SECONDS, IDLE_DEADLINES, Root, WebSite

CONFIG = WebConfig(max_body_bytes=4096, request_seconds=10)
LIMIT = CONFIG.max_body_bytes


class Echo(Resource):
    """POST: how many body bytes the resource saw."""

    isLeaf = True

    def render_POST(self, request: Request) -> bytes:
        assert request.content is not None
        return b"%d" % len(request.content.read())


class Boom(Resource):
    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        raise RuntimeError("secret detail of the failure")


class Hold(Resource):
    """GET: answered only when the test finishes the request."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # unannotated in Twisted
        self.held: list[Request] = []

    def render_GET(self, request: Request) -> int:
        self.held.append(request)
        return NOT_DONE_YET


@dataclass
class Connection:
    clock: Clock
    transport: Any
    channel: Any
    hold: Hold

    def send(self, data: bytes) -> None:
        self.channel.dataReceived(data)

    @property
    def answer(self) -> bytes:
        value: bytes = self.transport.value()
        return value

    @property
    def status(self) -> bytes:
        return self.answer[9:12]


@pytest.fixture
def connection() -> Iterator[Connection]:
    clock, hold = Clock(), Hold()
    leaves: dict[bytes, Resource] = {b"echo": Echo(), b"boom": Boom(),  # type: ignore[no-untyped-call]
                                     b"hold": hold}
    site: Any = WebSite(Root(leaves), CONFIG, clock)
    channel = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
    transport = StringTransport()
    channel.makeConnection(transport)
    yield Connection(clock, transport, channel, hold)
    channel.connectionLost(None)


def post(length: int, *extra: bytes) -> bytes:
    return b"\r\n".join([b"POST /echo HTTP/1.1", b"Host: x", b"Content-Length: %d" % length,
                         *extra, b"", b""])


CHUNKED = b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"


def chunk(size: int) -> bytes:
    return b"%x\r\n" % size + b"a" * size + b"\r\n"


def test_a_body_of_exactly_the_limit_is_read(connection: Connection) -> None:
    connection.send(post(LIMIT) + b"a" * LIMIT)
    assert connection.answer.endswith(b"\r\n\r\n%d" % LIMIT)


def test_a_declared_byte_over_the_limit_is_413_at_once(connection: Connection) -> None:
    connection.send(post(LIMIT + 1))
    assert (connection.status, connection.transport.disconnecting) == (b"413", True)


def test_100_continue_is_sent_for_a_body_within_the_limit(connection: Connection) -> None:
    connection.send(post(LIMIT, b"Expect: 100-continue"))
    assert connection.answer == b"HTTP/1.1 100 Continue\r\n\r\n"


def test_a_chunked_body_of_exactly_the_limit_is_read(connection: Connection) -> None:
    connection.send(CHUNKED + chunk(LIMIT // 2) + chunk(LIMIT // 2) + b"0\r\n\r\n")
    assert connection.answer.endswith(b"\r\n\r\n%d" % LIMIT)


def test_a_chunked_body_is_413_on_the_byte_that_passes_the_limit(
        connection: Connection) -> None:
    connection.send(CHUNKED + chunk(LIMIT))
    before = connection.answer
    connection.send(chunk(1))
    assert (before, connection.status) == (b"", b"413")


def test_after_a_refusal_nothing_more_is_read(connection: Connection) -> None:
    connection.send(CHUNKED + chunk(LIMIT + 1))
    assert connection.transport.producerState == "paused"


def test_a_refused_client_that_does_not_go_is_dropped_after_the_grace(
        connection: Connection) -> None:
    connection.send(post(LIMIT + 1))
    connection.clock.advance(CLOSE_GRACE_SECONDS - 0.1)
    early = connection.transport.disconnected
    connection.clock.advance(0.1)
    assert (early, connection.transport.disconnected) == (False, True)


def test_the_deadline_counts_from_the_first_byte(connection: Connection) -> None:
    connection.send(b"G")
    connection.clock.advance(CONFIG.request_seconds - 1)
    connection.send(b"ET /echo HTTP/1.1\r\n")
    connection.clock.advance(0.9)
    early = connection.answer
    connection.clock.advance(0.1)
    assert (early, connection.status) == (b"", b"408")


def test_the_deadline_does_not_cut_a_request_the_server_is_working_on(
        connection: Connection) -> None:
    connection.send(b"GET /hold HTTP/1.1\r\nHost: x\r\n\r\n")
    connection.clock.advance(CONFIG.request_seconds * 10)
    (request,) = connection.hold.held
    request.write(b"done")
    request.finish()
    assert connection.status == b"200"


def test_an_idle_keep_alive_connection_is_closed(connection: Connection) -> None:
    connection.send(post(1) + b"a")
    idle = CONFIG.request_seconds * IDLE_DEADLINES
    connection.clock.advance(idle - 0.1)
    early = connection.transport.disconnecting
    connection.clock.advance(0.1)
    assert (connection.status, early, connection.transport.disconnecting) == (
        b"200", False, True)


def test_a_resource_raising_is_a_plain_500(connection: Connection) -> None:
    connection.send(b"GET /boom HTTP/1.1\r\nHost: x\r\n\r\n")
    body = connection.answer.split(b"\r\n\r\n", 1)[1]
    assert (connection.status, body) == (
        b"500", b"<html><head><title>Processing Failed</title></head><body>"
                b"<b>Processing Failed</b></body></html>")
