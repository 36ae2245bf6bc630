"""LDAP URLs (RFC 4516) as referrals and continuation references carry them,
read for chasing: `ldap[s]://host[:port]/dn[?attributes?scope?filter]`.

- The host is required (a URL without one names no server to ask); the
  port defaults to 389 (ldap) or 636 (ldaps).
- The DN is percent-decoded; an empty one is the root.
- A scope of base, one, sub or subordinate (RFC 4516 and the children
  scope's extension) is kept; none means the search's own. A
  filter or extensions in a referral are not followed: such a URL is not
  chased (RFC 4511 §4.1.10 leaves their use to the client).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from directory.protocol.messages import Scope

PORTS = {"ldap": 389, "ldaps": 636}
SCOPES = {"base": Scope.BASE, "one": Scope.ONE, "sub": Scope.SUB, "subordinate": Scope.CHILDREN}


@dataclass(frozen=True, slots=True)
class Target:
    scheme: str
    host: str
    port: int
    dn: str
    scope: Scope | None


def parse_url(text: str) -> Target | None:
    """The server and search a referral URL names, None when it cannot be chased."""
    try:
        parts = urlsplit(text)
        port = parts.port or PORTS.get(parts.scheme, 0)
    except ValueError:
        return None
    if parts.scheme not in PORTS or not parts.hostname:
        return None
    fields = parts.query.split("?") if parts.query else []
    if len(fields) > 2 and any(fields[2:]):
        return None
    scope_text = fields[1].lower() if len(fields) > 1 else ""
    if scope_text and scope_text not in SCOPES:
        return None
    return Target(parts.scheme, parts.hostname, port, unquote(parts.path.removeprefix("/")),
                  SCOPES.get(scope_text))
