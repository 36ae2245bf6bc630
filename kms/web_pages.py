"""The token redemption page: /kms/redeem (an HTML form, no script).

- GET shows the form: the enrollment token, a PKCS#10 request (RFC 2986)
  for the signing key, pasted as PEM or uploaded as a PEM or DER file, and
  the PKCS#12 password twice. The page says how to make the request with
  `openssl req`, so the signing key never leaves the user's machine.
- POST carries the session's CSRF token like every form of the site
  (`ca.web.page`); it is a multipart/form-data body within the site's body
  limit, never a query string.
- The redemption is the one the API uses (`kms.web`, POST /kms/enroll): the
  same function, in one transaction with what it publishes and escrows.
- Success is the PKCS#12 download itself (application/x-pkcs12, RFC 7292
  Appendix D), `Cache-Control: no-store`, an attachment named by the mail
  address in the certificates (RFC 6266).
- A refusal (no token, no request, passwords that differ or are empty, or
  the KMS's own refusal: an unknown, used or expired token, a request the
  CA refuses) is the form again with status 400 and the reason; the token
  and pasted request are kept, the passwords never sent back. A refusal
  changes nothing: the KMS rolls its transaction back.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import Request

from ca.web.context import Web
from ca.web.page import Answer, Page, Visit, field
from ca.web.render import Templates
from kms.enrollment import Enrollment
from kms.errors import KMSError
from kms.web import Redeem, deliver

TEMPLATES = Path(__file__).parent / "templates"
FORM = "redeem.html"


def _raw(request: Request, name: bytes) -> bytes:
    args: Mapping[bytes, list[bytes]] = request.args or {}
    return (args.get(name) or [b""])[0]


class Redemption(Page):
    forms = True

    def __init__(self, web: Web, templates: Templates, redeem: Redeem) -> None:
        super().__init__(web, templates)
        self._redeem = redeem

    def get(self, request: Request, visit: Visit) -> Answer:
        return self.show(request, visit, FORM, token="", csr="", error=None)

    def post(self, request: Request, visit: Visit) -> Answer:
        token = field(request, b"token")
        pasted = _raw(request, b"csr").strip()
        csr = _raw(request, b"csr_file") or pasted
        password = _raw(request, b"p12_password")

        def refuse(reason: str) -> bytes:
            return self.show(request, visit, FORM, status=400, token=token,
                             csr=pasted.decode("utf-8", "replace"), error=reason)

        problem = next((reason for wrong, reason in (
            (not token, "Enter the enrollment token from your mail."),
            (not csr, "Paste your certificate request or choose its file."),
            (not password, "Choose a password for the PKCS#12 file."),
            (password != _raw(request, b"p12_password_again"),
             "The two passwords differ. Type the same password twice."),
        ) if wrong), None)
        if problem is not None:
            return refuse(problem)

        def refused(failure: Failure) -> bytes:
            failure.trap(KMSError)
            return refuse(f"The KMS refused the enrollment: {failure.value}")

        def answer(done: Enrollment) -> bytes:
            return deliver(request, done)

        redeemed: Deferred[Enrollment] = maybeDeferred(self._redeem, token, csr, password)
        return redeemed.addCallbacks(answer, refused)


def children(web: Web, redeem: Redeem) -> Mapping[bytes, Resource]:
    """The KMS's pages under /kms, by path segment."""
    return {b"redeem": Redemption(web, Templates(TEMPLATES), redeem)}
