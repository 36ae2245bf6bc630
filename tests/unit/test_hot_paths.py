"""Behaviour pins for code rewritten for speed (issue 11 part 4).

- `certdir ldif import` cuts the file where the first blank line after
  each piece's size starts, LF or CRLF, whichever comes first (the cuts
  the import made before it stopped scanning for CRLF past the first LF
  blank line).
- Entries with the same keys share one index of keys by type, and entries
  with the same objectClass values one set of classes; each is what the
  entry's own keys and values give.
- Stored entries decode as before, whether written before keys were
  interned or after; decoded entries share their key strings.
- `send_now` sends at once on an idle plain TCP connection, never before
  what the transport still buffers, and writes through any other
  transport, in order.
- Accepted connections are TCP_NODELAY: a reply written after an earlier
  slice is not held back for the client's acknowledgement.
- Settling the collector freezes what exists and makes young and full
  collections rare; it changes nothing else.
"""

from __future__ import annotations

import gc
import marshal
import mmap
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from twisted.internet import protocol, tcp
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactor, StringTransport

from certdir import collector, ldif_import
from directory.backend.opening import Storage, open_backend
from directory.config import DirectoryConfig
from directory.dsa import DSA
from directory.entry import Entry, deserialize, find, pack, stored_leaf
from directory.operation import Session
from directory.protocol.dn import DN
from directory.schema import Schema
from directory.server import LDAPServerProtocol, send_now

SCHEMA = Schema.load([Path(__file__).resolve().parents[2] / "schema"])

BOUNDARY_CASES = [
    # (description, file bytes, piece size, the pieces: each ends where a blank line starts)
    ("LF records", b"dn: a\n\ndn: b\n\ndn: c\n", 2,
     [b"dn: a\n", b"\ndn: b\n", b"\ndn: c\n"]),
    ("CRLF records", b"dn: a\r\n\r\ndn: b\r\n\r\ndn: c\r\n", 2,
     [b"dn: a\r\n", b"\r\ndn: b\r\n", b"\r\ndn: c\r\n"]),
    ("CRLF before LF", b"dn: a\r\n\r\ndn: b\n\ndn: c\n", 2,
     [b"dn: a\r\n", b"\r\ndn: b\n", b"\ndn: c\n"]),
    ("LF before CRLF", b"dn: a\n\ndn: b\r\n\r\ndn: c\n", 2,
     [b"dn: a\n", b"\ndn: b\r\n", b"\r\ndn: c\n"]),
    ("no blank line", b"dn: a\nsn: b\n", 2, [b"dn: a\nsn: b\n"]),
    ("one piece", b"dn: a\n\ndn: b\n", 1 << 20, [b"dn: a\n\ndn: b\n"]),
]


@pytest.mark.parametrize("why, data, size, pieces", BOUNDARY_CASES)
def test_ldif_pieces_end_at_blank_lines(why: str, data: bytes, size: int, pieces: list[bytes],
                                        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ldif_import, "PIECE_BYTES", size)
    path = tmp_path / "in.ldif"
    path.write_bytes(data)
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        found = [piece for _, piece in ldif_import._pieces(mapped)]
    assert found == pieces


def person(uid: str, **extra: tuple[bytes, ...]) -> Entry:
    attributes = {"objectclass": (b"top", b"person", b"inetOrgPerson"), "uid": (uid.encode(),),
                  "cn": (uid.encode(),), "cn;lang-en": (b"English " + uid.encode(),),
                  "sn": (b"S",), **extra}
    return Entry(DN.parse(f"uid={uid},dc=example,dc=com", SCHEMA), attributes)


def keys(entry: Entry, description: str) -> tuple[str, ...]:
    resolved = find(SCHEMA, description)
    assert resolved is not None
    return entry.keys_for(SCHEMA, resolved)


def test_entries_with_the_same_keys_share_their_index_by_type() -> None:
    one, two = person("a"), person("b")
    assert one.types(SCHEMA) is two.types(SCHEMA)
    assert keys(two, "name") == ("cn", "cn;lang-en", "sn")
    assert keys(two, "cn;lang-en") == ("cn;lang-en",)
    assert keys(two, "uid") == ("uid",)
    assert keys(two, "mail") == ()


def test_entries_with_other_keys_get_their_own_index() -> None:
    plain, more = person("c"), person("d", mail=(b"d@example.com",))
    assert plain.types(SCHEMA) is not more.types(SCHEMA)
    assert keys(more, "mail") == ("mail",)
    assert keys(plain, "mail") == ()


def test_object_classes_are_shared_and_lower_case() -> None:
    one, two = person("e"), person("f")
    assert one.object_classes is two.object_classes
    assert one.object_classes == frozenset({"top", "person", "inetorgperson"})
    other = Entry(one.dn, {"objectclass": (b"top", b"organizationalUnit")})
    assert other.object_classes == frozenset({"top", "organizationalunit"})


def fresh(text: str) -> str:
    """A copy of `text` that is not interned."""
    return "".join(list(text))


def test_entries_stored_before_interning_decode_the_same() -> None:
    entry = person("g", mail=(b"g@example.com",))
    leaf = tuple((fresh(a), fresh(v), fresh(k), fresh(n)) for a, v, k, n in stored_leaf(entry.dn))
    items = tuple((fresh(k), v) for k, v in entry.attributes.items())
    before = b"\x01" + marshal.dumps((leaf, items), 4)
    after = pack(stored_leaf(entry.dn), entry.attributes)
    assert before != after
    old, new = (deserialize(SCHEMA, str(entry.dn), blob, 7) for blob in (before, after))
    assert old == new == Entry(entry.dn, entry.attributes, 7)
    assert str(old.dn) == str(new.dn) == "uid=g,dc=example,dc=com"


def test_decoded_entries_share_their_key_strings() -> None:
    one, two = (deserialize(SCHEMA, str(e.dn), pack(stored_leaf(e.dn), e.attributes), 1)
                for e in (person("h"), person("i")))
    assert all(a is b for a, b in zip(one.attributes, two.attributes, strict=True))
    assert one.dn.rdn.avas[0].key is two.dn.rdn.avas[0].key


def test_send_now_writes_through_a_transport_that_is_not_plain_tcp() -> None:
    transport = StringTransport()
    for data in (b"one", b"", b"two", b"three"):
        send_now(transport, data)
    assert transport.value() == b"onetwothree"


@pytest.fixture
def connection() -> Iterator[tuple[tcp.Server, socket.socket, MemoryReactor]]:
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    theirs.setblocking(False)
    reactor = MemoryReactor()
    # No listening port: Twisted's Server allows None (it checks), its annotation says Port.
    server = tcp.Server(ours, protocol.Protocol(), ("127.0.0.1", 1), None,  # type: ignore[arg-type]
                        1, reactor)
    yield server, theirs, reactor
    ours.close()
    theirs.close()


def test_send_now_sends_at_once_on_an_idle_connection(
        connection: tuple[tcp.Server, socket.socket, MemoryReactor]) -> None:
    server, peer, reactor = connection
    send_now(server, b"response")
    assert peer.recv(100) == b"response"
    assert server not in reactor.writers


def test_send_now_never_overtakes_what_the_transport_buffers(
        connection: tuple[tcp.Server, socket.socket, MemoryReactor]) -> None:
    server, peer, reactor = connection
    server.write(b"first ")
    send_now(server, b"second")
    with pytest.raises(BlockingIOError):
        peer.recv(100)
    assert server in reactor.writers
    server.doWrite()
    assert peer.recv(100) == b"first second"


def test_accepted_connections_are_tcp_nodelay(tmp_path: Path) -> None:
    suffix = "dc=example,dc=com"
    config = DirectoryConfig(suffix, f"cn=admin,{suffix}", "", tmp_path / "db")
    backend = open_backend(Storage(f"sqlite://{tmp_path / 'db'}", SCHEMA, config.indexes, (),
                                   1000, 1024 * 1024))
    with socket.create_server(("127.0.0.1", 0)) as listener, \
            socket.create_connection(listener.getsockname()) as client:
        ours, address = listener.accept()
        ours.setblocking(False)
        reactor = MemoryReactor()
        ldap = LDAPServerProtocol(DSA(config, SCHEMA, backend, None), Session(1), Clock(), None)
        assert ours.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
        # No listening port, as in `connection` above.
        server = tcp.Server(ours, ldap, address, None, 1, reactor)  # type: ignore[arg-type]
        ldap.makeConnection(server)  # type: ignore[no-untyped-call]
        assert ours.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        assert client.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
        ours.close()
    backend.close()


@pytest.fixture
def collector_state() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("collector_state")
def test_settling_the_collector_freezes_and_makes_collections_rare() -> None:
    _, middle, _ = gc.get_threshold()
    collector.settle()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (collector.YOUNG_COLLECTION_AFTER, middle,
                                  collector.FULL_COLLECTION_AFTER)
    assert gc.isenabled()
