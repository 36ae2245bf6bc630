"""userPassword schemes: what verifies, what never does, what gets stored."""

from __future__ import annotations

import base64
import hashlib

import pytest

from directory import passwords


def ssha(scheme: str, digest: str, password: bytes, salt: bytes) -> bytes:
    raw = hashlib.new(digest, password + salt).digest() + salt
    return f"{{{scheme}}}".encode() + base64.b64encode(raw)


SALTED = [
    ("SSHA", "sha1"),
    ("SSHA256", "sha256"),
    ("SSHA512", "sha512"),
]


@pytest.mark.parametrize("scheme, digest", SALTED)
def test_salted_sha_verifies(scheme: str, digest: str) -> None:
    stored = ssha(scheme, digest, b"secret", b"saltsalt")
    assert passwords.verify(stored, b"secret")
    assert not passwords.verify(stored, b"Secret")


def test_scheme_is_case_insensitive() -> None:
    stored = ssha("ssha", "sha1", b"secret", b"12345678")
    assert passwords.verify(stored, b"secret")


def test_argon2_round_trip() -> None:
    stored = passwords.hash_password(b"correct horse")
    assert stored.startswith(b"{ARGON2}$argon2id$")
    assert passwords.verify(stored, b"correct horse")
    assert not passwords.verify(stored, b"wrong")
    assert passwords.is_slow(stored)


NEVER = [
    ("clear text is never compared", b"secret"),
    ("unknown scheme", b"{MD5}Xr4ilOzQ4PCOq3aQ0qbuaQ=="),
    ("crypt is not offered", b"{CRYPT}aaqPiZY5xR5l."),
    ("bad base64", b"{SSHA}!!!!"),
    ("digest without salt", b"{SSHA}" + base64.b64encode(hashlib.sha1(b"secret").digest())),
    ("broken argon2", b"{ARGON2}$argon2id$garbage"),
]


@pytest.mark.parametrize("why, stored", NEVER)
def test_never_verifies(why: str, stored: bytes) -> None:
    assert not passwords.verify(stored, b"secret")


def test_prepare_hashes_clear_text_and_keeps_hashes() -> None:
    hashed = passwords.prepare(b"secret")
    assert hashed.startswith(b"{ARGON2}")
    existing = ssha("SSHA", "sha1", b"secret", b"saltsalt")
    assert passwords.prepare(existing) == existing


def test_generated_passwords_differ() -> None:
    assert passwords.generate_password() != passwords.generate_password()
    assert len(passwords.generate_password()) >= 16
