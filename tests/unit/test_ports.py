"""The test harness's port reservations (tests/ports.py) stay bounded.

- However many ports a session picks, it holds at most `HELD` reservation
  files open: a session of a thousand servers must leave descriptors
  below 1024 for select() (test_hostile opens a thousand connections).
- The ports it hands out are distinct while reserved, and listenable.
"""

from __future__ import annotations

import os
import socket

from tests import ports


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_a_session_holds_a_bounded_number_of_reservations() -> None:
    before = open_descriptors()
    picked = [ports.free_port() for _ in range(3 * ports.HELD)]
    assert open_descriptors() - before <= ports.HELD
    assert len(set(picked[-ports.HELD:])) == ports.HELD
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", picked[-1]))
