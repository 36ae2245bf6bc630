"""Server-side sessions and CSRF tokens for the web pages.

- A session lives in memory only, under a random 256-bit id (RFC 6265
  §8: the cookie holds nothing but that id). It ends `idle` seconds after
  its last use (`web.session_minutes`) and at most `absolute` seconds
  after it began (8 hours), whichever comes first; an unknown or ended id
  is no session at all, so the pages ask for a login again.
- The cookie is `__Host-certdir` (the `__Host-` prefix binds it to this
  host, RFC 6265bis §4.1.3.2) with `Secure; HttpOnly; SameSite=Strict;
  Path=/` and a Max-Age of the idle time, renewed on every use; pages are
  served over https only.
- A person who has not logged in gets an anonymous session (the
  per-client pre-session) as soon as a page with a form is shown, so the
  login form carries a CSRF token too. Logging in replaces the session
  with a new id and a new token (no session fixation); logging out drops
  it and expires the cookie.
- Every form carries the session's CSRF token in the field `csrf`; every
  POST must return it (compared in constant time). A missing session, a
  missing token or a wrong one is 403 before the page does anything
  (the synchronizer token pattern; SameSite=Strict is the second wall).
- At most `limit` sessions are kept: when full, ended ones go first, then
  the least recently used anonymous one, and only then the least recently
  used login, so a flood of anonymous visitors cannot log anybody out.
"""

from __future__ import annotations

import dataclasses
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twisted.web.server import Request

from ca.web.refusal import Refused

COOKIE = b"__Host-certdir"
CSRF_FIELD = b"csrf"
ABSOLUTE_SECONDS = 8 * 3600
LIMIT = 10_000


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    csrf: str
    person: str | None
    started: float
    used: float
    # One line shown on the next page, then dropped (after a redirect).
    notice: str | None = None


class Sessions:
    def __init__(self, idle_seconds: float, clock: Callable[[], float],
                 absolute_seconds: float = ABSOLUTE_SECONDS, limit: int = LIMIT) -> None:
        self.idle = idle_seconds
        self.absolute = absolute_seconds
        self.limit = limit
        self._clock = clock
        self._sessions: dict[str, Session] = {}

    def _alive(self, session: Session, now: float) -> bool:
        return now - session.used < self.idle and now - session.started < self.absolute

    def current(self, request: Request) -> Session | None:
        """The request's live session (its cookie renewed), or None."""
        raw: Any = request.getCookie(COOKIE)
        if not raw:
            return None
        ident = bytes(raw).decode("ascii", "replace")
        session = self._sessions.get(ident)
        if session is None:
            return None
        now = self._clock()
        if not self._alive(session, now):
            del self._sessions[ident]
            return None
        session = dataclasses.replace(session, used=now)
        self._sessions[ident] = session
        self._send(request, session.id, int(self.idle))
        return session

    def open(self, request: Request) -> Session:
        """The request's session, or a new anonymous one."""
        return self.current(request) or self._new(request, None)

    def login(self, request: Request, person: str) -> Session:
        old = self.current(request)
        if old is not None:
            del self._sessions[old.id]
        return self._new(request, person)

    def logout(self, request: Request) -> None:
        old = self.current(request)
        if old is not None:
            del self._sessions[old.id]
        self._send(request, "", 0)

    def verified(self, request: Request) -> Session:
        """The session of a POST whose CSRF token is right; else 403."""
        session = self.current(request)
        args: dict[bytes, list[bytes]] = request.args or {}
        sent = (args.get(CSRF_FIELD) or [b""])[0]
        if session is None or not hmac.compare_digest(sent, session.csrf.encode()):
            raise Refused(403, "This form has expired or did not come from this site. "
                               "Go back, reload the page and try again.")
        return session

    def notify(self, session: Session, text: str) -> None:
        if session.id in self._sessions:
            self._sessions[session.id] = dataclasses.replace(session, notice=text)

    def take_notice(self, session: Session) -> str | None:
        stored = self._sessions.get(session.id)
        if stored is None or stored.notice is None:
            return None
        self._sessions[session.id] = dataclasses.replace(stored, notice=None)
        return stored.notice

    def __len__(self) -> int:
        return len(self._sessions)

    def _new(self, request: Request, person: str | None) -> Session:
        now = self._clock()
        if len(self._sessions) >= self.limit:
            self._make_room(now)
        session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), person, now,
                          now)
        self._sessions[session.id] = session
        self._send(request, session.id, int(self.idle))
        return session

    def _make_room(self, now: float) -> None:
        for ident in [i for i, s in self._sessions.items() if not self._alive(s, now)]:
            del self._sessions[ident]
        if len(self._sessions) >= self.limit:
            # Anonymous sessions go before logins, so a flood of visitors cannot log people out.
            del self._sessions[min(self._sessions, key=lambda i: (
                self._sessions[i].person is not None, self._sessions[i].used))]

    @staticmethod
    def _send(request: Request, ident: str, max_age: int) -> None:
        # One Set-Cookie of ours per response: the last decision wins.
        request.cookies = [c for c in request.cookies if not c.startswith(COOKIE + b"=")]
        request.addCookie(COOKIE, ident.encode(), path=b"/", max_age=str(max_age).encode(),
                          secure=True, httpOnly=True, sameSite="strict")
