"""The ACME server over HTTP at `/acme/` of the https site (RFC 8555 §6, §7).

- Resources are a table (`ROUTES`): the path's shape (a name, an id, a
  sub-resource) gives the operation and who may sign for it: `jwk`
  (newAccount), `kid` (the account's requests), either (revokeCert), or
  nobody (the directory and newNonce, read with GET/HEAD). An unknown
  path is 404, another method 405 with Allow; both as problem documents.
- Every POST body is a JWS (`ca.acme.jws`) of Content-Type
  `application/jose+json`, else 415 malformed (§6.2). Then, in this order:
  the protected `url` must be the URL the request was sent to, else
  unauthorized (§6.4); the nonce must be one of ours and current, else
  badNonce (§6.5); a route for kid refuses a jwk and the reverse
  (malformed); a `kid` must name an account here (accountDoesNotExist)
  that is valid (unauthorized, §7.3.6); the signature must verify; and the
  nonce is spent (a replay is badNonce), in a write of its own before the
  operation's. Only then does the operation run.
- Every answer, errors included, carries a fresh `Replay-Nonce` (§6.5),
  `Link: <directory>;rel="index"` (§7.1) and `Cache-Control: no-store`.
- Every refusal is an `AcmeProblem` turned into `application/problem+json`
  here and only here (§6.7); any other failure is serverInternal (500),
  logged, with no traceback sent.
- Request bodies are bounded by the site (`http.max_body_bytes`, 413
  before the resource runs: `ca.web.site`).
- URLs are built on the request's `Host` (one, checked by the site); a
  Host that is not a host name or address with an optional port is
  malformed. The URL a JWS must name is the one requested, query
  included (the orders list's pages, §7.1.2.1).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass

from twisted.internet.defer import Deferred
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from ca.acme import jws as jws_module
from ca.acme.calls import Call, Operation, Reply
from ca.acme.context import Acme, Urls
from ca.acme.nonces import Nonces
from ca.acme.ops import account, authorization, directory, order, revoke
from ca.acme.problems import CONTENT_TYPE, AcmeProblem
from ca.acme.store import Account, AcmeStore
from ca.web.site import media_type

log = logging.getLogger("certdir.acme")

JOSE = b"application/jose+json"
HOST = re.compile(r"[A-Za-z0-9.-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")
ID = "*"


@dataclass(frozen=True, slots=True)
class Route:
    """One resource: its operation per method, and who signs its POSTs."""
    methods: Mapping[bytes, Operation]
    signer: str = "kid"  # "kid", "jwk", "either", or "" (no JWS: GET and HEAD)


ROUTES: Mapping[tuple[str, ...], Route] = {
    ("directory",): Route({b"GET": directory.directory}, ""),
    ("new-nonce",): Route({b"HEAD": directory.new_nonce_head,
                           b"GET": directory.new_nonce_get}, ""),
    ("new-account",): Route({b"POST": account.new_account}, "jwk"),
    ("account", ID): Route({b"POST": account.update_account}),
    ("account", ID, "orders"): Route({b"POST": account.orders}),
    ("key-change",): Route({b"POST": account.key_change}),
    ("new-order",): Route({b"POST": order.new_order}),
    ("order", ID): Route({b"POST": order.read_order}),
    ("order", ID, "finalize"): Route({b"POST": order.finalize}),
    ("authz", ID): Route({b"POST": authorization.authorization}),
    ("chall", ID): Route({b"POST": authorization.challenge}),
    ("cert", ID): Route({b"POST": order.certificate}),
    ("revoke-cert",): Route({b"POST": revoke.revoke_certificate}, "either"),
}
SIGNERS: Mapping[str, frozenset[str]] = {
    "kid": frozenset({"kid"}), "jwk": frozenset({"jwk"}), "either": frozenset({"kid", "jwk"}),
}


def _host(request: Request) -> str:
    """The request's Host if it is a host name or address with an optional port, else ""."""
    host = (request.getHeader(b"host") or b"").decode("ascii", "replace")
    return host if HOST.fullmatch(host) else ""


def _urls(host: str) -> Urls:
    return Urls(f"https://{host}/acme")


def _shape(segments: list[str]) -> tuple[tuple[str, ...], str | None]:
    if len(segments) in (2, 3):
        return (segments[0], ID, *segments[2:]), segments[1]
    return tuple(segments), None


class AcmeResource(Resource):
    isLeaf = True

    def __init__(self, acme: Acme) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # unannotated in Twisted
        self._acme = acme

    def render(self, request: Request) -> int:
        finished: list[bool] = []
        request.notifyFinish().addBoth(lambda _: finished.append(True))

        async def steps() -> None:
            reply, nonce = await self._answer(request)
            if not finished:
                self._write(request, reply, nonce)

        Deferred.fromCoroutine(steps()).addErrback(
            lambda failure: log.error("ACME answer failed: %s", failure.getErrorMessage()))
        return NOT_DONE_YET

    async def _answer(self, request: Request) -> tuple[Reply | AcmeProblem, str | None]:
        acme = self._acme
        nonces: Nonces | None = None
        try:
            nonces = await acme.nonces()
            reply: Reply | AcmeProblem = await self._dispatch(request, nonces)
        except AcmeProblem as problem:
            reply = problem
        except Exception:
            log.exception("ACME %s %s", request.method, request.path)
            reply = AcmeProblem("serverInternal", "the server failed to answer", 500)
        nonce = None if nonces is None else nonces.issue(acme.web.reactor.seconds())
        return reply, nonce

    async def _dispatch(self, request: Request, nonces: Nonces) -> Reply:
        acme = self._acme
        segments = [s.decode("ascii", "replace") for s in request.postpath or []]
        shape, ident = _shape(segments)
        route = ROUTES.get(shape)
        if route is None or (ident is not None and not ident):
            raise AcmeProblem("malformed", "no such ACME resource", 404)
        method = request.method or b""
        operation = route.methods.get(method)
        if operation is None:
            raise AcmeProblem("malformed", f"{method.decode('ascii', 'replace')} is not served "
                              "here", 405, headers={b"Allow": b", ".join(route.methods)})
        host = _host(request)
        if not host:
            raise AcmeProblem("malformed", "the Host header is not a host name")
        urls = _urls(host)
        query = (request.uri or b"").partition(b"?")[2].decode("ascii", "replace")
        url = urls.of("/".join(segments)) + (f"?{query}" if query else "")
        now = acme.now
        address = str(getattr(request.getClientAddress(), "host", ""))
        if not route.signer:
            return await operation(Call(acme, urls, url, ident, None, None, None, now, address))
        if media_type(request) != JOSE:
            raise AcmeProblem("malformed", "ACME requests are application/jose+json", 415)
        assert request.content is not None
        signed = jws_module.parse(request.content.read())
        if signed.url != url:
            raise AcmeProblem("unauthorized", f"the JWS url {signed.url!r} is not the URL "
                              "this request was sent to", 403)
        assert signed.nonce is not None
        seconds = acme.web.reactor.seconds()
        expires = nonces.check(signed.nonce, seconds)
        used = "jwk" if signed.jwk is not None else "kid"
        if used not in SIGNERS[route.signer]:
            raise AcmeProblem("malformed", f"this resource is signed with a "
                              f"{' or '.join(sorted(SIGNERS[route.signer]))}, not a {used}")
        signer = None if signed.kid is None else self._account(urls, signed.kid)
        key = signed.jwk if signer is None else jws_module.Jwk.loads(signer.jwk)
        assert key is not None
        signed.verify(key)
        nonce = signed.nonce
        if not await acme.write(lambda txn: AcmeStore(txn.records).spend_nonce(
                nonce, expires, seconds)):
            raise AcmeProblem("badNonce", "this nonce was used before")
        return await operation(Call(acme, urls, url, ident, signed, key, signer, now, address))

    def _account(self, urls: Urls, kid: str) -> Account:
        ident = kid.removeprefix(urls.account(""))
        found = None
        if kid != ident and "/" not in ident:
            with self._acme.reading() as store:
                found = store.account(ident)
        if found is None:
            raise AcmeProblem("accountDoesNotExist", f"no account {kid}")
        if found.status != "valid":
            raise AcmeProblem("unauthorized", f"the account is {found.status}", 403)
        return found

    def _write(self, request: Request, reply: Reply | AcmeProblem, nonce: str | None) -> None:
        host = _host(request)
        links = [(_urls(host).directory, "index")] if host else []
        if nonce is not None:
            request.setHeader(b"Replay-Nonce", nonce.encode())
        request.setHeader(b"Cache-Control", b"no-store")
        if isinstance(reply, AcmeProblem):
            for name, value in reply.headers.items():
                request.setHeader(name, value)
            request.setResponseCode(reply.status)
            request.setHeader(b"Content-Type", CONTENT_TYPE)
            body = reply.body()
        else:
            request.setResponseCode(reply.status)
            links += reply.links
            if reply.location is not None:
                request.setHeader(b"Location", reply.location.encode())
            if reply.retry_after is not None:
                request.setHeader(b"Retry-After", str(reply.retry_after).encode())
            body = b""
            if reply.body is not None:
                request.setHeader(b"Content-Type", reply.content_type)
                body = (reply.body if isinstance(reply.body, bytes)
                        else json.dumps(reply.body).encode())
        if links:
            request.responseHeaders.setRawHeaders(
                b"Link", [f'<{url}>;rel="{rel}"'.encode() for url, rel in links])
        request.setHeader(b"Content-Length", str(len(body)).encode())
        if request.method != b"HEAD":
            request.write(body)
        request.finish()


def resource(acme: Acme) -> Resource:
    return AcmeResource(acme)
