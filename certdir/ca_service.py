"""The CA inside `certdir serve`.

- At start, a data directory with a CA unlocks its key before listening;
  without the passphrase the server does not start and says where it
  looked (`ca.authority.passphrase`).
- At start, the directory's TLS certificate is renewed when it expires
  within `ca.tls_renew_days` or was not issued by this CA.
- While serving, the CA answers certificate requests over LDAP
  (`ca.ldap_request`), tells the directory whom a client certificate it
  issued belongs to (`ca.client_identity`, for SASL EXTERNAL), and (the
  first worker only) a full and a delta CRL are issued every
  `ca.crl.interval_minutes` once the last CRL is past half its
  life: signed on the reactor's thread pool, recorded through the
  directory's single writer, then written to the public folder.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from twisted.internet.task import LoopingCall

from ca import crl
from ca.authority import Authority, has_ca, unlock
from ca.client_identity import certificate_identity
from ca.ldap_request import CERTIFICATE_REQUEST, handler
from ca.pool import Slow, on_pool
from ca.public import write_crls
from certdir.config import Config
from certdir.server_certificate import needs_renewal, renew_server_certificate
from directory.dsa import DSA

log = logging.getLogger("certdir.ca")


def unlock_at_start(config: Config) -> Authority | None:
    if config.ca is None or not has_ca(config.data_dir):
        return None
    authority = unlock(config.ca, config.data_dir, config.directory.suffix)
    if config.tls is not None and needs_renewal(config, authority, dt.datetime.now(dt.UTC)):
        renew_server_certificate(config, authority)
        log.info("issued a new TLS certificate for the directory")
    return authority


def attach(reactor: Any, dsa: DSA, authority: Authority, config: Config, worker: int) -> None:
    # Signing for LDAP requests and CRLs runs on the reactor's bounded thread pool.
    slow = on_pool(reactor, reactor.getThreadPool())
    dsa.extensions[CERTIFICATE_REQUEST] = handler(authority, slow)
    dsa.certificate_identity = certificate_identity(authority, dsa)
    if worker == 0:
        _schedule_crls(reactor, dsa, authority, config, slow)


def _schedule_crls(reactor: Any, dsa: DSA, authority: Authority, config: Config,
                   slow: Slow) -> LoopingCall:

    def published(made: crl.CRLs | None) -> None:
        if made is not None:
            write_crls(config.data_dir / "public", authority.certificate, made.full, made.delta)
            log.info("published CRLs")

    def tick() -> Any:
        return crl.renew(authority, dsa, slow, crl.due).addCallback(published).addErrback(
            lambda failure: log.error("CRL generation failed: %s", failure.getErrorMessage()))

    assert config.ca is not None
    loop = LoopingCall(tick)
    loop.clock = reactor
    loop.start(config.ca.crl.interval_minutes * 60, now=True)
    return loop
