"""Revocation (RFC 5280 §5.3.1 reason codes), in the caller's transaction.

- A certificate is revoked by serial or, for every valid certificate of a
  holder, by entry; it leaves the holder's userCertificate;binary and
  userSMIMECertificate values and enters the next CRL.
- certificateHold puts a certificate on hold: it leaves the entry and is
  listed with that reason; `release` takes it off hold (removeFromCRL in
  the next delta CRL) and publishes it again. Any other reason is final.
- removeFromCRL is not a revocation reason (RFC 5280 §5.3.1).
- Revoking a revoked certificate is refused with its revocation date.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from cryptography import x509

from ca.authority import Authority
from ca.errors import CAError
from ca.profiles import profile
from ca.publish import publish_certificate, unpublish_certificate
from ca.store import IssuedRecord, Store, serial_text
from directory.publisher import DirectoryWriter

REASONS: Mapping[str, x509.ReasonFlags] = {
    flag.name: flag for flag in x509.ReasonFlags if flag is not x509.ReasonFlags.remove_from_crl
}
# The RFC's camelCase spellings work too (keyCompromise, certificateHold, ...).
_BY_RFC_NAME = {flag.value.lower(): flag for flag in REASONS.values()}


def reason(name: str) -> x509.ReasonFlags:
    key = name.replace("-", "_")
    found = REASONS.get(key) or _BY_RFC_NAME.get(name.lower())
    if found is None:
        raise CAError(f"unknown revocation reason {name!r} (known: "
                      + ", ".join(flag.value for flag in REASONS.values()) + ")")
    return found


def revoke(authority: Authority, writer: DirectoryWriter, serial: int, why: x509.ReasonFlags,
           now: dt.datetime) -> IssuedRecord:
    store = Store(writer.records)
    record = store.certificate(serial)
    if record.status != "valid" and not (record.status == "hold"
                                         and why is not x509.ReasonFlags.certificate_hold):
        raise CAError(f"certificate {serial_text(serial)} is already "
                      f"{record.status} since {record.revoked_at:%Y-%m-%d %H:%M:%SZ}")
    held = why is x509.ReasonFlags.certificate_hold
    store.set_status(serial, "hold" if held else "revoked", now, why.value)
    if record.entry is not None:
        unpublish_certificate(writer, record.entry, x509.load_der_x509_certificate(record.der))
    return record


def revoke_holder(authority: Authority, writer: DirectoryWriter, holder: str,
                  why: x509.ReasonFlags, now: dt.datetime) -> list[IssuedRecord]:
    dn = str(writer.dn(holder))
    records = list(Store(writer.records).certificates(status="valid", entry=dn))
    if not records:
        raise CAError(f"{holder} holds no valid certificate issued here")
    return [revoke(authority, writer, r.serial, why, now) for r in records]


def release(authority: Authority, writer: DirectoryWriter, serial: int,
            now: dt.datetime) -> IssuedRecord:
    store = Store(writer.records)
    record = store.certificate(serial)
    if record.status != "hold":
        raise CAError(f"certificate {serial_text(serial)} is not on hold")
    store.set_status(serial, "valid", None, None)
    store.record_release(serial, now)
    if record.entry is not None:
        publish_certificate(writer, record.entry,
                            profile(authority.config.profiles, record.profile),
                            x509.load_der_x509_certificate(record.der))
    return record
