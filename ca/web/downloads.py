"""CA certificates and CRLs over HTTP, at the names AIA and CDP URLs use.

- Every CA of the chain (`Authority.chain`) is served as `<slug>.crt` (DER,
  `application/pkix-cert`, RFC 2585 §4.1, what AIA caIssuers names, RFC
  5280 §4.2.2.1), `<slug>.pem` (`application/x-pem-file`) and `<slug>.p7c`
  (a certs-only PKCS#7 SignedData of that CA and the CAs above it, RFC 5652
  §5 with no signers, `application/pkcs7-mime`, RFC 2585 §4.1); the whole
  chain as `chain.pem` and the root as `ca.pem`, as in the public folder.
- The signing CA's newest full and delta CRLs (`ca_crls`) are `<slug>.crl`
  and `<slug>-delta.crl` (DER, `application/pkix-crl`, what the CRL
  distribution points and Freshest CRL name, §4.2.1.13, §4.2.1.15), and
  `.crl.pem`. A CA above it is served the CRLs installed with `certdir ca
  install-crl` (`ca_issuer_crls`). CRLs come from the database on every
  request, after `DSA.refresh`, so a `certdir ca revoke` or `ca crl` run by
  another process is served at once; never from files.
- Names are looked up in a table built from the chain, never mapped to a
  file path: anything else (`..`, encoded slashes, backslashes, NUL, a
  second path segment) is not in the table. Unknown names go to `unknown`
  (404 on https, the redirect to https on plain http).
- GET and HEAD only (405 with Allow otherwise, RFC 9110 §15.5.6). Every
  answer carries a strong ETag (a hash of the bytes), Last-Modified (the
  CRL's thisUpdate, the certificate's notBefore) and Cache-Control public
  with a max-age that ends no later than the CRL's nextUpdate (a day for
  certificates). If-None-Match, else If-Modified-Since, answers 304
  (RFC 9110 §13.1.2, §13.1.3, §13.2.2).
"""

from __future__ import annotations

import calendar
import datetime as dt
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7
from twisted.web.http import datetimeToString, stringToDatetime
from twisted.web.resource import Resource
from twisted.web.server import Request

from ca.authority import slug
from ca.store import CRLRecord, Store
from ca.web.context import Web

PKIX_CERT = b"application/pkix-cert"
PKIX_CRL = b"application/pkix-crl"
PEM = b"application/x-pem-file"
PKCS7 = b"application/pkcs7-mime"
METHODS = (b"GET", b"HEAD")
CERTIFICATE_MAX_AGE = 24 * 3600


@dataclass(frozen=True, slots=True)
class Download:
    body: bytes
    content_type: bytes
    modified: int  # seconds since the epoch
    expires: dt.datetime | None  # a CRL's nextUpdate; None for certificates
    etag: bytes
    last_modified: bytes  # the header, an HTTP date (RFC 9110 §5.6.7)

    @classmethod
    def of(cls, body: bytes, content_type: bytes, modified: dt.datetime,
           expires: dt.datetime | None = None) -> Download:
        epoch = calendar.timegm(modified.utctimetuple())
        return cls(body, content_type, epoch, expires,
                   b'"' + hashlib.sha256(body).hexdigest()[:32].encode() + b'"',
                   datetimeToString(epoch))

    def max_age(self, now: dt.datetime) -> int:
        if self.expires is None:
            return CERTIFICATE_MAX_AGE
        return max(0, int((self.expires - now).total_seconds()))


def _pem(certificates: tuple[x509.Certificate, ...]) -> bytes:
    return b"".join(c.public_bytes(Encoding.PEM) for c in certificates)


def _certificates(chain: tuple[x509.Certificate, ...]) -> dict[bytes, Download]:
    """The fixed downloads: every CA certificate in each format, the chain."""
    found: dict[bytes, Download] = {}
    for at, certificate in enumerate(chain):
        name, since = slug(certificate).encode(), certificate.not_valid_before_utc
        found[name + b".crt"] = Download.of(certificate.public_bytes(Encoding.DER), PKIX_CERT,
                                            since)
        found[name + b".pem"] = Download.of(_pem((certificate,)), PEM, since)
        found[name + b".p7c"] = Download.of(
            pkcs7.serialize_certificates(list(chain[at:]), Encoding.DER), PKCS7, since)
    newest = max(c.not_valid_before_utc for c in chain)
    found[b"chain.pem"] = Download.of(_pem(chain), PEM, newest)
    found[b"ca.pem"] = Download.of(_pem(chain[-1:]), PEM, chain[-1].not_valid_before_utc)
    return found


@dataclass(frozen=True, slots=True)
class CRLSource:
    """Where one CRL name's rows are: the newest number, then the row."""
    newest: Callable[[Store], int | None]
    row: Callable[[Store, int], CRLRecord]
    pem: bool


def _own(delta: bool, pem: bool) -> CRLSource:
    return CRLSource(lambda store: store.newest_crl(delta), lambda store, n: store.crl(n), pem)


def _issuer(issuer: str, delta: bool, pem: bool) -> CRLSource:
    return CRLSource(lambda store: store.newest_issuer_crl(issuer, delta),
                     lambda store, n: store.issuer_crl(issuer, n), pem)


CRL_NAMES: tuple[tuple[bytes, bool, bool], ...] = (
    # (suffix, delta, PEM)
    (b".crl", False, False), (b"-delta.crl", True, False),
    (b".crl.pem", False, True), (b"-delta.crl.pem", True, True),
)


def _crl_sources(chain: tuple[x509.Certificate, ...]) -> dict[bytes, CRLSource]:
    sources: dict[bytes, CRLSource] = {}
    for at, certificate in enumerate(chain):
        name, issuer = slug(certificate).encode(), certificate.subject.rfc4514_string()
        for suffix, delta, pem in CRL_NAMES:
            sources[name + suffix] = (_own(delta, pem) if at == 0
                                      else _issuer(issuer, delta, pem))
    return sources


def _crl_download(record: CRLRecord, pem: bool) -> Download:
    body = (x509.load_der_x509_crl(record.der).public_bytes(Encoding.PEM) if pem
            else record.der)
    return Download.of(body, PEM if pem else PKIX_CRL, record.this_update, record.next_update)


def _not_modified(request: Request, download: Download) -> bool:
    """RFC 9110 §13.2.2: If-None-Match decides when present, else If-Modified-Since."""
    if_none_match = request.getHeader(b"if-none-match")
    if if_none_match is not None:
        tags = {tag.strip().removeprefix(b"W/") for tag in if_none_match.split(b",")}
        return b"*" in tags or download.etag in tags
    if_modified_since = request.getHeader(b"if-modified-since")
    if if_modified_since is None:
        return False
    try:
        since: int = stringToDatetime(if_modified_since)
    except ValueError:
        return False  # §13.1.3: an invalid date is ignored
    return download.modified <= since


def _text(request: Request, code: int, text: str) -> bytes:
    request.setResponseCode(code)
    request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
    return text.encode() + b"\n"


class Served(Resource):
    """One download, or the answer saying why there is none."""

    isLeaf = True

    def __init__(self, download: Download | None, missing: str) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # unannotated in Twisted
        self._download = download
        self._missing = missing

    def render(self, request: Request) -> bytes:
        if request.method not in METHODS:
            request.setHeader(b"Allow", b", ".join(METHODS))
            return _text(request, 405, "only GET and HEAD are served here")
        download = self._download
        if download is None or request.postpath:
            return _text(request, 404, self._missing)
        request.setHeader(b"ETag", download.etag)
        request.setHeader(b"Last-Modified", download.last_modified)
        max_age = download.max_age(dt.datetime.now(dt.UTC))
        request.setHeader(b"Cache-Control", f"public, max-age={max_age}".encode())
        if _not_modified(request, download):
            request.setResponseCode(304)
            return b""
        request.setHeader(b"Content-Type", download.content_type)
        return download.body


class Downloads(Resource):
    """The site root's fallback: CA certificates and CRLs by name."""

    def __init__(self, web: Web, unknown: Resource) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # unannotated in Twisted
        self._web = web
        self._unknown = unknown
        self._certificates: Mapping[bytes, Download] = _certificates(web.authority.chain)
        self._crls: Mapping[bytes, CRLSource] = _crl_sources(web.authority.chain)
        # The last answer per CRL name, by CRL number: a 10,000-entry CRL is
        # read and hashed once, not on every download.
        self._cached: dict[bytes, tuple[int, Download]] = {}

    def getChild(self, path: bytes, request: Request) -> Resource:
        certificate = self._certificates.get(path)
        if certificate is not None:
            return Served(certificate, f"only {path.decode()} itself is served")
        source = self._crls.get(path)
        if source is None:
            return self._unknown
        return Served(self._crl(path, source), f"no CRL {path.decode()} is published here")

    def _crl(self, name: bytes, source: CRLSource) -> Download | None:
        dsa = self._web.dsa
        dsa.refresh()
        with dsa.backend.reading() as records:
            store = Store(records)
            number = source.newest(store)
            if number is None:
                return None
            cached = self._cached.get(name)
            if cached is not None and cached[0] == number:
                return cached[1]
            row = source.row(store, number)
        download = _crl_download(row, source.pem)
        self._cached[name] = (number, download)
        return download
