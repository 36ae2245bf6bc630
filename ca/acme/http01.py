"""http-01 validation (RFC 8555 §8.3).

- GET http://NAME:PORT/.well-known/acme-challenge/TOKEN, PORT the policy's
  `http01_port` (80), with `Host: NAME` (an IPv6 address in brackets,
  RFC 3986 §3.2.2), through twisted.web's Agent, connected to an address
  resolve.py allowed, never to a second lookup of the name.
- A redirect (301, 302, 303, 307, 308) is followed, at most
  `MAX_REDIRECTS` of them, only to http on port 80 or `http01_port`, or to
  https on 443 or `tls_alpn01_port` (its certificate not verified:
  tls_client.py), at a host the policy allows whose addresses pass the same
  check as the identifier's. Any other is `Refused` (unauthorized).
- The last answer must be 200 (else unauthorized), with a body of at most
  `MAX_BODY` bytes (more is incorrectResponse, and is not read) that,
  trailing whitespace ignored, is the key authorization (else
  incorrectResponse).
- Each connection has `connect_timeout_s`, each answer `read_timeout_s`;
  a refused, cut or silent connection is a connection problem, a failed
  TLS handshake behind a redirect a tls one.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any
from urllib.parse import urljoin, urlsplit

from OpenSSL import SSL
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP6ClientEndpoint, wrapClientTLS
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.internet.protocol import Protocol, connectionDone
from twisted.python.failure import Failure
from twisted.web.client import URI, Agent, HTTPConnectionPool, ResponseDone
from twisted.web.http import PotentialDataLoss
from twisted.web.http_headers import Headers
from twisted.web.iweb import IAgentEndpointFactory, IResponse
from zope.interface import implementer

from ca.acme.identifiers import Identifier, IPAddress
from ca.acme.policy import AcmePolicy
from ca.acme.problems import AcmeProblem
from ca.acme.resolve import Refused, addresses
from ca.acme.tls_client import Handshake

PATH = "/.well-known/acme-challenge/"
MAX_BODY = 8 * 1024
MAX_REDIRECTS = 5
REDIRECTS = frozenset({301, 302, 303, 307, 308})
USER_AGENT = b"certdir-acme-validation"


def _ports(policy: AcmePolicy) -> Mapping[str, frozenset[int]]:
    """Scheme -> the ports a redirect may lead to."""
    return {"http": frozenset({80, policy.http01_port}),
            "https": frozenset({443, policy.tls_alpn01_port})}


def _netloc(identifier: Identifier) -> str:
    address = identifier.address
    return f"[{address}]" if isinstance(address, ipaddress.IPv6Address) else identifier.value


@implementer(IAgentEndpointFactory)
class _Pinned:
    """Every request of one hop goes to the one address checked for it."""

    def __init__(self, reactor: Any, address: IPAddress, timeout: float,
                 tls_name: str | None) -> None:
        self.reactor = reactor
        self.address = address
        self.timeout = timeout
        self.tls_name = tls_name

    def endpointForURI(self, uri: URI) -> IStreamClientEndpoint:
        kind = TCP6ClientEndpoint if self.address.version == 6 else TCP4ClientEndpoint
        endpoint = kind(self.reactor, str(self.address), uri.port, timeout=self.timeout)
        if uri.scheme == b"https":
            return wrapClientTLS(Handshake(self.tls_name), endpoint)
        return endpoint


class _Body(Protocol):
    """Collects a response body up to `limit` bytes, and stops reading past it."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.chunks: list[bytes] = []
        self.size = 0
        self.done: Deferred[bytes] = Deferred(lambda _: self._stop())

    def _stop(self) -> None:
        transport: Any = self.transport
        if transport is not None:
            transport.stopProducing()

    def dataReceived(self, data: bytes) -> None:
        if self.done.called:
            return
        self.size += len(data)
        if self.size > self.limit:
            self.done.errback(AcmeProblem("incorrectResponse",
                                          f"the body is longer than {self.limit} bytes"))
            self._stop()
            return
        self.chunks.append(data)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self.done.called:
            return
        if reason.check(ResponseDone, PotentialDataLoss):
            self.done.callback(b"".join(self.chunks))
        else:
            self.done.errback(AcmeProblem("connection",
                                          f"the body was cut short: {reason.getErrorMessage()}"))


class _Dropped(Protocol):
    """A body not read: its connection closes at once."""

    def connectionMade(self) -> None:
        transport: Any = self.transport
        transport.stopProducing()


def _failure(url: str, error: Exception) -> AcmeProblem:
    """A failed request as a problem: tls when a handshake failed, else connection."""
    reasons = [f.value for f in getattr(error, "reasons", ()) if isinstance(f, Failure)]
    if any(isinstance(reason, SSL.Error) for reason in reasons):
        return AcmeProblem("tls", f"{url}: TLS handshake failed: {reasons[0]}")
    text = "; ".join(str(r) for r in reasons) or str(error) or type(error).__name__
    return AcmeProblem("connection", f"{url}: {text}")


def _host(text: str) -> Identifier:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return Identifier("dns", text)
    return Identifier("ip", text)


def _redirect(policy: AcmePolicy, url: str, location: bytes | None) -> tuple[str, Identifier]:
    """The next URL and its host, if the policy lets a redirect lead there."""
    if location is None:
        raise Refused("unauthorized", f"{url}: a redirect without Location")
    try:
        target = urljoin(url, location.decode("ascii"))
        parts = urlsplit(target)
        port = parts.port
    except (UnicodeDecodeError, ValueError):
        raise Refused("unauthorized", f"{url}: redirect to {location!r}, "
                      "not a URL") from None
    ports = _ports(policy).get(parts.scheme)
    if ports is None or (port or {"http": 80, "https": 443}[parts.scheme]) not in ports:
        raise Refused("unauthorized", f"{url}: redirect to {target}: only http on "
                      f"ports {sorted(_ports(policy)['http'])} and https on "
                      f"{sorted(_ports(policy)['https'])}")
    try:
        host = _host(parts.hostname or "")
    except AcmeProblem as e:
        raise Refused("unauthorized", f"{url}: redirect to {target}: {e.detail}") from None
    if not policy.allows(host) or parts.username is not None:
        raise Refused("unauthorized", f"{url}: redirect to {target}: not a host "
                      "ca.acme.allowed allows")
    return target, host


async def _answer(policy: AcmePolicy, url: str, address: IPAddress, tls_name: str | None,
                  headers: Headers) -> IResponse:
    from twisted.internet import reactor

    clock: Any = reactor
    agent = Agent.usingEndpointFactory(
        reactor, _Pinned(reactor, address, policy.connect_timeout_s, tls_name),
        HTTPConnectionPool(reactor, persistent=False))
    request = agent.request(b"GET", url.encode("ascii"), headers)
    request.addTimeout(policy.connect_timeout_s + policy.read_timeout_s, clock)
    try:
        response: IResponse = await request
    except Exception as e:
        raise _failure(url, e) from None
    return response


async def _body(policy: AcmePolicy, response: IResponse, limit: int) -> bytes:
    from twisted.internet import reactor

    clock: Any = reactor
    reader = _Body(limit)
    response.deliverBody(reader)
    reader.done.addTimeout(policy.read_timeout_s, clock)
    try:
        return await reader.done
    except AcmeProblem:
        raise
    except Exception:
        raise AcmeProblem("connection", f"no whole body within {policy.read_timeout_s:g} s")\
            from None


async def check(policy: AcmePolicy, identifier: Identifier, token: str,
                key_authorization: str, attempt: int) -> None:
    """One http-01 validation query; attempt n connects to the nth address (cycling)."""
    url = f"http://{_netloc(identifier)}:{policy.http01_port}{PATH}{token}"
    host = identifier
    headers = Headers({b"Host": [_netloc(identifier).encode("ascii")],
                       b"User-Agent": [USER_AGENT]})
    for _ in range(MAX_REDIRECTS + 1):
        try:
            found = await addresses(policy, host)
        except Refused as e:
            if host is identifier:
                raise
            raise Refused("unauthorized", f"redirect to {url}: {e.detail}") from None
        tls_name = host.value if host.address is None else None
        response = await _answer(policy, url, found[attempt % len(found)], tls_name, headers)
        if response.code in REDIRECTS:
            locations = response.headers.getRawHeaders(b"location")
            response.deliverBody(_Dropped())
            location = locations[0] if locations else None
            url, host = _redirect(policy, url, location)
            headers = Headers({b"User-Agent": [USER_AGENT]})
            continue
        if response.code != 200:
            response.deliverBody(_Dropped())
            raise AcmeProblem("unauthorized", f"{url}: answered {response.code}, not 200")
        body = (await _body(policy, response, MAX_BODY)).rstrip()
        if body != key_authorization.encode("ascii"):
            raise AcmeProblem("incorrectResponse", f"{url}: the body {body[:80]!r} is not the "
                              "key authorization")
        return
    raise Refused("unauthorized", f"more than {MAX_REDIRECTS} redirects, the last to {url}")
