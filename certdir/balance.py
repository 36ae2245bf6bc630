"""LDAP connections spread evenly over the workers of one listening socket
(`workers: N`, certdir.workers).

Every worker polls the shared socket and the kernel wakes them all; the
first to run accepted every connection waiting (Twisted's port accepts up
to a hundred at once). The eight connections of a type-ahead load, opened
together, often all went to one worker while the other idled: the load ran
at 340/s or 650/s by the luck of the split.

- Each worker counts the LDAP connections it holds in its own slot of a
  table all workers share (anonymous shared memory made before the fork;
  a worker writes only its slot, so no lock is needed).
- A worker accepts one connection at a time, and only while no other
  holds fewer than it does; otherwise it stops watching the socket for
  `RECHECK_S`. The worker holding the fewest always accepts, so a client
  waits at most until that worker is back in its event loop.
- A failed accept (another worker took the connection, or the client left
  first) is no error; one that lacks a resource (file descriptors,
  memory) is logged and retried after `RECHECK_S`, never in a busy loop.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import mmap
import socket
import struct
from typing import Any

from twisted.internet.interfaces import IReadDescriptor
from twisted.internet.protocol import Factory
from twisted.python.failure import Failure
from zope.interface import implementer

log = logging.getLogger("certdir")

RECHECK_S = 0.005
_SLOT = struct.Struct("q")
# The accept found no connection: another worker or the client was first.
_GONE = frozenset({errno.EAGAIN, errno.EWOULDBLOCK, errno.ECONNABORTED, errno.EPROTO,
                   errno.EINTR})


class Loads:
    """How many connections each worker holds, in memory every worker
    forked after this was made shares."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._table = mmap.mmap(-1, _SLOT.size * workers)

    def change(self, worker: int, delta: int) -> None:
        at = worker * _SLOT.size
        _SLOT.pack_into(self._table, at, _SLOT.unpack_from(self._table, at)[0] + delta)

    def fewest(self, worker: int) -> bool:
        """Whether no other worker holds fewer connections than `worker`."""
        held: list[int] = [_SLOT.unpack_from(self._table, i * _SLOT.size)[0]
                           for i in range(self.workers)]
        return held[worker] <= min(held)


@implementer(IReadDescriptor)
class BalancedPort:
    """Accepts from a listening socket shared with other workers, for `factory`."""

    def __init__(self, reactor: Any, sock: socket.socket, factory: Factory, loads: Loads,
                 worker: int) -> None:
        self._reactor = reactor
        self._socket = sock
        self._factory = factory
        self._loads = loads
        self._worker = worker

    def start(self) -> None:
        self._factory.doStart()
        self._reactor.addReader(self)

    def fileno(self) -> int:
        return self._socket.fileno()

    def logPrefix(self) -> str:
        return "BalancedPort"

    def doRead(self) -> None:
        if not self._loads.fewest(self._worker):
            self._pause()
            return
        try:
            connection, _ = self._socket.accept()
        except OSError as e:
            if e.errno not in _GONE:
                log.warning("cannot accept a connection: %s", e.strerror)
                self._pause()
            return
        with connection:
            connection.setblocking(False)
            # Twisted takes a duplicate of the descriptor; this copy is closed.
            with contextlib.suppress(OSError):  # the client left before it was adopted
                self._reactor.adoptStreamConnection(connection.fileno(), connection.family,
                                                    self._factory)

    def _pause(self) -> None:
        self._reactor.removeReader(self)
        self._reactor.callLater(RECHECK_S, self._reactor.addReader, self)

    def connectionLost(self, reason: Failure) -> None:
        self._factory.doStop()
