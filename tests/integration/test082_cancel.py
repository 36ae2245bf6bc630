"""Scenario 082: the Cancel extended operation (RFC 3909, 1.3.6.1.1.8).

Each case sends its requests in one segment, so the server reads the
Cancel while the operation it names is still outstanding, whatever the
machine's speed: a subtree search over 1,000 entries takes many slices of
replies, a bind and a modify wait for the password queue and the writer.

- The root DSE lists 1.3.6.1.1.8 in supportedExtension.
- A cancelled search ends with canceled (118) before returning every
  entry; then the Cancel answers success, without a responseName, after
  the search's response (RFC 3909 §2).
- noSuchOperation (119): an operation that has finished, or was never
  sent (also `ldapexop cancel 1` on a connection of its own).
- cannotCancel (121): a bind, a Cancel itself, and a search made under
  another identity with the proxied authorization control (RFC 3909 §4).
- A Cancel cannot be abandoned (RFC 3909 §3): it still answers.
- tooLate (120): a modify (it may be in the writer's transaction; it
  completes), and an abandoned search.
- A second Cancel of an operation being cancelled: operationsError (1),
  as slapd; a Cancel without its value: protocolError (2).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.conftest import SUFFIX, Server
from tests.integration.test017_starttls_injection import simple_bind
from tests.integration.test_hostile import (
    BIND_RESPONSE,
    EXTENDED_RESPONSE,
    PRESENT_OBJECTCLASS,
    SEARCH_DONE,
    SEARCH_ENTRY,
    Reply,
    Session,
    answered,
    base_search,
    integer,
    message,
    tlv,
)

CANCEL = b"1.3.6.1.1.8"
PROXIED_AUTHZ = b"2.16.840.1.113730.3.4.18"
PEOPLE = f"ou=people,{SUFFIX}"
COUNT = 1000
MODIFY_RESPONSE = 0x67
SUCCESS, OPERATIONS_ERROR, PROTOCOL_ERROR = 0, 1, 2
CANCELED, NO_SUCH_OPERATION, TOO_LATE, CANNOT_CANCEL = 118, 119, 120, 121


@pytest.fixture(scope="module")
def loaded(server: Server) -> Server:
    people = "".join(f"dn: cn=p{i},{PEOPLE}\nobjectClass: person\ncn: p{i}\nsn: p{i}\n\n"
                     for i in range(COUNT))
    ldif = f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n\n{people}"
    added = server.tool("ldapadd", input=ldif.encode())
    assert added.returncode == 0, added.stderr.decode()
    return server


@pytest.fixture
def session(loaded: Server) -> Iterator[Session]:
    connection = Session(loaded)
    yield connection
    connection.close()


def cancel(message_id: int, target: int) -> bytes:
    value = tlv(0x30, integer(target))
    return message(message_id, tlv(0x77, tlv(0x80, CANCEL) + tlv(0x81, value)))


def subtree_search(message_id: int) -> bytes:
    return message(message_id, tlv(0x63, tlv(0x04, PEOPLE.encode()) + tlv(0x0A, b"\x02")
                                   + tlv(0x0A, b"\x00") + integer(0) + integer(0)
                                   + tlv(0x01, b"\x00") + PRESENT_OBJECTCLASS
                                   + tlv(0x30, tlv(0x04, b"1.1"))))


def as_person(request: bytes) -> bytes:
    """`request` (a whole LDAPMessage) with a critical proxied authorization
    control naming cn=p1."""
    authz = tlv(0x30, tlv(0x04, PROXIED_AUTHZ) + tlv(0x01, b"\xff")
                + tlv(0x04, f"dn:cn=p1,{PEOPLE}".encode()))
    body = request[2:] if request[1] < 0x80 else request[2 + (request[1] & 0x7F):]
    return tlv(0x30, body + tlv(0xA0, authz))


def abandon(target: int) -> bytes:
    return message(9, tlv(0x50, target.to_bytes(1, "big")))


def modify(message_id: int) -> bytes:
    change = tlv(0x30, tlv(0x0A, b"\x02") + tlv(0x30, tlv(0x04, b"description")
                                                + tlv(0x31, tlv(0x04, b"changed"))))
    return message(message_id, tlv(0x66, tlv(0x04, f"cn=p1,{PEOPLE}".encode())
                                   + tlv(0x30, change)))


def results(replies: tuple[Reply, ...]) -> list[tuple[int, int, int | None]]:
    """(message ID, response tag, result code) of every final response, in order."""
    return [(r.message_id, r.op_tag, r.result_code) for r in replies if r.op_tag != SEARCH_ENTRY]


def entries(replies: tuple[Reply, ...], message_id: int) -> int:
    return sum(1 for r in replies if r.message_id == message_id and r.op_tag == SEARCH_ENTRY)


def test_cancel_is_advertised(loaded: Server) -> None:
    result = loaded.tool("ldapsearch", "-LLL", "-b", "", "-s", "base", "(objectClass=*)",
                         "supportedExtension", bind=False)
    assert "supportedExtension: 1.3.6.1.1.8" in result.stdout.decode().splitlines()


def test_cancelled_search_ends_with_canceled_then_cancel_succeeds(session: Session) -> None:
    session.send(subtree_search(1) + cancel(2, 1))
    replies = session.read(answered(2, EXTENDED_RESPONSE)).replies
    assert results(replies) == [(1, SEARCH_DONE, CANCELED), (2, EXTENDED_RESPONSE, SUCCESS)]
    assert 0 < entries(replies, 1) < COUNT + 1


def test_cancel_response_has_no_name(session: Session) -> None:
    session.send(subtree_search(1) + cancel(2, 1))
    replies = session.read(answered(2, EXTENDED_RESPONSE)).replies
    assert [r.response_name for r in replies if r.message_id == 2] == [None]


def test_connection_serves_after_a_cancel(session: Session) -> None:
    session.send(subtree_search(1) + cancel(2, 1))
    session.read(answered(2, EXTENDED_RESPONSE))
    session.send(base_search(3, SUFFIX))
    replies = session.read(answered(3, SEARCH_DONE)).replies
    assert (entries(replies, 3), results(replies)[-1]) == (1, (3, SEARCH_DONE, SUCCESS))


def test_finished_operation(session: Session) -> None:
    session.send(base_search(1, SUFFIX))
    session.read(answered(1, SEARCH_DONE))
    session.send(cancel(2, 1))
    replies = session.read(answered(2, EXTENDED_RESPONSE)).replies
    assert results(replies)[-1] == (2, EXTENDED_RESPONSE, NO_SUCH_OPERATION)


def test_operation_never_sent(session: Session) -> None:
    session.send(cancel(2, 77))
    replies = session.read(answered(2, EXTENDED_RESPONSE)).replies
    assert results(replies) == [(2, EXTENDED_RESPONSE, NO_SUCH_OPERATION)]


def test_ldapexop_cancel_from_another_connection(loaded: Server) -> None:
    result = loaded.tool("ldapexop", "cancel", "1", bind=False)
    assert "No Operation to Cancel (119)" in result.stderr.decode()


def test_bind_cannot_be_cancelled(session: Session, loaded: Server) -> None:
    session.send(simple_bind(1, loaded.root_dn, loaded.root_password) + cancel(2, 1))
    replies = session.read(lambda found: answered(1, BIND_RESPONSE)(found)
                           and answered(2, EXTENDED_RESPONSE)(found)).replies
    assert sorted(results(replies)) == [(1, BIND_RESPONSE, SUCCESS),
                                        (2, EXTENDED_RESPONSE, CANNOT_CANCEL)]


def test_cancel_cannot_cancel_itself(session: Session) -> None:
    session.send(cancel(2, 2))
    replies = session.read(answered(2, EXTENDED_RESPONSE)).replies
    assert results(replies) == [(2, EXTENDED_RESPONSE, CANNOT_CANCEL)]


def test_modify_is_too_late_and_completes(session: Session, loaded: Server) -> None:
    session.send(simple_bind(1, loaded.root_dn, loaded.root_password))
    session.read(answered(1, BIND_RESPONSE))
    session.send(modify(2) + cancel(3, 2))
    replies = session.read(lambda found: answered(2, MODIFY_RESPONSE)(found)
                           and answered(3, EXTENDED_RESPONSE)(found)).replies
    assert sorted(results(replies))[1:] == [(2, MODIFY_RESPONSE, SUCCESS),
                                            (3, EXTENDED_RESPONSE, TOO_LATE)]


def test_abandoned_search_is_too_late(session: Session) -> None:
    session.send(subtree_search(1) + abandon(1) + cancel(2, 1))
    replies = session.read(answered(2, EXTENDED_RESPONSE)).replies
    assert results(replies) == [(2, EXTENDED_RESPONSE, TOO_LATE)]


def test_second_cancel_of_the_same_search(session: Session) -> None:
    session.send(subtree_search(1) + cancel(2, 1) + cancel(3, 1))
    replies = session.read(lambda found: answered(2, EXTENDED_RESPONSE)(found)
                           and answered(3, EXTENDED_RESPONSE)(found)).replies
    # The refusal waits behind the search's replies; the first Cancel answers last.
    assert results(replies) == [(1, SEARCH_DONE, CANCELED), (3, EXTENDED_RESPONSE,
                                                             OPERATIONS_ERROR),
                                (2, EXTENDED_RESPONSE, SUCCESS)]


def test_cancel_without_value(session: Session) -> None:
    session.send(message(2, tlv(0x77, tlv(0x80, CANCEL))))
    replies = session.read(answered(2, EXTENDED_RESPONSE)).replies
    assert results(replies) == [(2, EXTENDED_RESPONSE, PROTOCOL_ERROR)]


def test_a_cancel_cannot_be_abandoned(session: Session) -> None:
    session.send(subtree_search(1) + cancel(2, 1) + abandon(2))
    replies = session.read(answered(2, EXTENDED_RESPONSE)).replies
    assert results(replies) == [(1, SEARCH_DONE, CANCELED), (2, EXTENDED_RESPONSE, SUCCESS)]


def test_search_of_another_identity_cannot_be_cancelled(session: Session,
                                                        loaded: Server) -> None:
    session.send(simple_bind(1, loaded.root_dn, loaded.root_password))
    session.read(answered(1, BIND_RESPONSE))
    session.send(as_person(subtree_search(2)) + cancel(3, 2))
    replies = session.read(lambda found: answered(2, SEARCH_DONE)(found)
                           and answered(3, EXTENDED_RESPONSE)(found)).replies
    assert (results(replies)[1:], entries(replies, 2)) == (
        [(3, EXTENDED_RESPONSE, CANNOT_CANCEL), (2, SEARCH_DONE, SUCCESS)], COUNT + 1)


def test_same_identity_cancels_its_proxied_search(session: Session, loaded: Server) -> None:
    session.send(simple_bind(1, loaded.root_dn, loaded.root_password))
    session.read(answered(1, BIND_RESPONSE))
    session.send(as_person(subtree_search(2)) + as_person(cancel(3, 2)))
    replies = session.read(answered(3, EXTENDED_RESPONSE)).replies
    assert results(replies)[1:] == [(2, SEARCH_DONE, CANCELED), (3, EXTENDED_RESPONSE, SUCCESS)]
