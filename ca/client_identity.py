"""The entry a TLS client certificate was issued to, from the CA's own records.

The directory asks this at every SASL EXTERNAL bind (`DSA.certificate_identity`,
`directory.ops.sasl_external`):

- A certificate this CA did not sign (another issuer name, or a signature
  its key did not make) is not its question: None, and the directory's
  other mappings may try it.
- One it signed must be in its records under its serial with the same DER,
  with status valid: revoked or on hold (RFC 5280 §5.3.1 certificateHold)
  gets invalidCredentials (49), as does one missing from the records.
  The records are read at every call from the directory's database, so a
  `certdir ca revoke` run by another process counts at the next bind.
- A certificate recorded without an entry (issued for a host name) maps to
  no one here: None.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from ca.authority import Authority
from ca.errors import CAError
from ca.store import Store
from directory.dsa import DSA, CertificateIdentity
from directory.protocol.dn import DN
from directory.protocol.results import LDAPError, ResultCode

STATUS_REFUSED = {"revoked": "has been revoked", "hold": "is on hold"}


def _signed_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    if certificate.issuer != issuer.subject:
        return False
    try:
        certificate.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def certificate_identity(authority: Authority, dsa: DSA) -> CertificateIdentity:
    def identity(der: bytes) -> DN | None:
        certificate = x509.load_der_x509_certificate(der)
        if not _signed_by(certificate, authority.certificate):
            return None
        serial = certificate.serial_number
        try:
            with dsa.backend.reading() as records:
                record = Store(records).certificate(serial)
        except CAError:
            record = None
        if record is None or record.der != der:
            raise LDAPError(ResultCode.INVALID_CREDENTIALS,
                            f"certificate {serial:x} is not in the CA's records")
        if record.status != "valid":
            why = STATUS_REFUSED.get(record.status, f"has status {record.status}")
            raise LDAPError(ResultCode.INVALID_CREDENTIALS, f"certificate {serial:x} {why}")
        return None if record.entry is None else dsa.parse_dn(record.entry)

    return identity
