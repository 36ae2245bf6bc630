"""Token redemption over HTTP: POST /kms/enroll (twisted.web) and its client.

- Mounted at /kms of the web service's https site only: the token and the
  bundle password never travel in clear (plain http redirects, `ca.web.site`).
- Only POST is served (RFC 9110 §9.3.3); any other method is answered 405
  with `Allow: POST` (§15.5.6).
- A body over `MAX_BODY` bytes is refused with 413 (§15.5.14) before it is
  parsed.
- The fields `token`, `csr` (PKCS#10 in PEM) and `p12_password` come as a
  form (application/x-www-form-urlencoded or multipart/form-data) or as a
  JSON object of strings (RFC 8259); another media type is 415 (§15.5.16).
  A query string is refused: a token in a URL ends up in logs.
- Success is 200 with the PKCS#12 bundle as application/x-pkcs12 (RFC 7292
  Appendix D), `Cache-Control: no-store` (RFC 9111 §5.2.2.5), since it
  holds a private key, and an attachment named by the mail address in the
  certificates (RFC 6266). A `KMSError` from the redemption is 400 with its
  message as text/plain; any other failure is 500 with a generic text, and
  is logged.
- The client posts a form over HTTPS only (TLS 1.2 or newer), the server
  verified against a given CA file or else the system trust store; an
  untrusted server is named as such. It follows no redirect: a 3xx answer
  is an error naming where it points. A 4xx answer becomes a `KMSError`
  with the server's reason.
"""

from __future__ import annotations

import json
import re
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from cryptography import x509
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from kms.enrollment import Enrollment
from kms.errors import KMSError

MAX_BODY = 64 * 1024
FIELDS = ("token", "csr", "p12_password")
PKCS12_TYPE = "application/x-pkcs12"
# Seconds the client waits for the KMS, which issues two certificates.
CLIENT_TIMEOUT = 120
UNSAFE_IN_NAME = re.compile(r"[^A-Za-z0-9@._+-]")

Redeem = Callable[[str, bytes, bytes], Deferred[Enrollment]]

log = Logger()


class RequestRefused(Exception):
    """A request answered with a 4xx status and a short reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _json_fields(request: Request, body: bytes) -> Mapping[str, bytes]:
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise RequestRefused(400, "the body is not JSON") from None
    if not isinstance(document, dict):
        raise RequestRefused(400, "the JSON body must be an object")
    values = {name: document.get(name) for name in FIELDS}
    if not all(isinstance(value, str) for value in values.values()):
        raise RequestRefused(400, "token, csr and p12_password must be JSON strings")
    return {name: str(value).encode() for name, value in values.items()}


def _form_fields(request: Request, body: bytes) -> Mapping[str, bytes]:
    # twisted.web has already parsed the form body into request.args.
    args: Mapping[bytes, list[bytes]] = request.args or {}
    return {name: args[name.encode()][0] for name in FIELDS if args.get(name.encode())}


PARSERS: Mapping[bytes, Callable[[Request, bytes], Mapping[str, bytes]]] = {
    b"application/json": _json_fields,
    b"application/x-www-form-urlencoded": _form_fields,
    b"multipart/form-data": _form_fields,
}


class EnrollResource(Resource):
    """POST /kms/enroll: a token and a signing CSR in, a PKCS#12 bundle out."""

    isLeaf = True

    def __init__(self, redeem: Redeem) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # unannotated in Twisted
        self._redeem = redeem

    def render(self, request: Request) -> bytes | int:
        if request.method != b"POST":
            request.setHeader(b"Allow", b"POST")
            return _text(request, 405, "only POST is served here")
        try:
            token, csr, password = _fields(request)
        except RequestRefused as refusal:
            return _text(request, refusal.status, refusal.reason)
        gone = False

        def client_gone(_: object) -> None:
            nonlocal gone
            gone = True

        request.notifyFinish().addErrback(client_gone)

        def answer(done: Enrollment) -> None:
            if not gone:
                request.write(deliver(request, done))
                request.finish()

        def refuse(failure: Failure) -> None:
            if failure.check(KMSError):
                text = (400, str(failure.value))
            else:
                log.failure("KMS enrollment failed", failure)
                text = (500, "the KMS could not complete the enrollment")
            if not gone:
                request.write(_text(request, *text))
                request.finish()

        maybeDeferred(self._redeem, token, csr, password).addCallbacks(answer, refuse)
        return NOT_DONE_YET


def deliver(request: Request, done: Enrollment) -> bytes:
    """Answer `request` with the bundle of `done`, a download named by its mail address."""
    request.setResponseCode(200)
    request.setHeader(b"Content-Type", PKCS12_TYPE.encode())
    request.setHeader(b"Content-Disposition",
                      f'attachment; filename="{bundle_name(done.signing)}"'.encode("ascii"))
    request.setHeader(b"Cache-Control", b"no-store")
    return done.pkcs12


def bundle_name(certificate: x509.Certificate) -> str:
    """`<mail>.p12`, with anything unsafe in a file name replaced by `_`."""
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        mail = names.value.get_values_for_type(x509.RFC822Name)[0]
    except (x509.ExtensionNotFound, IndexError):
        mail = "bundle"
    return UNSAFE_IN_NAME.sub("_", mail) + ".p12"


def enroll_resource(redeem: Redeem, pages: Mapping[bytes, Resource] | None = None) -> Resource:
    """The /kms resource: POST /kms/enroll, and the KMS's `pages` beside it."""
    kms = Resource()
    kms.putChild(b"enroll", EnrollResource(redeem))
    for name, page in (pages or {}).items():
        kms.putChild(name, page)
    return kms


def _fields(request: Request) -> tuple[str, bytes, bytes]:
    if b"?" in (request.uri or b""):
        raise RequestRefused(400, "no query string: the token belongs in the body")
    declared = request.getHeader(b"Content-Length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
        raise RequestRefused(413, f"the body is over {MAX_BODY} bytes")
    assert request.content is not None
    body = request.content.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        raise RequestRefused(413, f"the body is over {MAX_BODY} bytes")
    media_type = (request.getHeader(b"Content-Type") or b"").split(b";")[0].strip().lower()
    parse = PARSERS.get(media_type)
    if parse is None:
        raise RequestRefused(415, "send a form or a JSON object")
    fields = parse(request, body)
    missing = [name for name in FIELDS if not fields.get(name)]
    if missing:
        raise RequestRefused(400, f"missing {', '.join(missing)}")
    try:
        token = fields["token"].decode("ascii")
    except UnicodeDecodeError:
        raise RequestRefused(400, "not a certdir token") from None
    return token, fields["csr"], fields["p12_password"]


def _text(request: Request, status: int, reason: str) -> bytes:
    request.setResponseCode(status)
    request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
    request.setHeader(b"Cache-Control", b"no-store")
    return reason.encode() + b"\n"


def post_enrollment(
    url: str, token: str, csr_pem: bytes, p12_password: bytes, ca_file: Path | None = None
) -> bytes:
    """Redeem `token` at the KMS endpoint `url`; the PKCS#12 bundle it returns."""
    context = _client_context(url, ca_file)
    body = urllib.parse.urlencode(
        {"token": token, "csr": csr_pem, "p12_password": p12_password}
    ).encode("ascii")
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": PKCS12_TYPE,
        },
    )
    opener = urllib.request.build_opener(
        urllib.request.HTTPSHandler(context=context), _NoRedirect()
    )
    try:
        with opener.open(request, timeout=CLIENT_TIMEOUT) as answer:
            media_type = answer.headers.get_content_type()
            bundle: bytes = answer.read()
    except urllib.error.HTTPError as error:
        with error:
            reason = error.read(1024).decode("utf-8", "replace").strip()
        if 300 <= error.code < 400:
            where = error.headers.get("Location", "nowhere")
            raise KMSError(f"the KMS at {url} redirects to {where}; "
                           "give that URL if you trust it") from None
        if 400 <= error.code < 500 and reason:
            raise KMSError(reason) from None
        raise KMSError(f"the KMS at {url} answered {error.code} {error.reason}") from None
    except (urllib.error.URLError, OSError) as error:
        cause = error.reason if isinstance(error, urllib.error.URLError) else error
        if isinstance(cause, ssl.SSLCertVerificationError):
            anchor = ca_file or "the system's trust store"
            raise KMSError(f"the KMS at {url} is not trusted by {anchor}: "
                           f"{cause.verify_message}") from None
        raise KMSError(f"cannot reach the KMS at {url}: {cause}") from None
    if media_type != PKCS12_TYPE:
        raise KMSError(f"the KMS at {url} answered {media_type}, not a PKCS#12 bundle")
    return bundle


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is answered to the caller, never followed with the token."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _client_context(url: str, ca_file: Path | None) -> ssl.SSLContext:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "http":
        raise KMSError(
            f"{url}: enrollment is served over https only, so the token and the bundle "
            "password never travel in clear; give the KMS's https:// URL"
        )
    if parts.scheme != "https":
        raise KMSError(f"{url!r} is not an https URL")
    try:
        context = ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as error:
        raise KMSError(f"cannot read CA certificates from {ca_file}: {error}") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context
