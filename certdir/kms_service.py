"""The KMS inside `certdir serve`.

- At start, a data directory with a `kms` section unlocks the vault before
  listening; without the passphrase, or with a wrong one, the server does
  not start and says why (`kms.vault.secret_from`).
- With `kms.auto_enroll`, adding an inetOrgPerson entry with mail creates
  an enrollment token in the same transaction (as Exchange did for new
  accounts) and mails it once the entry is committed; a mail that cannot
  be sent is logged, and `certdir kms enroll-user` issues a new token.
- The web service (https only) serves the enrollment endpoint (`kms.web`,
  POST /kms/enroll): a redemption generates its key and signs its
  certificates on the web service's pool and seals its PKCS#12 in a worker
  process (`kms.sealer`), then
  commits through the directory's single writer, in one transaction with
  the certificates it publishes and the key it escrows; a refusal rolls
  all of it back (`kms.enrollment`).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from twisted.internet.defer import Deferred
from twisted.web.resource import Resource

from ca.authority import Authority
from ca.web.context import Web
from certdir.config import Config
from certdir.directory_open import offline_directory
from directory.backend import Transaction
from directory.dsa import DSA, AddHook, AfterCommit
from directory.entry import Entry
from directory.publisher import DirectoryWriter
from kms import enrollment, web_pages
from kms.config import KMSConfig
from kms.sealer import Sealer
from kms.vault import Vault, secret_from
from kms.web import enroll_resource

log = logging.getLogger("certdir.kms")

# PKCS#12 sealing holds the GIL, so it runs in processes of its own (`kms.sealer`).
SEALING_PROCESSES = 2


def unlock_at_start(config: Config) -> Vault:
    assert config.kms is not None
    with offline_directory(config) as dsa, dsa.backend.reading() as records:
        return Vault.unlock(records, secret_from(config.kms))


def attach(reactor: Any, dsa: DSA, authority: Authority | None, vault: Vault, config: Config,
           worker: int) -> None:
    kms = config.kms
    assert kms is not None
    if kms.auto_enroll:
        dsa.add_hooks.append(_auto_enroll(reactor, dsa, kms))


def _auto_enroll(reactor: Any, dsa: DSA, kms: KMSConfig) -> AddHook:
    def hook(txn: Transaction, entry: Entry) -> AfterCommit | None:
        mail = entry.first("mail")
        if mail is None or "inetorgperson" not in entry.object_classes:
            return None
        now = dt.datetime.now(dt.UTC)
        token = enrollment.enroll_user(DirectoryWriter(dsa, txn, dsa.root_dn), kms,
                                       str(entry.dn), "auto-enroll", now)
        assert kms.smtp is not None  # the configuration requires it with auto_enroll
        smtp = kms.smtp
        # Imported here, once the asyncio reactor is installed.
        from kms.notify import send, token_message

        name = (entry.first("cn") or mail).decode()
        message = token_message(smtp.sender, mail.decode(), name, token,
                                now + dt.timedelta(hours=kms.token_lifetime_hours),
                                kms.enroll_url)

        def after() -> object:
            return send(reactor, smtp, mail.decode(), message, smtp.ca_file).addCallbacks(
                lambda _: log.info("enrollment token mailed to %s", mail.decode()),
                lambda failure: log.error("%s", failure.getErrorMessage()))

        return after

    return hook


def web_children(web: Web, vault: Vault, config: Config) -> dict[bytes, Resource]:
    """The KMS's part of the https site: /kms/enroll and the redemption page."""
    kms = config.kms
    assert kms is not None
    dsa, authority = web.dsa, web.authority
    sealer = Sealer(SEALING_PROCESSES)
    web.reactor.addSystemEventTrigger("during", "shutdown", sealer.stop)

    def redeem(token: str, csr: bytes, password: bytes) -> Deferred[enrollment.Enrollment]:
        return enrollment.redeem(authority, dsa, web.slow, vault, kms, token, csr, password,
                                 sealer)

    return {b"kms": enroll_resource(redeem, web_pages.children(web, redeem))}
