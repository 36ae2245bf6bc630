"""`certdir ca verify`: a certificate's chain and revocation status.

- The certificate (PEM or DER) must chain, signature by signature, to the
  root of this data directory's public chain (RFC 5280 §6.1 basic path
  validation: names chain, signatures verify, every certificate is within
  its validity period and every issuer is a CA).
- No CA's pathLenConstraint may be exceeded (§6.1.4 (l), (m)), the root's
  included, as `openssl verify` checks it (see ca.path_length).
- Revocation is read from the CRLs in the public folder (§6.3): the CRL
  must be signed by the issuer and current; a listed serial is reported
  with its date and reason.
"""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from ca.authority import slug
from ca.errors import CAError
from ca.path_length import violations


def _load(data: bytes) -> x509.Certificate:
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError:
        raise CAError("not an X.509 certificate (PEM or DER)") from None


def _signed_by(child: x509.Certificate, parent: x509.Certificate) -> bool:
    try:
        child.verify_directly_issued_by(parent)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _is_ca(certificate: x509.Certificate) -> bool:
    try:
        return certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def verify_file(public: Path, data: bytes,
                now: dt.datetime | None = None) -> tuple[bool, list[str]]:
    now = now or dt.datetime.now(dt.UTC)
    certificate = _load(data)
    known = x509.load_pem_x509_certificates((public / "chain.pem").read_bytes())
    path = [certificate]
    while path[-1].issuer != path[-1].subject or not _signed_by(path[-1], path[-1]):
        issuer = next((c for c in known if c.subject == path[-1].issuer
                       and _is_ca(c) and _signed_by(path[-1], c)), None)
        if issuer is None:
            return False, [f"chain: no issuer for {path[-1].subject.rfc4514_string()} "
                           "in this CA's chain"]
        path.append(issuer)
    lines = ["chain: " + " <- ".join(c.subject.rfc4514_string() for c in path) + ": OK"]
    exceeded = violations(path)
    ok = not exceeded
    lines.extend(exceeded)
    for c in path:
        if not c.not_valid_before_utc <= now <= c.not_valid_after_utc:
            ok = False
            lines.append(f"validity: {c.subject.rfc4514_string()} is not valid now "
                         f"({c.not_valid_before_utc:%Y-%m-%d} to {c.not_valid_after_utc:%Y-%m-%d})")
    for child, issuer in itertools.pairwise(path):
        status, good = _revocation(public, child, issuer, now)
        ok = ok and good
        lines.append(f"revocation of {child.subject.rfc4514_string()}: {status}")
    return ok, lines


def _revocation(public: Path, certificate: x509.Certificate, issuer: x509.Certificate,
                now: dt.datetime) -> tuple[str, bool]:
    path = public / f"{slug(issuer)}.crl"
    if not path.exists():
        return f"unknown (no CRL of {issuer.subject.rfc4514_string()} in {public})", False
    crl = x509.load_der_x509_crl(path.read_bytes())
    if not crl.is_signature_valid(issuer.public_key()):  # type: ignore[arg-type]
        return f"unknown ({path} is not signed by the issuer)", False
    if crl.next_update_utc is not None and crl.next_update_utc < now:
        return f"unknown ({path} expired {crl.next_update_utc:%Y-%m-%d %H:%M}Z)", False
    revoked = crl.get_revoked_certificate_by_serial_number(certificate.serial_number)
    if revoked is None:
        return f"not revoked (CRL of {crl.last_update_utc:%Y-%m-%d %H:%M}Z)", True
    try:
        reason = revoked.extensions.get_extension_for_class(x509.CRLReason).value.reason.value
    except x509.ExtensionNotFound:
        reason = "unspecified"
    return f"REVOKED on {revoked.revocation_date_utc:%Y-%m-%d %H:%M}Z ({reason})", False
