"""Key types, hashes, keys at rest and key identifiers (ca.keys)."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, rsa
from pyasn1.codec.der import decoder as der_decoder
from pyasn1_modules import rfc5280

from ca import keys
from ca.errors import CAError

CHEAP_TYPES = ("rsa2048", "p256", "p384", "ed25519")


@pytest.mark.parametrize("key_type", CHEAP_TYPES)
def test_generate_round_trips_through_key_type_of(key_type: str) -> None:
    key = keys.generate(key_type)
    assert keys.key_type_of(key) == key_type
    assert keys.key_type_of(key.public_key()) == key_type


def test_unknown_key_type_lists_the_known_ones() -> None:
    with pytest.raises(CAError, match=r"unknown key type 'rsa1024' \(known: rsa2048, .*ed25519\)"):
        keys.generate("rsa1024")


REFUSED = [
    # (description, key factory, message)
    ("RSA 1024", lambda: rsa.generate_private_key(65537, 1024),
     "RSA 1024-bit keys are refused; at least 2048 bits"),
    ("RSA 2560", lambda: rsa.generate_private_key(65537, 2560),
     "RSA 2560-bit keys are not supported"),
    ("P-521", lambda: ec.generate_private_key(ec.SECP521R1()),
     "ECDSA curve secp521r1 is not supported"),
    ("secp256k1", lambda: ec.generate_private_key(ec.SECP256K1()),
     "ECDSA curve secp256k1 is not supported"),
    ("DSA", lambda: dsa.generate_private_key(2048), "DSA keys are not supported"),
    ("Ed448", ed448.Ed448PrivateKey.generate, "Ed448 keys are not supported"),
]


@pytest.mark.parametrize(("description", "make", "message"), REFUSED, ids=[r[0] for r in REFUSED])
def test_refused_keys(description: str, make: object, message: str) -> None:
    assert callable(make)
    key = make()
    with pytest.raises(CAError, match=message):
        keys.key_type_of(key)
    with pytest.raises(CAError, match=message):
        keys.key_type_of(key.public_key())


@pytest.mark.parametrize(
    ("key_type", "expected"),
    [("rsa2048", "sha256"), ("p256", "sha256"), ("p384", "sha384"), ("ed25519", None)],
)
def test_signature_hash_per_key_type(key_type: str, expected: str | None) -> None:
    algorithm = keys.signature_hash(keys.generate(key_type))
    assert (algorithm and algorithm.name) == expected


@pytest.mark.parametrize(
    ("algorithm", "shown"),
    [(hashes.MD5(), "MD5"), (hashes.SHA1(), "SHA-1"), (hashes.SHA224(), "SHA-224")],
)
def test_weak_hashes_are_refused(algorithm: hashes.HashAlgorithm, shown: str) -> None:
    with pytest.raises(
        CAError, match=f"^the request is signed with {shown}; only SHA-256 or stronger is accepted$"
    ):
        keys.check_hash(algorithm, "the request")


@pytest.mark.parametrize(
    "algorithm", [hashes.SHA256(), hashes.SHA384(), hashes.SHA512(), hashes.SHA3_256(), None]
)
def test_strong_hashes_pass(algorithm: hashes.HashAlgorithm | None) -> None:
    keys.check_hash(algorithm, "the request")


@pytest.mark.parametrize("key_type", CHEAP_TYPES)
def test_encrypted_key_round_trip(key_type: str) -> None:
    key = keys.generate(key_type)
    pem = keys.encrypt_private_key(key, b"correct horse")
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    again = keys.decrypt_private_key(pem, b"correct horse", "the CA key")
    assert again.public_key() == key.public_key()


def test_wrong_passphrase() -> None:
    pem = keys.encrypt_private_key(keys.generate("p256"), b"correct horse")
    with pytest.raises(CAError, match=r"^wrong passphrase for the CA key$"):
        keys.decrypt_private_key(pem, b"battery staple", "the CA key")


def test_unencrypted_key_is_refused() -> None:
    pem = keys.generate("p256").private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(CAError, match="the CA key is not an encrypted PKCS#8 private key"):
        keys.decrypt_private_key(pem, b"anything", "the CA key")


def test_empty_passphrase_is_refused() -> None:
    with pytest.raises(CAError, match="empty passphrase"):
        keys.encrypt_private_key(keys.generate("p256"), b"")


@pytest.mark.parametrize("key_type", CHEAP_TYPES)
def test_key_id_is_rfc7093_method_1(key_type: str) -> None:
    public = keys.generate(key_type).public_key()
    spki, _ = der_decoder.decode(
        public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        asn1Spec=rfc5280.SubjectPublicKeyInfo(),
    )
    bit_string = spki["subjectPublicKey"].asOctets()
    assert keys.key_id(public) == hashlib.sha256(bit_string).digest()[:20]


def test_encrypted_key_is_pbes2_pbkdf2_sha256_aes256_and_openssl_reads_it(tmp_path: Path) -> None:
    key = keys.generate("p256")
    path = tmp_path / "key.pem"
    path.write_bytes(keys.encrypt_private_key(key, b"correct horse"))
    structure = subprocess.run(
        ["openssl", "asn1parse", "-in", str(path)], capture_output=True, text=True, check=True
    ).stdout
    for expected in ("PBES2", "PBKDF2", "INTEGER           :0927C0", "hmacWithSHA256",
                     "aes-256-cbc"):
        assert expected in structure
    opened = subprocess.run(
        ["openssl", "pkey", "-in", str(path), "-passin", "pass:correct horse", "-pubout"],
        capture_output=True, check=True,
    ).stdout
    assert opened == key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
