"""The OCSP responder's core (`ca.ocsp`) and its signer (`ca.responder`), on a real
data directory (`certdir init`) inside real database transactions.

- Round trips: a request built with cryptography's OCSPRequestBuilder for a
  certificate of this CA gets a response signed by the delegated responder
  (signature checked with its key, responderID by key hash), echoing the
  CertID with the request's hash (SHA-1, SHA-256, SHA-384, SHA-512).
- Statuses: good; revoked with time and reason; hold is revoked with
  certificateHold and good again after release; a serial not issued here is
  unknown.
- Errors: bad DER and an empty body are malformedRequest, as is a critical
  extension we do not know; a CertID of another CA is unauthorized; no
  signer, or an expired one, is tryLater.
- Nonce: echoed (1-32 octets), ignored when longer; answers with one are
  never cached.
- Cache: reused while the status is unchanged, replaced after revoke, hold
  and release, refreshed after half its life, dropped with a new signer.
- The delegated responder certificate: EKU OCSPSigning only, nocheck,
  validity `responder_days`, recorded without a holder; renewal is due when
  missing or within `renew_days`. `signer: ca` and an Ed25519 key sign too.
- GET paths: base64 with or without padding, slashes split by the URL or not,
  URL-safe letters; anything else decodes to nothing (malformedRequest).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.ec import ECDSA, EllipticCurvePublicKey
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ca import ocsp as core
from ca import responder, revoke
from ca.authority import Authority, unlock
from ca.config import OCSPConfig
from ca.issue import commit, prepare
from ca.keys import PrivateKey
from ca.policy import Origin
from ca.profiles import profile
from ca.store import Store
from ca.web.ocsp import _from_path as from_path
from certdir.config import Config, load
from certdir.directory_open import open_directory
from directory.dsa import DSA
from directory.publisher import DirectoryWriter

SUFFIX = "dc=example,dc=com"
# The CA is made by `certdir init` now, so the responses are made now too.
T = TypeVar("T")


@dataclass
class CA:
    config: Config
    authority: Authority
    dsa: DSA
    signer: core.Signer
    # When the fixture made the CA: the tests' clock (a module-level time would be
    # older than the CA when pytest reaches this module minutes after collecting it).
    now: dt.datetime

    def run(self, job: Callable[[DirectoryWriter], T]) -> T:
        with self.dsa.backend.transaction() as txn:
            return job(DirectoryWriter(self.dsa, txn, self.dsa.root_dn))

    def issue(self) -> x509.Certificate:
        key = ec.generate_private_key(ec.SECP256R1())
        csr = (x509.CertificateSigningRequestBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "leaf")]))
               .add_extension(x509.SubjectAlternativeName([x509.DNSName("leaf.example.com")]),
                              critical=False)
               .sign(key, hashes.SHA256()).public_bytes(Encoding.DER))
        chosen = profile(self.authority.config.profiles, "tls-server")
        prepared = prepare(self.authority, csr, chosen, None, Origin.OFFICER, self.now)
        outcome = self.run(lambda w: commit(w, prepared, self.now))
        assert outcome.certificate is not None
        return outcome.certificate

    def responder(self, signer: core.Signer | None = None) -> core.Responder:
        return core.Responder(self.authority.certificate, self.authority.config.ocsp,
                              signer or self.signer)

    @contextmanager
    def store(self) -> Iterator[Store]:
        with self.dsa.backend.reading() as records:
            yield Store(records)


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CA]:
    data = tmp_path_factory.mktemp("ocsp") / "data"
    subprocess.run([sys.executable, "-m", "certdir", "init", "--data-dir", str(data),
                    "--suffix", SUFFIX], check=True, capture_output=True)
    config = load(data)
    assert config.ca is not None
    authority = unlock(config.ca, data, SUFFIX)
    dsa = open_directory(config)
    key, csr = responder.new_request(authority)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    prepared = prepare(authority, csr, responder.responder_profile(authority), None,
                       Origin.OFFICER, now)
    with dsa.backend.transaction() as txn:
        certificate = responder.issued(commit(DirectoryWriter(dsa, txn, dsa.root_dn), prepared,
                                              now))
    yield CA(config, authority, dsa, responder.delegated(authority, key, certificate), now)
    dsa.backend.close()


def request(certificate: x509.Certificate, issuer: x509.Certificate,
            algorithm: hashes.HashAlgorithm | None = None, nonce: bytes | None = None) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(certificate, issuer,
                                                       algorithm or hashes.SHA1())
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(Encoding.DER)


def answer(ca: CA, ocsp_responder: core.Responder, der: bytes,
           now: dt.datetime | None = None) -> core.Answer:
    """What the web resource does, without the web: check, read, cache or sign."""
    now = now or ca.now
    question = core.parse(der)
    ocsp_responder.check(question)
    signer = ocsp_responder.ready(now)
    with ca.store() as store:
        status = ocsp_responder.status(store, question)
    found = ocsp_responder.cached(question, status, now)
    if found is not None:
        return found
    made = ocsp_responder.sign(signer, question, status, now)
    ocsp_responder.keep(question, made, signer)
    return made


def response(made: core.Answer) -> ocsp.OCSPResponse:
    return ocsp.load_der_ocsp_response(made.der)


def refusal(call: Callable[[], object]) -> ocsp.OCSPResponseStatus:
    with pytest.raises(core.Refusal) as caught:
        call()
    return ocsp.load_der_ocsp_response(caught.value.der).response_status


def test_good_round_trip_is_signed_by_the_delegated_responder(ca: CA) -> None:
    leaf = ca.issue()
    parsed = response(answer(ca, ca.responder(), request(leaf, ca.authority.certificate)))
    assert parsed.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    assert parsed.certificate_status is ocsp.OCSPCertStatus.GOOD
    assert parsed.serial_number == leaf.serial_number
    assert parsed.responder_key_hash == x509.SubjectKeyIdentifier.from_public_key(
        ca.signer.certificate.public_key()).digest
    assert parsed.next_update_utc is not None
    assert parsed.next_update_utc - parsed.this_update_utc == dt.timedelta(hours=24)
    assert parsed.certificates == [ca.signer.certificate]
    public = ca.signer.certificate.public_key()
    assert isinstance(public, EllipticCurvePublicKey)
    public.verify(parsed.signature, parsed.tbs_response_bytes, ECDSA(hashes.SHA256()))


@pytest.mark.parametrize("algorithm", [hashes.SHA1(), hashes.SHA256(), hashes.SHA384(),
                                       hashes.SHA512()], ids=lambda a: a.name)
def test_cert_id_hash_is_echoed(ca: CA, algorithm: hashes.HashAlgorithm) -> None:
    leaf = ca.issue()
    parsed = response(answer(ca, ca.responder(),
                             request(leaf, ca.authority.certificate, algorithm)))
    assert (parsed.hash_algorithm.name, parsed.certificate_status) == (algorithm.name,
                                                                       ocsp.OCSPCertStatus.GOOD)


def test_revoked_with_time_and_reason(ca: CA) -> None:
    leaf = ca.issue()
    when = ca.now + dt.timedelta(minutes=5)
    ca.run(lambda w: revoke.revoke(ca.authority, w, leaf.serial_number,
                                   x509.ReasonFlags.key_compromise, when))
    parsed = response(answer(ca, ca.responder(), request(leaf, ca.authority.certificate)))
    assert (parsed.certificate_status, parsed.revocation_time_utc, parsed.revocation_reason) == (
        ocsp.OCSPCertStatus.REVOKED, when, x509.ReasonFlags.key_compromise)


def test_hold_is_revoked_then_good_after_release_and_the_cache_follows(ca: CA) -> None:
    leaf = ca.issue()
    ocsp_responder = ca.responder()
    der = request(leaf, ca.authority.certificate)
    before = answer(ca, ocsp_responder, der)
    assert answer(ca, ocsp_responder, der) is before
    ca.run(lambda w: revoke.revoke(ca.authority, w, leaf.serial_number,
                                   x509.ReasonFlags.certificate_hold, ca.now))
    held = response(answer(ca, ocsp_responder, der))
    assert (held.certificate_status, held.revocation_reason) == (
        ocsp.OCSPCertStatus.REVOKED, x509.ReasonFlags.certificate_hold)
    ca.run(lambda w: revoke.release(ca.authority, w, leaf.serial_number, ca.now))
    released = answer(ca, ocsp_responder, der)
    assert released is not before
    assert response(released).certificate_status is ocsp.OCSPCertStatus.GOOD


def test_unknown_serial(ca: CA) -> None:
    leaf = ca.issue()
    other = (x509.CertificateBuilder().subject_name(leaf.subject)
             .issuer_name(ca.authority.certificate.subject).public_key(leaf.public_key())
             .serial_number(x509.random_serial_number())
             .not_valid_before(ca.now).not_valid_after(ca.now + dt.timedelta(days=1))
             .sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256()))
    parsed = response(answer(ca, ca.responder(), request(other, ca.authority.certificate)))
    assert parsed.certificate_status is ocsp.OCSPCertStatus.UNKNOWN


def foreign_ca() -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    name = ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Other CA")])
    return (x509.CertificateBuilder().subject_name(name).issuer_name(ca_name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
            .sign(key, hashes.SHA256()))


def test_foreign_ca_is_unauthorized(ca: CA) -> None:
    other = foreign_ca()
    assert refusal(lambda: answer(ca, ca.responder(), request(other, other))) \
        is ocsp.OCSPResponseStatus.UNAUTHORIZED


def test_same_name_other_key_is_unauthorized(ca: CA) -> None:
    leaf = ca.issue()
    key = ec.generate_private_key(ec.SECP256R1())
    impostor = (x509.CertificateBuilder().subject_name(ca.authority.certificate.subject)
                .issuer_name(ca.authority.certificate.subject).public_key(key.public_key())
                .serial_number(1).not_valid_before(ca.now)
                .not_valid_after(ca.now + dt.timedelta(days=1)).sign(key, hashes.SHA256()))
    assert refusal(lambda: answer(ca, ca.responder(), request(leaf, impostor))) \
        is ocsp.OCSPResponseStatus.UNAUTHORIZED


@pytest.mark.parametrize("der", [b"", b"\x30\x03\x02\x01\x01", b"not DER at all"],
                         ids=["empty", "wrong-structure", "garbage"])
def test_malformed(der: bytes) -> None:
    assert refusal(lambda: core.parse(der)) is ocsp.OCSPResponseStatus.MALFORMED_REQUEST


def test_unknown_critical_extension_is_malformed(ca: CA) -> None:
    leaf = ca.issue()
    der = (ocsp.OCSPRequestBuilder().add_certificate(leaf, ca.authority.certificate,
                                                     hashes.SHA1())
           .add_extension(x509.UnrecognizedExtension(x509.ObjectIdentifier("1.2.3.4"), b"\x05\x00"),
                          critical=True)
           .build().public_bytes(Encoding.DER))
    assert refusal(lambda: core.parse(der)) is ocsp.OCSPResponseStatus.MALFORMED_REQUEST


def test_no_signer_is_try_later(ca: CA) -> None:
    leaf = ca.issue()
    ocsp_responder = core.Responder(ca.authority.certificate, ca.authority.config.ocsp)
    assert refusal(lambda: answer(ca, ocsp_responder, request(leaf, ca.authority.certificate))) \
        is ocsp.OCSPResponseStatus.TRY_LATER


def test_expired_signer_is_try_later(ca: CA) -> None:
    leaf = ca.issue()
    later = ca.signer.certificate.not_valid_after_utc + dt.timedelta(seconds=1)
    assert refusal(lambda: answer(ca, ca.responder(), request(leaf, ca.authority.certificate),
                                  later)) is ocsp.OCSPResponseStatus.TRY_LATER


def test_nonce_echoed_and_never_cached(ca: CA) -> None:
    leaf = ca.issue()
    ocsp_responder = ca.responder()
    first = answer(ca, ocsp_responder, request(leaf, ca.authority.certificate, nonce=b"1" * 16))
    second = answer(ca, ocsp_responder, request(leaf, ca.authority.certificate, nonce=b"2" * 16))
    nonces = [response(made).extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
              for made in (first, second)]
    assert nonces == [b"1" * 16, b"2" * 16]
    without = request(leaf, ca.authority.certificate)
    assert answer(ca, ocsp_responder, without) is answer(ca, ocsp_responder, without)


def test_overlong_nonce_ignored(ca: CA) -> None:
    leaf = ca.issue()
    made = answer(ca, ca.responder(), request(leaf, ca.authority.certificate, nonce=b"x" * 33))
    with pytest.raises(x509.ExtensionNotFound):
        response(made).extensions.get_extension_for_class(x509.OCSPNonce)


def test_cache_refreshed_after_half_its_life(ca: CA) -> None:
    leaf = ca.issue()
    ocsp_responder = ca.responder()
    der = request(leaf, ca.authority.certificate)
    first = answer(ca, ocsp_responder, der)
    assert answer(ca, ocsp_responder, der, ca.now + dt.timedelta(hours=11)) is first
    assert answer(ca, ocsp_responder, der, ca.now + dt.timedelta(hours=12)) is not first


def test_new_signer_drops_the_cache(ca: CA) -> None:
    leaf = ca.issue()
    ocsp_responder = ca.responder()
    der = request(leaf, ca.authority.certificate)
    first = answer(ca, ocsp_responder, der)
    ocsp_responder.use(responder.ca_signer(ca.authority))
    again = response(answer(ca, ocsp_responder, der))
    assert response(first).responder_key_hash != again.responder_key_hash
    assert again.certificates == []


def lifetime(certificate: x509.Certificate) -> dt.timedelta:
    # RFC 5280 §4.1.2.5 counts both ends: notAfter is a second short of the days.
    return (certificate.not_valid_after_utc - certificate.not_valid_before_utc
            + dt.timedelta(seconds=1))


def test_responder_certificate(ca: CA) -> None:
    certificate = ca.signer.certificate
    eku = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.OCSP_SIGNING]
    assert certificate.extensions.get_extension_for_class(x509.OCSPNoCheck).critical is False
    assert lifetime(certificate) == dt.timedelta(days=ca.authority.config.ocsp.responder_days)
    with ca.store() as store:
        record = store.certificate(certificate.serial_number)
    assert (record.profile, record.entry) == ("ocsp-signing", None)


@pytest.mark.parametrize(("days_left", "due"), [(30, False), (8, False), (6, True)])
def test_renewal_due_within_renew_days(ca: CA, days_left: int, due: bool) -> None:
    expiry = ca.signer.certificate.not_valid_after_utc
    assert responder.needs_renewal(ca.signer, OCSPConfig(renew_days=7),
                                   expiry - dt.timedelta(days=days_left)) is due


def test_renewal_due_without_signer() -> None:
    now = dt.datetime.now(dt.UTC)
    assert responder.needs_renewal(None, OCSPConfig(), now) is True


def test_ca_signer_signs_with_the_ca_key(ca: CA) -> None:
    leaf = ca.issue()
    parsed = response(answer(ca, ca.responder(responder.ca_signer(ca.authority)),
                             request(leaf, ca.authority.certificate)))
    assert parsed.responder_key_hash == x509.SubjectKeyIdentifier.from_public_key(
        ca.authority.certificate.public_key()).digest
    assert parsed.certificate_status is ocsp.OCSPCertStatus.GOOD


def self_signed(key: PrivateKey) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Ed CA")])
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1)).sign(key, None))


def test_ed25519_signs_pure(ca: CA) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    certificate = self_signed(key)
    question = core.parse(request(certificate, certificate))
    made = core.sign(core.Signer(certificate, key, ()), question, core.Status(
        ocsp.OCSPCertStatus.GOOD), ca.now, 1)
    parsed = response(made)
    key.public_key().verify(parsed.signature, parsed.tbs_response_bytes)
    assert parsed.signature_hash_algorithm is None


def test_responder_days_override_the_profile(ca: CA) -> None:
    config = dataclasses.replace(ca.authority.config,
                                 ocsp=OCSPConfig(responder_days=10, renew_days=2))
    authority = dataclasses.replace(ca.authority, config=config)
    _, csr = responder.new_request(authority)
    prepared = prepare(authority, csr, responder.responder_profile(authority), None,
                       Origin.OFFICER, ca.now)
    certificate = responder.issued(ca.run(lambda w: commit(w, prepared, ca.now)))
    assert lifetime(certificate) == dt.timedelta(days=10)


@pytest.mark.parametrize(("path", "der"), [
    ([b"MAE="], b"\x30\x01"),
    ([b"MAE"], b"\x30\x01"),
    ([b"+", b"", b"", b"", b"w=="], b"\xfb\xff\xff\xff"),
    ([b"-_8_"], b"\xfb\xff\x3f"),
    ([b"not base64!"], b""),
], ids=["padded", "unpadded", "raw-slash", "url-safe", "garbage"])
def test_get_path_decoding(path: list[bytes], der: bytes) -> None:
    assert from_path(path) == der
