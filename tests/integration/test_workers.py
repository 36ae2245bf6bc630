"""`workers: 2`: two server processes on one port and one database.

Every connection may land on either worker, so each read below may be
served by the process that did not make the write: it must still see it
(the workers drop their caches when the other commits), and SIGTERM to the
parent stops both. Connections opened one after another while no other is
open go to the workers in turn (certdir.balance): eight give each four.
StartTLS and ldaps:// work on the connections a worker accepts itself.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

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


ACCEPTED = re.compile(r"conn=(\d+) fd=0 ACCEPT")
# Worker N numbers its connections from 1000 + N * 100,000,000 (certdir.service).
WORKER_IDS = 100_000_000


def all_closed(server: Server) -> bool:
    log = server.log()
    return log.count(" fd=0 ACCEPT ") == log.count(" fd=0 closed")


def test_connections_are_spread_evenly(tmp_path: Path) -> None:
    srv = make_server(tmp_path)
    srv.configure(workers=2)
    srv.start()
    try:
        deadline = time.monotonic() + 10
        while not all_closed(srv):  # the start's own probe
            assert time.monotonic() < deadline, "a connection of the start stayed open"
            time.sleep(0.05)
        before = len(ACCEPTED.findall(srv.log()))
        held = [connect(srv, root=False) for _ in range(8)]
        ids = [int(i) for i in ACCEPTED.findall(srv.log())[before:]]
        assert len(ids) == 8
        assert sorted(i // WORKER_IDS for i in ids) == [0, 0, 0, 0, 1, 1, 1, 1]
        for connection in held:
            connection.unbind()
    finally:
        log = srv.stop()
    assert "Traceback" not in log, log


@pytest.mark.parametrize("how", [("-H", "{uri}", "-ZZ"), ("-H", "{ldaps_uri}")])
def test_tls_on_connections_a_worker_accepted(workers: Server, how: tuple[str, ...]) -> None:
    """StartTLS and ldaps:// on the connections the workers accept themselves."""
    where = [part.format(uri=workers.uri, ldaps_uri=workers.ldaps_uri) for part in how]
    search = subprocess.run(["ldapsearch", *where, "-x", "-LLL", "-b", SUFFIX, "-s", "base", "dc"],
                            capture_output=True, env=workers.env(), timeout=60, check=False)
    assert search.returncode == 0, search.stderr
    assert b"dc: example" in search.stdout


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
