"""Sessions, CSRF tokens and login backoff of the web pages (ca.web.session, ca.web.backoff).

Driven with real twisted.web requests on a dummy channel and a clock set by hand.
"""

from __future__ import annotations

import pytest
from twisted.web.server import Request
from twisted.web.test.requesthelper import DummyChannel

from ca.web.backoff import Backoff, Rule
from ca.web.refusal import Refused
from ca.web.session import COOKIE, Sessions


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def request(cookie: bytes | None = None, csrf: bytes | None = None) -> Request:
    r = Request(DummyChannel(), False)
    r.received_cookies = {} if cookie is None else {COOKIE: cookie}
    r.args = {} if csrf is None else {b"csrf": [csrf]}
    return r


def cookie_of(r: Request) -> bytes:
    (line,) = [c for c in r.cookies if c.startswith(COOKIE + b"=")]
    return bytes(line.split(b";")[0].split(b"=", 1)[1])


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sessions(clock: Clock) -> Sessions:
    return Sessions(600, clock, absolute_seconds=3600, limit=3)


def test_cookie_attributes(sessions: Sessions) -> None:
    r = request()
    sessions.open(r)
    (line,) = r.cookies
    assert line.split(b"; ")[1:] == [b"Path=/", b"Max-Age=600", b"Secure", b"HttpOnly",
                                     b"SameSite=strict"]


def test_session_id_is_256_bits(sessions: Sessions) -> None:
    r = request()
    session = sessions.open(r)
    assert len(session.id) == 43 and cookie_of(r) == session.id.encode()


def test_unknown_cookie_is_no_session(sessions: Sessions) -> None:
    assert sessions.current(request(b"forged")) is None


def test_idle_session_ends(sessions: Sessions, clock: Clock) -> None:
    session = sessions.login(request(), "cn=a")
    clock.now += 599
    assert sessions.current(request(session.id.encode())) is not None
    clock.now += 599  # used again above, so still alive
    assert sessions.current(request(session.id.encode())) is not None
    clock.now += 600
    assert sessions.current(request(session.id.encode())) is None


def test_absolute_cap(sessions: Sessions, clock: Clock) -> None:
    session = sessions.login(request(), "cn=a")
    alive = []
    for _ in range(7):
        clock.now += 500
        alive.append(sessions.current(request(session.id.encode())) is not None)
    clock.now += 200
    assert (alive, sessions.current(request(session.id.encode()))) == ([True] * 7, None)


def test_login_replaces_the_pre_session(sessions: Sessions) -> None:
    before = sessions.open(request())
    after = sessions.login(request(before.id.encode()), "cn=a")
    assert (after.id != before.id, after.csrf != before.csrf,
            sessions.current(request(before.id.encode()))) == (True, True, None)


def test_logout_expires_the_cookie(sessions: Sessions) -> None:
    session = sessions.login(request(), "cn=a")
    r = request(session.id.encode())
    sessions.logout(r)
    assert (r.cookies[-1].split(b"; ")[:3], sessions.current(request(session.id.encode()))) \
        == ([COOKIE + b"=", b"Path=/", b"Max-Age=0"], None)


def test_csrf_accepted(sessions: Sessions) -> None:
    session = sessions.open(request())
    assert sessions.verified(request(session.id.encode(), session.csrf.encode())).id \
        == session.id


@pytest.mark.parametrize("why, csrf", [("missing", None), ("forged", b"x" * 43),
                                       ("empty", b"")])
def test_csrf_refused(sessions: Sessions, why: str, csrf: bytes | None) -> None:
    session = sessions.open(request())
    with pytest.raises(Refused) as refused:
        sessions.verified(request(session.id.encode(), csrf))
    assert refused.value.status == 403


def test_csrf_of_another_session_refused(sessions: Sessions) -> None:
    mine, theirs = sessions.open(request()), sessions.open(request())
    with pytest.raises(Refused) as refused:
        sessions.verified(request(mine.id.encode(), theirs.csrf.encode()))
    assert refused.value.status == 403


def test_csrf_without_session_refused(sessions: Sessions) -> None:
    with pytest.raises(Refused) as refused:
        sessions.verified(request(None, b"anything"))
    assert refused.value.status == 403


def test_notice_shown_once(sessions: Sessions) -> None:
    session = sessions.open(request())
    sessions.notify(session, "done")
    assert (sessions.take_notice(session), sessions.take_notice(session)) == ("done", None)


def test_limit_drops_least_recently_used(sessions: Sessions, clock: Clock) -> None:
    first = sessions.open(request())
    for _ in range(3):
        clock.now += 1
        sessions.open(request())
    assert (len(sessions), sessions.current(request(first.id.encode()))) == (3, None)


def test_limit_spares_logins(sessions: Sessions, clock: Clock) -> None:
    person = sessions.login(request(), "cn=a")
    for _ in range(5):
        clock.now += 1
        sessions.open(request())
    assert (len(sessions), sessions.current(request(person.id.encode())) is not None) \
        == (3, True)


RULE = Rule(free=3, base=2.0, cap=16.0, forget=100.0, limit=2)


def test_backoff_free_tries(clock: Clock) -> None:
    backoff = Backoff(RULE, clock)
    for _ in range(2):
        backoff.failed("a")
    assert backoff.retry_after("a") == 0


def test_backoff_doubles_up_to_cap(clock: Clock) -> None:
    backoff = Backoff(RULE, clock)
    waits = []
    for _ in range(7):
        backoff.failed("a")
        waits.append(backoff.retry_after("a"))
    assert waits == [0, 0, 2, 4, 8, 16, 16]


def test_backoff_lock_passes(clock: Clock) -> None:
    backoff = Backoff(RULE, clock)
    for _ in range(4):
        backoff.failed("a")
    clock.now += 4
    assert backoff.retry_after("a") == 0


def test_backoff_success_clears(clock: Clock) -> None:
    backoff = Backoff(RULE, clock)
    for _ in range(3):
        backoff.failed("a")
    backoff.succeeded("a")
    backoff.failed("a")
    assert backoff.retry_after("a") == 0


def test_backoff_forgets(clock: Clock) -> None:
    backoff = Backoff(RULE, clock)
    for _ in range(5):
        backoff.failed("a")
    clock.now += 100
    backoff.failed("a")
    assert backoff.retry_after("a") == 0


def test_backoff_keys_are_separate(clock: Clock) -> None:
    backoff = Backoff(RULE, clock)
    for _ in range(3):
        backoff.failed("a")
    assert (backoff.retry_after("a"), backoff.retry_after("b")) == (2, 0)


def test_backoff_table_is_bounded(clock: Clock) -> None:
    backoff = Backoff(RULE, clock)
    for key in ("a", "b", "c"):
        clock.now += 1
        for _ in range(3):
            backoff.failed(key)
    assert [backoff.retry_after(k) for k in ("a", "b", "c")] == [0, 1, 2]
