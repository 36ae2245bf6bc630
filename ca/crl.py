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
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ca.authority import Authority
from ca.keys import signature_hash
from ca.publish import publish_crls
from ca.store import Store
from directory.publisher import DirectoryWriter


@dataclass(frozen=True, slots=True)
class CRLs:
    full: x509.CertificateRevocationList
    delta: x509.CertificateRevocationList


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


def generate(authority: Authority, writer: DirectoryWriter, now: dt.datetime) -> CRLs:
    """Sign, record and publish a new full CRL and delta CRL."""
    store = Store(writer.sql)
    config = authority.config.crl
    now = now.replace(microsecond=0)
    previous = store.last_full_crl()
    number = store.next_crl_number()
    revoked = store.revocations()
    full = _sign(authority, number, now, now + dt.timedelta(hours=config.validity_hours),
                 (_entry(r.serial, r.revoked_at, x509.ReasonFlags(r.reason)) for r in revoked))
    base, since = previous if previous is not None else (number, now)
    changed = [_entry(r.serial, r.revoked_at, x509.ReasonFlags(r.reason))
               for r in revoked if r.revoked_at >= since]
    changed += [_entry(serial, when, x509.ReasonFlags.remove_from_crl)
                for serial, when in store.releases(since)]
    delta = _sign(authority, number + 1, now, now + dt.timedelta(hours=config.delta_hours),
                  changed, [x509.Extension(x509.DeltaCRLIndicator.oid, True,
                                           x509.DeltaCRLIndicator(base))])
    full_der, delta_der = (c.public_bytes(Encoding.DER) for c in (full, delta))
    store.record_crl(number, None, now, full.next_update_utc or now, full_der)
    store.record_crl(number + 1, base, now, delta.next_update_utc or now, delta_der)
    publish_crls(writer, authority, full_der, delta_der)
    return CRLs(full, delta)


def due(store: Store, now: dt.datetime) -> bool:
    """A new CRL is due when none exists or the last one is past half its life."""
    last = store.last_crl()
    if last is None:
        return True
    _, this_update, next_update = last
    return now >= this_update + (next_update - this_update) / 2
