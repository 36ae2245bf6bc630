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

Consumers are python-ldap's `ldap.syncrepl.SyncreplConsumer`
(tests/integration/sync_client.py).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import ldap
import ldap.ldapobject
import pytest

from tests.integration.conftest import SUFFIX, Server, make_server
from tests.integration.sync_client import Replica, memory_replica, poll_until

IDLE = 2
PER_CONNECTION = 2
TOTAL = 3
CLOSED = " fd=0 closed"


def _persist(c: Replica, scope: int = ldap.SCOPE_BASE,
             filterstr: str = "(objectClass=*)") -> int:
    """Start a persist search below the suffix and wait for its refresh to end."""
    c.refreshed = False
    msgid: int = c.syncrepl_search(SUFFIX, scope, mode="refreshAndPersist",
                                   filterstr=filterstr, attrlist=["1.1"])
    poll_until(c, msgid, lambda: c.refreshed, "the search did not get there")
    return msgid


def _logged_times(server: Server, text: str, times: int) -> None:
    """Wait until the server's log holds `text` `times` times."""
    deadline = time.monotonic() + 10
    while server.log().count(text) < times:
        assert time.monotonic() < deadline, f"{text!r} not logged {times} times"
        time.sleep(0.05)


def _busy(c: Replica) -> str:
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
    c = memory_replica(idle)
    msgid = _persist(c, scope=ldap.SCOPE_ONELEVEL, filterstr="(ou=later)")
    time.sleep(IDLE * 3)
    added = idle.tool("ldapadd", input=f"""dn: ou=later,{SUFFIX}
objectClass: organizationalUnit
ou: later
""".encode())
    assert added.returncode == 0, added.stderr
    poll_until(c, msgid, lambda: f"ou=later,{SUFFIX}".lower() in c.dns(),
               "the search did not get there")
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
    c = memory_replica(limited)
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
    a, b = memory_replica(limited), memory_replica(limited)
    for _ in range(PER_CONNECTION):
        _persist(a)
    _persist(b)
    assert "limits.max_persist_searches_total" in _busy(b)
    closed = limited.log().count(CLOSED)
    a.unbind_s()
    _logged_times(limited, CLOSED, closed + 1)
    _persist(b)
    b.unbind_s()
