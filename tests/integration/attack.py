"""An attacker and an innocent client at once: what the hostile-input scenarios measure.

- `Innocent` runs a second client in a thread for as long as the attack lasts,
  timing each of its operations (a base search of the suffix by default, over
  its own connection); `worst` is the longest wait it saw, so a scenario asserts
  the server kept serving others while one client attacked.
- `rss_mib` reads the server process's resident memory from /proc, for the
  memory a request leaves behind.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import ldap

from tests.integration.conftest import SUFFIX, Server

Probe = Callable[["ldap.ldapobject.LDAPObject"], object]


def base_search(conn: ldap.ldapobject.LDAPObject) -> object:
    return conn.search_s(SUFFIX, ldap.SCOPE_BASE, "(objectClass=*)", ["dc"])


class Innocent:
    """`with Innocent(server) as probe: attack()`, then assert on `probe.worst`."""

    def __init__(self, server: Server, probe: Probe = base_search, bind: bool = False,
                 pause: float = 0.02, timeout: float = 60.0) -> None:
        self.server = server
        self.probe = probe
        self.bind = bind
        self.pause = pause
        self.timeout = timeout
        self.latencies: list[float] = []
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _connect(self) -> ldap.ldapobject.LDAPObject:
        conn = ldap.initialize(self.server.uri)
        conn.set_option(ldap.OPT_NETWORK_TIMEOUT, self.timeout)
        conn.set_option(ldap.OPT_TIMEOUT, self.timeout)
        if self.bind:
            conn.simple_bind_s(self.server.root_dn, self.server.root_password)
        return conn

    def _run(self) -> None:
        try:
            conn = self._connect()
            while not self._stop.is_set():
                started = time.monotonic()
                self.probe(conn)
                self.latencies.append(time.monotonic() - started)
                self._stop.wait(self.pause)
            conn.unbind_s()
        except BaseException as e:  # reported by __exit__
            self.errors.append(e)

    def __enter__(self) -> Innocent:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self.latencies and not self.errors and time.monotonic() < deadline:
            time.sleep(0.01)
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join(self.timeout + 5)
        if kind is None and self.errors:
            raise AssertionError(f"the innocent client failed: {self.errors[0]!r}")

    @property
    def worst(self) -> float:
        return max(self.latencies, default=float("inf"))


def rss_mib(server: Server) -> float:
    assert server.proc is not None
    for line in Path(f"/proc/{server.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc status")
