"""Path length constraints (RFC 5280 §4.2.1.9, §6.1.4 (l) and (m)).

- A CA certificate's pathLenConstraint is the largest number of
  non-self-issued intermediate CA certificates that may follow it on a
  path; the end-entity certificate does not count, nor does a self-issued
  CA certificate (a key rollover).
- The root's constraint counts as well: `openssl verify` enforces it, and
  RFC 5937 lets a relying party apply a trust anchor's constraints.
- `room` is what a CA may still give a new subordinate: the largest
  pathLenConstraint it may carry (None: no limit), or less than 0 when no
  subordinate CA may be signed below this CA at all, with the CA whose
  constraint decides.
- `violations` checks a whole path (leaf first, root last) and names every
  CA whose constraint the path exceeds, as `openssl verify` reports
  `path length constraint exceeded`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509


@dataclass(frozen=True, slots=True)
class Room:
    """The largest path length a new subordinate may have, and why."""
    limit: int | None
    bound_by: x509.Certificate | None

    @property
    def constraint(self) -> int:
        """The deciding CA's own pathLenConstraint."""
        assert self.bound_by is not None
        value = constraint_of(self.bound_by)
        assert value is not None
        return value


def constraint_of(certificate: x509.Certificate) -> int | None:
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    except x509.ExtensionNotFound:
        return None
    return constraints.value.path_length


def _self_issued(certificate: x509.Certificate) -> bool:
    return certificate.issuer == certificate.subject


def _counted(certificates: Sequence[x509.Certificate]) -> int:
    return sum(1 for c in certificates if not _self_issued(c))


def room(chain: Sequence[x509.Certificate]) -> Room:
    """For a new subordinate CA below `chain[0]` (chain: this CA first, root last)."""
    best = Room(None, None)
    for k, certificate in enumerate(chain):
        limit = constraint_of(certificate)
        if limit is None:
            continue
        # Below chain[k] would sit the new subordinate and the non-self-issued
        # CAs of chain[:k]; what remains is the subordinate's own allowance.
        left = limit - 1 - _counted(chain[:k])
        if best.limit is None or left < best.limit:
            best = Room(left, certificate)
    return best


def violations(path: Sequence[x509.Certificate]) -> list[str]:
    """One line per CA of `path` (leaf first, root last) whose constraint it exceeds."""
    found = []
    for i, certificate in enumerate(path[1:], start=1):
        limit = constraint_of(certificate)
        below = _counted(path[1:i])
        if limit is not None and below > limit:
            found.append(f"path length constraint exceeded: "
                         f"{certificate.subject.rfc4514_string()} has pathLenConstraint "
                         f"{limit}, and {below} CA certificate(s) follow it on this path "
                         "(RFC 5280 §6.1.4 (l), (m))")
    return found
