"""S/MIME enrollment through one-time tokens (issue 5, parts 2 and 3).

- An officer enrolls an entry that exists and has a mail address; the
  token is bound to it (`kms.tokens`), and the audit log records who asked.
- Redeeming an enrollment token with a PKCS#10 request (RFC 2986) for the
  signing key: the signing key never leaves the user; the CA checks the
  request and issues "smime-signing" for the token's entry (Origin.KMS).
- The KMS generates the encryption key (`encryption_key_type`), has the CA
  issue "smime-encryption" for it, and escrows it under the new
  certificate's serial; the CA publishes both certificates to the entry.
- The user gets the encryption key, its certificate, the signing
  certificate and the CA chain as PKCS#12 (RFC 7292) under a password of
  their own: PBES2 with PBKDF2-HMAC-SHA256 and AES-256-CBC (RFC 8018 §6.2)
  for the key and certificates, an HMAC-SHA256 MAC, as `openssl pkcs12`
  and Thunderbird read it; the friendly name is the mail address.
- Re-enrolling is key rollover: the entry's earlier KMS certificates are
  revoked as superseded (RFC 5280 §5.3.1) and leave the entry; their
  escrowed keys stay, so old mail can still be recovered.
- Everything happens in the caller's transaction: any refusal raises, so
  the caller's rollback leaves no certificate, no escrowed key, no audit
  record and the token unused.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding, PrivateFormat, pkcs12

from ca import keys
from ca.authority import Authority
from ca.errors import CAError
from ca.issue import submit
from ca.policy import Origin
from ca.profiles import profile
from ca.revoke import revoke
from ca.store import Store
from directory.entry import Entry
from directory.protocol.results import LDAPError
from directory.publisher import DirectoryWriter
from kms import audit, escrow, tokens
from kms.config import KMSConfig
from kms.errors import KMSError
from kms.vault import Vault

SIGNING_PROFILE = "smime-signing"
ENCRYPTION_PROFILE = "smime-encryption"


@dataclass(frozen=True, slots=True)
class Enrollment:
    entry: str
    signing: x509.Certificate
    encryption: x509.Certificate
    pkcs12: bytes


def bundle(key: keys.PrivateKey, certificate: x509.Certificate,
           others: Sequence[x509.Certificate], name: str, password: bytes) -> bytes:
    """`key` and its `certificate` (with `others`) as PKCS#12 under `password`."""
    if not password:
        raise KMSError("the PKCS#12 password must not be empty")
    protection = (PrivateFormat.PKCS12.encryption_builder()
                  .kdf_rounds(keys.PBKDF2_ITERATIONS)
                  .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
                  .hmac_hash(hashes.SHA256())
                  .build(password))
    return pkcs12.serialize_key_and_certificates(name.encode(), key, certificate,
                                                 list(others), protection)


def _entry(writer: DirectoryWriter, entry_dn: str) -> Entry:
    try:
        return writer.require(writer.dn(entry_dn))
    except LDAPError as e:
        raise KMSError(f"cannot enroll {entry_dn}: {e.message}") from None


def _mail(entry: Entry) -> str:
    mail = entry.first("mail")
    if mail is None:
        raise KMSError(f"{entry.dn} has no mail address to put in an S/MIME certificate")
    return mail.decode()


def enroll_user(writer: DirectoryWriter, config: KMSConfig, entry_dn: str, actor: str,
                now: dt.datetime) -> str:
    """A new enrollment token for the entry, in clear (shown this once)."""
    entry = _entry(writer, entry_dn)
    _mail(entry)
    holder = str(entry.dn)
    token = tokens.issue(writer.sql, holder, "enroll",
                         dt.timedelta(hours=config.token_lifetime_hours), now)
    audit.record(writer.sql, actor, "token.issued", holder,
                 {"kind": "enroll", "hours": config.token_lifetime_hours}, now)
    return token


def _issue(authority: Authority, writer: DirectoryWriter, csr: bytes, profile_name: str,
           holder: str, now: dt.datetime) -> x509.Certificate:
    try:
        outcome = submit(authority, writer, csr, profile(authority.config.profiles, profile_name),
                         holder, Origin.KMS, now)
    except CAError as e:
        raise KMSError(f"the CA refused the {profile_name} request: {e}") from None
    if outcome.certificate is None:
        raise KMSError(f"the CA did not issue the {profile_name} certificate: {outcome.why}")
    return outcome.certificate


def _encryption_request(key: keys.PrivateKey) -> bytes:
    # The CA takes subject and SANs from the entry, so the request carries none.
    request = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
    return request.sign(key, keys.signature_hash(key)).public_bytes(Encoding.DER)


def _supersede(authority: Authority, writer: DirectoryWriter, holder: str, new: set[int],
               now: dt.datetime) -> list[int]:
    """Key rollover: the holder's earlier KMS certificates are revoked as
    superseded and leave the entry; their escrowed keys stay for old mail."""
    earlier = [record.serial for record in Store(writer.sql).certificates(status="valid",
                                                                           entry=holder)
               if record.profile in (SIGNING_PROFILE, ENCRYPTION_PROFILE)
               and record.serial not in new]
    for serial in earlier:
        revoke(authority, writer, serial, x509.ReasonFlags.superseded, now)
    return earlier


def redeem(authority: Authority, writer: DirectoryWriter, vault: Vault, config: KMSConfig,
           token: str, signing_csr: bytes, p12_password: bytes,
           now: dt.datetime) -> Enrollment:
    if not p12_password:
        raise KMSError("the PKCS#12 password must not be empty")
    record = tokens.redeem(writer.sql, token, "enroll", now)
    entry = _entry(writer, record.entry)
    mail, holder = _mail(entry), str(entry.dn)
    signing = _issue(authority, writer, signing_csr, SIGNING_PROFILE, holder, now)
    try:
        key = keys.generate(config.encryption_key_type)
    except CAError as e:
        raise KMSError(f"kms.encryption_key_type: {e}") from None
    encryption = _issue(authority, writer, _encryption_request(key), ENCRYPTION_PROFILE,
                        holder, now)
    superseded = _supersede(authority, writer, holder,
                            {signing.serial_number, encryption.serial_number}, now)
    escrow_id = escrow.escrow(writer.sql, vault, holder, encryption.serial_number, key, now)
    sealed = bundle(key, encryption, (signing, *authority.chain), mail, p12_password)
    audit.record(writer.sql, holder, "enrolled", holder,
                 {"token": record.id, "signing": f"{signing.serial_number:x}",
                  "encryption": f"{encryption.serial_number:x}", "escrow": escrow_id,
                  "superseded": ",".join(f"{serial:x}" for serial in superseded) or None},
                 now)
    return Enrollment(holder, signing, encryption, sealed)
