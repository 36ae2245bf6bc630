"""The OCSP responder over HTTP at `/ocsp` (RFC 6960 Appendix A, RFC 5019 §5-6).

- POST `/ocsp` with Content-Type application/ocsp-request and the DER
  request as body; GET `/ocsp/<base64 of the DER request, URL-encoded>`
  (RFC 6960 Appendix A.1; slashes of the base64 may come encoded or not).
  Another POST content type is 415; other methods 405.
- Every answer that got this far is 200 application/ocsp-response, its
  errors included (malformedRequest, unauthorized, tryLater,
  internalError are OCSP response statuses, RFC 6960 §4.2.1).
- On every request the certificate's status row is read again, one
  primary-key look-up in a read snapshot of its own (`Backend.reading`),
  so each read sees every commit, a `certdir ca revoke` by another
  process included, with no `DSA.refresh` (which only drops the
  directory's entry caches, which this read does not use). A cached
  response is reused only while that status is unchanged
  (`ca.ocsp.Responder`).
- Signing runs on the web service's bounded pool, never on the reactor
  and never in the writer's transaction, in batches (`ca.web.batches`:
  the signatures queued meanwhile go to the pool together). With more than
  `WAITING_PER_THREAD` signatures per pool thread already waiting the
  answer is tryLater.
- A successful GET answer without a nonce carries the RFC 5019 §6.2
  caching headers: Last-Modified (thisUpdate), Expires (nextUpdate),
  Cache-Control max-age up to nextUpdate, public, no-transform,
  must-revalidate, and an ETag (the response's SHA-256), so conditional
  requests get 304. Other answers are not to be stored by caches.
- Served on plain http and on https (no TLS needed for revocation data).
- `children` also keeps the signer current: with `ca.ocsp.signer:
  delegated` it issues the responder certificate once the reactor runs
  and checks every `RENEW_CHECK_SECONDS` whether it needs renewing
  (`ca.responder`); until the first one is issued the answer is tryLater.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import logging
from email.utils import format_datetime
from typing import Any

from cryptography import x509
from twisted.internet.task import LoopingCall
from twisted.python.failure import Failure
from twisted.web.http import CACHED
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from ca import responder
from ca.keys import PrivateKey
from ca.ocsp import Answer, Question, Refusal, Responder, ResponseStatus, Signer, Status, parse
from ca.store import Store
from ca.web.batches import Batches
from ca.web.context import Web

log = logging.getLogger("certdir.ocsp")

REQUEST_TYPE = b"application/ocsp-request"
RESPONSE_TYPE = b"application/ocsp-response"
WAITING_PER_THREAD = 32
RENEW_CHECK_SECONDS = 600


def _http_date(when: dt.datetime) -> bytes:
    return format_datetime(when.astimezone(dt.UTC), usegmt=True).encode()


def _from_path(postpath: list[bytes]) -> bytes:
    """The DER request of a GET: base64 (standard or URL-safe), padding optional."""
    text = b"/".join(postpath).replace(b"-", b"+").replace(b"_", b"/").replace(b" ", b"+")
    try:
        return base64.b64decode(text + b"=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return b""


class OCSPResource(Resource):
    isLeaf = True

    def __init__(self, web: Web, ocsp: Responder) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # unannotated in Twisted
        self._web = web
        self._ocsp = ocsp
        self._signing = 0
        self._batches: Batches[tuple[Signer, Question, Status, dt.datetime], Answer] = \
            Batches(web.slow, lambda job: ocsp.sign(*job))

    def render_GET(self, request: Request) -> bytes | int:
        return self._answer(request, _from_path(request.postpath or []), cacheable=True)

    def render_POST(self, request: Request) -> bytes | int:
        kind = (request.getHeader(b"content-type") or b"").split(b";")[0].strip().lower()
        if kind != REQUEST_TYPE:
            request.setResponseCode(415)
            request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
            return b"an OCSP request is sent as application/ocsp-request\n"
        assert request.content is not None
        return self._answer(request, request.content.read(), cacheable=False)

    def _answer(self, request: Request, der: bytes, cacheable: bool) -> bytes | int:
        now = self._web.dsa.now()
        try:
            question = parse(der)
            self._ocsp.check(question)
            signer = self._ocsp.ready(now)
            status = _read_status(self._web, self._ocsp, question)
        except Refusal as refusal:
            return _refused(request, refusal)
        answer = self._ocsp.cached(question, status, now)
        if answer is not None:
            return _answered(request, question, answer, cacheable)
        if self._signing >= WAITING_PER_THREAD * self._web.pool.max:
            return _refused(request, Refusal(ResponseStatus.TRY_LATER, "too many requests waiting"))
        self._signing += 1
        finished: list[bool] = []

        def ended(_: object) -> None:
            finished.append(True)

        request.notifyFinish().addBoth(ended)

        def signed(made: Answer) -> None:
            self._ocsp.keep(question, made, signer)
            if not finished:
                request.write(_answered(request, question, made, cacheable))
                request.finish()

        def failed(failure: Failure) -> None:
            log.error("OCSP signing failed: %s", failure.getErrorMessage())
            if not finished:
                request.write(_refused(request, Refusal(ResponseStatus.INTERNAL_ERROR, "")))
                request.finish()

        def done(result: None) -> None:
            self._signing -= 1

        d = self._batches.run((signer, question, status, now))
        d.addCallbacks(signed, failed).addBoth(done)
        return NOT_DONE_YET


def _read_status(web: Web, ocsp: Responder, question: Question) -> Status:
    try:
        with web.dsa.backend.reading() as records:
            return ocsp.status(Store(records), question)
    except Exception as e:
        # Storage that failed (locked, damaged, unreachable: each backend has
        # its own errors) or a status row we cannot read.
        log.error("OCSP status of serial %x: %s", question.serial, e)
        raise Refusal(ResponseStatus.INTERNAL_ERROR, str(e)) from None


def _body(request: Request, der: bytes) -> bytes:
    request.setHeader(b"Content-Type", RESPONSE_TYPE)
    request.setHeader(b"Content-Length", str(len(der)).encode())
    return der


def _refused(request: Request, refusal: Refusal) -> bytes:
    request.setHeader(b"Cache-Control", b"no-store")
    return _body(request, refusal.der)


def _answered(request: Request, question: Question, answer: Answer, cacheable: bool) -> bytes:
    if not cacheable or question.nonce is not None:
        request.setHeader(b"Cache-Control", b"no-store")
        return _body(request, answer.der)
    left = max(0, int((answer.next_update - dt.datetime.now(dt.UTC)).total_seconds()))
    request.setHeader(b"Cache-Control",
                      f"max-age={left}, public, no-transform, must-revalidate".encode())
    request.setHeader(b"Expires", _http_date(answer.next_update))
    modified = request.setLastModified(answer.this_update.timestamp())
    tag = request.setETag(b'"' + hashlib.sha256(answer.der).hexdigest().encode() + b'"')
    if CACHED in (modified, tag):
        return b""
    return _body(request, answer.der)


def _keep_signer_current(web: Web, ocsp: Responder) -> LoopingCall:
    authority = web.authority

    def issued(made: tuple[PrivateKey, bytes]) -> Any:
        key, csr = made

        def use(certificate: x509.Certificate) -> None:
            ocsp.use(responder.delegated(authority, key, certificate))
            log.info("OCSP responder certificate %x issued, valid until %s",
                     certificate.serial_number, certificate.not_valid_after_utc)

        return responder.issue(authority, web.dsa, web.slow, csr).addCallback(use)

    def tick() -> Any:
        if not responder.needs_renewal(ocsp.signer, authority.config.ocsp, web.dsa.now()):
            return None
        return web.slow(responder.new_request, authority).addCallback(issued).addErrback(
            lambda failure: log.error("cannot issue the OCSP responder certificate: %s",
                                      failure.getErrorMessage()))

    loop = LoopingCall(tick)
    loop.clock = web.reactor
    web.reactor.callWhenRunning(loop.start, RENEW_CHECK_SECONDS, now=True)
    return loop


def children(web: Web) -> dict[bytes, Resource]:
    """`/ocsp`; with a delegated signer, also the job that keeps its certificate current."""
    authority = web.authority
    ocsp = Responder(authority.certificate, authority.config.ocsp)
    if authority.config.ocsp.signer == "ca":
        ocsp.use(responder.ca_signer(authority))
    else:
        _keep_signer_current(web, ocsp)
    return {b"ocsp": OCSPResource(web, ocsp)}
