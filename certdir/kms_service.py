"""The KMS inside `certdir serve`.

- At start, a data directory with a `kms` section unlocks the vault before
  listening; without the passphrase, or with a wrong one, the server does
  not start and says why (`kms.vault.secret_from`).
- With `kms.http_listen`, the first worker serves the enrollment endpoint
  (`kms.web`, POST /kms/enroll): a redemption runs through the directory's
  single writer, in one transaction with the certificates it publishes and
  the key it escrows; a refusal rolls all of it back.
"""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
from typing import Any
from urllib.parse import urlsplit

from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.web.server import Site

from ca.authority import Authority
from certdir.config import Config
from directory.backend.sqlite import SQLiteTransaction
from directory.dsa import DSA
from directory.publisher import DirectoryWriter
from kms import enrollment
from kms.vault import Vault, secret_from
from kms.web import enroll_resource

log = logging.getLogger("certdir.kms")


def unlock_at_start(config: Config) -> Vault | None:
    if config.kms is None:
        return None
    conn = sqlite3.connect(config.directory.database)
    try:
        return Vault.unlock(conn, secret_from(config.kms))
    finally:
        conn.close()


def attach(reactor: Any, dsa: DSA, authority: Authority | None, vault: Vault, config: Config,
           worker: int) -> None:
    kms = config.kms
    if kms is None or kms.http_listen is None or authority is None or worker != 0:
        return

    def redeem(token: str, csr: bytes, password: bytes) -> Deferred[bytes]:
        def job(txn: SQLiteTransaction) -> bytes:
            writer = DirectoryWriter(dsa, txn, dsa.root_dn)
            return enrollment.redeem(authority, writer, vault, kms, token, csr, password,
                                     dt.datetime.now(dt.UTC)).pkcs12

        return dsa.write(job)

    where = urlsplit(kms.http_listen)
    endpoint = TCP4ServerEndpoint(reactor, where.port or 80, interface=where.hostname or "")
    endpoint.listen(Site(enroll_resource(redeem))).addCallbacks(
        lambda _: log.info("KMS enrollment on %s/kms/enroll", kms.http_listen),
        lambda failure: log.error("cannot listen on %s: %s", kms.http_listen,
                                  failure.getErrorMessage()))
