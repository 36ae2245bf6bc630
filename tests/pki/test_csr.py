"""PKCS#10 requests as the CA accepts them (ca.csr)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from ca import keys
from ca.csr import load_csr, requested_dns_names
from ca.errors import CAError

DATA = Path(__file__).parent.parent / "data" / "pki"


def _request(
    key: object, dns_names: tuple[str, ...] = (), algorithm: hashes.HashAlgorithm | None = None
) -> x509.CertificateSigningRequest:
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "host.example.com")])
    )
    if dns_names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names]), critical=False
        )
    if algorithm is None and not isinstance(key, ed25519.Ed25519PrivateKey):
        algorithm = hashes.SHA256()
    return builder.sign(key, algorithm)  # type: ignore[arg-type]


@pytest.mark.parametrize("key_type", ["rsa2048", "p256", "p384", "ed25519"])
@pytest.mark.parametrize("encoding", [Encoding.PEM, Encoding.DER])
def test_good_requests_load(key_type: str, encoding: Encoding) -> None:
    request = _request(keys.generate(key_type), ("host.example.com", "www.example.com"))
    loaded = load_csr(request.public_bytes(encoding))
    assert loaded == request
    assert requested_dns_names(loaded) == ("host.example.com", "www.example.com")


def test_no_san_means_no_dns_names() -> None:
    assert requested_dns_names(_request(keys.generate("p256"))) == ()


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"hello",
        b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
        b"\x30\x03\x02\x01\x01",
    ],
)
def test_garbage_is_not_a_request(data: bytes) -> None:
    with pytest.raises(CAError, match=r"^not a PKCS#10 request \(PEM or DER\)$"):
        load_csr(data)


@pytest.mark.parametrize(("name", "shown"), [("csr-md5.pem", "MD5"), ("csr-sha1.pem", "SHA-1")])
def test_weak_hash_requests_are_refused(name: str, shown: str) -> None:
    with pytest.raises(
        CAError, match=f"^the request is signed with {shown}; only SHA-256 or stronger is accepted$"
    ):
        load_csr((DATA / name).read_bytes())


def test_sha224_request_is_refused() -> None:
    request = _request(keys.generate("p256"), algorithm=hashes.SHA224())
    with pytest.raises(CAError, match="signed with SHA-224"):
        load_csr(request.public_bytes(Encoding.DER))


def test_rsa_1024_request_is_refused() -> None:
    with pytest.raises(CAError, match=r"^RSA 1024-bit keys are refused; at least 2048 bits$"):
        load_csr((DATA / "csr-rsa1024.pem").read_bytes())


def test_p521_request_is_refused() -> None:
    request = _request(ec.generate_private_key(ec.SECP521R1()), algorithm=hashes.SHA512())
    with pytest.raises(CAError, match="curve secp521r1 is not supported"):
        load_csr(request.public_bytes(Encoding.PEM))


@pytest.mark.parametrize("key_type", ["rsa2048", "p256", "ed25519"])
def test_broken_signature_is_refused(key_type: str) -> None:
    der = bytearray(_request(keys.generate(key_type)).public_bytes(Encoding.DER))
    # The signature BIT STRING ends the encoding; its last octet is signature
    # bytes for every algorithm (for ECDSA, the low octet of s).
    der[-1] ^= 0x01
    with pytest.raises(CAError, match=r"^the request's signature does not verify$"):
        load_csr(bytes(der))
