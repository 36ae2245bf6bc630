"""One ACME request as the operations see it, and their answer (sans-IO).

- `Call` is a request that passed `ca.acme.resource`: its JWS verified with
  the key it names, its nonce spent, `url` checked, and with a `kid` the
  account found valid. Operations never see a request that did not.
  `url` holds the query the request was sent with; `address` is the
  client's IP address (the rate limit of newAccount counts it).
- `Reply` is the answer: a status, a JSON body (or bytes of another type),
  `Location` and `Link` headers (RFC 8555 §7: `up` from a challenge to its
  authorization; `index` is added to every answer by the resource).
- An operation refuses by raising `AcmeProblem`; it never writes an error
  body itself.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ca.acme.context import Acme, Urls
from ca.acme.jws import Jwk, Jws
from ca.acme.store import Account

JSON = b"application/json"


@dataclass(frozen=True, slots=True)
class Call:
    acme: Acme
    urls: Urls
    url: str
    ident: str | None
    jws: Jws | None
    key: Jwk | None
    account: Account | None
    now: dt.datetime
    address: str

    def signed(self) -> Jws:
        assert self.jws is not None, "a POST route without its JWS"
        return self.jws

    def by(self) -> Account:
        assert self.account is not None, "a kid route without its account"
        return self.account

    def id(self) -> str:
        assert self.ident is not None, "a route without its id"
        return self.ident


@dataclass(frozen=True, slots=True)
class Reply:
    status: int = 200
    body: Any = None
    content_type: bytes = JSON
    location: str | None = None
    links: tuple[tuple[str, str], ...] = ()  # (URL, rel)
    retry_after: int | None = None


Operation = Callable[[Call], Awaitable[Reply]]
