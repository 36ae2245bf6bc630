"""Key recovery (kms.recovery) with M=2 of N=3 officers, after a real
enrollment on a real data directory; the recovered key is proved with
`openssl cms`.

- One approval is not enough; the same officer twice, and anyone not named
  as an officer, are refused; the second officer's approval yields a token.
- The token's PKCS#12 holds the very key the old encryption certificate
  certifies: it decrypts a CMS message encrypted to that certificate.
- The token works once and only with the certificate of the escrowed key;
  a refusal leaves the token unused. Every step is in the audit log.
"""

from __future__ import annotations

import datetime as dt
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, pkcs12

from kms import audit, escrow, recovery, tokens
from kms.errors import KMSError
from tests.kms.test_enrollment import (
    ALICE,
    KMS,
    NOW,
    SUFFIX,
    der,
    opened,
    person,
    signing_request,
)

OFFICERS = tuple(f"uid=officer{i},{SUFFIX}" for i in (1, 2, 3))
FIRST, SECOND, THIRD = OFFICERS
LATER = NOW + dt.timedelta(days=30)
PASSWORD = b"recovered in 2026"


@pytest.fixture
def kms(tmp_path: Path) -> Iterator[KMS]:
    with opened(tmp_path) as made:
        yield made


def _enrolled(kms: KMS) -> tuple[int, bytes]:
    for i in (1, 2, 3):
        person(kms.dsa, f"officer{i}")
    done = kms.redeem(kms.enroll(), signing_request())
    (record,) = kms.run(lambda w: escrow.find(w.records, owner=ALICE))
    return record.id, der(done.encryption)


def _request(kms: KMS, escrow_id: int, officer: str = FIRST) -> int:
    return kms.run(lambda w: recovery.request(w.records, officer, escrow_id, LATER, OFFICERS))


def _approve(kms: KMS, recovery_id: int, officer: str) -> str | None:
    return kms.run(lambda w: recovery.approve(w.records, recovery_id, officer, LATER, OFFICERS, 2))


def _redeem(kms: KMS, token: str, certificate: bytes) -> bytes:
    recovered = kms.run(lambda w: recovery.redeem(w.records, kms.vault, token, PASSWORD,
                                                  certificate, LATER))
    return recovery.seal(recovered, PASSWORD)


def test_two_of_three_recover_the_key_that_decrypts_old_mail(kms: KMS, tmp_path: Path) -> None:
    escrow_id, certificate = _enrolled(kms)
    cert_pem = tmp_path / "cert.pem"
    cert_pem.write_bytes(x509.load_der_x509_certificate(certificate).public_bytes(Encoding.PEM))
    message, sealed = tmp_path / "message.txt", tmp_path / "message.cms"
    message.write_text("The quarterly figures, for Alice only.\n")
    subprocess.run(["openssl", "cms", "-encrypt", "-aes256", "-in", str(message),
                    "-out", str(sealed), "-recip", str(cert_pem)], check=True, capture_output=True)

    recovery_id = _request(kms, escrow_id)
    assert _approve(kms, recovery_id, FIRST) is None
    with pytest.raises(KMSError, match="has already approved recovery"):
        _approve(kms, recovery_id, FIRST.upper())
    with pytest.raises(KMSError, match="not a KMS officer"):
        _approve(kms, recovery_id, ALICE)
    token = _approve(kms, recovery_id, SECOND)
    assert token is not None and token.startswith("ct-")
    with pytest.raises(KMSError, match="is approved, not waiting for approval"):
        _approve(kms, recovery_id, THIRD)

    bundle = _redeem(kms, token, certificate)
    p12 = tmp_path / "recovered.p12"
    p12.write_bytes(bundle)
    key_pem = tmp_path / "key.pem"
    subprocess.run(["openssl", "pkcs12", "-in", str(p12), "-passin",
                    f"pass:{PASSWORD.decode()}", "-nodes", "-nocerts", "-out", str(key_pem)],
                   check=True, capture_output=True)
    opened = subprocess.run(["openssl", "cms", "-decrypt", "-in", str(sealed),
                             "-inkey", str(key_pem), "-recip", str(cert_pem)],
                            check=True, capture_output=True).stdout
    assert opened.replace(b"\r\n", b"\n") == message.read_bytes()

    with pytest.raises(KMSError, match="already used"):
        _redeem(kms, token, certificate)
    assert kms.actions()[-5:] == [(FIRST, "recovery.requested", ALICE),
                                  (FIRST, "recovery.approved", ALICE),
                                  (SECOND, "recovery.approved", ALICE),
                                  (SECOND, "token.issued", ALICE),
                                  (ALICE, "recovery.performed", ALICE)]
    assert kms.run(lambda w: audit.verify(w.records)) == []


def test_non_officers_cannot_request(kms: KMS) -> None:
    escrow_id, _ = _enrolled(kms)
    with pytest.raises(KMSError, match="is not a KMS officer"):
        _request(kms, escrow_id, ALICE)
    assert kms.count("kms_recoveries") == 0


def test_request_refusals(kms: KMS) -> None:
    escrow_id, _ = _enrolled(kms)
    with pytest.raises(KMSError, match="no escrowed key #999"):
        _request(kms, 999)
    first = _request(kms, escrow_id)
    with pytest.raises(KMSError, match=f"recovery {first} of escrowed key #{escrow_id} is "
                                       "already open"):
        _request(kms, escrow_id, SECOND)
    with pytest.raises(KMSError, match="no recovery 999"):
        _approve(kms, 999, FIRST)
    with pytest.raises(KMSError, match="between 1 and 3 approvals, not 4"):
        kms.run(lambda w: recovery.approve(w.records, first, FIRST, LATER, OFFICERS, 4))


def test_only_the_escrowed_keys_certificate_and_refusal_keeps_token(kms: KMS) -> None:
    escrow_id, certificate = _enrolled(kms)
    recovery_id = _request(kms, escrow_id)
    _approve(kms, recovery_id, FIRST)
    token = _approve(kms, recovery_id, THIRD)
    assert token is not None
    signing = next(c for c in kms.certificates() if c != certificate)
    with pytest.raises(KMSError, match="does not certify escrowed key"):
        _redeem(kms, token, signing)
    with pytest.raises(KMSError, match="not a DER certificate"):
        _redeem(kms, token, b"junk")
    (pending,) = kms.run(lambda w: tokens.pending(w.records))
    assert (pending.kind, pending.entry, pending.escrow_id) == ("recovery", ALICE, escrow_id)
    recovered = pkcs12.load_pkcs12(_redeem(kms, token, certificate), PASSWORD)
    assert recovered.cert is not None and der(recovered.cert.certificate) == certificate
    assert recovered.cert.friendly_name == b"alice@example.com"
