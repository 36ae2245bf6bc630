"""Challenge validation (RFC 8555 §8): `validate` answers for every kind.

- `METHODS` is the table of challenge kinds: http-01 (http01.py, §8.3),
  tls-alpn-01 (tls_alpn01.py, RFC 8737), dns-01 (dns01.py, §8.4), each
  with the identifier types it validates and whether it validates a
  wildcard (only dns-01, §7.1.3; RFC 8738 §7: never dns-01 for an ip
  identifier). An unknown kind, or dns-01 without `ca.acme.dns_resolver`,
  is malformed; a kind that cannot validate the identifier, or an
  identifier the policy does not allow, rejectedIdentifier. `offered`
  says which kinds an authorization should carry.
- The token is base64url (§8.1: nothing outside that alphabet), the key
  authorization the token, ".", and a base64url thumbprint (§8.1), else
  malformed: nothing else reaches a URL, a header or a DNS name.
- Retries (§8.2 lets the server retry a validation query): after a failed
  attempt come up to `retries` more, `backoff_s` apart and doubling, each
  attempt connecting to the next of the host's addresses; all of them
  within `total_timeout_s`. The answer is the last attempt's problem. A
  `Refused` problem (the policy's) is final at once.
- Nothing blocks the reactor: lookups run in a thread, connections are
  Twisted's. `validate` is a coroutine of Deferreds: run it as Twisted runs
  coroutines (`Deferred.fromCoroutine`); cancelling that Deferred stops it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.error import TimeoutError as TwistedTimeout
from twisted.internet.task import deferLater

from ca.acme import dns01, http01, tls_alpn01
from ca.acme.identifiers import Identifier
from ca.acme.policy import AcmePolicy
from ca.acme.problems import AcmeProblem
from ca.acme.resolve import Refused

_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")

Check = Callable[[AcmePolicy, Identifier, str, str, int], Coroutine[Any, Any, None]]


@dataclass(frozen=True, slots=True)
class Method:
    """How one challenge kind validates, and what it may validate."""

    check: Check
    types: frozenset[str]
    wildcard: bool
    needs_resolver: bool = False


METHODS: Mapping[str, Method] = {
    "http-01": Method(http01.check, frozenset({"dns", "ip"}), wildcard=False),
    "tls-alpn-01": Method(tls_alpn01.check, frozenset({"dns", "ip"}), wildcard=False),
    "dns-01": Method(dns01.check, frozenset({"dns"}), wildcard=True, needs_resolver=True),
}


def _usable(policy: AcmePolicy, method: Method) -> bool:
    return not method.needs_resolver or policy.dns_resolver is not None


def _fits(method: Method, identifier: Identifier) -> bool:
    return identifier.type in method.types and (method.wildcard or not identifier.wildcard)


def offered(policy: AcmePolicy, identifier: Identifier) -> tuple[str, ...]:
    """The challenge kinds an authorization for `identifier` carries under `policy`."""
    return tuple(kind for kind, method in METHODS.items()
                 if _usable(policy, method) and _fits(method, identifier))


def _method(policy: AcmePolicy, kind: str, identifier: Identifier, token: str,
            key_authorization: str) -> Method:
    method = METHODS.get(kind)
    if method is None or not _usable(policy, method):
        raise AcmeProblem("malformed", f"challenge type {kind!r} is not offered (offered: "
                          + ", ".join(offered(policy, identifier)) + ")")
    if not _BASE64URL.fullmatch(token):
        raise AcmeProblem("malformed", "the token is not base64url (RFC 8555 §8.1)")
    thumbprint = key_authorization.removeprefix(token + ".")
    if thumbprint == key_authorization or not _BASE64URL.fullmatch(thumbprint):
        raise AcmeProblem("malformed", "the key authorization is not the token, '.' and a "
                          "base64url thumbprint (RFC 8555 §8.1)")
    if not _fits(method, identifier):
        raise AcmeProblem("rejectedIdentifier", f"{kind} cannot validate {identifier.value!r} "
                          "(wildcards: dns-01 only; ip identifiers: not dns-01)")
    if not policy.allows(identifier):
        raise AcmeProblem("rejectedIdentifier", f"{identifier.value!r} is not within "
                          "ca.acme.allowed")
    return method


async def _attempt(policy: AcmePolicy, method: Method, identifier: Identifier, token: str,
                   key_authorization: str, attempt: int, seconds: float) -> None:
    from twisted.internet import reactor

    clock: Any = reactor
    running: Deferred[None] = Deferred.fromCoroutine(
        method.check(policy, identifier, token, key_authorization, attempt))
    running.addTimeout(seconds, clock)
    try:
        await running
    except TwistedTimeout:
        raise AcmeProblem("connection", f"{identifier.value}: no answer within the "
                          f"{policy.total_timeout_s:g} s a validation may take") from None


async def validate(policy: AcmePolicy, kind: str, identifier: Identifier, token: str,
                   key_authorization: str) -> None:
    """Returns when `identifier` passes challenge `kind`; raises AcmeProblem otherwise."""
    from twisted.internet import reactor

    method = _method(policy, kind, identifier, token, key_authorization)
    deadline = time.monotonic() + policy.total_timeout_s
    last: AcmeProblem | None = None
    for attempt in range(policy.retries + 1):
        if attempt:
            delay = policy.backoff_s * 2 ** (attempt - 1)
            if time.monotonic() + delay >= deadline:
                break
            await deferLater(reactor, delay, lambda: None)
        try:
            await _attempt(policy, method, identifier, token, key_authorization, attempt,
                           deadline - time.monotonic())
        except Refused:
            raise
        except AcmeProblem as problem:
            last = problem
        else:
            return
    assert last is not None
    raise last
