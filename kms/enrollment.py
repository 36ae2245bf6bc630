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
- A redemption is three steps, so that nothing slow runs inside the
  directory's single write transaction (DESIGN.md, "Concurrency"):
  `claim` checks the token read-only and reads its entry; `prepare` (on the
  web service's pool in the server, `ca.web.context.Web.slow`; just before
  the transaction on a command line) generates the encryption key, signs
  both certificates (`ca.issue.prepare`) and seals the PKCS#12 (in the
  server, in a worker process: `kms.sealer` says why); `commit`, in
  the writer's transaction, redeems the token, records and publishes both
  certificates (`ca.issue.commit`, which refuses if the entry vanished or
  changed meanwhile), supersedes the older ones (revocation is database
  writes only), escrows the key (AES-GCM, fast) and writes the audit record.
- The token is redeemed atomically inside the transaction, not by `claim`:
  of two redemptions of one token running at once both may prepare, and
  exactly one commits; the other is refused ("already used") with nothing
  recorded. What it prepared (certificates, key, PKCS#12) is discarded in
  memory and never leaves the process.
- `commit` raises on any refusal, so the caller's rollback leaves no
  certificate, no escrowed key, no audit record and the token unused.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding, PrivateFormat, pkcs12

from ca import issue, keys
from ca.authority import Authority
from ca.errors import CAError
from ca.policy import Origin
from ca.profiles import profile
from ca.revoke import revoke
from ca.store import Store
from directory.backend import Transaction
from directory.deferreds import from_coroutine
from directory.dsa import DSA
from directory.entry import Entry
from directory.protocol.results import LDAPError
from directory.publisher import DirectoryWriter
from kms import audit, escrow, tokens
from kms.config import KMSConfig
from kms.errors import KMSError
from kms.vault import Vault

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred

    from ca.pool import Slow


SIGNING_PROFILE = "smime-signing"
ENCRYPTION_PROFILE = "smime-encryption"


# How a PKCS#12 gets sealed: `bundle` here, or in another process (`kms.sealer`).
Seal = Callable[[keys.PrivateKey, x509.Certificate, Sequence[x509.Certificate], str, bytes],
                bytes]


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
    token = tokens.issue(writer.records, holder, "enroll",
                         dt.timedelta(hours=config.token_lifetime_hours), now)
    audit.record(writer.records, actor, "token.issued", holder,
                 {"kind": "enroll", "hours": config.token_lifetime_hours}, now)
    return token


@dataclass(frozen=True, slots=True)
class Claim:
    """A pending enrollment token and its entry, as read before redeeming it."""
    token: str
    record: tokens.TokenRecord
    entry: Entry


@dataclass(frozen=True, slots=True)
class Prepared:
    """Everything slow of a redemption, done: the encryption key generated,
    both certificates signed, the PKCS#12 sealed. Nothing is recorded yet and
    the token is unused (`commit`)."""
    claim: Claim
    signing: issue.Prepared
    encryption: issue.Prepared
    key: keys.PrivateKey
    pkcs12: bytes

    @property
    def holder(self) -> str:
        return str(self.claim.entry.dn)


def claim(dsa: DSA, token: str, now: dt.datetime) -> Claim:
    """The token's record and entry, checked but not redeemed (as last committed)."""
    with dsa.backend.reading() as records:
        record = tokens.check(records, token, "enroll", now)
    try:
        entry = dsa.backend.get(dsa.parse_dn(record.entry))
    except LDAPError as e:
        raise KMSError(f"cannot enroll {record.entry}: {e.message}") from None
    if entry is None:
        raise KMSError(f"cannot enroll {record.entry}: no entry {record.entry}")
    _mail(entry)
    return Claim(token, record, entry)


def prepare(authority: Authority, config: KMSConfig, claimed: Claim, signing_csr: bytes,
            p12_password: bytes, now: dt.datetime, seal: Seal = bundle) -> Prepared:
    """Sign both certificates, generate the key, seal the PKCS#12. Slow; no database."""
    if not p12_password:
        raise KMSError("the PKCS#12 password must not be empty")
    entry = claimed.entry
    signing = _prepare(authority, signing_csr, SIGNING_PROFILE, entry, now)
    try:
        key = keys.generate(config.encryption_key_type)
    except CAError as e:
        raise KMSError(f"kms.encryption_key_type: {e}") from None
    encryption = _prepare(authority, _encryption_request(key), ENCRYPTION_PROFILE, entry, now)
    assert signing.certificate is not None and encryption.certificate is not None
    sealed = seal(key, encryption.certificate, (signing.certificate, *authority.chain),
                  _mail(entry), p12_password)
    return Prepared(claimed, signing, encryption, key, sealed)


def commit(authority: Authority, writer: DirectoryWriter, vault: Vault, prepared: Prepared,
           now: dt.datetime) -> Enrollment:
    """Redeem the token and record what `prepare` made, in the caller's
    transaction: database writes, and the escrow's AES-GCM, only."""
    record = tokens.redeem(writer.records, prepared.claim.token, "enroll", now)
    if record.id != prepared.claim.record.id:
        raise KMSError("the token changed while the enrollment was being prepared")
    holder = prepared.holder
    signing = _commit(writer, prepared.signing, now)
    encryption = _commit(writer, prepared.encryption, now)
    superseded = _supersede(authority, writer, holder,
                            {signing.serial_number, encryption.serial_number}, now)
    escrow_id = escrow.escrow(writer.records, vault, holder, encryption.serial_number,
                              prepared.key, now)
    audit.record(writer.records, holder, "enrolled", holder,
                 {"token": record.id, "signing": f"{signing.serial_number:x}",
                  "encryption": f"{encryption.serial_number:x}", "escrow": escrow_id,
                  "superseded": ",".join(f"{serial:x}" for serial in superseded) or None},
                 now)
    return Enrollment(holder, signing, encryption, prepared.pkcs12)


def redeem(authority: Authority, dsa: DSA, slow: Slow, vault: Vault, config: KMSConfig,
           token: str, signing_csr: bytes, p12_password: bytes,
           seal: Seal = bundle) -> Deferred[Enrollment]:
    """A redemption in the server: the token read on the reactor thread, the
    slow part on `slow` (sealing with `seal`), the commit through the single
    writer."""
    async def steps() -> Enrollment:
        dsa.refresh()
        now = dt.datetime.now(dt.UTC)
        claimed = claim(dsa, token, now)
        prepared = await slow(prepare, authority, config, claimed, signing_csr, p12_password,
                              now, seal)

        def job(txn: Transaction) -> Enrollment:
            return commit(authority, DirectoryWriter(dsa, txn, dsa.root_dn), vault, prepared,
                          now)

        return await dsa.write(job)

    return from_coroutine(steps())


def redeem_offline(authority: Authority, dsa: DSA, vault: Vault, config: KMSConfig,
                   token: str, signing_csr: bytes, p12_password: bytes,
                   now: dt.datetime) -> Enrollment:
    """A redemption from a command line: the same steps in this thread; only
    `commit` holds the write transaction."""
    prepared = prepare(authority, config, claim(dsa, token, now), signing_csr, p12_password,
                       now)
    with dsa.backend.transaction() as txn:
        return commit(authority, DirectoryWriter(dsa, txn, dsa.root_dn), vault, prepared, now)


def _prepare(authority: Authority, csr: bytes, profile_name: str, entry: Entry,
             now: dt.datetime) -> issue.Prepared:
    try:
        prepared = issue.prepare(authority, csr, profile(authority.config.profiles, profile_name),
                                 entry, Origin.KMS, now)
    except CAError as e:
        raise KMSError(f"the CA refused the {profile_name} request: {e}") from None
    if prepared.certificate is None:
        raise KMSError(f"the CA did not issue the {profile_name} certificate: {prepared.why}")
    return prepared


def _commit(writer: DirectoryWriter, prepared: issue.Prepared,
            now: dt.datetime) -> x509.Certificate:
    try:
        outcome = issue.commit(writer, prepared, now)
    except CAError as e:
        raise KMSError(f"the CA refused the {prepared.profile.name} request: {e}") from None
    assert outcome.certificate is not None
    return outcome.certificate


def _encryption_request(key: keys.PrivateKey) -> bytes:
    # The CA takes subject and SANs from the entry, so the request carries none.
    request = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
    return request.sign(key, keys.signature_hash(key)).public_bytes(Encoding.DER)


def _supersede(authority: Authority, writer: DirectoryWriter, holder: str, new: set[int],
               now: dt.datetime) -> list[int]:
    """Key rollover: the holder's earlier KMS certificates are revoked as
    superseded and leave the entry; their escrowed keys stay for old mail."""
    earlier = [record.serial for record in Store(writer.records).certificates(status="valid",
                                                                           entry=holder)
               if record.profile in (SIGNING_PROFILE, ENCRYPTION_PROFILE)
               and record.serial not in new]
    for serial in earlier:
        revoke(authority, writer, serial, x509.ReasonFlags.superseded, now)
    return earlier
