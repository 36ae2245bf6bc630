"""Raw HTTP/1.1 on loopback sockets, for tests that must send what no polite client sends.

- `connect` opens a plain or TLS socket; TLS verifies the server against the
  data directory's CA and the 127.0.0.1 IP address in its certificate.
- `exchange`, `flood` and `trickle` send bytes in the shape an attacker
  would (all at once, without end, one byte a second) and return what came
  back: the status of every response, and whether the server closed the
  connection (end of stream or reset) within the time allowed.
- Every wait is bounded; nothing here blocks longer than its `seconds`.
"""

from __future__ import annotations

import re
import select
import socket
import ssl
import time
from dataclasses import dataclass

from tests.integration.conftest import Server

STATUS_LINE = re.compile(rb"^HTTP/1\.[01] (\d{3}) ", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Exchange:
    """What the server sent back, and whether it then closed the connection."""

    raw: bytes
    closed: bool

    @property
    def statuses(self) -> tuple[int, ...]:
        return tuple(int(code) for code in STATUS_LINE.findall(self.raw))

    @property
    def outcome(self) -> tuple[tuple[int, ...], bool]:
        return self.statuses, self.closed

    def headers(self) -> dict[str, str]:
        """The first response's header fields (names lower-cased)."""
        head = self.raw.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")[1:]
        return {name.lower(): value.strip() for name, value in
                (line.split(":", 1) for line in head)}

    def body(self) -> bytes:
        return self.raw.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in self.raw else b""


def client_context(server: Server) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(server.ca_file))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def connect(server: Server, scheme: str, seconds: float = 10.0) -> socket.socket:
    port = server.https_port if scheme == "https" else server.http_port
    sock = socket.create_connection(("127.0.0.1", port), timeout=seconds)
    if scheme == "https":
        return client_context(server).wrap_socket(sock, server_hostname="127.0.0.1")
    return sock


def poll(sock: socket.socket, seconds: float) -> bytes | None:
    """Application bytes that arrive within `seconds`, b"" once the server has
    closed the connection, None if nothing came."""
    deadline = time.monotonic() + seconds
    sock.setblocking(False)
    try:
        while True:
            try:
                return sock.recv(65536)
            except (ssl.SSLWantReadError, BlockingIOError):
                pass
            except (ConnectionResetError, ssl.SSLEOFError):
                return b""
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            select.select([sock], [], [], left)
    finally:
        sock.setblocking(True)


def read_to_close(sock: socket.socket, seconds: float = 10.0) -> Exchange:
    """Everything the server sends until it closes, or until `seconds` pass."""
    raw = b""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        data = poll(sock, left)
        if data is None:
            break
        if data == b"":
            return Exchange(raw, closed=True)
        raw += data
    return Exchange(raw, closed=False)


def exchange(server: Server, scheme: str, data: bytes, seconds: float = 10.0) -> Exchange:
    """Send `data` at once, then read until the server closes (or `seconds` pass)."""
    with connect(server, scheme) as sock:
        sock.sendall(data)
        return read_to_close(sock, seconds)


def flood(sock: socket.socket, head: bytes, chunk: bytes, cap: int,
          seconds: float = 30.0) -> Exchange:
    """Send `head`, then `chunk` after `chunk` without end, reading meanwhile,
    until the server closes, `cap` bytes are out or `seconds` pass."""
    sock.sendall(head)
    sock.setblocking(False)
    raw, sent, sending = b"", 0, True
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and sent <= cap:
        readable, writable, _ = select.select([sock], [sock] if sending else [], [], 1.0)
        if readable:
            try:
                data = sock.recv(65536)
            except (ssl.SSLWantReadError, BlockingIOError):
                data = None
            except (ConnectionResetError, ssl.SSLEOFError):
                return Exchange(raw, closed=True)
            if data == b"":
                return Exchange(raw, closed=True)
            raw += data or b""
        if writable:
            try:
                sent += sock.send(chunk)
            except (ssl.SSLWantWriteError, BlockingIOError):
                pass
            except OSError:
                # The server stopped reading and closed; what it said is still to be read.
                sending = False
    return Exchange(raw, closed=False)


def trickle(sock: socket.socket, data: bytes, seconds: float = 30.0) -> Exchange:
    """Send `data` one byte a second until the server answers; then read to close."""
    deadline = time.monotonic() + seconds
    for byte in data:
        if time.monotonic() > deadline:
            break
        try:
            sock.send(bytes((byte,)))
        except OSError:
            break
        answer = poll(sock, 1.0)
        if answer == b"":
            return Exchange(b"", closed=True)
        if answer:
            rest = read_to_close(sock, 10.0)
            return Exchange(answer + rest.raw, rest.closed)
    return Exchange(b"", closed=False)


def chunk(data: bytes) -> bytes:
    """One chunk of a chunked body (RFC 9112 §7.1)."""
    return b"%x\r\n" % len(data) + data + b"\r\n"
