"""Where validation may connect: a host's addresses, as the policy allows them.

- The policy's `resolve` overrides come first (split horizon, tests); any
  other name goes to the system resolver, getaddrinfo in a thread (it
  blocks; the reactor must not), within `connect_timeout_s`.
- A name that does not resolve, or to no address, is a `dns` problem.
- When the policy lists networks, every address of the name must lie in
  one: a name resolving elsewhere is `Refused` (rejectedIdentifier), so no
  public name leads validation to an internal address (SSRF). Validation
  connects to the addresses checked here, never to a second lookup of the
  name, which could answer otherwise (DNS rebinding).
- An ip identifier is its own address, checked the same way.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.error import TimeoutError as TwistedTimeout
from twisted.internet.threads import deferToThread

from ca.acme.identifiers import Identifier, IPAddress
from ca.acme.policy import AcmePolicy
from ca.acme.problems import AcmeProblem


class Refused(AcmeProblem):
    """A problem of the policy, not of the network: retrying cannot change it."""


def _lookup(name: str) -> tuple[IPAddress, ...]:
    found = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
    return tuple(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in found))


async def addresses(policy: AcmePolicy, host: Identifier) -> tuple[IPAddress, ...]:
    """The addresses of `host` validation may connect to, in the resolver's order."""
    from twisted.internet import reactor

    found: tuple[IPAddress, ...]
    address = host.address
    if address is not None:
        found = (address,)
    elif host.name in policy.resolve:
        found = policy.resolve[host.name]
    else:
        lookup: Deferred[tuple[IPAddress, ...]] = deferToThread(_lookup, host.name)
        clock: Any = reactor
        lookup.addTimeout(policy.connect_timeout_s, clock)
        try:
            found = await lookup
        except socket.gaierror as e:
            raise AcmeProblem("dns", f"{host.name}: {e.strerror}") from None
        except TwistedTimeout:
            raise AcmeProblem("dns", f"{host.name}: no answer from the system resolver "
                              f"within {policy.connect_timeout_s:g} s") from None
    if not found:
        raise AcmeProblem("dns", f"{host.name}: no address")
    outside = [str(a) for a in found if not policy.connects_to(a)]
    if outside:
        raise Refused("rejectedIdentifier", f"{host.value} resolves to "
                      + ", ".join(outside) + ", outside the networks ca.acme.allowed lists")
    return found
