"""Key types, signature hashes, keys at rest and key identifiers.

- Key types are a table (`KEY_TYPES`): RSA 2048/3072/4096, ECDSA P-256/P-384
  (RFC 5480), Ed25519 (RFC 8410). Anything else is refused: RSA below 2048 bits,
  other RSA sizes and curves, DSA, Ed448, X25519.
- Signatures use SHA-256 with RSA and P-256, SHA-384 with P-384 (RFC 5480 §4)
  and no separate hash with Ed25519 (RFC 8410 §6).
- Hashes of signatures we accept are SHA-256 or stronger; MD5, SHA-1 and SHA-224
  are refused (CA/Browser Forum BR §7.1.3.2, S/MIME BR §7.1.3.2).
- Private keys at rest are PKCS#8 PEM encrypted with PBES2 (RFC 8018 §6.2,
  RFC 5958 §3): PBKDF2-HMAC-SHA256, 600,000 rounds, and AES-256-CBC.
- Key identifiers follow RFC 7093 §2 method 1: the leftmost 160 bits of the
  SHA-256 hash of the subjectPublicKey BIT STRING value, so no SHA-1 is used.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa, x448, x25519
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from ca.errors import CAError

PrivateKey = RSAPrivateKey | EllipticCurvePrivateKey | Ed25519PrivateKey
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey
SignatureHash = hashes.SHA256 | hashes.SHA384


@dataclass(frozen=True, slots=True)
class KeyType:
    name: str
    family: str
    generate: Callable[[], PrivateKey]
    hash: Callable[[], SignatureHash] | None


def _rsa(bits: int) -> Callable[[], PrivateKey]:
    return lambda: rsa.generate_private_key(public_exponent=65537, key_size=bits)


def _ec(curve: ec.EllipticCurve) -> Callable[[], PrivateKey]:
    return lambda: ec.generate_private_key(curve)


KEY_TYPES: Mapping[str, KeyType] = {
    kt.name: kt
    for kt in (
        KeyType("rsa2048", "rsa", _rsa(2048), hashes.SHA256),
        KeyType("rsa3072", "rsa", _rsa(3072), hashes.SHA256),
        KeyType("rsa4096", "rsa", _rsa(4096), hashes.SHA256),
        KeyType("p256", "ec", _ec(ec.SECP256R1()), hashes.SHA256),
        KeyType("p384", "ec", _ec(ec.SECP384R1()), hashes.SHA384),
        KeyType("ed25519", "ed25519", Ed25519PrivateKey.generate, None),
    )
}

# OWASP's 2023 figure for PBKDF2-HMAC-SHA256; a quarter second to unlock.
PBKDF2_ITERATIONS = 600_000

_CURVES: Mapping[str, str] = {"secp256r1": "p256", "secp384r1": "p384"}

_REFUSED_KINDS: tuple[tuple[type, str], ...] = (
    (dsa.DSAPrivateKey, "DSA"),
    (dsa.DSAPublicKey, "DSA"),
    (ed448.Ed448PrivateKey, "Ed448"),
    (ed448.Ed448PublicKey, "Ed448"),
    (x25519.X25519PrivateKey, "X25519"),
    (x25519.X25519PublicKey, "X25519"),
    (x448.X448PrivateKey, "X448"),
    (x448.X448PublicKey, "X448"),
)

_STRONG_HASHES = frozenset({"sha256", "sha384", "sha512", "sha3-256", "sha3-384", "sha3-512"})
_HASH_DISPLAY: Mapping[str, str] = {"md5": "MD5", "sha1": "SHA-1", "sha224": "SHA-224"}

# The subjectPublicKey BIT STRING contents of each family (RFC 3279 §2.3.1,
# RFC 5480 §2.2, RFC 8410 §4), hashed for the key identifier.
_SUBJECT_PUBLIC_KEY: Mapping[str, tuple[serialization.Encoding, serialization.PublicFormat]] = {
    "rsa": (serialization.Encoding.DER, serialization.PublicFormat.PKCS1),
    "ec": (serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint),
    "ed25519": (serialization.Encoding.Raw, serialization.PublicFormat.Raw),
}


def generate(key_type: str) -> PrivateKey:
    try:
        kind = KEY_TYPES[key_type]
    except KeyError:
        raise CAError(
            f"unknown key type {key_type!r} (known: {', '.join(KEY_TYPES)})"
        ) from None
    return kind.generate()


def key_type_of(key: object) -> str:
    """The `KEY_TYPES` name of a public or private key; CAError for any other key."""
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        name = f"rsa{key.key_size}"
        if key.key_size < 2048:
            raise CAError(f"RSA {key.key_size}-bit keys are refused; at least 2048 bits")
        if name not in KEY_TYPES:
            raise CAError(f"RSA {key.key_size}-bit keys are not supported (2048, 3072, 4096 are)")
        return name
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        try:
            return _CURVES[key.curve.name]
        except KeyError:
            raise CAError(
                f"ECDSA curve {key.curve.name} is not supported (P-256 and P-384 are)"
            ) from None
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return "ed25519"
    kind = next((label for cls, label in _REFUSED_KINDS if isinstance(key, cls)), None)
    raise CAError(f"{kind or type(key).__name__} keys are not supported")


def public_key_of(certificate: x509.Certificate) -> PublicKey:
    key = certificate.public_key()
    key_type_of(key)
    if isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey):
        return key
    raise CAError(f"{type(key).__name__} keys are not supported")


def family_of(key: object) -> str:
    return KEY_TYPES[key_type_of(key)].family


def signature_hash(key: PrivateKey) -> SignatureHash | None:
    hash_type = KEY_TYPES[key_type_of(key)].hash
    return None if hash_type is None else hash_type()


def check_hash(algorithm: hashes.HashAlgorithm | None, what: str) -> None:
    """Refuse signatures made with a hash weaker than SHA-256.

    None is what an Ed25519 signature reports; the caller has already checked
    the key type, so None passes here.
    """
    if algorithm is None or algorithm.name in _STRONG_HASHES:
        return
    shown = _HASH_DISPLAY.get(algorithm.name, algorithm.name.upper())
    raise CAError(f"{what} is signed with {shown}; only SHA-256 or stronger is accepted")


def _der(tag: int, *parts: bytes) -> bytes:
    content = b"".join(parts)
    size = len(content)
    if size < 0x80:
        return bytes((tag, size)) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(length))) + length + content


def _der_integer(value: int) -> bytes:
    return _der(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


_PEM_BEGIN = b"-----BEGIN ENCRYPTED PRIVATE KEY-----"
_PEM_END = b"-----END ENCRYPTED PRIVATE KEY-----"
_SEQUENCE, _OCTET_STRING = 0x30, 0x04
# DER of the OIDs of RFC 8018 Appendix A.4 (PBES2), A.2 (PBKDF2), B.1.2
# (hmacWithSHA256, with its NULL parameters) and NIST's aes256-CBC.
_PBES2 = bytes.fromhex("06092a864886f70d01050d")
_PBKDF2 = bytes.fromhex("06092a864886f70d01050c")
_HMAC_SHA256 = bytes.fromhex("06082a864886f70d0209" "0500")
_AES256_CBC = bytes.fromhex("060960864801650304012a")


def encrypt_private_key(
    key: PrivateKey, passphrase: bytes, *, iterations: int = PBKDF2_ITERATIONS
) -> bytes:
    """PKCS#8 EncryptedPrivateKeyInfo PEM (RFC 5958 §3) under PBES2 (RFC 8018 §6.2).

    PBKDF2-HMAC-SHA256 with a 16-byte random salt and `iterations` rounds
    derives an AES-256-CBC key; cryptography's own BestAvailableEncryption
    uses only 2048 rounds, too few for a passphrase guarding a CA key.
    """
    if not passphrase:
        raise CAError("an empty passphrase cannot protect a private key")
    salt, iv = os.urandom(16), os.urandom(16)
    secret = PBKDF2HMAC(hashes.SHA256(), 32, salt, iterations).derive(passphrase)
    padder = padding.PKCS7(128).padder()
    plain = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    encryptor = Cipher(algorithms.AES256(secret), modes.CBC(iv)).encryptor()
    sealed = encryptor.update(padder.update(plain) + padder.finalize()) + encryptor.finalize()
    kdf = _der(
        _SEQUENCE,
        _PBKDF2,
        _der(
            _SEQUENCE,
            _der(_OCTET_STRING, salt),
            _der_integer(iterations),
            _der(_SEQUENCE, _HMAC_SHA256),
        ),
    )
    scheme = _der(_SEQUENCE, _AES256_CBC, _der(_OCTET_STRING, iv))
    algorithm = _der(_SEQUENCE, _PBES2, _der(_SEQUENCE, kdf, scheme))
    der = _der(_SEQUENCE, algorithm, _der(_OCTET_STRING, sealed))
    body = base64.b64encode(der)
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return b"\n".join([_PEM_BEGIN, *lines, _PEM_END, b""])


def decrypt_private_key(pem: bytes, passphrase: bytes, what: str) -> PrivateKey:
    if _PEM_BEGIN not in pem:
        raise CAError(f"{what} is not an encrypted PKCS#8 private key")
    try:
        key = serialization.load_pem_private_key(pem, passphrase)
    except (ValueError, TypeError):
        raise CAError(f"wrong passphrase for {what}") from None
    if isinstance(key, RSAPrivateKey | EllipticCurvePrivateKey | Ed25519PrivateKey):
        key_type_of(key)
        return key
    raise CAError(f"{what} holds a {type(key).__name__}, which is not supported")


def subject_public_key(key: PublicKey) -> bytes:
    """The contents of the subjectPublicKey BIT STRING (what OCSP's issuerKeyHash
    hashes, RFC 6960 §4.1.1)."""
    encoding, public_format = _SUBJECT_PUBLIC_KEY[family_of(key)]
    return key.public_bytes(encoding, public_format)


def key_id(key: PublicKey) -> bytes:
    digest = hashes.Hash(hashes.SHA256())
    digest.update(subject_public_key(key))
    return digest.finalize()[:20]
