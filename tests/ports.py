"""Loopback ports for the servers the tests start, kept from everyone else.

- A port comes from outside the kernel's ephemeral range
  (/proc/sys/net/ipv4/ip_local_port_range): the kernel hands those out as
  the local end of outgoing connections, so a port picked by binding port 0
  and closing it could become any client connection's before the server
  under test bound it (and the server then exited: Address already in use).
- A port is reserved by the process that picked it: an exclusive lock on
  a file named after it in RESERVED, a directory every test run on the
  machine shares, so two runs side by side (`make test`'s two storage
  passes) never pick the same port. The kernel drops the lock when the
  process ends, however it ends. A process holds its last `HELD`
  reservations only (one open file each: a session holding all of them
  ran out of the descriptors select() can watch); a port picked longer ago
  is listened on by its server by then, which the next check sees.
- `listening(port)` waits for a server started outside the harness
  (slapd) to accept connections on a port it was given.
- A port is handed out only if it can be listened on now (with
  SO_REUSEADDR, as the servers listen), so one a daemon holds is skipped.
"""

from __future__ import annotations

import fcntl
import os
import random
import socket
import tempfile
import time
from collections import OrderedDict
from pathlib import Path

RESERVED = Path(tempfile.gettempdir()) / "certdir-test-ports"
LOWEST = 10000
ATTEMPTS = 1000
HELD = 64

# Its own generator: tests that seed the global one must not make two runs pick alike.
_choose = random.SystemRandom().choice
_held: OrderedDict[int, int] = OrderedDict()


def _ephemeral() -> range:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    except OSError:
        return range(32768, 61000)
    return range(int(low), int(high) + 1)


def _candidates() -> list[int]:
    ephemeral = _ephemeral()
    outside = [port for port in range(LOWEST, 65536) if port not in ephemeral]
    return outside or list(range(LOWEST, 65536))


def _reserve(port: int) -> bool:
    RESERVED.mkdir(exist_ok=True)
    try:
        fd = os.open(RESERVED / str(port), os.O_RDWR | os.O_CREAT, 0o666)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return False
    _held[port] = fd
    if len(_held) > HELD:
        os.close(_held.popitem(last=False)[1])
    return True


def _listenable(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
            probe.listen()
        except OSError:
            return False
    return True


def free_port() -> int:
    """A loopback port nothing listens on, reserved for this process."""
    candidates = _candidates()
    for _ in range(ATTEMPTS):
        port = _choose(candidates)
        if port in _held or not _reserve(port):
            continue
        if _listenable(port):
            return port
    raise RuntimeError(f"no free port outside the ephemeral range after {ATTEMPTS} tries")


def listening(port: int, timeout: float = 30.0) -> bool:
    """Whether something accepts connections on loopback `port` within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False
