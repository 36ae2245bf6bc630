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
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any, Protocol

from ca.acme.identifiers import Identifier, IPAddress
from ca.acme.problems import AcmeProblem

__all__ = ["AcmePolicy", "Identifier", "Section", "default_allowed", "policy_from"]

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

LOOPBACK = ("127.0.0.0/8", "::1/128")
MAX_PORT = 65535
MAX_RETRIES = 10
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


def _port(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_PORT


def _seconds(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def _retries(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_RETRIES


# The numeric settings: their YAML types, and the rule each value keeps (with its words).
NUMBERS: Mapping[str, tuple[type | tuple[type, ...], Callable[[object], bool], str]] = {
    "http01_port": (int, _port, f"a port, 1 to {MAX_PORT}"),
    "tls_alpn01_port": (int, _port, f"a port, 1 to {MAX_PORT}"),
    "connect_timeout_s": ((int, float), _seconds, "seconds, > 0"),
    "read_timeout_s": ((int, float), _seconds, "seconds, > 0"),
    "total_timeout_s": ((int, float), _seconds, "seconds, > 0"),
    "retries": (int, _retries, f"0 to {MAX_RETRIES}"),
    "backoff_s": ((int, float), _seconds, "seconds, > 0"),
}


def _address(value: object) -> IPAddress:
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return value
    try:
        address = Identifier("ip", value).address if isinstance(value, str) else None
    except AcmeProblem:
        address = None
    if address is None:
        raise ValueError(f"{value!r} is not an IP address")
    return address


def _name(value: object) -> str:
    try:
        name = Identifier("dns", value).value if isinstance(value, str) else None
    except AcmeProblem:
        name = None
    if name is None:
        raise ValueError(f"{value!r} is not a domain name")
    return name


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
        resolve = {_name(name): tuple(
                       _address(a) for a in ((addresses,) if isinstance(addresses, str)
                                             else addresses))
                   for name, addresses in self.resolve.items()}
        for name, (_, valid, hint) in NUMBERS.items():
            if not valid(getattr(self, name)):
                raise ValueError(f"{name}: {getattr(self, name)!r} is not allowed ({hint})")
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
        values = value if isinstance(value, list) else [value]
        try:
            normal = _name(name)
        except ValueError as e:
            raise section.error(key, str(e)) from None
        try:
            resolve[normal] = tuple(_address(v) for v in values)
        except ValueError:
            values = []
        if not values:
            raise section.error(key, f"expected an IP address or a list of them, "
                                f"got {value!r}")
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
    defaults = {f.name: f.default for f in fields(AcmePolicy)}
    numbers = {name: section.get(name, kind, defaults[name], valid, hint)
               for name, (kind, valid, hint) in NUMBERS.items()}
    policy = AcmePolicy(
        allowed=_allowed(section),
        resolve=_resolve(section),
        dns_resolver=_dns_resolver(section),
        profile=section.get("profile", str, defaults["profile"], bool, "a profile name"),
        **numbers,
    )
    section.finish()
    return policy
