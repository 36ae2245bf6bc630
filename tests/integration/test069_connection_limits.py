"""Scenario 069: one connection cannot hold the server (RFC 4511 §4.1.1, §4.4.1, §5.1).

- Scans yield to the reactor every few hundred candidates whether or not they
  match, and a connection runs one slice of work per reactor turn: 400
  pipelined unindexed searches that match nothing leave another client's
  searches answered promptly.
- Responses a client does not read are not buffered without bound: writing
  pauses while the connection's output is unread, and so does reading (no
  further requests are run); when the client reads, it gets every response.
  A client that closes instead leaves nothing behind.
- A started PDU must be complete within `limits.pdu_seconds`; otherwise the
  server sends a Notice of Disconnection (protocolError) and closes.
- A connection that is not bound may send PDUs up to
  `limits.max_pdu_bytes_anonymous` (256 KiB, slapd's sockbuf_max_incoming);
  a larger one gets a Notice of Disconnection and the connection is closed.
  A bound connection keeps `limits.max_pdu_bytes`.

Raw sockets carry pipelined BER made with the server's own codec; the innocent
client of tests/integration/attack.py measures what the others see.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from directory.protocol.codec import encode
from directory.protocol.filter import Equality, Filter, Present
from directory.protocol.messages import (
    BindRequest,
    Deref,
    LDAPMessage,
    Scope,
    SearchRequest,
)
from tests.integration.attack import Innocent, rss_mib
from tests.integration.conftest import SUFFIX, Server, make_server
from tests.integration.test_hostile import BIND_RESPONSE, SEARCH_DONE, SEARCH_ENTRY, Session

PEOPLE = f"ou=people,{SUFFIX}"
ENTRIES = 3000
SIZE_LIMIT = 500
SCANS = 400
PDU_SECONDS = 2
ANONYMOUS_PDU = 262144
SIZE_LIMIT_EXCEEDED = 4


def people_ldif(count: int, description_bytes: int = 0) -> str:
    """ou=people and `count` inetOrgPersons uid=personNNNNN, each with a
    description of `description_bytes` (to make large responses)."""
    blocks = [f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n"]
    for n in range(count):
        blocks.append(f"dn: uid=person{n:05d},{PEOPLE}\nobjectClass: inetOrgPerson\n"
                      f"uid: person{n:05d}\ncn: Person {n}\nsn: {n}\n"
                      f"mail: person{n:05d}@example.com\n"
                      + (f"description: {'d' * description_bytes}\n" if description_bytes
                         else ""))
    return "\n".join(blocks)


def load_people(server: Server, description_bytes: int = 0) -> None:
    """Import ENTRIES people offline (before `start`), in one transaction."""
    ldif = server.data_dir / "people.ldif"
    ldif.write_text(people_ldif(ENTRIES, description_bytes))
    server.certdir("ldif", "import", "--data-dir", str(server.data_dir), "--quiet", str(ldif))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = make_server(tmp_path_factory.mktemp("certdir-conn"), "--no-ca")
    srv.configure("limits", pdu_seconds=PDU_SECONDS)
    load_people(srv, description_bytes=500)
    srv.start()
    yield srv
    log = srv.stop()
    assert "Traceback" not in log, log


def search(message_id: int, search_filter: Filter, base: str = PEOPLE,
           attributes: tuple[str, ...] = ()) -> bytes:
    return encode(LDAPMessage(message_id, SearchRequest(
        base, Scope.SUB, Deref.NEVER, 0, 0, False, search_filter, attributes)))


def bind(message_id: int, name: str = "", password: bytes = b"") -> bytes:
    return encode(LDAPMessage(message_id, BindRequest(3, name, password=password)))


def done(replies: tuple[object, ...], count: int) -> bool:
    return sum(1 for r in replies if getattr(r, "op_tag", None) == SEARCH_DONE) >= count


def test_pipelined_unindexed_scans_leave_others_served(server: Server) -> None:
    nothing = Equality("description", b"matches no entry")
    attacker = Session(server)
    started = time.monotonic()
    with Innocent(server) as probe:
        attacker.send(b"".join(search(n, nothing) for n in range(1, SCANS + 1)))
        outcome = attacker.read(lambda rs: done(rs, SCANS), timeout=300)
    attacker.close()
    print(f"{SCANS} scans took {time.monotonic() - started:.2f} s; "
          f"innocent worst {probe.worst:.3f} s")
    codes = {r.message_id: r.result_code for r in outcome.replies if r.op_tag == SEARCH_DONE}
    assert codes == dict.fromkeys(range(1, SCANS + 1), 0)
    assert probe.worst < 1.5


@pytest.mark.parametrize("tls", [False, True], ids=["ldap", "ldaps"])
def test_unread_responses_are_not_buffered(server: Server, tls: bool) -> None:
    everyone = Present("objectClass")
    warm = Session(server, tls)
    warm.send(search(1, everyone))
    warm.read(lambda rs: done(rs, 1), timeout=60)
    warm.close()
    before = rss_mib(server)
    reader = Session(server, tls)
    reader.send(b"".join(search(n, everyone) for n in range(1, 201)))
    time.sleep(5)
    grown = rss_mib(server) - before
    others = server.tool("ldapsearch", "-LLL", "-b", SUFFIX, "-s", "base", "dn", bind=False)
    print(f"RSS grew {grown:.1f} MiB with 200 searches unread")
    assert others.returncode == 0, others.stderr
    assert grown < 50
    outcome = reader.read(lambda rs: done(rs, 200), timeout=300)
    reader.close()
    codes = {r.message_id: r.result_code for r in outcome.replies if r.op_tag == SEARCH_DONE}
    assert codes == dict.fromkeys(range(1, 201), SIZE_LIMIT_EXCEEDED)
    assert sum(r.op_tag == SEARCH_ENTRY for r in outcome.replies) == 200 * SIZE_LIMIT


def test_clients_closing_with_responses_unread_leave_nothing_behind(server: Server) -> None:
    everyone = Present("objectClass")
    before = rss_mib(server)
    for _ in range(5):
        quitter = Session(server)
        quitter.send(b"".join(search(n, everyone) for n in range(1, 201)))
        time.sleep(1)
        quitter.close()
    time.sleep(1)
    grown = rss_mib(server) - before
    print(f"RSS grew {grown:.1f} MiB after 5 clients left 200 searches each unread")
    assert grown < 50
    others = server.tool("ldapsearch", "-LLL", "-b", SUFFIX, "-s", "base", "dn", bind=False)
    assert others.returncode == 0, others.stderr


def test_half_sent_pdu_is_dropped_after_pdu_seconds(server: Server) -> None:
    session = Session(server)
    request = bind(1)
    started = time.monotonic()
    session.send(request[:5])
    outcome = session.read(timeout=PDU_SECONDS + 10)
    waited = time.monotonic() - started
    session.close()
    assert outcome.closed
    assert [r.is_notice_of_disconnection for r in outcome.replies] == [True]
    assert PDU_SECONDS - 0.5 < waited < PDU_SECONDS + 5


def big_search(message_id: int) -> bytes:
    """A search of about 300 KB: its filter's value is that long."""
    return search(message_id, Equality("description", b"x" * 300_000), base=SUFFIX)


def test_anonymous_300k_pdu_gets_notice_of_disconnection(server: Server) -> None:
    session = Session(server)
    assert len(big_search(1)) > ANONYMOUS_PDU
    session.send(big_search(1))
    outcome = session.read(timeout=10)
    session.close()
    assert outcome.closed
    assert [r.is_notice_of_disconnection for r in outcome.replies] == [True]


def test_bound_client_may_send_300k_pdu(server: Server) -> None:
    session = Session(server)
    session.send(bind(1, server.root_dn, server.root_password.encode()))
    session.read(lambda rs: any(r.op_tag == BIND_RESPONSE for r in rs), timeout=10)
    session.send(big_search(2))
    outcome = session.read(lambda rs: done(rs, 1), timeout=30)
    session.close()
    assert not outcome.closed
    assert [(r.message_id, r.op_tag, r.result_code) for r in outcome.replies] == [
        (1, BIND_RESPONSE, 0), (2, SEARCH_DONE, 0)]


def test_failed_bind_returns_to_the_anonymous_limit(server: Server) -> None:
    session = Session(server)
    session.send(bind(1, server.root_dn, server.root_password.encode()))
    session.read(lambda rs: any(r.op_tag == BIND_RESPONSE for r in rs), timeout=10)
    session.send(bind(2, server.root_dn, b"wrong"))
    session.read(lambda rs: sum(r.op_tag == BIND_RESPONSE for r in rs) == 2, timeout=10)
    session.send(big_search(3))
    outcome = session.read(timeout=10)
    session.close()
    assert outcome.closed
    assert [(r.message_id, r.result_code) for r in outcome.replies[:2]] == [(1, 0), (2, 49)]
    assert outcome.replies[2].is_notice_of_disconnection
