"""Scenario 091: persist searches against the idle timeout and their limits.

- `limits.idle_timeout` closes a connection that sent nothing for that
  long and has no operation outstanding (slapd's idletimeout passes over
  a connection with operations executing): a silent connection is closed;
  a consumer's refreshAndPersist search outlives the timeout several
  times over and still brings the next change; once it is abandoned the
  silent connection is closed.
- `limits.max_persist_searches` refreshAndPersist searches per connection
  and `limits.max_persist_searches_total` per server: one more is busy
  (51), and the connection stays usable; once one of them is abandoned,
  or its connection closes, a new one is taken. A refreshOnly search is
  no persist search and is never refused for it.

Consumers are python-ldap's `ldap.syncrepl.SyncreplConsumer`.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import ldap
import ldap.ldapobject
import pytest
from ldap.syncrepl import SyncreplConsumer

from tests.integration.conftest import SUFFIX, Server, make_server

IDLE = 2
PER_CONNECTION = 2
TOTAL = 3
CLOSED = " fd=0 closed"


class Consumer(ldap.ldapobject.LDAPObject, SyncreplConsumer):  # type: ignore[misc]
    """A consumer that remembers the DNs it was sent and whether a refresh ended."""

    def __init__(self, uri: str) -> None:
        ldap.ldapobject.LDAPObject.__init__(self, uri)
        self.dns: set[str] = set()
        self.refreshed = False

    def syncrepl_get_cookie(self) -> str | None:
        return None

    def syncrepl_set_cookie(self, cookie: str) -> None:
        pass

    def syncrepl_entry(self, dn: str, attributes: dict[str, list[bytes]], uuid: str) -> None:
        self.dns.add(dn.lower())

    def syncrepl_delete(self, uuids: list[str]) -> None:
        pass

    def syncrepl_present(self, uuids: list[str] | None, refreshDeletes: bool = False) -> None:
        pass

    def syncrepl_refreshdone(self) -> None:
        self.refreshed = True


def _consumer(server: Server) -> Consumer:
    c = Consumer(server.uri)
    c.simple_bind_s(server.root_dn, server.root_password)
    return c


def _poll_until(c: Consumer, msgid: int, done: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 30
    while not done():
        assert time.monotonic() < deadline, "the search did not get there"
        try:
            c.syncrepl_poll(msgid=msgid, timeout=1)
        except ldap.TIMEOUT:
            continue


def _persist(c: Consumer, scope: int = ldap.SCOPE_BASE,
             filterstr: str = "(objectClass=*)") -> int:
    """Start a persist search below the suffix and wait for its refresh to end."""
    c.refreshed = False
    msgid: int = c.syncrepl_search(SUFFIX, scope, mode="refreshAndPersist",
                                   filterstr=filterstr, attrlist=["1.1"])
    _poll_until(c, msgid, lambda: c.refreshed)
    return msgid


def _logged_times(server: Server, text: str, times: int) -> None:
    """Wait until the server's log holds `text` `times` times."""
    deadline = time.monotonic() + 10
    while server.log().count(text) < times:
        assert time.monotonic() < deadline, f"{text!r} not logged {times} times"
        time.sleep(0.05)


def _busy(c: Consumer) -> str:
    """Start one more persist search: refused with busy; its diagnostic."""
    msgid = c.syncrepl_search(SUFFIX, ldap.SCOPE_BASE, mode="refreshAndPersist",
                              filterstr="(objectClass=*)", attrlist=["1.1"])
    with pytest.raises(ldap.BUSY) as refused:
        c.syncrepl_poll(msgid=msgid, all=1, timeout=10)
    info: str = refused.value.args[0].get("info", "")
    return info


# --- idle timeout --------------------------------------------------------------

@pytest.fixture(scope="module")
def idle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = make_server(tmp_path_factory.mktemp("certdir"), "--no-ca")
    server.configure("limits", idle_timeout=IDLE)
    server.start()
    yield server
    log = server.stop()
    assert "Traceback" not in log, log


def test_silent_connection_is_closed(idle: Server) -> None:
    with socket.create_connection(("127.0.0.1", idle.port), timeout=IDLE * 5) as sock:
        assert sock.recv(1) == b""


def test_persist_search_outlives_the_idle_timeout(idle: Server) -> None:
    c = _consumer(idle)
    msgid = _persist(c, scope=ldap.SCOPE_ONELEVEL, filterstr="(ou=later)")
    time.sleep(IDLE * 3)
    added = idle.tool("ldapadd", input=f"""dn: ou=later,{SUFFIX}
objectClass: organizationalUnit
ou: later
""".encode())
    assert added.returncode == 0, added.stderr
    _poll_until(c, msgid, lambda: f"ou=later,{SUFFIX}".lower() in c.dns)
    c.abandon(msgid)
    time.sleep(IDLE * 3)
    with pytest.raises(ldap.SERVER_DOWN):
        c.whoami_s()


# --- how many persist searches -------------------------------------------------

@pytest.fixture
def limited(tmp_path: Path) -> Iterator[Server]:
    server = make_server(tmp_path, "--no-ca")
    server.configure("limits", max_persist_searches=PER_CONNECTION,
                     max_persist_searches_total=TOTAL)
    server.start()
    yield server
    log = server.stop()
    assert "Traceback" not in log, log


def test_one_persist_search_too_many_on_a_connection_is_busy(limited: Server) -> None:
    c = _consumer(limited)
    first = _persist(c)
    _persist(c)
    assert "limits.max_persist_searches" in _busy(c)
    refresh = c.syncrepl_search(SUFFIX, ldap.SCOPE_BASE, mode="refreshOnly", attrlist=["1.1"])
    while c.syncrepl_poll(msgid=refresh, all=1, timeout=10):
        pass
    assert c.whoami_s() == f"dn:{limited.root_dn}"
    c.abandon(first)
    _persist(c)
    c.unbind_s()


def test_one_persist_search_too_many_on_the_server_is_busy(limited: Server) -> None:
    a, b = _consumer(limited), _consumer(limited)
    for _ in range(PER_CONNECTION):
        _persist(a)
    _persist(b)
    assert "limits.max_persist_searches_total" in _busy(b)
    closed = limited.log().count(CLOSED)
    a.unbind_s()
    _logged_times(limited, CLOSED, closed + 1)
    _persist(b)
    b.unbind_s()
