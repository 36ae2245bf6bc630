"""Requests, decisions and issuance: signed before the write, recorded in it.

- Issuing is two steps, so that no signature is made inside the directory's
  single write transaction (DESIGN.md, "Concurrency"; every LDAP add or
  modify queued behind that transaction would wait for it):
  - `prepare`, outside any transaction (on a bounded pool in the server,
    `ca.pool.Slow`): the PKCS#10 signature verifies, its hash is SHA-256 or
    stronger, the key type is allowed; the subject and SANs come from the
    profile and a copy of the holder's entry read beforehand
    (`holder_entry`, as last committed), never blindly from the request
    (`ca.builder`); the profile's policy module decides; on "issue" a random
    159-bit serial is picked and the certificate signed. It changes nothing.
  - `commit`, inside the caller's transaction, database writes only: the
    holder entry is read again and the issue refused when it is gone or no
    longer gives the subject and SANs the certificate was built from; then
    the request, the decision and the certificate (serial, holder, profile,
    DER) are recorded and the certificate is published into the holder's
    entry: all of it or, on any refusal, nothing.
- A refused input leaves nothing behind: `prepare` refuses before anything is
  recorded.
- A certificate signed by `prepare` whose commit is refused or rolled back is
  discarded: it lives only in this process's memory and is never recorded,
  published, returned or logged, so no relying party can ever see it.
- Approving a pending request (`prepare_approval`) signs the request as it
  was recorded; its commit refuses when the request is no longer pending
  (another officer decided it meanwhile).
- `submit` and `issue_request` chain the steps for the running server: the
  reads on the reactor thread (a few rows), `prepare` on the pool, `commit`
  through the single writer (`DSA.write`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

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
from ca.store import RequestRecord, Store
from directory.backend import Transaction
from directory.deferreds import from_coroutine
from directory.dsa import DSA
from directory.entry import Entry
from directory.protocol.results import LDAPError
from directory.publisher import DirectoryWriter

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred

    from ca.pool import Slow


@dataclass(frozen=True, slots=True)
class Outcome:
    request: int
    decision: Decision
    why: str
    certificate: x509.Certificate | None = None


@dataclass(frozen=True, slots=True)
class _Contents:
    """What a certificate for a request says, from the profile and the entry."""
    subject: x509.Name
    sans: tuple[x509.GeneralName, ...]
    public_key: PublicKey
    holder: str | None

    def same_names(self, other: _Contents) -> bool:
        return (self.subject, self.sans, self.holder) == (other.subject, other.sans,
                                                          other.holder)


@dataclass(frozen=True, slots=True)
class Prepared:
    """A request checked and decided, and its certificate signed when the
    decision is to issue; nothing of it is recorded yet (`commit`)."""
    profile: Profile
    csr: x509.CertificateSigningRequest
    contents: _Contents
    policy: str
    decision: Decision
    why: str
    by: str
    certificate: x509.Certificate | None
    # The pending request being approved; None for a new submission.
    request: int | None = None

    @property
    def holder(self) -> str | None:
        return self.contents.holder


def holder_entry(dsa: DSA, holder: str | None) -> Entry | None:
    """The holder's entry as committed now (`Backend.get`)."""
    if holder is None:
        return None
    try:
        dn = dsa.parse_dn(holder)
    except LDAPError as e:
        raise CAError(f"the subject is not in the directory: {e.message}") from None
    entry = dsa.backend.get(dn)
    if entry is None:
        raise CAError(f"the subject is not in the directory: no entry {dn}")
    return entry


def pending_request(dsa: DSA, request: int) -> tuple[RequestRecord, Entry | None]:
    """A pending request and its holder's entry, as last committed."""
    with dsa.backend.reading() as records:
        record = Store(records).request(request)
    _check_pending(record)
    return record, holder_entry(dsa, record.entry)


def prepare(authority: Authority, csr_data: bytes, chosen: Profile, entry: Entry | None,
            origin: Origin, now: dt.datetime) -> Prepared:
    """Check, decide and (when issued) sign a new request. Slow; no database."""
    csr = load_csr(csr_data)
    contents = _contents(chosen, csr, entry)
    policy, decision, why = decide(authority.config.policies,
                                   Submission(chosen.name, contents.holder, origin))
    certificate = (_sign(authority, chosen, contents, now) if decision is Decision.ISSUE
                   else None)
    return Prepared(chosen, csr, contents, policy, decision, why, origin.value, certificate)


def prepare_approval(authority: Authority, record: RequestRecord, entry: Entry | None,
                     by: str, now: dt.datetime) -> Prepared:
    """Sign a pending request, as recorded, on an officer's word. Slow; no database."""
    _check_pending(record)
    chosen = profile(authority.config.profiles, record.profile)
    csr = load_csr(record.csr)
    contents = _contents(chosen, csr, entry)
    return Prepared(chosen, csr, contents, record.policy, Decision.ISSUE, f"approved by {by}",
                    by, _sign(authority, chosen, contents, now), record.id)


def commit(writer: DirectoryWriter, prepared: Prepared, now: dt.datetime) -> Outcome:
    """Record (and publish) what `prepare` made, in the caller's transaction."""
    store = Store(writer.records)
    _check_holder(writer, prepared)
    request = prepared.request
    if request is None:
        request = store.add_request(csr=prepared.csr.public_bytes(Encoding.DER),
                                    profile=prepared.profile.name, entry=prepared.holder,
                                    policy=prepared.policy, now=now)
    else:
        _check_pending(store.request(request))
    certificate = prepared.certificate
    if certificate is not None:
        _record(writer, store, request, prepared, certificate)
        store.decide(request, "issued", prepared.by, now, serial=certificate.serial_number)
    elif prepared.decision is Decision.DENY:
        store.decide(request, "denied", "policy", now, prepared.why)
    return Outcome(request, prepared.decision, prepared.why, certificate)


def submit(authority: Authority, dsa: DSA, slow: Slow, csr_data: bytes, chosen: Profile,
           holder: str | None, origin: Origin) -> Deferred[Outcome]:
    """A new request, in the server: read, sign on `slow`, commit through the writer."""
    async def steps() -> Outcome:
        dsa.refresh()
        entry = holder_entry(dsa, holder)
        now = dt.datetime.now(dt.UTC)
        prepared = await slow(prepare, authority, csr_data, chosen, entry, origin, now)
        return await dsa.write(_committing(dsa, authority, prepared, now))

    return from_coroutine(steps())


def issue_request(authority: Authority, dsa: DSA, slow: Slow, request: int,
                  by: str) -> Deferred[x509.Certificate]:
    """Issue a pending request on an officer's word, in the server."""
    async def steps() -> x509.Certificate:
        dsa.refresh()
        record, entry = pending_request(dsa, request)
        now = dt.datetime.now(dt.UTC)
        prepared = await slow(prepare_approval, authority, record, entry, by, now)
        outcome = await dsa.write(_committing(dsa, authority, prepared, now))
        assert outcome.certificate is not None
        return outcome.certificate

    return from_coroutine(steps())


def deny_request(writer: DirectoryWriter, request: int, by: str, why: str,
                 now: dt.datetime) -> None:
    store = Store(writer.records)
    _check_pending(store.request(request))
    store.decide(request, "denied", by, now, why)


def _committing(dsa: DSA, authority: Authority, prepared: Prepared,
                now: dt.datetime) -> Callable[[Transaction], Outcome]:
    def job(txn: Transaction) -> Outcome:
        return commit(DirectoryWriter(dsa, txn, dsa.parse_dn(authority.entry_dn)), prepared,
                      now)

    return job


def _check_pending(record: RequestRecord) -> None:
    if record.status != "pending":
        raise CAError(f"request {record.id} is {record.status}, not pending")


def _check_holder(writer: DirectoryWriter, prepared: Prepared) -> None:
    """The entry still gives the names the certificate was built from."""
    holder = prepared.holder
    if holder is None:
        return
    try:
        entry = writer.require(writer.dn(holder))
    except LDAPError:
        raise CAError(f"{holder} was deleted or renamed while its certificate was being "
                      "prepared; nothing was issued") from None
    try:
        now = _contents(prepared.profile, prepared.csr, entry)
    except CAError as e:
        raise CAError(f"{holder} changed while its certificate was being prepared ({e}); "
                      "nothing was issued") from None
    if not now.same_names(prepared.contents):
        raise CAError(f"{holder} changed while its certificate was being prepared (its "
                      "names no longer match); nothing was issued")


def _sign(authority: Authority, chosen: Profile, contents: _Contents,
          now: dt.datetime) -> x509.Certificate:
    return build_certificate(
        profile=chosen, subject=contents.subject, public_key=contents.public_key,
        sans=list(contents.sans), issuer=authority.certificate, issuer_key=authority.key,
        urls=authority.urls, serial=random_serial(), now=now)


def _record(writer: DirectoryWriter, store: Store, request: int, prepared: Prepared,
            certificate: x509.Certificate) -> None:
    holder = prepared.holder
    store.record(serial=certificate.serial_number,
                 issuer=certificate.issuer.rfc4514_string(),
                 subject=certificate.subject.rfc4514_string(), entry=holder,
                 profile=prepared.profile.name, not_before=certificate.not_valid_before_utc,
                 not_after=certificate.not_valid_after_utc, der=der(certificate),
                 request=request)
    if holder is not None:
        try:
            publish_certificate(writer, holder, prepared.profile, certificate)
        except LDAPError as e:
            raise CAError(f"cannot publish to {holder}: {e.message}") from None


def _contents(chosen: Profile, csr: x509.CertificateSigningRequest,
              entry: Entry | None) -> _Contents:
    attributes = None if entry is None else entry.attributes
    subject = subject_for(chosen, csr.subject, attributes, dns_names=requested_dns_names(csr))
    sans = tuple(sans_for(chosen, csr, attributes))
    public_key = csr.public_key()
    check_key_type(chosen, public_key)
    return _Contents(subject, sans, public_key,  # type: ignore[arg-type]
                     None if entry is None else str(entry.dn))
