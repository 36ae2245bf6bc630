"""userPassword schemes: what verifies, what never does, what gets stored.

The legacy vectors are the password "secret" as OpenLDAP 2.5's slappasswd
writes it ({MD5} ... {SSHA512}, {CRYPT} with -c '$6$%.16s', '$5$rounds=6000$%.16s',
'$1$%.8s'), and as passlib's ldap_pbkdf2_* (pw-pbkdf2's format) writes it.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import replace

import pytest
from argon2 import PasswordHasher

from directory import passwords
from directory.passwords import Hashing, HashPolicy

LEGACY = [
    b"{MD5}Xr4ilOzQ4PCOq3aQ0qbuaQ==",
    b"{SMD5}2zK2k5NYzGDwZBuCPWUyCiphtcE=",
    b"{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=",
    b"{SSHA}1A+1Xzlh2OHbd6MK7pa2xA8qonjfluG4",
    b"{SSHA256}FjzOSRuaFGwW+8dqDEsKq/rEB5uQeinXZarbkUELcTjpcyMB5rcGHQ==",
    b"{SSHA384}YHuSVId+0r29GPxR37LIKWg30bHVmbDy1xaC1ExyTdgf/uev2AmfNeRXOA8Oexst8u/I0p/wDPI=",
    b"{SSHA512}axywM+KB/TEFta5RUrSPknzUJuDUdGve7W6nRBPIqRC1qK2eRFv5Qxj1mwhrv3IEfS+MzSuvRkfg"
    b"+DbjYfVHt7IqrqzIGsOO",
    b"{CRYPT}$6$dYj5c53ha3DnIq49$ztDYLd7EcqHRfCT3VeF82Ptmx4X4MXVphaTCWcHKI.bt/PTOzOwuQzMm79zg"
    b"XpGbWv4AQU3updvsG.7XfzsPJ.",
    b"{CRYPT}$5$rounds=6000$.wyOXK91N0qxCDrN$YQMSK1B8SbWQrm1KR2r0djJvAv5/6Qr0LqjbR6M9YR0",
    b"{CRYPT}$1$XqyCfhl9$9g6AKDDK6ZzHk6pQqrt/51",
    b"{PBKDF2}10000$sLZW6t07J6SUUqpVqtX63w$Ub838fnqYplXdUpcU2W3StUjATc",
    b"{PBKDF2-SHA256}10000$2/s/BwAgxHivVapVqrVWyg$CQ8P46o92tWEOQ7.3JNMn85nBjFzl1DdUx9TzOdCDQI",
    b"{PBKDF2-SHA512}10000$X6s1BkCode5dSyklhLB27g$97fs38RFDtEuf1SVYOu451DENwV3crGVzCXqsgHs1xfK"
    b"CIvr23P4srH1Uec5q4LoqFzw10ujgV1KTB5QHTbFOA",
]


@pytest.mark.parametrize("stored", LEGACY, ids=lambda s: s.split(b"}")[0][1:].decode())
def test_legacy_scheme_verifies_as_itself(stored: bytes) -> None:
    assert passwords.verify(stored, b"secret")
    assert not passwords.verify(stored, b"Secret")
    assert not passwords.verify(stored, stored)
    assert passwords.DEFAULT.needs_upgrade(stored)
    assert passwords.DEFAULT.prepare(stored) == stored


def test_scheme_is_case_insensitive() -> None:
    assert passwords.verify(b"{ssha}1A+1Xzlh2OHbd6MK7pa2xA8qonjfluG4", b"secret")


def test_argon2_round_trip() -> None:
    stored = passwords.hash_password(b"correct horse")
    assert stored.startswith(b"{ARGON2}$argon2id$")
    assert passwords.verify(stored, b"correct horse")
    assert not passwords.verify(stored, b"wrong")
    assert not passwords.DEFAULT.needs_upgrade(stored)


def test_argon2_with_other_parameters_is_upgraded() -> None:
    older = b"{ARGON2}" + PasswordHasher(time_cost=2, memory_cost=8192).hash("pw").encode()
    assert passwords.verify(older, b"pw")
    assert passwords.DEFAULT.needs_upgrade(older)


def argon2(time_cost: int, memory_kib: int, parallelism: int = 1) -> bytes:
    # A well-formed PHC string with the given cost: nothing needs computing it.
    return (f"{{ARGON2}}$argon2id$v=19$m={memory_kib},t={time_cost},p={parallelism}$"
            "c2FsdHNhbHRzYWx0c2FsdA$" + "A" * 43).encode()


OUTSIDE = [
    ("time cost", argon2(1_000_000, 65536)),
    ("memory", argon2(3, 2 * 1024 * 1024)),
    ("parallelism", argon2(3, 65536, 64)),
    ("pbkdf2 iterations", b"{PBKDF2-SHA256}1000000000$2/s/BwAgxHivVapVqrVWyg$"
                          b"CQ8P46o92tWEOQ7.3JNMn85nBjFzl1DdUx9TzOdCDQI"),
    ("crypt rounds", b"{CRYPT}$6$rounds=999999999$dYj5c53ha3DnIq49$ztDYLd7EcqHRfCT3VeF82P"),
]


@pytest.mark.parametrize("why, stored", OUTSIDE)
def test_outside_the_policy_never_verifies_and_costs_nothing(
        why: str, stored: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    # Costs nothing: the scheme's verification (hours of work at these costs) never runs.
    computed: list[bytes] = []
    prefix = passwords.prefix_of(stored)
    assert prefix is not None
    scheme = passwords.SCHEMES[prefix]

    def recorded(body: bytes, password: bytes) -> bool:
        computed.append(body)
        return False

    monkeypatch.setitem(passwords.SCHEMES, prefix, replace(scheme, verify=recorded))
    assert not passwords.DEFAULT.acceptable(stored)
    assert not passwords.verify(stored, b"secret")
    assert computed == []


def test_policy_is_configurable() -> None:
    strict = Hashing(HashPolicy(time_cost=1, memory_kib=8192, parallelism=1,
                                max_time_cost=2, max_memory_kib=16384, max_parallelism=1))
    assert strict.hash(b"pw").startswith(b"{ARGON2}$argon2id$v=19$m=8192,t=1,p=1$")
    assert not strict.acceptable(passwords.hash_password(b"pw"))


NEVER = [
    ("clear text is never compared", b"secret"),
    ("unknown scheme", b"{K5KEY}secret"),
    ("DES crypt is not offered", b"{CRYPT}aaqPiZY5xR5l."),
    ("bad base64", b"{SSHA}!!!!"),
    ("digest without salt", b"{SSHA}" + base64.b64encode(hashlib.sha1(b"secret").digest())),
    ("unsalted digest with a salt", b"{MD5}" + base64.b64encode(
        hashlib.md5(b"secretxx").digest() + b"xx")),
    ("broken argon2", b"{ARGON2}$argon2id$garbage"),
    ("pbkdf2 key of the wrong length", b"{PBKDF2-SHA512}10000$2/s/BwAgxHivVapVqrVWyg$"
                                       b"CQ8P46o92tWEOQ7.3JNMn85nBjFzl1DdUx9TzOdCDQI"),
]


@pytest.mark.parametrize("why, stored", NEVER)
def test_never_verifies(why: str, stored: bytes) -> None:
    assert not passwords.verify(stored, b"secret")
    assert not passwords.DEFAULT.acceptable(stored)


def test_prepare_hashes_clear_text_and_keeps_hashes() -> None:
    assert passwords.DEFAULT.prepare(b"secret").startswith(b"{ARGON2}")
    assert passwords.DEFAULT.prepare(LEGACY[3]) == LEGACY[3]


def test_dummy_costs_a_verification_with_the_servers_parameters() -> None:
    hashing = Hashing(HashPolicy())
    assert hashing.dummy.startswith(b"{ARGON2}$argon2id$v=19$m=65536,t=3,p=4$")
    assert hashing.dummy == hashing.dummy


def test_generated_passwords_differ() -> None:
    assert passwords.generate_password() != passwords.generate_password()
    assert len(passwords.generate_password()) >= 16
