"""Requests, decisions and issuance, in the caller's transaction.

- A request is checked before anything is recorded: the PKCS#10 signature
  verifies, its hash is SHA-256 or stronger, the key type is allowed, the
  profile exists, the holder entry (when given) exists. A refused input
  leaves nothing behind.
- The subject and SANs come from the profile and the holder's directory
  entry, never blindly from the request (`ca.builder`).
- The request is recorded, the profile's policy module decides; an issued
  certificate is recorded (serial, holder, profile, DER) and published
  into the holder's entry in the same transaction: both or neither.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ca.authority import Authority
from ca.builder import (
    build_certificate,
    check_key_type,
    random_serial,
    sans_for,
    subject_for,
)
from ca.csr import load_csr, requested_dns_names
from ca.errors import CAError
from ca.keys import PublicKey
from ca.policy import Decision, Origin, Submission, decide
from ca.profiles import Profile, profile
from ca.publish import der, publish_certificate
from ca.store import Store
from directory.entry import Entry
from directory.protocol.results import LDAPError
from directory.publisher import DirectoryWriter


@dataclass(frozen=True, slots=True)
class Outcome:
    request: int
    decision: Decision
    why: str
    certificate: x509.Certificate | None = None


def _holder(writer: DirectoryWriter, holder: str | None) -> Entry | None:
    if holder is None:
        return None
    try:
        return writer.require(writer.dn(holder))
    except LDAPError as e:
        raise CAError(f"the subject is not in the directory: {e.message}") from None


def submit(authority: Authority, writer: DirectoryWriter, csr_data: bytes, chosen: Profile,
           holder: str | None, origin: Origin, now: dt.datetime) -> Outcome:
    csr = load_csr(csr_data)
    entry = _holder(writer, holder)
    contents = _contents(chosen, csr, entry)  # refuses bad input before recording anything
    policy, decision, why = decide(authority.config.policies,
                                   Submission(chosen.name, holder, origin))
    store = Store(writer.sql)
    request = store.add_request(csr=csr.public_bytes(Encoding.DER), profile=chosen.name,
                                entry=None if entry is None else str(entry.dn),
                                policy=policy, now=now)
    if decision is Decision.ISSUE:
        return Outcome(request, decision, why,
                       _issue(authority, writer, request, chosen, contents, origin.value, now))
    if decision is Decision.DENY:
        store.decide(request, "denied", "policy", now, why)
    return Outcome(request, decision, why)


def issue_request(authority: Authority, writer: DirectoryWriter, request: int, by: str,
                  now: dt.datetime) -> x509.Certificate:
    """Issue a pending request, as recorded, on an officer's word."""
    record = Store(writer.sql).request(request)
    if record.status != "pending":
        raise CAError(f"request {request} is {record.status}, not pending")
    chosen = profile(authority.config.profiles, record.profile)
    contents = _contents(chosen, load_csr(record.csr), _holder(writer, record.entry))
    return _issue(authority, writer, request, chosen, contents, by, now)


def _issue(authority: Authority, writer: DirectoryWriter, request: int, chosen: Profile,
           contents: _Contents, by: str, now: dt.datetime) -> x509.Certificate:
    store = Store(writer.sql)
    certificate = build_certificate(
        profile=chosen, subject=contents.subject, public_key=contents.public_key,
        sans=contents.sans, issuer=authority.certificate, issuer_key=authority.key,
        urls=authority.urls, serial=random_serial(), now=now)
    holder = contents.holder
    store.record(serial=certificate.serial_number,
                 issuer=authority.certificate.subject.rfc4514_string(),
                 subject=certificate.subject.rfc4514_string(), entry=holder,
                 profile=chosen.name, not_before=certificate.not_valid_before_utc,
                 not_after=certificate.not_valid_after_utc, der=der(certificate),
                 request=request)
    if holder is not None:
        try:
            publish_certificate(writer, holder, chosen, certificate)
        except LDAPError as e:
            raise CAError(f"cannot publish to {holder}: {e.message}") from None
    store.decide(request, "issued", by, now, serial=certificate.serial_number)
    return certificate


def deny_request(writer: DirectoryWriter, request: int, by: str, why: str,
                 now: dt.datetime) -> None:
    store = Store(writer.sql)
    record = store.request(request)
    if record.status != "pending":
        raise CAError(f"request {request} is {record.status}, not pending")
    store.decide(request, "denied", by, now, why)


@dataclass(frozen=True, slots=True)
class _Contents:
    """What a certificate for a request will say, from the profile and the entry."""
    subject: x509.Name
    sans: list[x509.GeneralName]
    public_key: PublicKey
    holder: str | None


def _contents(chosen: Profile, csr: x509.CertificateSigningRequest,
              entry: Entry | None) -> _Contents:
    attributes = None if entry is None else entry.attributes
    subject = subject_for(chosen, csr.subject, attributes, dns_names=requested_dns_names(csr))
    sans = sans_for(chosen, csr, attributes)
    public_key = csr.public_key()
    check_key_type(chosen, public_key)
    return _Contents(subject, sans, public_key,  # type: ignore[arg-type]
                     None if entry is None else str(entry.dn))
