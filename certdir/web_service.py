"""The web service inside `certdir serve` (DESIGN.md, "The HTTP side").

- One twisted.web service, on by default: it listens on every
  `http.listen` URL (https with the directory's TLS certificate, TLS 1.2
  or newer). A URL it cannot listen on aborts start-up with a message
  naming it, as for the LDAP URLs.
- The https site serves everything: CA certificates, CRLs, OCSP, the
  Certificate Server pages and the KMS. The plain-http site serves only
  the CA certificates, CRLs and OCSP, and redirects the rest to https
  (`ca.web.site`).
- With `workers` > 1 the plain-http site is served by every worker, on
  sockets the parent bound (`certdir.workers`), and the https site by the
  first worker only. Each worker keeps its own OCSP signer: with
  `ca.ocsp.signer: delegated` each issues its own responder certificate at
  start and renews it (`ca.web.ocsp`), so no responder key is ever shared
  between processes or written down; the price is one certificate per
  worker and start.
- Slow work goes to one bounded thread pool per worker, stopped at
  shutdown.
- With `ca.acme` configured, the https site serves the ACME server at
  `/acme/` (`ca.acme.resource`); plain http redirects it there like every
  page. The process serving https resumes, once running, the validations
  a stopped server left processing.
- Names nothing else serves are CA certificates and CRLs (`ca.web.downloads`);
  what is not one of those is redirected (plain http) or a 404 page (https).
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Mapping
from typing import Any

from twisted.internet.endpoints import SSL4ServerEndpoint, TCP4ServerEndpoint
from twisted.python.threadpool import ThreadPool
from twisted.web.resource import Resource

from ca import crl
from ca.authority import Authority
from ca.public import write_crls
from ca.web import ocsp, pages
from ca.web.context import Web
from ca.web.downloads import Downloads
from ca.web.session import Sessions
from ca.web.site import RedirectToHTTPS, Root, WebSite
from certdir.config import HTTPURL, Config, ListenURL
from directory.dsa import DSA
from kms import audit

log = logging.getLogger("certdir.web")

POOL_THREADS = 4


def _acme(web: Web, serving: bool) -> dict[bytes, Resource]:
    """The ACME server's resource, when `ca.acme` is configured; when this process
    serves it (`serving`), the validations a stopped server left are resumed."""
    if web.authority.config.acme is None:
        return {}
    from ca.acme.context import Acme
    from ca.acme.ops.authorization import resume
    from ca.acme.resource import resource

    acme = Acme(web, web.authority.config.acme)
    if serving:
        web.reactor.callWhenRunning(lambda: resume(acme).addErrback(
            lambda failure: log.error("resuming ACME validations: %s",
                                      failure.getErrorMessage())))
    return {b"acme": resource(acme)}


def _roots(web: Web, https: dict[bytes, Resource], serving: bool) -> tuple[Resource, Resource]:
    """The plain-http root and the https root (`serving`: this process listens on it)."""
    public: dict[bytes, Resource] = {**ocsp.children(web)}
    redirect = RedirectToHTTPS(web.config.https_url)
    plain = Root(public, fallback=Downloads(web, redirect))
    secure = Root({**public, **pages.children(web), **https, **_acme(web, serving)},
                  fallback=Downloads(web, pages.missing(web)))
    return plain, secure


def context(reactor: Any, dsa: DSA, authority: Authority, config: Config) -> Web:
    pool = ThreadPool(minthreads=0, maxthreads=POOL_THREADS, name="certdir-web")
    reactor.callWhenRunning(pool.start)
    reactor.addSystemEventTrigger("during", "shutdown", pool.stop)
    sessions = Sessions(config.web.session_minutes * 60, reactor.seconds)

    def published(made: crl.CRLs) -> None:
        write_crls(config.data_dir / "public", authority.certificate, made.full, made.delta)

    return Web(reactor, dsa, authority, config.web, pool, sessions, audit.record, published)


def listen(web: Web, tls: Any, urls: tuple[HTTPURL, ...],
           https_children: dict[bytes, Resource],
           adopted: Mapping[ListenURL | HTTPURL, socket.socket]) -> list[str]:
    """Start listening, on the `adopted` socket of a URL when there is one (shared
    with other workers); the URLs that failed, with why."""
    plain, secure = _roots(web, https_children, any(
        url.scheme == "https" and url not in adopted for url in urls))
    failures: list[str] = []
    for url in urls:
        if url in adopted:
            web.reactor.adoptStreamPort(adopted[url].fileno(), socket.AF_INET,
                                        WebSite(plain, web.config, web.reactor))
            log.info("web service on %s", url)
            continue
        if url.scheme == "https":
            endpoint: Any = SSL4ServerEndpoint(web.reactor, url.port, tls, interface=url.host)
            site = WebSite(secure, web.config, web.reactor)
        else:
            endpoint = TCP4ServerEndpoint(web.reactor, url.port, interface=url.host)
            site = WebSite(plain, web.config, web.reactor)
        endpoint.listen(site).addCallbacks(
            lambda _, url=url: log.info("web service on %s", url),
            lambda failure, url=url: failures.append(f"{url}: {failure.getErrorMessage()}"))
    return failures
