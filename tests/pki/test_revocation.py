"""Revocation, holds and CRLs, driven through the CA's own functions on a
real data directory (`certdir init`), inside real database transactions.

- A revoked certificate leaves its holder's entry; the holder's other
  certificates (another CA's included) stay.
- The full CRL lists every revoked or held certificate with its reason
  (none for unspecified); CRL numbers increase across full and delta CRLs.
- The delta CRL points at the previous full CRL (deltaCRLIndicator) and
  lists only what changed since, with removeFromCRL for a released hold.
- Revoking twice, releasing what is not on hold, and unknown reasons are
  refused; a refused revocation changes nothing.
- Policy modules: auto issues, officer queues requesters, kms refuses
  everyone but the KMS and officers.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from ca import crl, revoke
from ca.authority import Authority, unlock
from ca.errors import CAError
from ca.issue import commit, holder_entry, prepare
from ca.policy import Decision, Origin, Submission, decide
from ca.profiles import profile
from ca.store import Store
from certdir.config import Config, load
from certdir.directory_open import open_directory
from directory.dsa import DSA
from directory.ops.add import build, collect, insert
from directory.publisher import DirectoryWriter

SUFFIX = "dc=example,dc=com"
ALICE = f"uid=alice,{SUFFIX}"
NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)


@dataclass
class CA:
    config: Config
    authority: Authority
    dsa: DSA

    def run(self, job: object) -> object:
        with self.dsa.backend.transaction() as txn:
            return job(DirectoryWriter(self.dsa, txn, self.dsa.root_dn))  # type: ignore[operator]

    def issue(self, when: dt.datetime = NOW) -> x509.Certificate:
        key = ec.generate_private_key(ec.SECP256R1())
        request = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).sign(
            key, hashes.SHA256()).public_bytes(Encoding.DER)
        chosen = profile(self.authority.config.profiles, "smime-user")
        prepared = prepare(self.authority, request, chosen, holder_entry(self.dsa, ALICE),
                           Origin.OFFICER, when)
        outcome = self.run(lambda w: commit(w, prepared, when))
        certificate = outcome.certificate  # type: ignore[attr-defined]
        assert isinstance(certificate, x509.Certificate)
        return certificate

    def entry_certificates(self) -> set[bytes]:
        self.dsa.refresh()
        entry = self.dsa.backend.get(self.dsa.parse_dn(ALICE))
        assert entry is not None
        return set(entry.get("usercertificate"))


@pytest.fixture
def ca(tmp_path: Path) -> Iterator[CA]:
    data = tmp_path / "data"
    subprocess.run([sys.executable, "-m", "certdir", "init", "--data-dir", str(data),
                    "--suffix", SUFFIX], check=True, capture_output=True)
    config = load(data)
    assert config.ca is not None
    dsa = open_directory(config)
    attributes = collect(dsa, [("objectClass", [b"inetOrgPerson"]), ("uid", [b"alice"]),
                               ("cn", [b"Alice Liddell"]), ("sn", [b"Liddell"]),
                               ("mail", [b"alice@example.com"])])
    entry = build(dsa, dsa.parse_dn(ALICE), attributes, dsa.root_dn)
    with dsa.backend.transaction() as txn:
        insert(dsa, txn, entry)
    yield CA(config, unlock(config.ca, data, SUFFIX), dsa)
    dsa.backend.close()


def der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(Encoding.DER)


def reason_of(entry: x509.RevokedCertificate) -> x509.ReasonFlags | None:
    try:
        return entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    except x509.ExtensionNotFound:
        return None


def test_revoke_removes_only_that_certificate(ca: CA) -> None:
    first, second = ca.issue(), ca.issue()
    assert ca.entry_certificates() == {der(first), der(second)}
    ca.run(lambda w: revoke.revoke(ca.authority, w, first.serial_number,
                                   x509.ReasonFlags.key_compromise, NOW))
    assert ca.entry_certificates() == {der(second)}


def test_crls_list_revocations_and_delta_follows_previous_full(ca: CA) -> None:
    early, late, held = ca.issue(), ca.issue(), ca.issue()
    ca.run(lambda w: revoke.revoke(ca.authority, w, early.serial_number,
                                   x509.ReasonFlags.unspecified, NOW))
    first = crl.generate(ca.authority, ca.dsa, NOW + dt.timedelta(minutes=1))
    later = NOW + dt.timedelta(hours=1)
    ca.run(lambda w: revoke.revoke(ca.authority, w, late.serial_number,
                                   x509.ReasonFlags.superseded, later))
    ca.run(lambda w: revoke.revoke(ca.authority, w, held.serial_number,
                                   x509.ReasonFlags.certificate_hold, later))
    made = crl.generate(ca.authority, ca.dsa, later + dt.timedelta(minutes=1))
    assert isinstance(first, crl.CRLs) and isinstance(made, crl.CRLs)
    full = {e.serial_number: reason_of(e) for e in made.full}
    assert full == {early.serial_number: None,
                    late.serial_number: x509.ReasonFlags.superseded,
                    held.serial_number: x509.ReasonFlags.certificate_hold}
    numbers = [c.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
               for c in (first.full, first.delta, made.full, made.delta)]
    assert numbers == sorted(numbers) and len(set(numbers)) == 4
    indicator = made.delta.extensions.get_extension_for_class(x509.DeltaCRLIndicator)
    assert indicator.critical and indicator.value.crl_number == numbers[0]
    assert {e.serial_number for e in made.delta} == {late.serial_number, held.serial_number}
    for signed in (made.full, made.delta):
        assert signed.is_signature_valid(ca.authority.key.public_key())


def test_release_from_hold_comes_back(ca: CA) -> None:
    held = ca.issue()
    crl.generate(ca.authority, ca.dsa, NOW)
    ca.run(lambda w: revoke.revoke(ca.authority, w, held.serial_number,
                                   x509.ReasonFlags.certificate_hold, NOW))
    assert ca.entry_certificates() == set()
    ca.run(lambda w: revoke.release(ca.authority, w, held.serial_number, NOW))
    assert ca.entry_certificates() == {der(held)}
    made = crl.generate(ca.authority, ca.dsa, NOW + dt.timedelta(minutes=1))
    assert isinstance(made, crl.CRLs)
    assert list(made.full) == []
    (removed,) = list(made.delta)
    assert removed.serial_number == held.serial_number
    assert reason_of(removed) is x509.ReasonFlags.remove_from_crl


@pytest.mark.parametrize("action, message", [
    ("twice", "already revoked"),
    ("release", "not on hold"),
    ("unknown", "no certificate with serial"),
])
def test_refusals_change_nothing(ca: CA, action: str, message: str) -> None:
    certificate = ca.issue()
    serial = certificate.serial_number
    if action == "twice":
        ca.run(lambda w: revoke.revoke(ca.authority, w, serial,
                                       x509.ReasonFlags.key_compromise, NOW))
    with ca.dsa.backend.reading() as records:
        before = Store(records).certificates()
    jobs = {
        "twice": lambda w: revoke.revoke(ca.authority, w, serial,
                                         x509.ReasonFlags.superseded, NOW),
        "release": lambda w: revoke.release(ca.authority, w, serial, NOW),
        "unknown": lambda w: revoke.revoke(ca.authority, w, serial + 1,
                                           x509.ReasonFlags.superseded, NOW),
    }
    with pytest.raises(CAError, match=message):
        ca.run(jobs[action])
    with ca.dsa.backend.reading() as records:
        assert Store(records).certificates() == before


def test_reason_names() -> None:
    assert revoke.reason("keyCompromise") is x509.ReasonFlags.key_compromise
    assert revoke.reason("key-compromise") is x509.ReasonFlags.key_compromise
    with pytest.raises(CAError, match="unknown revocation reason 'removeFromCRL'"):
        revoke.reason("removeFromCRL")


@pytest.mark.parametrize("policy, origin, decision", [
    ("auto", Origin.REQUESTER, Decision.ISSUE),
    ("officer", Origin.REQUESTER, Decision.PENDING),
    ("officer", Origin.OFFICER, Decision.ISSUE),
    ("kms", Origin.KMS, Decision.ISSUE),
    ("kms", Origin.REQUESTER, Decision.DENY),
])
def test_policy_modules(policy: str, origin: Origin, decision: Decision) -> None:
    name, decided, _ = decide({"smime-user": policy}, Submission("smime-user", None, origin))
    assert (name, decided) == (policy, decision)
