"""The web service's HTTP layer (twisted.web): limits, headers, errors, plain http.

- An HTTP/1.1 request carries exactly one Host header (RFC 9112 §3.2),
  else 400.
- The request target must be a path (origin-form, RFC 9112 §3.2.1) of
  printable ASCII; anything else (absolute-form, `*`, other bytes Twisted's
  parser lets through) is answered 400 (RFC 9110 §15.5.1): this service is
  no proxy, and a redirect must not echo such bytes into `Location`.
- A request body over `max_body_bytes` is refused with 413 (§15.5.14):
  from its declared Content-Length as soon as the headers are in, before
  a byte of the body is read and without a 100 Continue (§10.1.1), or,
  chunked, as soon as the bytes received pass the limit. The resource
  never runs.
- A client must send one whole request (headers and body) within
  `request_seconds`, counted from its first byte; a client trickling a
  byte a second is answered 408 (§15.5.9). Nothing waits on one client:
  the reactor serves the others meanwhile. The deadline and the idle
  timeout below share the connection's one timer (Twisted's
  TimeoutMixin), so a request costs no timer of its own.
- A request line over Twisted's line limit (16 KiB) is answered 414
  (RFC 9112 §3), a header line over it 431 (RFC 6585 §5); what Twisted
  itself refuses (malformed request lines and headers, HTTP/0.9 or
  HTTP/2 preface, more than 16 KiB or 500 header lines, bad chunked
  framing, Content-Length with Transfer-Encoding) is answered 400.
- After any of these answers the server reads nothing more from the
  connection and closes it; a client that has not taken its answer
  within `CLOSE_GRACE_SECONDS` is dropped. An idle keep-alive
  connection is closed after `IDLE_DEADLINES` request deadlines.
- Every response carries a Content-Security-Policy that allows only this
  site's own style sheet and forms (no script at all), nosniff,
  no-referrer and frame-ancestors 'none'; https responses also carry
  Strict-Transport-Security (RFC 6797 §7.2: never over plain http).
- Error pages never show a traceback; an unhandled failure is a plain 500.
- A request body is parsed as form fields only when its media type is a
  form's (application/x-www-form-urlencoded, multipart/form-data); any
  other body (an OCSP request) is left to its resource.
- One access-log line per request on `certdir.access` (client, method,
  path without the query, status, bytes), like the directory's; with
  `log.access: false` nothing is formatted.
- Plain http serves only what relying parties fetch without TLS: CA
  certificates, CRLs and OCSP (RFC 5280 §4.2.1.13, RFC 6960 Appendix A:
  TLS for revocation data would be circular). Any other path is
  redirected (308, §15.4.9) to the same path on the https service, or
  answered 404 when there is none.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from twisted.internet.interfaces import IDelayedCall
from twisted.internet.main import CONNECTION_DONE
from twisted.python.failure import Failure
from twisted.web import http
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
SERVER = b"certdir"
ORIGIN_FORM = re.compile(rb"/[\x21-\x7e]*")
CLOSE_GRACE_SECONDS = 5
IDLE_DEADLINES = 4
FORM_TYPES = frozenset((b"application/x-www-form-urlencoded", b"multipart/form-data"))

access = logging.getLogger("certdir.access")


@dataclass(frozen=True, slots=True)
class Refusal:
    """An answer written before any resource runs, after which the connection closes."""

    status: bytes
    text: bytes

    def wire(self, secure: bool) -> bytes:
        headers = {**SECURITY_HEADERS, b"Content-Type": b"text/plain; charset=utf-8",
                   b"Content-Length": str(len(self.text)).encode(), b"Connection": b"close"}
        if secure:
            headers[b"Strict-Transport-Security"] = HSTS
        lines = [b"HTTP/1.1 " + self.status, *(k + b": " + v for k, v in headers.items())]
        return b"\r\n".join(lines) + b"\r\n\r\n" + self.text


MALFORMED = Refusal(b"400 Bad Request", b"malformed HTTP/1.1 request\n")
NO_HOST = Refusal(b"400 Bad Request", b"an HTTP/1.1 request needs one Host header\n")
NOT_A_PATH = Refusal(b"400 Bad Request", b"the request target must be a path in printable ASCII\n")
TOO_SLOW = Refusal(b"408 Request Timeout", b"the request took too long to arrive\n")
LINE_TOO_LONG = Refusal(b"414 URI Too Long", b"the request line is too long\n")
HEADER_TOO_LONG = Refusal(b"431 Request Header Fields Too Large", b"a header line is too long\n")


def too_large(limit: int) -> Refusal:
    return Refusal(b"413 Content Too Large", f"the request body is over {limit} bytes\n".encode())


def media_type(request: http.Request) -> bytes:
    """The Content-Type's type/subtype, lower case, without parameters."""
    value = request.requestHeaders.getRawHeaders(b"content-type")
    return b"" if not value else value[0].split(b";", 1)[0].strip().lower()


class LimitedRequest(Request):
    """A request whose body may not pass the site's limit."""

    _received = 0

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        # Twisted would run every POST's Content-Type through email's header parser
        # to look for a form; only forms need it.
        self._parsePOSTFormSubmission = media_type(self) in FORM_TYPES
        super().requestReceived(command, path, version)  # type: ignore[no-untyped-call]

    def handleContentChunk(self, data: bytes) -> None:
        channel: Any = self.channel
        limit: int = channel.site.config.max_body_bytes
        self._received += len(data)
        if self._received > limit:
            channel.refuse(too_large(limit))
        elif not channel.refused:
            super().handleContentChunk(data)  # type: ignore[no-untyped-call]  # unannotated

    def process(self) -> None:
        for name, value in SECURITY_HEADERS.items():
            self.responseHeaders.setRawHeaders(name, [value])
        if self.channel is not None and self.channel.isSecure():
            self.responseHeaders.setRawHeaders(b"Strict-Transport-Security", [HSTS])
        super().process()  # type: ignore[no-untyped-call]  # unannotated in Twisted

    def render(self, resource: Resource) -> None:
        # twisted.web's process() announces its name and version; say only ours.
        self.responseHeaders.setRawHeaders(b"Server", [SERVER])
        super().render(resource)  # type: ignore[no-untyped-call]  # unannotated in Twisted


class LimitedChannel(HTTPChannel):
    """An HTTP/1.1 connection held to the site's target, size and time limits."""

    abortTimeout = CLOSE_GRACE_SECONDS
    refused = False
    # From a request's first byte to its last: the timer is its deadline.
    _arriving = False
    _grace: IDelayedCall | None = None

    def _site(self) -> Any:
        return getattr(self, "site")  # noqa: B009  # set by the factory, undeclared

    def _config(self) -> WebConfig:
        config: WebConfig = self._site().config
        return config

    def dataReceived(self, data: bytes) -> None:
        if self.refused:
            return
        if not self._arriving and not self._handlingRequest:
            self._arriving = True
            # Moving the idle timer sooner would be a linear search of the reactor's
            # timer heap (DelayedCall.reset); a new timer is a heap push.
            self.setTimeout(None)  # type: ignore[no-untyped-call]  # unannotated in Twisted
            self.setTimeout(self._config().request_seconds)  # type: ignore[no-untyped-call]
        super().dataReceived(data)  # type: ignore[no-untyped-call]  # unannotated in Twisted

    def resetTimeout(self) -> None:
        # Twisted restarts the timer on every read; a request's deadline runs on.
        if not self._arriving:
            super().resetTimeout()  # type: ignore[no-untyped-call]  # unannotated

    def timeoutConnection(self) -> None:
        if self._arriving:
            self.refuse(TOO_SLOW)
        else:
            super().timeoutConnection()  # type: ignore[no-untyped-call]  # unannotated

    def allHeadersReceived(self) -> None:
        limit = self._config().max_body_bytes
        hosts = self.requests[-1].requestHeaders.getRawHeaders(b"host") or []
        if self._version == b"HTTP/1.1" and len(hosts) != 1:
            self.refuse(NO_HOST)
        elif not ORIGIN_FORM.fullmatch(self._path):
            self.refuse(NOT_A_PATH)
        elif self.length is not None and self.length > limit:
            self.refuse(too_large(limit))
        else:
            super().allHeadersReceived()  # type: ignore[no-untyped-call]  # unannotated

    def allContentReceived(self) -> None:
        if self.refused:
            return
        self._arriving = False
        # Twisted stops the timer while the request is served and restarts it with
        # this idle timeout once the answer is out.
        self.timeOut = self._site().timeOut
        super().allContentReceived()  # type: ignore[no-untyped-call]  # unannotated in Twisted

    def lineLengthExceeded(self, line: bytes) -> None:
        # Nothing of this request counted yet: the over-long line is its request line.
        self.refuse(LINE_TOO_LONG if self._receivedHeaderSize == 0 else HEADER_TOO_LONG)

    def _respondToBadRequestAndDisconnect(self) -> None:
        # Twisted's own refusals (a bare 400) take the same way out as ours.
        self.refuse(MALFORMED)

    def refuse(self, refusal: Refusal) -> None:
        """Answer `refusal`, read nothing more from the client, and close."""
        if self.refused:
            return
        self.refused = True
        self._arriving = False
        self.setTimeout(None)  # type: ignore[no-untyped-call]  # unannotated in Twisted
        transport: Any = self.transport
        # A client still sending (a flood) is not read, nor decrypted, any more.
        transport.pauseProducing()
        transport.write(refusal.wire(self.isSecure()))  # type: ignore[no-untyped-call]
        # HTTPChannel's loseConnection unregisters it as the transport's producer
        # first; without that a TLS transport never sends its close_notify.
        self.loseConnection()  # type: ignore[no-untyped-call]  # unannotated in Twisted
        self._grace = self._site().reactor.callLater(CLOSE_GRACE_SECONDS,
                                                     transport.abortConnection)

    def connectionLost(self, reason: Failure = Failure(CONNECTION_DONE)) -> None:  # noqa: B008
        if self._grace is not None and self._grace.active():
            self._grace.cancel()
        self._grace = None
        super().connectionLost(reason)  # type: ignore[no-untyped-call]  # unannotated


class WebSite(Site):
    """A twisted.web Site with certdir's limits and headers."""

    requestFactory = LimitedRequest
    protocol = LimitedChannel  # type: ignore[assignment]  # HTTP/1.1 only, no h2 upgrade
    displayTracebacks = False

    def __init__(self, root: Resource, config: WebConfig, reactor: Any) -> None:
        super().__init__(root, timeout=config.request_seconds * IDLE_DEADLINES,  # type: ignore[no-untyped-call]
                         reactor=reactor)
        self.config = config

    def log(self, request: http.Request) -> None:
        if not access.isEnabledFor(logging.INFO):
            return
        client = request.getClientAddress()
        access.info("http %s \"%s %s\" %d %d", getattr(client, "host", "-"),
                    (request.method or b"").decode("ascii", "replace"),
                    (request.path or b"").decode("ascii", "replace"), request.code,
                    request.sentLength)


class Root(Resource):
    """The site's root: named children, then a fallback for other names."""

    def __init__(self, children: Mapping[bytes, Resource],
                 fallback: Resource | None = None) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # unannotated in Twisted
        for name, child in children.items():
            self.putChild(name, child)
        self._fallback = fallback

    def getChild(self, path: bytes, request: Request) -> Resource:
        if self._fallback is not None and self._fallback.isLeaf:
            # A leaf answers for the whole path (the redirect to https).
            return self._fallback
        if self._fallback is not None:
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
        # The channel admits only origin-form targets, so this stays on the https host.
        request.setHeader(b"Location", self._https.encode() + (request.uri or b"/"))
        return b"this page is served over https\n"
