"""Logging in and out of the web pages (`/login`, `/logout`).

- A person logs in with their mail address or their entry's DN and the
  password of their directory entry, checked as a simple bind checks it
  (`directory.passwords.verify` against the entry's userPassword values,
  RFC 4513 §5.1.3), on the web service's pool: Argon2 is slow.
- An unknown name (no entry, no such mail address, or one shared by
  several entries) and a wrong password get the same answer, "invalid
  credentials", after the same work: an unknown name is checked against a
  decoy hash, so neither the text nor the time tells which it was.
- Backoff (`ca.web.backoff`): an account may fail 5 times, a client
  address 20 times; then each further try waits 2 s after the last
  failure, doubling with each failure up to 5 minutes, and a login during
  the wait is answered 429 with Retry-After, without the password being
  checked. Failures are forgotten after 15 minutes; a success clears the
  account's. The account is the entry's DN when the name finds one, so
  switching between mail address and DN does not earn more tries.
- A login starts a new session (new id, new CSRF token); logging out ends
  it. Both are POSTs with the CSRF token. The page to return to (`next`)
  is a path on this site only, never another site.
- The password travels only in the POST body, over https.
"""

from __future__ import annotations

import re
from functools import cache

from twisted.internet.defer import Deferred
from twisted.web.server import Request

from ca.web.address_book import person
from ca.web.backoff import Backoff, Rule
from ca.web.context import Web
from ca.web.page import Answer, Page, Visit, field
from ca.web.refusal import Refused
from ca.web.render import Templates
from directory import passwords

INVALID = "invalid credentials"
ACCOUNT_RULE = Rule(free=5)
CLIENT_RULE = Rule(free=20)
DEFAULT_NEXT = "/requests"
_LOCAL_PATH = re.compile(r"/(?!/)[A-Za-z0-9/_-]*")


@cache
def _decoy() -> bytes:
    return passwords.hash_password(b"decoy password that nobody has")


def _matches(stored: tuple[bytes, ...], password: bytes) -> bool:
    if not stored:
        passwords.verify(_decoy(), password)
        return False
    return any(passwords.verify(value, password) for value in stored)


def next_path(text: str) -> str:
    return text if _LOCAL_PATH.fullmatch(text) else DEFAULT_NEXT


class Login(Page):
    forms = True

    def __init__(self, web: Web, templates: Templates) -> None:
        super().__init__(web, templates)
        self.accounts = Backoff(ACCOUNT_RULE, web.reactor.seconds)
        self.clients = Backoff(CLIENT_RULE, web.reactor.seconds)

    def get(self, request: Request, visit: Visit) -> Answer:
        return self.show(request, visit, "login.html", next=next_path(field(request, b"next")),
                         name="", error=None)

    def post(self, request: Request, visit: Visit) -> Answer:
        name = field(request, b"name")
        password = ((request.args or {}).get(b"password") or [b""])[0]
        wanted = next_path(field(request, b"next"))
        entry = person(self.web.dsa, name) if name else None
        account = "account:" + (str(entry.dn).lower() if entry is not None else name.lower())
        client = "client:" + str(getattr(request.getClientAddress(), "host", "?"))
        wait = max(self.accounts.retry_after(account), self.clients.retry_after(client))
        if wait:
            raise Refused(429, f"Too many failed logins. Try again in {wait} seconds.",
                          {b"Retry-After": str(wait).encode()})
        stored = () if entry is None else entry.get("userpassword")
        checked: Deferred[bool] = self.web.slow(_matches, stored, password)

        def decided(ok: bool) -> bytes:
            if not ok or entry is None:
                self.accounts.failed(account)
                self.clients.failed(client)
                return self.show(request, visit, "login.html", status=403, next=wanted,
                                 name=name, error=INVALID)
            self.accounts.succeeded(account)
            session = self.web.sessions.login(request, str(entry.dn))
            return self.see_other(request, Visit(session, session.person, False), wanted)

        return checked.addCallback(decided)


class Logout(Page):
    def post(self, request: Request, visit: Visit) -> Answer:
        self.web.sessions.logout(request)
        return self.see_other(request, Visit(None, None, False), "/")
