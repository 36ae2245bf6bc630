"""Several server processes on one set of listening sockets (DESIGN.md,
"Concurrency": `--workers N` for more than one core).

- The parent binds every LDAP listen URL and every plain http:// URL of
  `http.listen` once, forks the workers, which adopt the sockets (LDAP
  connections spread evenly by certdir.balance, web ones as the kernel
  wakes the workers), and then only supervises:
  SIGTERM or SIGINT is passed on to every worker, and when one worker
  exits the others are stopped too, so a broken worker never leaves a
  half-working server behind.
- The https:// URLs are not shared: the https site keeps its logins in
  one process's memory, so the first worker alone listens on them. The
  plain-http site (CA certificates, CRLs, OCSP) is stateless, read from
  the database on every request, and served by every worker.
- The parent never starts a reactor or opens the database: both are made
  in each worker after the fork. What the parent made is frozen out of
  the garbage collector before the fork (`certdir.collector.freeze`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import FrameType

from certdir import collector
from certdir.balance import Loads
from certdir.config import HTTPURL, Config, ConfigError, ListenURL

log = logging.getLogger("certdir")


@dataclass(frozen=True, slots=True)
class Shared:
    """What the parent made for its workers: the listening sockets by URL
    and the table of the connections each holds (certdir.balance)."""

    sockets: Mapping[ListenURL | HTTPURL, socket.socket]
    loads: Loads


Worker = Callable[[Config, Shared, int], None]


# Twisted's default of 50 drops connections when many clients arrive at once
# (a mail server's connection pool starting up); the kernel caps it at somaxconn.
BACKLOG = 1024

def shared_urls(config: Config) -> tuple[ListenURL | HTTPURL, ...]:
    """What every worker serves: the LDAP URLs and the plain-http web URLs."""
    return (*config.listen, *(url for url in config.http if url.scheme == "http"))


def _listening(url: ListenURL | HTTPURL, backlog: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((url.host, url.port))
    except OSError as e:
        sock.close()
        raise ConfigError(f"cannot listen on {url}: {e.strerror}") from None
    sock.listen(backlog)
    sock.setblocking(False)
    return sock


def run_workers(config: Config, worker: Worker) -> None:
    sockets: dict[ListenURL | HTTPURL, socket.socket] = {}
    try:
        for url in shared_urls(config):
            sockets[url] = _listening(url, BACKLOG)
    except ConfigError:
        for sock in sockets.values():
            sock.close()
        raise
    shared = Shared(sockets, Loads(config.workers))
    children: list[int] = []
    collector.freeze()
    for index in range(config.workers):
        pid = os.fork()
        if pid == 0:
            status = 0
            try:
                worker(config, shared, index)
            except ConfigError as e:
                print(f"certdir: error: {e}", file=sys.stderr)
                status = 1
            except BaseException:
                logging.getLogger("certdir").exception("worker %d failed", index)
                status = 1
            finally:
                sys.stdout.flush()
                os._exit(status)
        children.append(pid)
    for sock in sockets.values():
        sock.close()
    _supervise(children)


def _supervise(children: list[int]) -> None:
    running = set(children)

    def forward(signum: int, frame: FrameType | None) -> None:
        for pid in running:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    status = 0
    while running:
        pid, code = os.wait()
        running.discard(pid)
        if code and not status:
            status = os.waitstatus_to_exitcode(code) or 1
        forward(signal.SIGTERM, None)
    if status:
        raise SystemExit(status)
