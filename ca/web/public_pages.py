"""The public pages: home, the CA certificates, finding a person's certificate.

- Anonymous, read-only, on the reactor thread (indexed look-ups).
- `/ca` lists every CA of the chain (the signing CA first, the root last)
  with its subject, SHA-256 fingerprint, validity and its downloads as
  served at the root by `ca.web.downloads` (`<slug>.crt` DER, `.pem`,
  `.p7c` certs-only PKCS#7, and `chain.pem`), the signing CA's full and
  delta CRLs (`<slug>.crl`, `<slug>-delta.crl`) with the next update the
  CA has recorded (`ca.store`), and install notes for browsers and mail
  clients.
- `/people?mail=...` finds the entries with that mail address (at most
  `FOUND` of them, through the mail index) and lists every
  userCertificate;binary value of each (RFC 4523 §2.1), whoever issued
  it, with subject, issuer, serial and validity. A mail address is not a
  secret, so the search is a GET.
- `/people/<mail>/<sha256>.crt` (DER, application/pkix-cert, RFC 2585
  §4.3) and `.pem` download one of those certificates, named by the
  SHA-256 of its DER: only a value found on such an entry is served, the
  path never reaches a file system.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from twisted.web.server import Request

from ca.authority import common_name, slug
from ca.publish import USER_CERTIFICATE
from ca.store import Store
from ca.web.address_book import by_mail
from ca.web.context import Web
from ca.web.page import Answer, Page, Visit, field, rest
from ca.web.refusal import Refused
from ca.web.render import Templates
from directory.entry import resolve

FOUND = 5
MAX_MAIL = 254  # RFC 5321 §4.5.3.1.3, a path of 256 octets with its brackets
_DOWNLOAD = re.compile(r"([0-9a-f]{64})\.(crt|pem)")
FORMATS = {"crt": (b"application/pkix-cert", Encoding.DER),
           "pem": (b"application/x-pem-file", Encoding.PEM)}


class Home(Page):
    def get(self, request: Request, visit: Visit) -> Answer:
        return self.show(request, visit, "index.html",
                         ca_name=common_name(self.web.authority.certificate.subject))


class NotFound(Page):
    """Any path nothing else serves, with any method: 404."""

    subpaths = True

    def render(self, request: Request) -> int:
        return self.render_GET(request)

    def get(self, request: Request, visit: Visit) -> Answer:
        raise Refused(404, "There is no such page.")


@dataclass(frozen=True, slots=True)
class CAView:
    certificate: x509.Certificate
    slug: str
    name: str


class CACertificates(Page):
    def get(self, request: Request, visit: Visit) -> Answer:
        authority = self.web.authority
        self.web.dsa.refresh()
        with self.web.dsa.backend.reading() as records:
            store = Store(records)
            full_next, delta_next = store.next_update(delta=False), store.next_update(delta=True)
        cas = [CAView(c, slug(c), common_name(c.subject)) for c in authority.chain]
        return self.show(request, visit, "ca.html", cas=cas, signing=authority.slug,
                         full_next=full_next, delta_next=delta_next)


@dataclass(frozen=True, slots=True)
class Held:
    """One userCertificate;binary value of an entry, as the page shows it."""
    digest: str
    certificate: x509.Certificate | None


@dataclass(frozen=True, slots=True)
class Person:
    dn: str
    name: str
    certificates: tuple[Held, ...]


def _held(der: bytes) -> Held:
    digest = hashlib.sha256(der).hexdigest()
    try:
        return Held(digest, x509.load_der_x509_certificate(der))
    except ValueError:
        return Held(digest, None)


def _mail(text: str) -> str:
    if len(text) > MAX_MAIL or "@" not in text or any(c.isspace() for c in text):
        raise Refused(400, "That is not a mail address.")
    return text


class People(Page):
    subpaths = True

    def __init__(self, web: Web, templates: Templates) -> None:
        super().__init__(web, templates)
        # ;binary is a transfer option (RFC 4522): the values are stored under the type.
        self._values = resolve(web.dsa.schema, USER_CERTIFICATE).key

    def get(self, request: Request, visit: Visit) -> Answer:
        path = rest(request)
        if len(path) == 2:
            return self._download(request, path[0], path[1])
        if path:
            raise Refused(404, "There is no such page.")
        wanted = field(request, b"mail")
        if not wanted:
            return self.show(request, visit, "people.html", mail="", people=None)
        found = by_mail(self.web.dsa, _mail(wanted), FOUND)
        people = [Person(str(e.dn), (e.first("cn") or b"").decode(errors="replace"),
                         tuple(_held(v) for v in e.get(self._values))) for e in found]
        return self.show(request, visit, "people.html", mail=wanted, people=people,
                         limit=FOUND)

    def _download(self, request: Request, mail: bytes, name: bytes) -> bytes:
        chosen = _DOWNLOAD.fullmatch(name.decode(errors="replace"))
        if chosen is None:
            raise Refused(404, "There is no such certificate.")
        digest, form = chosen.groups()
        for entry in by_mail(self.web.dsa, _mail(mail.decode(errors="replace")), FOUND):
            for der in entry.get(self._values):
                if hashlib.sha256(der).hexdigest() == digest:
                    return certificate_file(request, der, form, digest[:16])
        raise Refused(404, "There is no such certificate.")


def certificate_file(request: Request, der: bytes, form: str, stem: str) -> bytes:
    media, encoding = FORMATS[form]
    try:
        body: bytes = x509.load_der_x509_certificate(der).public_bytes(encoding)
    except ValueError:
        raise Refused(404, "That value is not a readable certificate.") from None
    request.setHeader(b"Content-Type", media)
    request.setHeader(b"Content-Disposition",
                      f'attachment; filename="{stem}.{form}"'.encode())
    return body
