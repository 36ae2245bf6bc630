"""Scenario 017: STARTTLS command injection (RFC 4511 §4.14; the CVE-2011-0411 class).

A client that sends a StartTLS request and, in the same segment, a search
and a simple bind as the root DN gets the StartTLS response in clear; once
the TLS handshake is done, neither has run: no reply to them ever arrives
(the search would answer at once, before anything sent later) and WhoAmI
inside TLS says anonymous. slapd discards such bytes too.
"""

from __future__ import annotations

import socket
import ssl

from tests.integration.conftest import Server
from tests.integration.test_hostile import (
    EXTENDED_RESPONSE,
    Reply,
    base_search,
    decode_replies,
    header,
    integer,
    message,
    tlv,
)

START_TLS = b"1.3.6.1.4.1.1466.20037"
WHO_AM_I = b"1.3.6.1.4.1.4203.1.11.3"


def extended(message_id: int, oid: bytes) -> bytes:
    return message(message_id, tlv(0x77, tlv(0x80, oid)))


def simple_bind(message_id: int, dn: str, password: str) -> bytes:
    return message(message_id, tlv(0x60, integer(3) + tlv(0x04, dn.encode())
                                   + tlv(0x80, password.encode())))


def read_until(sock: socket.socket | ssl.SSLSocket, message_id: int) -> tuple[bytes, list[Reply]]:
    """Everything read until the reply to `message_id`, and the replies decoded."""
    data = b""
    while True:
        replies, _ = decode_replies(data)
        if any(reply.message_id == message_id for reply in replies):
            return data, list(replies)
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection"
        data += chunk


def authz_id(data: bytes) -> bytes:
    """The responseValue [11] of the last message in `data` (a WhoAmI answer)."""
    pos, last = 0, (0, 0)
    while pos < len(data):
        _, start, end = header(data, pos)
        last, pos = (start, end), end
    _, id_end = header(data, last[0])[1:]
    _, op_start, op_end = header(data, id_end)
    pos, value = op_start, b""
    while pos < op_end:
        tag, content_start, content_end = header(data, pos)
        if tag == 0x8B:
            value = data[content_start:content_end]
        pos = content_end
    return value


def test_bytes_sent_with_starttls_are_discarded(server: Server) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
        raw.sendall(extended(1, START_TLS) + base_search(2, "")
                    + simple_bind(4, server.root_dn, server.root_password))
        _, replies = read_until(raw, 1)
        assert [(r.message_id, r.op_tag, r.result_code) for r in replies] == [
            (1, EXTENDED_RESPONSE, 0)]
        context = ssl.create_default_context(cafile=str(server.ca_file))
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            tls.sendall(extended(3, WHO_AM_I))
            data, replies = read_until(tls, 3)
            assert ([(r.message_id, r.result_code) for r in replies], authz_id(data)) == (
                [(3, 0)], b"")
