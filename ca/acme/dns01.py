"""dns-01 validation (RFC 8555 §8.4).

- Offered only when the policy names a resolver (`dns_resolver`); the TXT
  query goes to it (twisted.names' client), never to the system resolver,
  within `read_timeout_s`.
- The name asked is `_acme-challenge.` before the identifier's name (a
  wildcard's: the name below its "*.", RFC 8555 §7.1.3). dns-01 validates
  names only, never an ip identifier (RFC 8738 §7).
- One TXT record of the answer (its strings joined, as one value) must be
  the base64url of the SHA-256 digest of the key authorization, without
  padding (RFC 8555 §8.4, §2 for base64url); other records are ignored.
- No answer, an error (NXDOMAIN, SERVFAIL, REFUSED) or no TXT record is a
  dns problem; TXT records none of which match are incorrectResponse.
"""

from __future__ import annotations

import base64
import hashlib

from twisted.internet.defer import TimeoutError as QueryTimeout
from twisted.names import client, dns
from twisted.names.error import DNSNameError, DomainError

from ca.acme.identifiers import Identifier
from ca.acme.policy import AcmePolicy
from ca.acme.problems import AcmeProblem

PREFIX = "_acme-challenge."


def record(key_authorization: str) -> str:
    """The TXT value dns-01 expects for `key_authorization` (RFC 8555 §8.4)."""
    digest = hashlib.sha256(key_authorization.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


async def check(policy: AcmePolicy, identifier: Identifier, token: str,
                key_authorization: str, attempt: int) -> None:
    """One dns-01 validation query to the policy's resolver."""
    if policy.dns_resolver is None:
        raise AcmeProblem("malformed", "dns-01 is not offered: ca.acme.dns_resolver is not set")
    name = PREFIX + identifier.name
    resolver = client.Resolver(servers=[policy.dns_resolver])
    try:
        answers, _, _ = await resolver.lookupText(name, timeout=(policy.read_timeout_s,))
    except DNSNameError:
        raise AcmeProblem("dns", f"{name}: no such name (NXDOMAIN)") from None
    except DomainError as e:
        raise AcmeProblem("dns", f"{name}: {type(e).__name__}") from None
    except QueryTimeout:
        raise AcmeProblem("dns", f"{name}: no answer from {policy.dns_resolver[0]} port "
                          f"{policy.dns_resolver[1]} within {policy.read_timeout_s:g} s") \
            from None
    texts = [b"".join(answer.payload.data).decode("ascii", "replace")
             for answer in answers if answer.type == dns.TXT]
    if not texts:
        raise AcmeProblem("dns", f"{name}: no TXT record")
    if record(key_authorization) not in texts:
        raise AcmeProblem("incorrectResponse", f"{name}: no TXT record is the digest of the key "
                          f"authorization (found {texts[:4]})")
