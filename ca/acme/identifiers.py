"""ACME identifiers (RFC 8555 §7.1.3, §7.1.4; RFC 8738 for IP addresses).

- An identifier's type is `dns` or `ip` (`TYPES`); any other is
  unsupportedIdentifier.
- A `dns` value is a domain name in ASCII (§7.1.4: a name with U-labels is
  sent as A-labels, RFC 5890), normalised once: lowercase, without a
  trailing dot. At most 253 characters in labels of 1 to 63 letters, digits
  and hyphens, none starting or ending with a hyphen (RFC 1123 §2.1); "--"
  in the third and fourth places only in an A-label ("xn--"), which must
  decode (RFC 5891 §4.2.3.1); the last label is not all digits, and an IP
  address is never a `dns` value (RFC 8738 §3: it is an `ip` identifier).
- A wildcard (§7.1.3) is "*." once, leftmost, before such a name; only a
  `dns` identifier may be one. Only dns-01 validates it (§7.1.3, §8.3,
  RFC 8737 §3), at the name below the "*." (`name`).
- An `ip` value is one IPv4 or IPv6 address, never a network or a zone,
  normalised to its textual form of RFC 1123 §2.1 or RFC 5952 §4
  (RFC 8738 §3).
- A value that breaks these rules is rejectedIdentifier naming it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ca.acme.problems import AcmeProblem

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_NAME = 253
_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
WILDCARD = "*."


def _label_error(label: str) -> str | None:
    if not _LABEL.fullmatch(label):
        return f"label {label!r} is not 1 to 63 letters, digits and inner hyphens"
    if label[2:4] == "--":
        if not label.startswith("xn--"):
            return f"label {label!r} has '--' in the third and fourth places"
        try:
            label.encode("ascii").decode("idna")
        except UnicodeError:
            return f"label {label!r} is not a valid A-label"
    return None


def _dns_name(value: str) -> str:
    name = value.lower().removesuffix(".")
    base = name.removeprefix(WILDCARD)
    if not base.isascii():
        raise ValueError("not ASCII (send U-labels as A-labels, RFC 8555 §7.1.4)")
    if len(base) > MAX_NAME:
        raise ValueError(f"longer than {MAX_NAME} characters")
    for label in base.split("."):
        why = _label_error(label)
        if why is not None:
            raise ValueError(why)
    if base.rsplit(".", 1)[-1].isdigit():
        raise ValueError("an IP address or a numeric top-level label is not a domain name "
                         "(an address is an ip identifier, RFC 8738 §3)")
    return name


def _ip_address(value: str) -> str:
    if "%" in value or "/" in value:
        raise ValueError("one address, without a zone or a prefix length")
    return str(ipaddress.ip_address(value))


# Identifier type -> its value's normal form (ValueError when the value breaks the rules).
TYPES: Mapping[str, Callable[[str], str]] = {
    "dns": _dns_name,
    "ip": _ip_address,
}


@dataclass(frozen=True, slots=True)
class Identifier:
    """One identifier of an order, validated and normalised on construction."""

    type: str
    value: str

    def __post_init__(self) -> None:
        normal = TYPES.get(self.type)
        if normal is None:
            raise AcmeProblem("unsupportedIdentifier",
                              f"identifier type {self.type!r} (supported: "
                              + ", ".join(sorted(TYPES)) + ")")
        if not isinstance(self.value, str):
            raise AcmeProblem("rejectedIdentifier", f"{self.type} identifier value "
                              f"{self.value!r} is not a string")
        try:
            object.__setattr__(self, "value", normal(self.value))
        except ValueError as e:
            raise AcmeProblem("rejectedIdentifier",
                              f"{self.type} identifier {self.value!r}: {e}") from None

    @property
    def wildcard(self) -> bool:
        return self.value.startswith(WILDCARD)

    @property
    def name(self) -> str:
        """The value without its wildcard: the name a validation looks at."""
        return self.value.removeprefix(WILDCARD)

    @property
    def address(self) -> IPAddress | None:
        """An ip identifier's address; None for a name."""
        return ipaddress.ip_address(self.value) if self.type == "ip" else None

    def __str__(self) -> str:
        return f"{self.type}:{self.value}"
