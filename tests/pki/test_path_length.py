"""ca.path_length against RFC 5280 §4.2.1.9 and §6.1.4 (l), (m).

Chains are built here with cryptography (Ed25519, names CA0 = root ...);
each case gives the pathLenConstraints from the root down.
"""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import NameOID

from ca.path_length import room, violations

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _name(text: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])


def chain_of(limits: tuple[int | None, ...], leaf: bool = False) -> list[x509.Certificate]:
    """Root first, then one CA per further limit (then a leaf); returned leaf first."""
    built: list[x509.Certificate] = []
    issuer_key = None
    for depth, limit in enumerate((*limits, *(("leaf",) if leaf else ()))):
        key = Ed25519PrivateKey.generate()
        is_ca = limit != "leaf"
        certificate = (
            x509.CertificateBuilder().subject_name(_name(f"CA{depth}" if is_ca else "leaf"))
            .issuer_name(_name(f"CA{max(depth - 1, 0)}")).public_key(key.public_key())
            .serial_number(depth + 1).not_valid_before(NOW)
            .not_valid_after(NOW + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(
                ca=is_ca, path_length=limit if isinstance(limit, int) else None),
                critical=True)
            .sign(issuer_key or key, None))
        built.append(certificate)
        issuer_key = key
    return built[::-1]


ROOM = [
    # (pathLenConstraints root first, largest path length for a new sub-CA, binding CA)
    ((None,), None, None),
    ((0,), -1, "CA0"),
    ((1,), 0, "CA0"),
    ((None, 0), -1, "CA1"),
    ((2, None), 0, "CA0"),
    ((2, 1), 0, "CA1"),
    ((1, None), -1, "CA0"),
    ((5, 3, 0), -1, "CA2"),
    ((5, 3, 2), 1, "CA2"),
]


@pytest.mark.parametrize(("limits", "limit", "binding"), ROOM)
def test_room(limits: tuple[int | None, ...], limit: int | None, binding: str | None) -> None:
    found = room(chain_of(limits))
    assert found.limit == limit
    bound = None if found.bound_by is None else found.bound_by.subject.rfc4514_string()
    assert bound == (None if binding is None else f"CN={binding}")


VIOLATIONS = [
    # (pathLenConstraints root first, CAs exceeded, nearest the leaf first)
    ((None, None, None), []),
    ((0,), []),
    ((0, None), ["CA0"]),
    ((1, 0), []),
    ((1, None, None), ["CA0"]),
    ((None, 0, None), ["CA1"]),
    ((1, 1, 5), ["CA0"]),
    ((1, 0, None), ["CA1", "CA0"]),
]


@pytest.mark.parametrize(("limits", "exceeded"), VIOLATIONS)
def test_violations(limits: tuple[int | None, ...], exceeded: list[str]) -> None:
    found = violations(chain_of(limits, leaf=True))
    assert [line.split(": ")[1].split(" has")[0] for line in found] == [
        f"CN={name}" for name in exceeded]
