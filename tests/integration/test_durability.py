"""Durability under kill -9 (RFC 4511 §4.7: a success result means the entry was added).

- An add answered with success is durable: after kill -9 in the middle of a
  concurrent write load and a restart, every acknowledged entry is there.
- The database stays consistent: a subtree search and `certdir ldif export`
  both work after the crash and list the same entries, and the server accepts
  new writes.
- Several crash-restart rounds in a row do not accumulate damage, and the
  server never prints a traceback while recovering.
"""

from __future__ import annotations

import itertools
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ldap3 import Connection
from ldap3 import Server as Ldap3Server
from ldap3.core.exceptions import LDAPException

from tests.integration.conftest import SUFFIX, Server, make_server

WRITERS = 8
LOAD_SECONDS = 3.0
ROUNDS = 3


@dataclass
class Writer:
    """One client adding entries as fast as it can until its connection dies."""

    name: str
    conn: Connection
    acknowledged: list[str] = field(default_factory=list)

    def run(self) -> None:
        try:
            for n in itertools.count():
                cn = f"{self.name}-{n}"
                dn = f"cn={cn},{SUFFIX}"
                if not self.conn.add(dn, ["person"], {"cn": cn, "sn": "load"}):
                    raise AssertionError(f"add {dn} refused: {self.conn.result}")
                self.acknowledged.append(dn)
        except LDAPException:
            return


def root_connection(server: Server) -> Connection:
    return Connection(Ldap3Server(server.uri, connect_timeout=5), server.root_dn,
                      server.root_password, auto_bind=True, receive_timeout=10)


def load_then_kill(server: Server, round_number: int) -> list[str]:
    """Run the writers, kill -9 the server mid-load; return the acknowledged DNs."""
    # Binding (a deliberately slow password hash) happens before the clock starts.
    with ThreadPoolExecutor(WRITERS) as pool:
        connections = list(pool.map(lambda _: root_connection(server), range(WRITERS)))
    writers = [Writer(f"r{round_number}w{n}", conn) for n, conn in enumerate(connections)]
    threads = [threading.Thread(target=w.run, daemon=True) for w in writers]
    for thread in threads:
        thread.start()
    time.sleep(LOAD_SECONDS)
    stopped = [w.name for w, t in zip(writers, threads, strict=True) if not t.is_alive()]
    server.kill()
    for thread in threads:
        thread.join(timeout=30)
    assert not stopped, f"writers stopped before the kill: {stopped}"
    return [dn for w in writers for dn in w.acknowledged]


def dns_in(ldif: str) -> set[str]:
    return {line[4:].lower() for line in ldif.splitlines() if line.startswith("dn: ")}


def searched_dns(server: Server, search_filter: str) -> set[str]:
    result = server.tool("ldapsearch", "-LLL", "-o", "ldif-wrap=no", "-b", SUFFIX,
                         "-s", "sub", search_filter, "1.1")
    assert result.returncode == 0, result.stderr.decode()
    return dns_in(result.stdout.decode())


def exported_dns(server: Server) -> set[str]:
    result = server.certdir("ldif", "export", "--data-dir", str(server.data_dir), check=False)
    assert result.returncode == 0, result.stderr.decode()
    return dns_in(result.stdout.decode())


def assert_writable(server: Server, cn: str) -> None:
    conn = root_connection(server)
    assert conn.add(f"cn={cn},{SUFFIX}", ["person"], {"cn": cn, "sn": "after"}), conn.result
    conn.unbind()


def test_acknowledged_adds_survive_kill_9(tmp_path: Path) -> None:
    server = make_server(tmp_path)
    server.start()
    acknowledged: set[str] = set()
    try:
        for round_number in range(ROUNDS):
            added = load_then_kill(server, round_number)
            assert added, f"round {round_number}: no add was acknowledged in {LOAD_SECONDS} s"
            acknowledged.update(dn.lower() for dn in added)
            server.start()
            # Matching on every attribute written shows the entries are whole, not torn.
            found = searched_dns(server, "(&(objectClass=person)(sn=load)(cn=r*))")
            missing = sorted(acknowledged - found)
            assert not missing, f"round {round_number}: {len(missing)} acknowledged entries " \
                                f"lost, e.g. {missing[:5]}"
            assert exported_dns(server) == searched_dns(server, "(objectClass=*)")
            assert_writable(server, f"after-round-{round_number}")
    finally:
        if server.proc is not None:
            server.stop()
    assert "Traceback" not in server.log(), server.log()
