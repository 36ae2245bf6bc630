"""The status machines of ACME objects (RFC 8555 §7.1.6), sans-IO.

- Challenges: pending -> processing -> valid | invalid.
- Authorizations: pending -> valid | invalid | deactivated | expired;
  valid -> revoked | deactivated | expired.
- Orders: pending -> ready (every authorization valid) | invalid (one of
  them is not: invalid, deactivated, expired, revoked); ready ->
  processing -> valid | invalid (the finalize that issues goes from ready
  to valid in one transaction, so processing lasts only while an officer
  decides a pending request); any of these -> invalid at expiry.
- Accounts: valid -> deactivated | revoked; neither comes back (§7.3.6).
- `AcmeStore` writes a new status only from the statuses `before` names,
  in the statement itself (`... WHERE status IN (...)`), so two front ends
  racing on one object cannot both move it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

CHALLENGE: Mapping[str, frozenset[str]] = {
    "pending": frozenset({"processing"}),
    "processing": frozenset({"valid", "invalid"}),
    "valid": frozenset(),
    "invalid": frozenset(),
}
AUTHORIZATION: Mapping[str, frozenset[str]] = {
    "pending": frozenset({"valid", "invalid", "deactivated", "expired"}),
    "valid": frozenset({"revoked", "deactivated", "expired"}),
    "invalid": frozenset(),
    "deactivated": frozenset(),
    "expired": frozenset(),
    "revoked": frozenset(),
}
ORDER: Mapping[str, frozenset[str]] = {
    "pending": frozenset({"ready", "invalid"}),
    "ready": frozenset({"processing", "valid", "invalid"}),
    "processing": frozenset({"valid", "invalid"}),
    "valid": frozenset(),
    "invalid": frozenset(),
}
ACCOUNT: Mapping[str, frozenset[str]] = {
    "valid": frozenset({"deactivated", "revoked"}),
    "deactivated": frozenset(),
    "revoked": frozenset(),
}


def before(machine: Mapping[str, frozenset[str]], status: str) -> tuple[str, ...]:
    """The statuses an object may move to `status` from."""
    return tuple(sorted(old for old, new in machine.items() if status in new))


def order_from(authorizations: Iterable[str]) -> str:
    """A pending order's status given its authorizations' (§7.1.6)."""
    statuses = set(authorizations)
    if statuses == {"valid"}:
        return "ready"
    if statuses - {"valid", "pending"}:
        return "invalid"
    return "pending"
