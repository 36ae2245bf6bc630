"""Key recovery by M of N KMS officers (issue 5, part 4).

- Only the officers the configuration names (directory entries, compared
  as normalised DNs) request or approve a recovery; anyone else is refused
  with "not a KMS officer".
- A recovery names one escrowed key; one recovery per key is open at a
  time.
- Approvals come from distinct officers: the same officer approving twice
  is refused. When `needed` officers have approved, the KMS issues a
  recovery token bound to the key's owner and that key (`kms.tokens`),
  returned once.
- Redeeming the token returns the escrowed key with the certificate that
  certifies it (its serial and public key must match); `seal`, after the
  transaction commits, makes it PKCS#12 under the redeemer's password
  (`kms.enrollment.bundle`), so no PKCS#12 is sealed inside the write
  transaction (DESIGN.md, "Concurrency").
- Requests, approvals and recoveries go into the audit log; everything
  else runs in the caller's transaction and never commits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509

from ca.keys import PrivateKey
from directory.backend import Records
from kms import audit, escrow, tokens
from kms.enrollment import bundle
from kms.errors import KMSError
from kms.vault import Vault

SCHEMA: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS kms_recoveries (
        id INTEGER PRIMARY KEY,
        escrow_id INTEGER NOT NULL,
        owner TEXT NOT NULL,
        requested_by TEXT NOT NULL,
        requested TEXT NOT NULL,
        status TEXT NOT NULL,
        finished TEXT)""",
    """CREATE TABLE IF NOT EXISTS kms_recovery_approvals (
        recovery_id INTEGER NOT NULL REFERENCES kms_recoveries (id),
        officer_key TEXT NOT NULL,
        officer TEXT NOT NULL,
        at TEXT NOT NULL,
        PRIMARY KEY (recovery_id, officer_key))""",
)

# A recovery token lives as long as an enrollment token by default.
DEFAULT_LIFETIME = dt.timedelta(hours=168)


def _check_officer(officer: str, officers: Sequence[str]) -> str:
    """The officer's normalised DN; KMSError unless the configuration names them."""
    key = tokens.entry_key(officer)
    if key not in {tokens.entry_key(name) for name in officers}:
        raise KMSError(f"{officer} is not a KMS officer")
    return key


def _escrowed(records: Records, escrow_id: int) -> escrow.EscrowRecord:
    found = next((r for r in escrow.find(records) if r.id == escrow_id), None)
    if found is None:
        raise KMSError(f"no escrowed key #{escrow_id}")
    return found


def request(records: Records, officer: str, escrow_id: int, now: dt.datetime,
            officers: Sequence[str]) -> int:
    """Open a recovery of escrowed key `escrow_id`; its number."""
    _check_officer(officer, officers)
    record = _escrowed(records, escrow_id)
    open_ = records.row("SELECT id FROM kms_recoveries WHERE escrow_id=? AND status='pending'",
                        (escrow_id,))
    if open_ is not None:
        raise KMSError(f"recovery {open_[0]} of escrowed key #{escrow_id} is already open")
    row = records.row(
        "INSERT INTO kms_recoveries (escrow_id, owner, requested_by, requested, status)"
        " VALUES (?, ?, ?, ?, 'pending') RETURNING id",
        (escrow_id, record.owner, officer, now.isoformat()))
    assert row is not None
    number = int(row[0])
    audit.record(records, officer, "recovery.requested", record.owner,
                 {"recovery": number, "escrow": escrow_id, "serial": f"{record.serial:x}"}, now)
    return number


def approve(records: Records, recovery_id: int, officer: str, now: dt.datetime,
            officers: Sequence[str], needed: int,
            lifetime: dt.timedelta = DEFAULT_LIFETIME) -> str | None:
    """Record one officer's approval; the recovery token once `needed` have approved."""
    key = _check_officer(officer, officers)
    if not 1 <= needed <= len(officers):
        raise KMSError(f"recovery needs between 1 and {len(officers)} approvals, not {needed}")
    row = records.row("SELECT escrow_id, owner, status FROM kms_recoveries WHERE id=?",
                      (recovery_id,))
    if row is None:
        raise KMSError(f"no recovery {recovery_id}")
    escrow_id, owner, status = row
    if status != "pending":
        raise KMSError(f"recovery {recovery_id} is {status}, not waiting for approval")
    if records.row("SELECT 1 FROM kms_recovery_approvals WHERE recovery_id=? AND officer_key=?",
                   (recovery_id, key)) is not None:
        raise KMSError(f"{officer} has already approved recovery {recovery_id}; "
                       f"another officer must approve")
    records.run("INSERT INTO kms_recovery_approvals (recovery_id, officer_key, officer, at)"
                " VALUES (?, ?, ?, ?)", (recovery_id, key, officer, now.isoformat()))
    counted = records.row("SELECT count(*) FROM kms_recovery_approvals WHERE recovery_id=?",
                          (recovery_id,))
    assert counted is not None
    approvals = int(counted[0])
    audit.record(records, officer, "recovery.approved", owner,
                 {"recovery": recovery_id, "approvals": approvals, "needed": needed}, now)
    if approvals < needed:
        return None
    records.run("UPDATE kms_recoveries SET status='approved' WHERE id=?", (recovery_id,))
    token = tokens.issue(records, owner, "recovery", lifetime, now, escrow_id)
    audit.record(records, officer, "token.issued", owner,
                 {"kind": "recovery", "recovery": recovery_id, "escrow": escrow_id}, now)
    return token


def _name(certificate: x509.Certificate, owner: str) -> str:
    """The certificate's mail address, as enrollment names the bundle, else the owner."""
    try:
        sans = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return owner
    return next(iter(sans.value.get_values_for_type(x509.RFC822Name)), owner)


@dataclass(frozen=True, slots=True)
class Recovered:
    key: PrivateKey
    certificate: x509.Certificate
    name: str


def redeem(records: Records, vault: Vault, token: str, p12_password: bytes,
           certificate_der: bytes, now: dt.datetime) -> Recovered:
    """The escrowed key of a recovery token, with its certificate."""
    if not p12_password:
        raise KMSError("the PKCS#12 password must not be empty")
    record = tokens.redeem(records, token, "recovery", now)
    assert record.escrow_id is not None  # tokens.issue binds every recovery token to a key
    escrowed, key = escrow.recover(records, vault, record.escrow_id)
    try:
        certificate = x509.load_der_x509_certificate(certificate_der)
    except ValueError:
        raise KMSError("not a DER certificate") from None
    if (certificate.serial_number != escrowed.serial
            or certificate.public_key() != key.public_key()):
        raise KMSError(f"that certificate does not certify escrowed key #{escrowed.id} "
                       f"(serial {escrowed.serial:x})")
    records.run("UPDATE kms_recoveries SET status='performed', finished=?"
                " WHERE escrow_id=? AND status='approved'", (now.isoformat(), escrowed.id))
    audit.record(records, record.entry, "recovery.performed", escrowed.owner,
                 {"escrow": escrowed.id, "serial": f"{escrowed.serial:x}"}, now)
    return Recovered(key, certificate, _name(certificate, escrowed.owner))


def seal(recovered: Recovered, p12_password: bytes) -> bytes:
    """The recovered key and its certificate as PKCS#12 (after the commit)."""
    return bundle(recovered.key, recovered.certificate, (), recovered.name, p12_password)
