"""Hostile and malformed input on raw sockets (RFC 4511 §4.1.1, §4.2, §4.4.1, §5.1, §5.3).

- Input that cannot be decoded as an LDAPMessage (wrong envelope tag, messageID
  that is not an INTEGER in 0..maxInt, protocolOp that is not a request, lengths
  that do not fit, the indefinite length form forbidden by §5.1, bytes that are
  not BER at all) is answered with a Notice of Disconnection: messageID 0, an
  ExtendedResponse with responseName 1.3.6.1.4.1.1466.20036 and protocolError;
  then the server closes the connection (§4.1.1, §4.4.1).
- A request that decodes but cannot be honoured gets its own response and the
  connection stays up: a version 2 bind gets protocolError in a BindResponse (§4.2).
- A length above limits.max_pdu_bytes is refused from the header alone; filters
  deeper or wider than the limits are refused without exhausting the server.
- Requests split across reads, or several in one read, are reassembled; a client
  closing early, mid-PDU or without sending anything, is not an error.
- After every attack the server process is alive and another client still gets
  correct answers.

Fixed vectors live in tests/data/hostile/*.hex; its README.md says what is wrong
with each. Vectors too large to keep in files are built here.
"""

from __future__ import annotations

import select
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.conftest import SUFFIX, Server

VECTORS = Path(__file__).parent.parent / "data" / "hostile"
NOTICE_OF_DISCONNECTION = b"1.3.6.1.4.1.1466.20036"
PROTOCOL_ERROR = 2
BIND_RESPONSE, SEARCH_ENTRY, SEARCH_DONE, EXTENDED_RESPONSE = 0x61, 0x64, 0x65, 0x78
RESULT_OPS = frozenset({0x61, 0x65, 0x67, 0x69, 0x6B, 0x6D, 0x6F, 0x78})
# Result codes a server may reasonably use to refuse a request beyond its limits.
REFUSALS = frozenset({PROTOCOL_ERROR, 11, 53})


def vector(name: str) -> bytes:
    """Hex digits of tests/data/hostile/<name>.hex; '#' starts a comment."""
    text = (VECTORS / f"{name}.hex").read_text()
    return bytes.fromhex("".join(line.split("#", 1)[0] for line in text.splitlines()))


def length_octets(size: int) -> bytes:
    if size < 0x80:
        return bytes((size,))
    octets = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(octets),)) + octets


def tlv(tag: int, content: bytes) -> bytes:
    return bytes((tag,)) + length_octets(len(content)) + content


def integer(value: int) -> bytes:
    return tlv(0x02, value.to_bytes(max(1, (value.bit_length() + 8) // 8), "big", signed=True))


def message(message_id: int, op: bytes) -> bytes:
    return tlv(0x30, integer(message_id) + op)


def anonymous_bind(message_id: int) -> bytes:
    return message(message_id, tlv(0x60, integer(3) + tlv(0x04, b"") + tlv(0x80, b"")))


PRESENT_OBJECTCLASS = tlv(0x87, b"objectClass")


def base_search(message_id: int, base: str, filter_ber: bytes = PRESENT_OBJECTCLASS,
                attributes: tuple[bytes, ...] = (b"1.1",)) -> bytes:
    """A base-scope search for `base`, by default returning only the DN."""
    selection = tlv(0x30, b"".join(tlv(0x04, name) for name in attributes))
    return message(message_id, tlv(0x63, tlv(0x04, base.encode()) + tlv(0x0A, b"\x00")
                                   + tlv(0x0A, b"\x00") + integer(0) + integer(0)
                                   + tlv(0x01, b"\x00") + filter_ber + selection))


def header(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, content start, content end) of the definite-length TLV at `pos`;
    IndexError when the buffer does not hold all of it yet."""
    tag, first = data[pos], data[pos + 1]
    start = pos + 2
    if first & 0x80:
        count = first & 0x7F
        size = int.from_bytes(data[start:start + count], "big")
        start += count
    else:
        size = first
    if start + size > len(data):
        raise IndexError(pos)
    return tag, start, start + size


@dataclass(frozen=True, slots=True)
class Reply:
    message_id: int
    op_tag: int
    result_code: int | None
    response_name: bytes | None

    @property
    def is_notice_of_disconnection(self) -> bool:
        return (self.message_id == 0 and self.op_tag == EXTENDED_RESPONSE
                and self.result_code == PROTOCOL_ERROR
                and self.response_name == NOTICE_OF_DISCONNECTION)


def decode_reply(data: bytes, start: int, end: int) -> Reply:
    _, id_start, id_end = header(data, start)
    message_id = int.from_bytes(data[id_start:id_end], "big", signed=True)
    op_tag, pos, op_end = header(data, id_end)
    code = name = None
    if op_tag in RESULT_OPS:
        _, code_start, code_end = header(data, pos)
        code = int.from_bytes(data[code_start:code_end], "big")
        pos = code_end
        while pos < op_end:
            tag, content_start, content_end = header(data, pos)
            if tag == 0x8A:
                name = data[content_start:content_end]
            pos = content_end
    return Reply(message_id, op_tag, code, name)


def decode_replies(data: bytes) -> tuple[tuple[Reply, ...], int]:
    """Complete replies at the front of `data`, and how many bytes they used."""
    replies, pos = [], 0
    while pos < len(data):
        try:
            _, start, end = header(data, pos)
        except IndexError:
            break
        replies.append(decode_reply(data, start, end))
        pos = end
    return tuple(replies), pos


@dataclass(frozen=True, slots=True)
class Outcome:
    replies: tuple[Reply, ...]
    closed: bool


def readable(sock: socket.socket, timeout: float) -> bool:
    """Whether `sock` has bytes (or an end) to read within `timeout` seconds;
    poll(), not select(): a thousand sessions take descriptors past 1024."""
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(timeout * 1000))


class Session:
    """A raw TCP connection that sends bytes and collects decoded replies."""

    def __init__(self, server: Server, tls: bool = False) -> None:
        raw = socket.create_connection(("127.0.0.1", server.ldaps_port if tls else server.port),
                                       timeout=10)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = raw
        if tls:
            context = ssl.create_default_context(cafile=str(server.ca_file))
            self.sock = context.wrap_socket(raw, server_hostname="127.0.0.1")
        self.buffer = b""
        self.replies: tuple[Reply, ...] = ()
        self.closed = False

    def send(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            self.closed = True

    def read(self, until: Callable[[tuple[Reply, ...]], bool] = lambda _: False,
             timeout: float = 5.0) -> Outcome:
        """Collect replies until `until` holds, the peer closes, or `timeout` passes."""
        deadline = time.monotonic() + timeout
        while not self.closed and not until(self.replies):
            remaining = deadline - time.monotonic()
            # TLS may already hold decrypted bytes that select() cannot see.
            buffered = isinstance(self.sock, ssl.SSLSocket) and self.sock.pending() > 0
            if not buffered and (remaining <= 0 or not readable(self.sock, remaining)):
                break
            try:
                chunk = self.sock.recv(65536)
            except (ConnectionResetError, ssl.SSLEOFError):
                chunk = b""
            if not chunk:
                self.closed = True
            self.buffer += chunk
            decoded, used = decode_replies(self.buffer)
            self.replies += decoded
            self.buffer = self.buffer[used:]
        return Outcome(self.replies, self.closed)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def session(server: Server) -> Iterator[Session]:
    s = Session(server)
    yield s
    s.close()


@pytest.fixture(autouse=True)
def server_survives(server: Server) -> Iterator[None]:
    """After every attack the process is alive and serves another client correctly."""
    yield
    assert server.proc is not None and server.proc.poll() is None, "server process died"
    result = server.tool("ldapsearch", "-LLL", "-b", SUFFIX, "-s", "base", "dn")
    assert result.returncode == 0, result.stderr.decode()
    assert f"dn: {SUFFIX}" in result.stdout.decode()


def answered(message_id: int, op_tag: int) -> Callable[[tuple[Reply, ...]], bool]:
    return lambda replies: any(r.message_id == message_id and r.op_tag == op_tag
                               for r in replies)


def only(replies: tuple[Reply, ...], message_id: int, op_tag: int) -> Reply:
    matching = [r for r in replies if r.message_id == message_id and r.op_tag == op_tag]
    assert len(matching) == 1, f"expected one reply {op_tag:#x} to {message_id}: {replies}"
    return matching[0]


def assert_disconnected_with_notice(outcome: Outcome) -> None:
    assert outcome.replies, "connection dropped without a Notice of Disconnection"
    assert outcome.replies[-1].is_notice_of_disconnection, outcome.replies
    assert outcome.closed, "server kept the connection open after its notice"


def assert_session_usable(session: Session) -> None:
    session.send(anonymous_bind(7))
    outcome = session.read(answered(7, BIND_RESPONSE))
    assert only(outcome.replies, 7, BIND_RESPONSE).result_code == 0
    assert not outcome.closed


UNDECODABLE = (
    "absurd-length",
    "indefinite-length",
    "wrong-envelope-tag",
    "protocolop-universal",
    "unknown-application-tag",
    "response-as-request",
    "inner-length-overrun",
    "messageid-negative",
    "messageid-too-large",
    "messageid-octet-string",
    "jpeg-junk",
    "http-request",
    "tls-clienthello-cleartext",
    "reserved-length-octet",
    "high-tag-number-op",
)


@pytest.mark.parametrize("name", UNDECODABLE)
def test_undecodable_input_gets_notice_of_disconnection(session: Session, name: str) -> None:
    session.send(vector(name))
    assert_disconnected_with_notice(session.read())


def test_garbage_after_valid_pdu_in_same_write(session: Session) -> None:
    session.send(vector("search-then-garbage"))
    outcome = session.read()
    assert_disconnected_with_notice(outcome)
    assert all(r.message_id == 2 for r in outcome.replies[:-1]), outcome.replies
    assert all(r.result_code == 0 for r in outcome.replies[:-1] if r.op_tag == SEARCH_DONE)


def test_garbage_after_answered_pdu(session: Session) -> None:
    session.send(base_search(2, ""))
    outcome = session.read(answered(2, SEARCH_DONE))
    assert only(outcome.replies, 2, SEARCH_ENTRY)
    assert only(outcome.replies, 2, SEARCH_DONE).result_code == 0
    session.send(b"\xff\xff\xff\xff")
    assert_disconnected_with_notice(session.read())


def test_bind_version_2_gets_protocol_error_not_disconnect(session: Session) -> None:
    session.send(vector("bind-version-2"))
    outcome = session.read(answered(1, BIND_RESPONSE))
    assert only(outcome.replies, 1, BIND_RESPONSE).result_code == PROTOCOL_ERROR
    assert_session_usable(session)


def test_unknown_authentication_choice_is_answered(session: Session) -> None:
    session.send(vector("bind-unknown-auth-choice"))
    outcome = session.read(answered(1, BIND_RESPONSE))
    assert only(outcome.replies, 1, BIND_RESPONSE).result_code == 7
    assert_session_usable(session)


def test_long_form_lengths_are_accepted(session: Session) -> None:
    session.send(vector("long-form-lengths"))
    outcome = session.read(answered(1, BIND_RESPONSE))
    assert only(outcome.replies, 1, BIND_RESPONSE).result_code == 0
    assert_session_usable(session)


def test_message_id_zero_is_refused(session: Session) -> None:
    session.send(vector("messageid-zero"))
    outcome = session.read(answered(0, BIND_RESPONSE))
    if outcome.closed:
        assert_disconnected_with_notice(outcome)
    else:
        assert only(outcome.replies, 0, BIND_RESPONSE).result_code == PROTOCOL_ERROR


def test_out_of_range_integer_is_refused(session: Session) -> None:
    session.send(vector("sizelimit-huge-integer"))
    outcome = session.read(answered(1, SEARCH_DONE))
    if outcome.closed:
        assert_disconnected_with_notice(outcome)
    else:
        assert only(outcome.replies, 1, SEARCH_DONE).result_code == PROTOCOL_ERROR


def test_unknown_extended_operation_gets_protocol_error(session: Session) -> None:
    session.send(vector("unknown-extended-oid"))
    outcome = session.read(answered(1, EXTENDED_RESPONSE))
    assert only(outcome.replies, 1, EXTENDED_RESPONSE).result_code == PROTOCOL_ERROR
    assert_session_usable(session)


def test_abandon_of_unknown_message_has_no_response(session: Session) -> None:
    session.send(vector("abandon-unknown"))
    outcome = session.read(timeout=0.5)
    assert outcome.replies == () and not outcome.closed
    assert_session_usable(session)


def test_nothing_is_answered_after_unbind(session: Session) -> None:
    session.send(vector("unbind-then-search"))
    outcome = session.read()
    assert outcome.closed
    assert outcome.replies == ()


def test_controls_nested_100000_deep(session: Session) -> None:
    search = base_search(6, SUFFIX)
    _, start, _ = header(search, 0)
    session.send(tlv(0x30, search[start:] + tlv(0xA0, nested(0x30, 100_000, b""))))
    outcome = session.read(answered(6, SEARCH_DONE), timeout=10.0)
    if outcome.closed:
        assert_disconnected_with_notice(outcome)
    else:
        assert only(outcome.replies, 6, SEARCH_DONE).result_code == PROTOCOL_ERROR


def test_cleartext_ldap_on_ldaps_port_is_dropped(server: Server) -> None:
    with socket.create_connection(("127.0.0.1", server.ldaps_port), timeout=10) as sock:
        sock.sendall(anonymous_bind(1))
        sock.settimeout(10)
        try:
            while sock.recv(65536):
                pass
        except ConnectionResetError:
            pass


def test_junk_inside_tls_gets_notice_of_disconnection(server: Server) -> None:
    session = Session(server, tls=True)
    try:
        session.send(anonymous_bind(1))
        assert only(session.read(answered(1, BIND_RESPONSE)).replies, 1,
                    BIND_RESPONSE).result_code == 0
        session.send(vector("jpeg-junk"))
        assert_disconnected_with_notice(session.read())
    finally:
        session.close()


def test_thousand_pipelined_requests_all_answered(session: Session) -> None:
    session.send(b"".join(base_search(n, SUFFIX) for n in range(1, 1001)))
    outcome = session.read(lambda rs: sum(r.op_tag == SEARCH_DONE for r in rs) == 1000,
                           timeout=30.0)
    done = {r.message_id: r.result_code for r in outcome.replies if r.op_tag == SEARCH_DONE}
    assert done == dict.fromkeys(range(1, 1001), 0)


def test_bind_with_200k_dn_is_answered(session: Session) -> None:
    # Just under the PDU limit of a connection not bound (test069 pins what is above it).
    name = ("cn=" + "x" * 200_000 + f",{SUFFIX}").encode()
    session.send(message(1, tlv(0x60, integer(3) + tlv(0x04, name) + tlv(0x80, b"secret"))))
    outcome = session.read(answered(1, BIND_RESPONSE))
    # Longer than limits.max_dn_bytes (8192, slapd's): invalidDNSyntax, never success,
    # never a dropped session.
    assert only(outcome.replies, 1, BIND_RESPONSE).result_code == 34
    assert_session_usable(session)


def test_search_for_200000_attribute_names(session: Session) -> None:
    session.send(base_search(8, SUFFIX, attributes=(b"cn",) * 200_000))
    assert_refused(session, 8, 15.0)


def test_truncated_pdu_then_close(session: Session) -> None:
    session.send(vector("truncated-bind"))
    session.sock.shutdown(socket.SHUT_WR)
    outcome = session.read()
    assert outcome.closed
    assert all(r.is_notice_of_disconnection for r in outcome.replies), outcome.replies


def test_large_pdu_cut_short_then_close(session: Session) -> None:
    session.send(b"\x30\x83\x01\x86\xa0" + integer(1) + b"\x63\x83\x01\x86\x98" + bytes(1000))
    session.sock.shutdown(socket.SHUT_WR)
    outcome = session.read()
    assert outcome.closed
    assert all(r.is_notice_of_disconnection for r in outcome.replies), outcome.replies


def test_zero_length_read_closes_quietly(session: Session) -> None:
    session.sock.shutdown(socket.SHUT_WR)
    outcome = session.read()
    assert outcome.closed, "server did not close after the client's end of stream"
    assert outcome.replies == ()


def test_connect_and_close_without_sending(server: Server) -> None:
    for _ in range(100):
        socket.create_connection(("127.0.0.1", server.port), timeout=5).close()


def test_half_a_pdu_is_waited_for(session: Session) -> None:
    bind = anonymous_bind(1)
    session.send(bind[:7])
    outcome = session.read(timeout=1.0)
    assert outcome.replies == () and not outcome.closed
    session.send(bind[7:])
    outcome = session.read(answered(1, BIND_RESPONSE))
    assert only(outcome.replies, 1, BIND_RESPONSE).result_code == 0


def test_one_byte_per_write(session: Session) -> None:
    for byte in base_search(3, SUFFIX):
        session.send(bytes((byte,)))
        time.sleep(0.001)
    outcome = session.read(answered(3, SEARCH_DONE))
    assert only(outcome.replies, 3, SEARCH_ENTRY)
    assert only(outcome.replies, 3, SEARCH_DONE).result_code == 0


def test_several_pdus_in_one_write(session: Session) -> None:
    session.send(anonymous_bind(1) + base_search(2, SUFFIX) + base_search(3, ""))
    outcome = session.read(lambda rs: answered(2, SEARCH_DONE)(rs)
                           and answered(3, SEARCH_DONE)(rs))
    assert only(outcome.replies, 1, BIND_RESPONSE).result_code == 0
    assert only(outcome.replies, 2, SEARCH_DONE).result_code == 0
    assert only(outcome.replies, 3, SEARCH_DONE).result_code == 0


def nested(tag: int, depth: int, core: bytes) -> bytes:
    """`core` wrapped in `depth` constructed elements tagged `tag`, built in linear time."""
    headers, size = [], len(core)
    for _ in range(depth):
        head = bytes((tag,)) + length_octets(size)
        headers.append(head)
        size += len(head)
    return b"".join(reversed(headers)) + core


def nested_not(depth: int) -> bytes:
    """(!(!(...(objectClass=*)...))) with `depth` NOT filters."""
    return nested(0xA2, depth, PRESENT_OBJECTCLASS)


def assert_refused(session: Session, message_id: int, seconds: float) -> None:
    """The server refuses the search (or the whole PDU) promptly, without dying."""
    started = time.monotonic()
    outcome = session.read(answered(message_id, SEARCH_DONE), timeout=seconds)
    assert time.monotonic() - started < seconds, "no answer in time"
    if outcome.closed:
        assert_disconnected_with_notice(outcome)
    else:
        done = only(outcome.replies, message_id, SEARCH_DONE)
        assert done.result_code in REFUSALS, done


def test_filter_nested_10000_levels(session: Session) -> None:
    session.send(base_search(4, SUFFIX, nested_not(10_000)))
    assert_refused(session, 4, 10.0)


def test_moderately_nested_filter_is_evaluated(session: Session) -> None:
    session.send(base_search(4, SUFFIX, nested_not(32)))
    outcome = session.read(answered(4, SEARCH_DONE))
    assert only(outcome.replies, 4, SEARCH_ENTRY)
    assert only(outcome.replies, 4, SEARCH_DONE).result_code == 0


def test_and_of_100000_elements(session: Session) -> None:
    session.send(base_search(5, SUFFIX, tlv(0xA0, PRESENT_OBJECTCLASS * 100_000)))
    assert_refused(session, 5, 15.0)


def test_thousand_connections_at_once(server: Server) -> None:
    started = time.monotonic()
    sessions = [Session(server) for _ in range(1000)]
    try:
        for s in sessions:
            s.send(anonymous_bind(1))
        codes = [only(s.read(answered(1, BIND_RESPONSE)).replies, 1, BIND_RESPONSE).result_code
                 for s in sessions]
        assert codes == [0] * 1000
        # A full accept queue drops SYNs and each drop costs the client a 1 s retransmit.
        assert time.monotonic() - started < 10.0, "listen backlog too small"
    finally:
        for s in sessions:
            s.close()
