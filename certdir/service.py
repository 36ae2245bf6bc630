"""Wiring: configuration -> schema, backend, writer, DSA, listeners.

- `open_directory` is shared by the server and the offline commands (LDIF
  import and export), so both see the same schema and storage.
- `serve` listens on every configured URL; ldaps:// wraps the listener in
  TLS, ldap:// offers StartTLS when a certificate is configured.
- SIGTERM and SIGINT stop listening, let the writer finish its committed
  work and close the database.
"""

from __future__ import annotations

import itertools
import logging
import sys
from pathlib import Path
from typing import Any

from certdir.config import Config, ConfigError
from certdir.tls import server_context
from directory.backend.sqlite import SQLiteBackend
from directory.dsa import DSA
from directory.schema import Schema

log = logging.getLogger("certdir")

SCHEMA_DIR = Path(__file__).resolve().parents[1] / "schema"


# Twisted's default of 50 drops connections when many clients arrive at once
# (a mail server's connection pool starting up); the kernel caps it at somaxconn.
BACKLOG = 1024


def load_schema(config: Config) -> Schema:
    return Schema.load([SCHEMA_DIR, *config.directory.schema_paths])


def open_directory(config: Config, reactor: Any = None) -> DSA:
    """The directory; with a reactor it gets a writer thread for updates."""
    from directory.backend.writer import Writer

    schema = load_schema(config)
    backend = SQLiteBackend(config.directory.database, schema, config.directory.indexes,
                            config.directory.cache_entries)
    writer = Writer(backend, reactor) if reactor is not None else None
    return DSA(config.directory, schema, backend, writer)


def _configure_logging(access_log: bool) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    if not access_log:
        logging.getLogger("certdir.access").setLevel(logging.WARNING)


def serve(config: Config) -> None:
    from twisted.internet import asyncioreactor

    asyncioreactor.install()
    from twisted.internet import reactor
    from twisted.internet.endpoints import SSL4ServerEndpoint, TCP4ServerEndpoint

    from directory.server import LDAPServerFactory

    _configure_logging(config.directory.access_log)
    dsa = open_directory(config, reactor)
    tls = None
    if config.tls is not None:
        tls = server_context(config.tls.certificate, config.tls.key)
    ids = itertools.count(1000)
    failures: list[str] = []
    for url in config.listen:
        if url.scheme == "ldaps":
            factory = LDAPServerFactory(dsa, reactor, ids, tls, implicit_tls=True)
            endpoint: Any = SSL4ServerEndpoint(reactor, url.port, tls, backlog=BACKLOG,
                                               interface=url.host)
        else:
            factory = LDAPServerFactory(dsa, reactor, ids, tls)
            endpoint = TCP4ServerEndpoint(reactor, url.port, backlog=BACKLOG, interface=url.host)
        endpoint.listen(factory).addCallbacks(
            lambda _, url=url: log.info("listening on %s", url),
            lambda failure, url=url: failures.append(f"{url}: {failure.getErrorMessage()}"))
    if failures:
        raise ConfigError(f"cannot listen on {'; '.join(failures)}")

    def shutdown() -> None:
        if dsa.writer is not None:
            dsa.writer.stop()
        dsa.backend.close()
        log.info("stopped")

    reactor.addSystemEventTrigger("after", "shutdown", shutdown)
    log.info("certdir serving %s (%d entries)", dsa.suffix, dsa.backend.count())
    reactor.run()
