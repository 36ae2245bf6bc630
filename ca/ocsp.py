"""The OCSP responder's core (RFC 6960 with the RFC 5019 profile): no I/O, no Twisted.

- A request is one DER OCSPRequest holding one Request (RFC 5019 §2.1.1);
  anything that does not parse, holds no request or several, or carries a
  critical extension we do not understand (RFC 6960 §4.4) is
  `malformedRequest`.
- The CertID (RFC 6960 §4.1.1) is matched on its hash algorithm (SHA-1,
  what most clients send, or SHA-256/384/512), issuerNameHash (the hash of
  the CA's subject DER) and issuerKeyHash (the hash of its subjectPublicKey
  BIT STRING contents) against the CA this data directory signs with. Any
  other issuer, a parent CA of a sub-CA included (we hold no key for it),
  is `unauthorized` (RFC 6960 §2.3).
- The serial's status comes from `ca.store` (table ca_certificates):
  `valid` is good; `revoked` is revoked with its time and reason; `hold`
  is revoked with reason certificateHold (RFC 5280 §5.3.1) and good again
  once released; a serial this CA did not issue is unknown (RFC 6960
  §2.2).
- A response (RFC 6960 §4.2.1, RFC 5019 §2.2) names its responder by key
  hash, carries thisUpdate (now) and nextUpdate (`response_hours` later),
  the certificates a client needs to reach its trust anchor (the
  delegated responder's and the CA chain up to, not including, the root),
  and is signed with the signer key's hash (`ca.keys.signature_hash`:
  SHA-256 for RSA and P-256, SHA-384 for P-384, pure Ed25519).
- A nonce (id-pkix-ocsp-nonce, RFC 8954) of 1 to 32 octets is echoed, and
  such a response is signed for that request alone; a longer one is
  ignored (RFC 8954 §2.1 allows answering without it).
- Answers without a nonce are kept per (CertID hash, serial) and reused
  while the status they were signed for is unchanged and less than half
  of their life has passed (RFC 5019 §4: pre-produced responses are
  refreshed before nextUpdate). A new signer drops them all.
- Errors are unsigned responses with only a status (RFC 6960 §4.2.1):
  malformedRequest, unauthorized, tryLater, internalError.
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp

from ca.config import OCSPConfig
from ca.keys import PrivateKey, signature_hash, subject_public_key
from ca.store import StatusRecord, Store

CERT_ID_HASHES: Mapping[str, Callable[[], hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
NONCE_OCTETS = range(1, 33)
CACHE_ENTRIES = 100_000

ResponseStatus = ocsp.OCSPResponseStatus
UNSUCCESSFUL: Mapping[ocsp.OCSPResponseStatus, bytes] = {
    status: ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(Encoding.DER)
    for status in (ResponseStatus.MALFORMED_REQUEST, ResponseStatus.INTERNAL_ERROR,
                   ResponseStatus.TRY_LATER, ResponseStatus.UNAUTHORIZED)
}


class Refusal(Exception):
    """A request answered with an unsuccessful response status."""

    def __init__(self, status: ocsp.OCSPResponseStatus, why: str) -> None:
        super().__init__(why)
        self.status = status
        self.why = why

    @property
    def der(self) -> bytes:
        return UNSUCCESSFUL[self.status]


@dataclass(frozen=True, slots=True)
class Question:
    """One parsed request: its CertID and its nonce."""
    algorithm: str
    name_hash: bytes
    key_hash: bytes
    serial: int
    nonce: bytes | None


def _digest(algorithm: str, data: bytes) -> bytes:
    digest = hashes.Hash(CERT_ID_HASHES[algorithm]())
    digest.update(data)
    return digest.finalize()


def _nonce(request: ocsp.OCSPRequest) -> bytes | None:
    nonce: bytes | None = None
    for extension in request.extensions:
        if isinstance(extension.value, x509.OCSPNonce):
            nonce = extension.value.nonce
        elif extension.critical:
            raise Refusal(ResponseStatus.MALFORMED_REQUEST,
                          f"critical request extension {extension.oid.dotted_string}"
                          " is not supported")
    return nonce if nonce is not None and len(nonce) in NONCE_OCTETS else None


def parse(der: bytes) -> Question:
    if not der:
        raise Refusal(ResponseStatus.MALFORMED_REQUEST, "no request")
    try:
        request = ocsp.load_der_ocsp_request(der)
        algorithm = request.hash_algorithm.name
        nonce = _nonce(request)
        question = Question(algorithm, request.issuer_name_hash, request.issuer_key_hash,
                            request.serial_number, nonce)
    except NotImplementedError:
        raise Refusal(ResponseStatus.MALFORMED_REQUEST,
                      "one request per OCSPRequest (RFC 5019 §2.1.1)") from None
    except (ValueError, UnsupportedAlgorithm) as e:
        raise Refusal(ResponseStatus.MALFORMED_REQUEST, f"not an OCSP request: {e}") from None
    if algorithm not in CERT_ID_HASHES:
        raise Refusal(ResponseStatus.MALFORMED_REQUEST, f"CertID hash {algorithm} is not supported")
    return question


@dataclass(frozen=True, slots=True)
class Status:
    kind: ocsp.OCSPCertStatus
    revoked_at: dt.datetime | None = None
    reason: x509.ReasonFlags | None = None


UNKNOWN = Status(ocsp.OCSPCertStatus.UNKNOWN)

_STATUSES: Mapping[str, Callable[[StatusRecord], Status]] = {
    "valid": lambda _: Status(ocsp.OCSPCertStatus.GOOD),
    "revoked": lambda row: Status(ocsp.OCSPCertStatus.REVOKED, row.revoked_at,
                                  x509.ReasonFlags(row.reason or "unspecified")),
    "hold": lambda row: Status(ocsp.OCSPCertStatus.REVOKED, row.revoked_at,
                               x509.ReasonFlags.certificate_hold),
}


def status_of(store: Store, serial: int, issuer: str) -> Status:
    """What the store says of `serial` issued by `issuer` (RFC 4514 string)."""
    row = store.status(serial)
    if row is None or row.issuer != issuer:
        return UNKNOWN
    read = _STATUSES.get(row.status)
    return UNKNOWN if read is None else read(row)


@dataclass(frozen=True, slots=True)
class Signer:
    """Who signs responses: a delegated responder certificate and its key, or the CA."""
    certificate: x509.Certificate
    key: PrivateKey
    # Sent in every response so a client holding only the root can verify it.
    certificates: tuple[x509.Certificate, ...]

    def valid(self, now: dt.datetime) -> bool:
        return (self.certificate.not_valid_before_utc <= now
                < self.certificate.not_valid_after_utc)


@dataclass(frozen=True, slots=True)
class Answer:
    der: bytes
    status: Status
    this_update: dt.datetime
    next_update: dt.datetime

    def fresh(self, now: dt.datetime) -> bool:
        return now < self.this_update + (self.next_update - self.this_update) / 2


def sign(signer: Signer, question: Question, status: Status, now: dt.datetime,
         hours: int) -> Answer:
    """A signed response to `question` (slow: run it off the reactor)."""
    this_update = now.replace(microsecond=0)
    next_update = this_update + dt.timedelta(hours=hours)
    builder = (ocsp.OCSPResponseBuilder()
               .add_response_by_hash(question.name_hash, question.key_hash, question.serial,
                                     CERT_ID_HASHES[question.algorithm](), status.kind,
                                     this_update, next_update, status.revoked_at,
                                     status.reason)
               .responder_id(ocsp.OCSPResponderEncoding.HASH, signer.certificate))
    if signer.certificates:
        builder = builder.certificates(list(signer.certificates))
    if question.nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(question.nonce), critical=False)
    response = builder.sign(signer.key, signature_hash(signer.key))
    return Answer(response.public_bytes(Encoding.DER), status, this_update, next_update)


def cert_ids(ca: x509.Certificate) -> frozenset[tuple[str, bytes, bytes]]:
    """(hash, issuerNameHash, issuerKeyHash) of `ca` under every CertID hash."""
    name = ca.subject.public_bytes()
    key = subject_public_key(ca.public_key())  # type: ignore[arg-type]  # a CA's key type
    return frozenset((algorithm, _digest(algorithm, name), _digest(algorithm, key))
                     for algorithm in CERT_ID_HASHES)


class Responder:
    """The CA's responder: matches requests to the CA, holds the signer and the cache.

    Used from one thread (the reactor); `sign` runs elsewhere on what it is given."""

    def __init__(self, ca: x509.Certificate, config: OCSPConfig,
                 signer: Signer | None = None, cache_entries: int = CACHE_ENTRIES) -> None:
        self.ca = ca
        self.config = config
        self.issuer = ca.subject.rfc4514_string()
        self._ids = cert_ids(ca)
        self._signer = signer
        self._cache: OrderedDict[tuple[str, int], Answer] = OrderedDict()
        self._cache_entries = cache_entries

    def use(self, signer: Signer) -> None:
        self._signer = signer
        self._cache.clear()

    @property
    def signer(self) -> Signer | None:
        return self._signer

    def ready(self, now: dt.datetime) -> Signer:
        signer = self._signer
        if signer is None or not signer.valid(now):
            raise Refusal(ResponseStatus.TRY_LATER, "the responder has no valid certificate yet")
        return signer

    def check(self, question: Question) -> None:
        if (question.algorithm, question.name_hash, question.key_hash) not in self._ids:
            raise Refusal(ResponseStatus.UNAUTHORIZED, "not a CA this responder answers for")

    def status(self, store: Store, question: Question) -> Status:
        return status_of(store, question.serial, self.issuer)

    def cached(self, question: Question, status: Status, now: dt.datetime) -> Answer | None:
        if question.nonce is not None:
            return None
        answer = self._cache.get((question.algorithm, question.serial))
        if answer is None or answer.status != status or not answer.fresh(now):
            return None
        return answer

    def keep(self, question: Question, answer: Answer, signer: Signer) -> None:
        """Cache `answer`, unless it has a nonce or its signer was replaced meanwhile."""
        if question.nonce is not None or signer is not self._signer:
            return
        key = (question.algorithm, question.serial)
        self._cache[key] = answer
        self._cache.move_to_end(key)
        while len(self._cache) > self._cache_entries:
            self._cache.popitem(last=False)

    def sign(self, signer: Signer, question: Question, status: Status,
             now: dt.datetime) -> Answer:
        return sign(signer, question, status, now, self.config.response_hours)
