"""CRLs (RFC 5280 §5): a full CRL and a delta CRL each time.

- Both carry the CRL number (§5.2.3, one sequence for full and delta) and
  the authority key identifier (§5.2.1), both non-critical.
- The full CRL is complete: it lists every revoked or held certificate of
  this CA, end-entity and CA certificates, for every reason, and the CA's
  certificates name one distribution point (no reasons, no cRLIssuer). Such
  a CRL needs no issuing distribution point: §5.2.5 makes it optional, and
  without one §6.3.3 (b) checks only that the CRL's issuer is the
  certificate's. So it carries none, because the IDP is critical and a
  relying party that does not process it must treat every certificate the
  CRL does not list as of unknown status (§5.2.5): dirmngr (GnuPG 2.2 and
  2.4, the S/MIME engine of KMail and Kleopatra) rejects a CRL with any
  critical extension but the CRL number and the AKI ("unknown critical CRL
  extension 2.5.29.28").
- The delta CRL (§5.2.4, deltaCRLIndicator critical) is relative to the
  previous full CRL: it lists what was revoked or put on hold since, and
  removeFromCRL for certificates released from hold since. The first
  delta, with no earlier full CRL, is relative to the new full one. It has
  the full CRL's scope, so it carries no IDP either: a complete and a delta
  CRL combine only when both lack the IDP or both carry the same one
  (§5.2.4 (b), as `openssl verify -use_deltas` checks).
- Reason codes go in the CRLReason entry extension (§5.3.1), except
  unspecified, which is left out as the RFC recommends.
- thisUpdate is now, nextUpdate now + the configured validity; CRLs are
  signed with the CA key's hash (SHA-256 or stronger; Ed25519 pure).
- The revoked-certificate list is passed to the builder whole: adding
  100k entries one call at a time costs forty times more (DESIGN.md).
- Signing happens outside the directory's write transaction (DESIGN.md,
  "Concurrency"): `read` takes the next number and the revocations from one
  read snapshot, `sign` signs both CRLs (no database), `commit` records and
  publishes them in the writer's transaction only if their number is still
  the next one, else raises StaleCRL and the caller reads and signs afresh.
  Front ends sharing a database check at once: the number is the table's
  primary key, so the later of two racing inserts is a `Conflict` (waiting
  for the earlier to commit), which is StaleCRL too.
  So numbers strictly increase and never repeat, and a revocation
  committed before a `read` is in that CRL; one committed after it is in
  the next CRL, which the revoking command makes after its own commit.
  A signed CRL that loses the race is discarded, never published.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ca.authority import Authority
from ca.errors import CAError
from ca.keys import signature_hash
from ca.publish import publish_crls
from ca.store import Revocation, Store
from directory.backend import Conflict, Transaction
from directory.deferreds import from_coroutine
from directory.dsa import DSA
from directory.protocol.dn import DN
from directory.publisher import DirectoryWriter

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred

    from ca.pool import Slow


# Tries before giving up when other processes keep taking the next number.
ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class CRLs:
    full: x509.CertificateRevocationList
    delta: x509.CertificateRevocationList
    number: int
    base: int


_REASON_EXTENSIONS: Mapping[x509.ReasonFlags, tuple[x509.Extension[x509.CRLReason], ...]] = {
    reason: () if reason is x509.ReasonFlags.unspecified
    else (x509.Extension(x509.CRLReason.oid, False, x509.CRLReason(reason)),)
    for reason in x509.ReasonFlags
}


def _entry(serial: int, when: dt.datetime, reason: x509.ReasonFlags) -> x509.RevokedCertificate:
    # One prepared extension per reason: add_extension per entry cost a sixth of a 100k CRL.
    return x509.RevokedCertificateBuilder(serial, when, list(_REASON_EXTENSIONS[reason])).build()


def _sign(authority: Authority, number: int, now: dt.datetime, next_update: dt.datetime,
          entries: Iterable[x509.RevokedCertificate],
          extra: Iterable[x509.Extension[x509.ExtensionType]] = (),
          ) -> x509.CertificateRevocationList:
    extensions = [
        x509.Extension(x509.CRLNumber.oid, False, x509.CRLNumber(number)),
        x509.Extension(x509.AuthorityKeyIdentifier.oid, False,
                       x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
                           authority.certificate.extensions.get_extension_for_class(
                               x509.SubjectKeyIdentifier).value)),
        *extra,
    ]
    builder = x509.CertificateRevocationListBuilder(
        authority.certificate.subject, now, next_update, extensions, list(entries))
    return builder.sign(authority.key, signature_hash(authority.key))


class StaleCRL(CAError):
    """Another CRL took this number while ours was being signed."""


@dataclass(frozen=True, slots=True)
class Basis:
    """What the next full and delta CRL say, read from the CA's records."""
    number: int
    base: int
    this_update: dt.datetime
    revoked: tuple[Revocation, ...]
    since: dt.datetime
    released: tuple[tuple[int, dt.datetime], ...]


def read(store: Store, now: dt.datetime) -> Basis:
    """The next CRL number and the revocations; `store` is one snapshot (a
    transaction, or `reading()`), so they come from one commit."""
    now = now.replace(microsecond=0)
    previous = store.last_full_crl()
    number = store.next_crl_number()
    base, since = previous if previous is not None else (number, now)
    return Basis(number, base, now, tuple(store.revocations()), since,
                 tuple(store.releases(since)))


def sign(authority: Authority, basis: Basis) -> CRLs:
    """The full CRL `basis.number` and the delta CRL after it. Slow; no database."""
    config = authority.config.crl
    now = basis.this_update
    full = _sign(authority, basis.number, now, now + dt.timedelta(hours=config.validity_hours),
                 (_entry(r.serial, r.revoked_at, x509.ReasonFlags(r.reason))
                  for r in basis.revoked))
    changed = [_entry(r.serial, r.revoked_at, x509.ReasonFlags(r.reason))
               for r in basis.revoked if r.revoked_at >= basis.since]
    changed += [_entry(serial, when, x509.ReasonFlags.remove_from_crl)
                for serial, when in basis.released]
    delta = _sign(authority, basis.number + 1, now,
                  now + dt.timedelta(hours=config.delta_hours), changed,
                  [x509.Extension(x509.DeltaCRLIndicator.oid, True,
                                  x509.DeltaCRLIndicator(basis.base))])
    return CRLs(full, delta, basis.number, basis.base)


def commit(authority: Authority, writer: DirectoryWriter, made: CRLs) -> None:
    """Record and publish signed CRLs, in the caller's transaction, if their
    number is still the next one; StaleCRL if not."""
    store = Store(writer.records)
    if store.next_crl_number() != made.number:
        raise StaleCRL(f"CRL number {made.number} was taken while it was being signed")
    full_der, delta_der = (c.public_bytes(Encoding.DER) for c in (made.full, made.delta))
    this_update = made.full.last_update_utc
    try:
        store.record_crl(made.number, None, this_update,
                         made.full.next_update_utc or this_update, full_der)
        store.record_crl(made.number + 1, made.base, this_update,
                         made.delta.next_update_utc or this_update, delta_der)
    except Conflict:
        # A front end on the same database took the number after our check.
        raise StaleCRL(f"CRL number {made.number} was taken while it was being recorded"
                       ) from None
    publish_crls(writer, authority, full_der, delta_der)


def generate(authority: Authority, dsa: DSA, now: dt.datetime) -> CRLs:
    """Read, sign, then record and publish in a transaction of its own (a
    command line, beside the server or not); read and signed afresh while
    another process takes the number."""
    actor = dsa.parse_dn(authority.entry_dn)
    for _ in range(ATTEMPTS):
        with dsa.backend.reading() as records:
            basis = read(Store(records), now)
        made = sign(authority, basis)
        try:
            with dsa.backend.transaction() as txn:
                commit(authority, DirectoryWriter(dsa, txn, actor), made)
        except StaleCRL:
            continue
        return made
    raise CAError(f"CRL numbers kept being taken by another process; {ATTEMPTS} attempts")


def renew(authority: Authority, dsa: DSA, slow: Slow,
          when: Callable[[Store, dt.datetime], bool]) -> Deferred[CRLs | None]:
    """In the server: when `when` says so, read on the reactor thread, sign on
    `slow`, commit through the single writer; afresh if the number was taken."""
    actor = dsa.parse_dn(authority.entry_dn)

    async def steps() -> CRLs | None:
        for _ in range(ATTEMPTS):
            dsa.refresh()
            now = dt.datetime.now(dt.UTC)
            with dsa.backend.reading() as records:
                store = Store(records)
                if not when(store, now):
                    return None
                basis = read(store, now)
            made = await slow(sign, authority, basis)
            try:
                await dsa.write(functools.partial(_committing, authority, dsa, actor, made))
            except StaleCRL:
                continue
            return made
        raise CAError(f"CRL numbers kept being taken by another process; {ATTEMPTS} attempts")

    return from_coroutine(steps())


def _committing(authority: Authority, dsa: DSA, actor: DN, made: CRLs,
                txn: Transaction) -> None:
    commit(authority, DirectoryWriter(dsa, txn, actor), made)


def due(store: Store, now: dt.datetime) -> bool:
    """A new CRL is due when none exists or the last one is past half its life."""
    last = store.last_crl()
    if last is None:
        return True
    _, this_update, next_update = last
    return now >= this_update + (next_update - this_update) / 2
