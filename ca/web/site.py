"""The web service's HTTP layer (twisted.web): limits, headers, errors, plain http.

- A request body over `max_body_bytes` is refused with 413 (RFC 9110
  §15.5.14): from its declared Content-Length before a byte of it is read,
  or, chunked, as soon as the bytes received pass the limit. The
  connection is closed after the answer; the resource never runs.
- A client must send one whole request (headers and body) within
  `request_seconds`, counted from its first byte; a client trickling a
  byte a second is answered 408 (§15.5.9) and disconnected. Nothing waits
  on one client: the reactor serves the others meanwhile.
- Every response carries a Content-Security-Policy that allows only this
  site's own style sheet and forms (no script at all), nosniff,
  no-referrer and frame-ancestors 'none'; https responses also carry
  Strict-Transport-Security.
- Error pages never show a traceback; an unhandled failure is a plain 500.
- Plain http serves only what relying parties fetch without TLS: CA
  certificates, CRLs and OCSP (RFC 5280 §4.2.1.13, RFC 6960 Appendix A:
  TLS for revocation data would be circular). Any other path is
  redirected (308, §15.4.9) to the same path on the https service, or
  answered 404 when there is none.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from twisted.internet.interfaces import IDelayedCall
from twisted.internet.main import CONNECTION_DONE
from twisted.python.failure import Failure
from twisted.web.http import HTTPChannel
from twisted.web.resource import NoResource, Resource
from twisted.web.server import Request, Site

from ca.web.config import WebConfig

SECURITY_HEADERS: Mapping[bytes, bytes] = {
    b"Content-Security-Policy": b"default-src 'none'; style-src 'self'; img-src 'self'; "
                                b"form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    b"X-Content-Type-Options": b"nosniff",
    b"Referrer-Policy": b"no-referrer",
    b"X-Frame-Options": b"DENY",
}
HSTS = b"max-age=31536000"


def _raw_answer(status: bytes, text: bytes) -> bytes:
    return (b"HTTP/1.1 " + status + b"\r\nContent-Type: text/plain; charset=utf-8\r\n"
            b"Content-Length: " + str(len(text)).encode() + b"\r\nConnection: close\r\n\r\n"
            + text)


class LimitedRequest(Request):
    """A request whose body may not pass the site's limit."""

    _received = 0
    _refused = False

    def _limit(self) -> int:
        channel: Any = self.channel
        limit: int = channel.site.config.max_body_bytes
        return limit

    def _refuse(self) -> None:
        self._refused = True
        limit = self._limit()
        channel: Any = self.channel
        channel.transport.write(_raw_answer(
            b"413 Content Too Large", f"the request body is over {limit} bytes\n".encode()))
        channel.transport.loseConnection()

    def gotLength(self, length: int | None) -> None:
        if length is not None and length > self._limit():
            self._refuse()
            return
        super().gotLength(length)  # type: ignore[no-untyped-call]  # unannotated in Twisted

    def handleContentChunk(self, data: bytes) -> None:
        if self._refused:
            return
        self._received += len(data)
        if self._received > self._limit():
            self._refuse()
            return
        super().handleContentChunk(data)  # type: ignore[no-untyped-call]

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        if not self._refused:
            super().requestReceived(command, path, version)  # type: ignore[no-untyped-call]

    def process(self) -> None:
        for name, value in SECURITY_HEADERS.items():
            self.responseHeaders.setRawHeaders(name, [value])
        if self.channel is not None and self.channel.isSecure():
            self.responseHeaders.setRawHeaders(b"Strict-Transport-Security", [HSTS])
        super().process()  # type: ignore[no-untyped-call]


class DeadlineChannel(HTTPChannel):
    """An HTTP connection that must deliver each request within a deadline."""

    _deadline: IDelayedCall | None = None

    def dataReceived(self, data: bytes) -> None:
        if self._deadline is None and not self._handlingRequest:
            site: Any = getattr(self, "site")  # noqa: B009  # set by the factory
            self._deadline = site.reactor.callLater(site.config.request_seconds, self._expire)
        super().dataReceived(data)  # type: ignore[no-untyped-call]  # unannotated in Twisted

    def allContentReceived(self) -> None:
        self._cancel_deadline()
        super().allContentReceived()  # type: ignore[no-untyped-call]

    def connectionLost(self, reason: Failure = Failure(CONNECTION_DONE)) -> None:  # noqa: B008
        self._cancel_deadline()
        super().connectionLost(reason)  # type: ignore[no-untyped-call]  # unannotated

    def _cancel_deadline(self) -> None:
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        assert self.transport is not None
        self.transport.write(_raw_answer(b"408 Request Timeout",
                                         b"the request took too long to arrive\n"))
        self.transport.loseConnection()


class WebSite(Site):
    """A twisted.web Site with certdir's limits and headers."""

    requestFactory = LimitedRequest
    protocol = DeadlineChannel  # type: ignore[assignment]  # HTTP/1.1 only, no h2 upgrade
    displayTracebacks = False

    def __init__(self, root: Resource, config: WebConfig, reactor: Any) -> None:
        # Idle keep-alive connections close after a few request deadlines.
        super().__init__(root, timeout=config.request_seconds * 4)  # type: ignore[no-untyped-call]
        self.config = config
        self.reactor = reactor


class Root(Resource):
    """The site's root: named children, then a fallback for other names."""

    def __init__(self, children: Mapping[bytes, Resource], fallback: Resource | None = None,
                 index: Resource | None = None) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # unannotated in Twisted
        for name, child in children.items():
            self.putChild(name, child)
        self._fallback = fallback
        self._index = index

    def getChild(self, path: bytes, request: Request) -> Resource:
        if path == b"" and self._index is not None:
            return self._index
        if self._fallback is not None:
            if self._fallback.isLeaf:
                # A leaf (the https redirect) answers every path below it itself.
                return self._fallback
            child: Resource = self._fallback.getChildWithDefault(path, request)
            return child
        return NoResource()


class RedirectToHTTPS(Resource):
    """On plain http, everything but the public revocation data moves to https."""

    isLeaf = True

    def __init__(self, https_url: str | None) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # unannotated in Twisted
        self._https = https_url

    def render(self, request: Request) -> bytes:
        request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
        if self._https is None:
            request.setResponseCode(404)
            return b"not served over plain http\n"
        request.setResponseCode(308)
        request.setHeader(b"Location", self._https.encode() + (request.uri or b"/"))
        return b"this page is served over https\n"
