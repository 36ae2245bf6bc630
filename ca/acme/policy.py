"""What ACME may order and how it validates (`ca.acme` in certdir.yaml).

- `allowed` lists what may be ordered; anything else is rejectedIdentifier
  (RFC 8555 §7.4). An entry is a DNS suffix (".certdir.test": every name
  below it, wildcards of them included), an exact name ("www.certdir.test",
  "*.certdir.test") or an IP network ("127.0.0.0/8", "::1"). By default:
  this machine's own names (`socket.gethostname`, `socket.getfqdn`) and
  loopback (127.0.0.0/8, ::1).
- When `allowed` lists networks, validation connects only to addresses in
  them (resolve.py), and an ip identifier is allowed only inside one.
- `resolve` maps names to addresses (one or a list), looked up before the
  system resolver: split-horizon set-ups and tests.
- `http01_port` (80, RFC 8555 §8.3) and `tls_alpn01_port` (443, RFC 8737
  §3) are where validation connects, configurable for tests and port
  forwarding.
- `connect_timeout_s` bounds each connection and lookup, `read_timeout_s`
  each answer, `total_timeout_s` a whole validation with its retries;
  `retries` more attempts follow a failed one, `backoff_s` apart, doubling
  (RFC 8555 §8.2).
- `dns_resolver` ("host", "host:port" or "[v6]:port"; port 53) is where
  dns-01 asks (RFC 8555 §8.4); dns-01 is offered only when it is set.
- `profile` is the CA profile orders are issued with (tls-server).
- `policy_from(section)` reads these keys of `ca.acme` through certdir's
  section reader: a bad value is a ConfigError naming the key (an item as
  `allowed[2]`). It finishes the section, so an unknown key is one too: a
  caller with keys of its own in `ca.acme` reads them first.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

from ca.acme.identifiers import Identifier, IPAddress
from ca.acme.problems import AcmeProblem

__all__ = ["AcmePolicy", "Identifier", "Section", "default_allowed", "policy_from"]

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

LOOPBACK = ("127.0.0.0/8", "::1/128")
MAX_PORT = 65535
DNS_PORT = 53


def _network(entry: str) -> IPNetwork | None:
    try:
        return ipaddress.ip_network(entry)
    except ValueError:
        return None


def _entry(entry: str) -> str:
    """An `allowed` entry in its normal form (ValueError naming what is wrong)."""
    network = _network(entry)
    if network is not None:
        return str(network)
    if "/" in entry or entry.replace(".", "").replace(":", "").isdigit():
        raise ValueError(f"{entry!r} is not an IP network")
    suffix = entry.startswith(".")
    try:
        name = Identifier("dns", entry[1:] if suffix else entry)
    except AcmeProblem as e:
        raise ValueError(e.detail) from None
    if suffix and name.wildcard:
        raise ValueError(f"{entry!r}: a suffix covers wildcards already, without '*'")
    return ("." if suffix else "") + name.value


def default_allowed() -> tuple[str, ...]:
    """This machine's own names that are domain names, and loopback."""
    names = []
    for name in dict.fromkeys((socket.gethostname(), socket.getfqdn())):
        try:
            names.append(Identifier("dns", name).value)
        except AcmeProblem:
            continue
    return (*dict.fromkeys(names), *LOOPBACK)


def _address(value: object) -> IPAddress:
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return value
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not an IP address")
    address = Identifier("ip", value).address
    assert address is not None
    return address


@dataclass(frozen=True, slots=True)
class AcmePolicy:
    """The `ca.acme` settings: which identifiers, where and how long to validate."""

    allowed: tuple[str, ...] = field(default_factory=default_allowed)
    resolve: Mapping[str, tuple[IPAddress, ...]] = field(default_factory=dict)
    http01_port: int = 80
    tls_alpn01_port: int = 443
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 10.0
    total_timeout_s: float = 60.0
    retries: int = 2
    backoff_s: float = 1.0
    dns_resolver: tuple[str, int] | None = None
    profile: str = "tls-server"
    # Derived from `allowed`, once.
    names: frozenset[str] = field(init=False, repr=False, compare=False)
    suffixes: tuple[str, ...] = field(init=False, repr=False, compare=False)
    networks: tuple[IPNetwork, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        allowed = tuple(_entry(entry) for entry in self.allowed)
        networks = tuple(n for n in map(_network, allowed) if n is not None)
        resolve = {Identifier("dns", name).value: tuple(
                       _address(a) for a in ((addresses,) if isinstance(addresses, str)
                                             else addresses))
                   for name, addresses in self.resolve.items()}
        for name, port in (("http01_port", self.http01_port),
                           ("tls_alpn01_port", self.tls_alpn01_port)):
            if not 0 < port <= MAX_PORT:
                raise ValueError(f"{name}: {port} is not a port")
        set_ = object.__setattr__
        set_(self, "allowed", allowed)
        set_(self, "resolve", MappingProxyType(resolve))
        set_(self, "networks", networks)
        set_(self, "names", frozenset(e for e in allowed
                                      if not e.startswith(".") and _network(e) is None))
        set_(self, "suffixes", tuple(e for e in allowed if e.startswith(".")))

    def allows(self, identifier: Identifier) -> bool:
        """Whether `identifier` may be ordered (RFC 8555 §7.4)."""
        address = identifier.address
        if address is not None:
            return any(address in network for network in self.networks)
        if identifier.value in self.names:
            return True
        # A suffix holds the names below it, not itself; a wildcard's names are
        # one label below its own, so "*.certdir.test" is within ".certdir.test".
        below = "." + identifier.name if identifier.wildcard else identifier.value
        return any(below.endswith(suffix) for suffix in self.suffixes)

    def connects_to(self, address: IPAddress) -> bool:
        """Whether validation may connect to `address`: any, unless networks are listed."""
        return not self.networks or any(address in network for network in self.networks)


class Section(Protocol):
    """The part of certdir.config's section reader that `policy_from` uses."""

    def key(self, name: str) -> str: ...

    def get(self, name: str, kind: type | tuple[type, ...], default: Any = None,
            check: Callable[[Any], bool] | None = None, hint: str = "") -> Any: ...

    def strings(self, name: str, default: tuple[str, ...]) -> tuple[str, ...]: ...

    def error(self, name: str, why: str) -> Exception: ...

    def finish(self) -> None: ...


def _port(section: Section, name: str, default: int) -> int:
    value: int = section.get(name, int, default, lambda v: 0 < v <= MAX_PORT,
                             f"a port, 1 to {MAX_PORT}")
    return value


def _seconds(section: Section, name: str, default: float) -> float:
    value: float = section.get(name, (int, float), default,
                               lambda v: not isinstance(v, bool) and v > 0, "seconds, > 0")
    return float(value)


def _allowed(section: Section) -> tuple[str, ...]:
    entries = section.strings("allowed", default_allowed())
    for i, entry in enumerate(entries):
        try:
            _entry(entry)
        except ValueError as e:
            raise section.error(f"allowed[{i}]", str(e)) from None
    return entries


def _resolve(section: Section) -> dict[str, tuple[IPAddress, ...]]:
    overrides = section.get("resolve", dict, {})
    resolve = {}
    for name, value in overrides.items():
        key = f"resolve[{name!r}]"
        try:
            normal = Identifier("dns", name).value if isinstance(name, str) else None
        except AcmeProblem:
            normal = None
        if normal is None:
            raise section.error(key, f"{name!r} is not a domain name")
        values = value if isinstance(value, list) else [value]
        try:
            resolve[normal] = tuple(_address(v) for v in values)
        except (AcmeProblem, ValueError):
            raise section.error(key, f"expected an IP address or a list of them, "
                                f"got {value!r}") from None
        if not values:
            raise section.error(key, "expected an IP address or a list of them, got []")
    return resolve


def _dns_resolver(section: Section) -> tuple[str, int] | None:
    text = section.get("dns_resolver", str, "")
    if not text:
        return None
    host, port = text, DNS_PORT
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            port = int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else -1
    elif text.count(":") == 1:
        host, _, number = text.partition(":")
        port = int(number) if number.isdigit() else -1
    try:
        address = Identifier("ip", host).value
    except AcmeProblem:
        address = None
    if address is None or not 0 < port <= MAX_PORT:
        raise section.error("dns_resolver", f"{text!r} is not an IP address with an optional "
                            "port (127.0.0.1, 127.0.0.1:5353, [::1]:5353)")
    return address, port


def policy_from(section: Section) -> AcmePolicy:
    """The policy of `ca.acme`, every key checked (ConfigError naming it)."""
    policy = AcmePolicy(
        allowed=_allowed(section),
        resolve=_resolve(section),
        http01_port=_port(section, "http01_port", 80),
        tls_alpn01_port=_port(section, "tls_alpn01_port", 443),
        connect_timeout_s=_seconds(section, "connect_timeout_s", 5.0),
        read_timeout_s=_seconds(section, "read_timeout_s", 10.0),
        total_timeout_s=_seconds(section, "total_timeout_s", 60.0),
        retries=section.get("retries", int, 2, lambda v: 0 <= v <= 10, "0 to 10"),
        backoff_s=_seconds(section, "backoff_s", 1.0),
        dns_resolver=_dns_resolver(section),
        profile=section.get("profile", str, "tls-server", bool, "a profile name"),
    )
    section.finish()
    return policy
