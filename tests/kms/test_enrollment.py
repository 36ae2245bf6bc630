"""Enrollment (kms.enrollment) on a real data directory (`certdir init`), in
real database transactions, checked with openssl and cryptography.

- enroll_user needs an existing entry with mail and records "token.issued".
- Redeeming publishes the signing and the encryption certificate to the
  entry, escrows the encryption key under its serial, records "enrolled",
  and returns PKCS#12 (PBES2/AES-256-CBC, HMAC-SHA256) that `openssl pkcs12`
  and cryptography open, holding the key of the encryption certificate.
- A refused redemption (bad or SHA-1 request, empty password, used token)
  leaves no certificate, no escrowed key, no audit record, the token unused.
- The commit step gets both certificates signed and the PKCS#12 sealed:
  it signs, generates and seals nothing (`tests.crypto_guard`).
- Two redemptions of one token that both prepared before either commits:
  exactly one commits, the other is refused "already used" and records
  nothing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, pkcs12

from ca.authority import Authority, unlock
from ca.store import Store
from certdir.config import Config, load
from certdir.directory_open import open_directory
from directory.dsa import DSA
from directory.ops.add import build, collect, insert
from directory.publisher import DirectoryWriter
from kms import enrollment, escrow, tokens
from kms.config import KMSConfig
from kms.errors import KMSError
from kms.vault import Vault
from tests.crypto_guard import SlowWorkInTransaction, no_slow_crypto

SUFFIX = "dc=example,dc=com"
ALICE = f"uid=alice,{SUFFIX}"
NOMAIL = f"uid=nomail,{SUFFIX}"
OFFICER = f"uid=officer,{SUFFIX}"
NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
PASSWORD = b"correct horse battery staple"
DATA = Path(__file__).parent.parent / "data" / "pki"

T = TypeVar("T")


@dataclass
class KMS:
    config: Config
    authority: Authority
    dsa: DSA
    vault: Vault
    settings: KMSConfig
    audited: int  # audit records before the test

    def actions(self) -> list[tuple[str, str, str]]:
        """(actor, action, subject) of the audit records the test made."""
        with self.dsa.backend.reading() as records:
            return [(actor, action, subject) for actor, action, subject in records.rows(
                "SELECT actor, action, subject FROM kms_audit WHERE seq > ? ORDER BY seq",
                (self.audited,))]

    def run(self, job: Callable[[DirectoryWriter], T]) -> T:
        with self.dsa.backend.transaction() as txn:
            return job(DirectoryWriter(self.dsa, txn, self.dsa.root_dn))

    def certificates(self, dn: str = ALICE) -> set[bytes]:
        self.dsa.refresh()
        entry = self.dsa.backend.get(self.dsa.parse_dn(dn))
        assert entry is not None
        return set(entry.get("usercertificate"))

    def count(self, table: str) -> int:
        with self.dsa.backend.reading() as records:
            (n,) = records.rows(f"SELECT count(*) FROM {table}")[0]
        assert isinstance(n, int)
        return n

    def enroll(self, dn: str = ALICE) -> str:
        return self.run(lambda w: enrollment.enroll_user(w, self.settings, dn, OFFICER, NOW))

    def redeem(self, token: str, csr: bytes, password: bytes = PASSWORD,
               when: dt.datetime = NOW) -> enrollment.Enrollment:
        return enrollment.redeem_offline(self.authority, self.dsa, self.vault, self.settings,
                                         token, csr, password, when)


def person(dsa: DSA, uid: str, mail: bool = True) -> None:
    pairs = [("objectClass", [b"inetOrgPerson"]), ("uid", [uid.encode()]),
             ("cn", [uid.title().encode()]), ("sn", [uid.title().encode()])]
    if mail:
        pairs.append(("mail", [f"{uid}@example.com".encode()]))
    entry = build(dsa, dsa.parse_dn(f"uid={uid},{SUFFIX}"), collect(dsa, pairs), dsa.root_dn)
    with dsa.backend.transaction() as txn:
        insert(dsa, txn, entry)


@contextlib.contextmanager
def opened(tmp_path: Path) -> Iterator[KMS]:
    """A data directory with a CA (its S/MIME profiles under the kms policy),
    a KMS, and people alice, bob, officer (with mail) and nomail."""
    data = tmp_path / "data"
    passphrase = data / "secrets" / "kms-passphrase"
    subprocess.run([sys.executable, "-m", "certdir", "init", "--data-dir", str(data),
                    "--suffix", SUFFIX], check=True, capture_output=True)
    config = load(data)
    assert config.ca is not None
    authority = unlock(config.ca, data, SUFFIX)
    policies = {**authority.config.policies, "smime-signing": "kms", "smime-encryption": "kms"}
    authority = dataclasses.replace(
        authority, config=dataclasses.replace(authority.config, policies=policies))
    dsa = open_directory(config)
    for uid in ("alice", "bob", "officer"):
        person(dsa, uid)
    person(dsa, "nomail", mail=False)
    with dsa.backend.transaction() as txn:
        writer = DirectoryWriter(dsa, txn, dsa.root_dn)
        # `certdir init` may have made the vault already (it does unless --no-kms).
        vault = (Vault.unlock(writer.records, passphrase.read_bytes().strip())
                 if passphrase.exists() else Vault.create(writer.records, b"secret", NOW))
        (audited,) = writer.records.rows("SELECT coalesce(max(seq), 0) FROM kms_audit")[0]
    try:
        yield KMS(config, authority, dsa, vault, KMSConfig(), audited)
    finally:
        dsa.backend.close()


@pytest.fixture
def kms(tmp_path: Path) -> Iterator[KMS]:
    with opened(tmp_path) as made:
        yield made


def signing_request() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    return x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).sign(
        key, hashes.SHA256()).public_bytes(Encoding.DER)


def der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(Encoding.DER)


def test_enroll_user_issues_a_token_and_audits(kms: KMS) -> None:
    token = kms.enroll()
    assert token.startswith("ct-")
    (pending,) = kms.run(lambda w: tokens.pending(w.records))
    assert (pending.entry, pending.kind) == (ALICE, "enroll")
    assert pending.expires - pending.created == dt.timedelta(hours=168)
    assert kms.actions() == [(OFFICER, "token.issued", ALICE)]
    with kms.dsa.backend.reading() as records:
        assert token not in repr(records.rows("SELECT * FROM kms_audit"))


@pytest.mark.parametrize("dn, message", [
    (NOMAIL, "has no mail address"),
    (f"uid=nobody,{SUFFIX}", "no entry uid=nobody"),
])
def test_enroll_user_refusals(kms: KMS, dn: str, message: str) -> None:
    with pytest.raises(KMSError, match=message):
        kms.enroll(dn)
    assert kms.count("kms_tokens") == 0
    assert kms.actions() == []


def test_redeem_publishes_escrows_and_bundles(kms: KMS, tmp_path: Path) -> None:
    done = kms.redeem(kms.enroll(), signing_request())
    assert done.entry == ALICE
    assert kms.certificates() == {der(done.signing), der(done.encryption)}
    for certificate in (done.signing, done.encryption):
        assert certificate.extensions.get_extension_for_class(
            x509.SubjectAlternativeName).value.get_values_for_type(
            x509.RFC822Name) == ["alice@example.com"]
    usage = done.encryption.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_encipherment and not usage.digital_signature
    (record,) = kms.run(lambda w: escrow.find(w.records, owner=ALICE))
    assert record.serial == done.encryption.serial_number
    _, escrowed = kms.run(lambda w: escrow.recover(w.records, kms.vault, record.id))

    bundle = pkcs12.load_pkcs12(done.pkcs12, PASSWORD)
    assert bundle.key is not None and bundle.cert is not None
    assert bundle.cert.certificate == done.encryption
    assert bundle.cert.friendly_name == b"alice@example.com"
    assert bundle.key.public_key() == done.encryption.public_key() == escrowed.public_key()
    extra = [c.certificate for c in bundle.additional_certs]
    assert extra == [done.signing, *kms.authority.chain]

    path = tmp_path / "bundle.p12"
    path.write_bytes(done.pkcs12)
    shown = subprocess.run(["openssl", "pkcs12", "-in", str(path), "-passin",
                            f"pass:{PASSWORD.decode()}", "-nodes"],
                           check=True, capture_output=True).stdout
    opened = serialization.load_pem_private_key(shown, None)
    assert opened.public_key() == done.encryption.public_key()
    info = subprocess.run(["openssl", "pkcs12", "-in", str(path), "-passin",
                           f"pass:{PASSWORD.decode()}", "-info", "-noout"],
                          check=True, capture_output=True).stderr.decode()
    assert "PBES2, PBKDF2, AES-256-CBC" in info and "MAC: sha256" in info
    assert kms.actions() == [(OFFICER, "token.issued", ALICE), (ALICE, "enrolled", ALICE)]
    assert kms.run(lambda w: tokens.pending(w.records)) == []


def _nothing_left(kms: KMS) -> None:
    assert kms.certificates() == set()
    assert kms.count("kms_escrow") == 0
    with kms.dsa.backend.reading() as records:
        assert Store(records).certificates(entry=ALICE) == []
    (pending,) = kms.run(lambda w: tokens.pending(w.records))
    assert pending.used is None
    assert [action for _, action, _ in kms.actions()] == ["token.issued"]


@pytest.mark.parametrize("csr, password, message", [
    (b"not a request", PASSWORD, "not a PKCS#10 request"),
    ((DATA / "csr-sha1.pem").read_bytes(), PASSWORD, "SHA-1"),
    (None, b"", "password must not be empty"),
])
def test_refused_redeem_leaves_nothing(kms: KMS, csr: bytes | None, password: bytes,
                                       message: str) -> None:
    token = kms.enroll()
    with pytest.raises(KMSError, match=message):
        kms.redeem(token, signing_request() if csr is None else csr, password)
    _nothing_left(kms)
    kms.redeem(token, signing_request())  # the token still works
    assert len(kms.certificates()) == 2


def test_redeem_refuses_a_failing_encryption_key_and_leaves_nothing(kms: KMS) -> None:
    token = kms.enroll()
    kms.settings = KMSConfig(encryption_key_type="ed25519")  # no encryption with Ed25519
    with pytest.raises(KMSError, match="smime-encryption"):
        kms.redeem(token, signing_request())
    _nothing_left(kms)


def test_token_used_twice_changes_nothing(kms: KMS) -> None:
    token = kms.enroll()
    kms.redeem(token, signing_request())
    before = kms.certificates(), kms.count("kms_escrow"), kms.actions()
    with pytest.raises(KMSError, match="already used"):
        kms.redeem(token, signing_request())
    assert (kms.certificates(), kms.count("kms_escrow"), kms.actions()) == before


def test_expired_token_is_refused(kms: KMS) -> None:
    token = kms.enroll()
    with pytest.raises(KMSError, match="expired on"):
        kms.redeem(token, signing_request(), when=NOW + dt.timedelta(days=8))
    _nothing_left(kms)


def test_each_token_is_bound_to_its_entry(kms: KMS) -> None:
    alice, bob = kms.enroll(), kms.enroll(f"uid=bob,{SUFFIX}")
    done = kms.redeem(bob, signing_request())
    assert done.entry == f"uid=bob,{SUFFIX}"
    assert kms.certificates() == set()
    assert len(kms.certificates(f"uid=bob,{SUFFIX}")) == 2
    assert kms.redeem(alice, signing_request()).entry == ALICE


def _prepared(kms: KMS, token: str) -> enrollment.Prepared:
    """A redemption's slow part, done, before its transaction."""
    return enrollment.prepare(kms.authority, kms.settings, enrollment.claim(kms.dsa, token, NOW),
                              signing_request(), PASSWORD, NOW)


def test_the_guard_catches_a_redemption_that_signs(kms: KMS,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    claimed = enrollment.claim(kms.dsa, kms.enroll(), NOW)
    request = signing_request()
    with no_slow_crypto(monkeypatch), pytest.raises(SlowWorkInTransaction):
        enrollment.prepare(kms.authority, kms.settings, claimed, request, PASSWORD, NOW)


def test_commit_gets_everything_signed_and_sealed(kms: KMS,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    prepared = _prepared(kms, kms.enroll())
    with no_slow_crypto(monkeypatch):
        done = kms.run(lambda w: enrollment.commit(kms.authority, w, kms.vault, prepared, NOW))
    assert (done.signing, done.encryption, done.pkcs12) == (
        prepared.signing.certificate, prepared.encryption.certificate, prepared.pkcs12)
    assert kms.certificates() == {der(done.signing), der(done.encryption)}


def test_one_token_redeemed_twice_at_once_exactly_one_wins(kms: KMS) -> None:
    token = kms.enroll()
    # Both redemptions check the token and do their slow part before either commits.
    first, second = _prepared(kms, token), _prepared(kms, token)
    won = kms.run(lambda w: enrollment.commit(kms.authority, w, kms.vault, first, NOW))
    before = (kms.certificates(), kms.count("kms_escrow"), kms.actions(),
              kms.count("ca_certificates"), kms.count("ca_requests"))
    with pytest.raises(KMSError, match="already used"):
        kms.run(lambda w: enrollment.commit(kms.authority, w, kms.vault, second, NOW))
    assert (kms.certificates(), kms.count("kms_escrow"), kms.actions(),
            kms.count("ca_certificates"), kms.count("ca_requests")) == before
    assert kms.certificates() == {der(won.signing), der(won.encryption)}
