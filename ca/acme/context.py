"""What every ACME operation shares: the web service's context, the settings, nonces, URLs.

- Reads run in one read snapshot of the directory's storage on the reactor
  thread (`reading`); writes go through the directory's single writer
  (`write`), so what an operation changes commits with what the CA records,
  or not at all.
- The nonce secret is read from the database at the first request and made
  (by whichever front end comes first, `AcmeStore.keep_secret`) when there
  is none; until then no nonce is issued.
- Binding keys (`ca.acme.eab`) open under a seal derived from the CA's
  key, which the server holds unlocked; it is derived once.
- URLs are absolute, on the host the client named (`Host`, checked by
  `ca.acme.resource`): the JWS `url` a client signs is compared with the
  URL it sent the request to (RFC 8555 §6.4), and every URL the server
  hands out is one it serves.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

from twisted.internet.defer import Deferred

from ca.acme.config import AcmeConfig
from ca.acme.eab import Seal
from ca.acme.nonces import SECRET_BYTES, Nonces
from ca.acme.store import AcmeStore
from ca.store import serial_text
from ca.web.context import Web
from directory.backend import Transaction

T = TypeVar("T")
NONCE_SECRET = "nonce"


@dataclass(frozen=True, slots=True)
class Urls:
    """Every URL of the ACME server, under `base` (`https://host/acme`)."""
    base: str

    @property
    def directory(self) -> str:
        return f"{self.base}/directory"

    def of(self, name: str) -> str:
        return f"{self.base}/{name}"

    def account(self, ident: str) -> str:
        return f"{self.base}/account/{ident}"

    def orders(self, account: str, cursor: int = 0) -> str:
        """The account's orders list; from the `cursor`th page on when it is not the first."""
        return f"{self.account(account)}/orders" + (f"?cursor={cursor}" if cursor else "")

    def order(self, ident: str) -> str:
        return f"{self.base}/order/{ident}"

    def finalize(self, order: str) -> str:
        return f"{self.order(order)}/finalize"

    def authorization(self, ident: str) -> str:
        return f"{self.base}/authz/{ident}"

    def challenge(self, ident: str) -> str:
        return f"{self.base}/chall/{ident}"

    def certificate(self, serial: int) -> str:
        return f"{self.base}/cert/{serial_text(serial)}"


class Acme:
    """The ACME server inside the web service."""

    def __init__(self, web: Web, config: AcmeConfig) -> None:
        self.web = web
        self.config = config
        self._nonces: Nonces | None = None
        self._seal: Seal | None = None

    @property
    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.web.reactor.seconds(), dt.UTC)

    @contextmanager
    def reading(self) -> Iterator[AcmeStore]:
        with self.web.dsa.backend.reading() as records:
            yield AcmeStore(records)

    def write(self, job: Callable[[Transaction], T]) -> Deferred[T]:
        return self.web.dsa.write(job)

    @property
    def seal(self) -> Seal:
        if self._seal is None:
            self._seal = Seal.of(self.web.authority.key)
        return self._seal

    async def nonces(self) -> Nonces:
        if self._nonces is None:
            with self.reading() as store:
                secret = store.secret(NONCE_SECRET)
            if secret is None:
                candidate = secrets.token_bytes(SECRET_BYTES)
                secret = await self.write(
                    lambda txn: AcmeStore(txn.records).keep_secret(NONCE_SECRET, candidate))
            self._nonces = Nonces(secret, self.config.nonce_minutes * 60)
        return self._nonces
