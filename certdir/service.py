"""Wiring: configuration -> schema, backend, writer, DSA, listeners.

- The directory is opened as the offline commands open it
  (`certdir.directory_open`), with a writer thread.
- `serve` listens on every configured URL; ldaps:// wraps the listener in
  TLS, ldap:// offers StartTLS when a certificate is configured. LDAP's TLS
  asks clients for a certificate from the CAs of `tls.ca_certificate` or
  the built-in CA's chain (SASL EXTERNAL); the https site does not.
- SIGTERM and SIGINT stop listening, let the writer finish its committed
  work and close the database.
- The web service (`certdir.web_service`) runs when there is a CA; a web
  URL it cannot listen on aborts start-up too.
- With `workers` > 1 (`certdir.workers`) several processes accept on the
  same sockets over the same database; each drops its caches when another
  commits (SQLite's data_version). Every worker serves LDAP and the
  plain-http site; the first alone serves https (its sessions live in its
  memory), schedules CRLs, runs the KMS's jobs and, on a replica
  (`replication.consumer`), the syncrepl consumer.
- Once a worker is ready, the garbage collector is settled
  (`certdir.collector`): the entry cache holds hundreds of thousands of
  objects for long, and CPython's default full collections walked them all
  every few seconds of search load.
"""

from __future__ import annotations

import functools
import itertools
import logging
import sys
from typing import TYPE_CHECKING, Any

from cryptography import x509

from certdir import collector
from certdir.balance import BalancedPort
from certdir.config import Config, ConfigError
from certdir.directory_open import load_schema, open_directory, storage_errors
from certdir.tls import server_context
from certdir.workers import BACKLOG, Shared, run_workers

if TYPE_CHECKING:
    from ca.authority import Authority
    from kms.vault import Vault

log = logging.getLogger("certdir")

def client_cas(config: Config, authority: Authority | None) -> tuple[x509.Certificate, ...]:
    """The CA certificates whose client certificates LDAP sessions accept."""
    assert config.tls is not None
    path = config.tls.ca_certificate
    try:
        trusted = x509.load_pem_x509_certificates(path.read_bytes())
    except (OSError, ValueError) as e:
        raise ConfigError(f"tls.ca_certificate: {path}: {e}") from None
    chain = authority.chain if authority is not None else ()
    return tuple(dict.fromkeys((*trusted, *chain)))


def _configure_logging(access_log: bool, worker: int) -> None:
    handler = logging.StreamHandler(sys.stdout)
    prefix = f"[{worker}] " if worker else ""
    handler.setFormatter(logging.Formatter(f"%(asctime)s %(name)s {prefix}%(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    if not access_log:
        logging.getLogger("certdir.access").setLevel(logging.WARNING)


def serve(config: Config) -> None:
    """Serve until SIGTERM or SIGINT; with `workers` > 1, in that many processes."""
    from certdir import ca_service

    load_schema(config)  # a schema file that does not load stops the start here, once
    with storage_errors(config):
        authority = ca_service.unlock_at_start(config)
        vault = None
        if config.kms is not None:  # the KMS's code (a fifth of a second to import) alone
            from certdir import kms_service

            vault = kms_service.unlock_at_start(config)
    if config.workers > 1:
        run_workers(config, functools.partial(serve_worker, authority=authority, vault=vault))
    else:
        serve_worker(config, None, 0, authority, vault)


def serve_worker(config: Config, shared: Shared | None, worker: int,
                 authority: Authority | None = None, vault: Vault | None = None) -> None:
    """One server process: listen on the configured URLs, or adopt the
    already listening sockets `shared` with other workers."""
    from twisted.internet import asyncioreactor

    asyncioreactor.install()
    from twisted.internet import reactor as default_reactor
    from twisted.internet.endpoints import SSL4ServerEndpoint, TCP4ServerEndpoint
    from twisted.protocols.tls import TLSMemoryBIOFactory

    reactor: Any = default_reactor

    from directory.server import LDAPServerFactory, uncounted

    _configure_logging(config.directory.access_log, worker)
    dsa = open_directory(config, reactor, worker)
    tls: Any = None
    ldap_tls: Any = None
    if config.tls is not None:
        tls = server_context(config.tls.certificate, config.tls.key)
        dsa.client_cas = client_cas(config, authority)
        ldap_tls = server_context(config.tls.certificate, config.tls.key, dsa.client_cas)
    # Connection ids stay unique across workers: each counts in its own range.
    ids = itertools.count(1000 + worker * 100_000_000)
    failures: list[str] = []
    for url in config.listen:
        implicit_tls = url.scheme == "ldaps"
        counted = uncounted if shared is None else functools.partial(shared.loads.change, worker)
        factory: Any = LDAPServerFactory(dsa, reactor, ids, ldap_tls, implicit_tls=implicit_tls,
                                         counted=counted)
        if shared is not None:
            if implicit_tls:
                factory = TLSMemoryBIOFactory(ldap_tls, False, factory)
            BalancedPort(reactor, shared.sockets[url], factory, shared.loads, worker).start()
            log.info("listening on %s", url)
            continue
        endpoint: Any = (
            SSL4ServerEndpoint(reactor, url.port, ldap_tls, backlog=BACKLOG,
                               interface=url.host)
            if implicit_tls else
            TCP4ServerEndpoint(reactor, url.port, backlog=BACKLOG, interface=url.host))
        endpoint.listen(factory).addCallbacks(
            lambda _, url=url: log.info("listening on %s", url),
            lambda failure, url=url: failures.append(f"{url}: {failure.getErrorMessage()}"))
    if authority is not None and config.http:
        from certdir import kms_service, web_service

        web = web_service.context(reactor, dsa, authority, config)
        adopted = {} if shared is None else shared.sockets
        if worker == 0:
            https = {} if vault is None else kms_service.web_children(web, vault, config)
            failures += web_service.listen(web, tls, config.http, https, adopted)
        else:
            plain = tuple(url for url in config.http if url.scheme == "http")
            failures += web_service.listen(web, tls, plain, {}, adopted)
    if failures:
        raise ConfigError(f"cannot listen on {'; '.join(failures)}")

    def shutdown() -> None:
        if dsa.writer is not None:
            dsa.writer.stop()
        dsa.backend.close()
        log.info("stopped")

    if authority is not None:
        from certdir import ca_service

        ca_service.attach(reactor, dsa, authority, config, worker)
    if vault is not None:
        from certdir import kms_service

        kms_service.attach(reactor, dsa, authority, vault, config, worker)
    if config.directory.consumer is not None and worker == 0:
        from directory.replication.consumer import Consumer

        consumer = Consumer(dsa, config.directory.consumer, reactor)
        reactor.callWhenRunning(consumer.start)
        reactor.addSystemEventTrigger("before", "shutdown", consumer.stop)
    reactor.addSystemEventTrigger("after", "shutdown", shutdown)
    log.info("certdir serving %s (%d entries)", dsa.suffix, dsa.backend.count())
    collector.settle()
    reactor.run()
