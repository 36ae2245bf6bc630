"""`workers: 2`: two server processes on one port and one database.

Every connection may land on either worker, so each read below may be
served by the process that did not make the write: it must still see it
(the workers drop their caches when the other commits), and SIGTERM to the
parent stops both.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import ldap3
import pytest

from tests.integration.conftest import SUFFIX, Server, make_server

PEOPLE = f"ou=people,{SUFFIX}"


@pytest.fixture(scope="module")
def workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = make_server(tmp_path_factory.mktemp("workers"))
    srv.configure(workers=2)
    srv.start()
    yield srv
    if srv.proc is not None:
        log = srv.stop()
        assert "Traceback" not in log, log


def connect(server: Server, root: bool = True) -> ldap3.Connection:
    who = {"user": server.root_dn, "password": server.root_password} if root else {}
    return ldap3.Connection(ldap3.Server(server.uri), auto_bind=True, **who)


def test_both_workers_serve(workers: Server) -> None:
    # The parent listens before the workers log that they serve.
    deadline = time.monotonic() + 30
    while workers.log().count("listening on ldap://") < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert workers.log().count("listening on ldap://") == 2
    assert "[1] listening on" in workers.log()


def test_writes_are_seen_by_every_worker(workers: Server) -> None:
    admin = connect(workers)
    assert admin.add(PEOPLE, ["organizationalUnit"], {"ou": "people"})
    for round_ in range(10):
        value = f"round {round_}"
        if round_ == 0:
            assert admin.add(f"cn=p,{PEOPLE}", ["person"], {"cn": "p", "sn": value})
        else:
            assert admin.modify(f"cn=p,{PEOPLE}", {"sn": [(ldap3.MODIFY_REPLACE, [value])]})
        # Fresh connections spread over both workers; a stale cache would show
        # the previous round's value.
        for _ in range(4):
            reader = connect(workers, root=False)
            reader.search(PEOPLE, "(cn=p)", attributes=["sn"])
            assert [e.sn.value for e in reader.entries] == [value]
            reader.unbind()
    assert admin.delete(f"cn=p,{PEOPLE}")
    for _ in range(4):
        reader = connect(workers, root=False)
        reader.search(PEOPLE, "(cn=p)")
        assert reader.entries == []
        reader.unbind()


def test_sigterm_stops_every_worker(workers: Server) -> None:
    log = workers.stop()
    assert log.count("stopped") == 2
    assert "[1] stopped" in log
