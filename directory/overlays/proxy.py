"""Proxied authorization (RFC 4370): an operation performed as another identity.

- The control is parsed with the others (`directory.protocol.controls`):
  it must be critical and carry a value (protocolError otherwise), and it
  applies to search, compare, add, delete, modify, modify DN and extended
  operations but StartTLS (RFC 4370 §3); on a bind or StartTLS it is an
  unavailable critical extension (12).
- The value is an authzId (RFC 4513 §5.2.1.8): "dn:<DN>", or empty for
  anonymous. A "u:" name, anything else, or a DN that does not parse names
  no identity here: authorizationDenied (123).
- The identity the client is bound as must be allowed to act as that one
  by the access policy (`View.may_proxy`; the root DN always is), else
  authorizationDenied (123). Allowed, the operation runs as the proxied
  identity (`Operation.authz`): access control, WhoAmI and the access
  log see it.
"""

from __future__ import annotations

from directory.acl.identity import identity_of
from directory.acl.view import View
from directory.operation import Handler, Operation, Outcome
from directory.protocol.controls import PROXIED_AUTHZ, AuthzId
from directory.protocol.dn import DN
from directory.protocol.results import LDAPError, ResultCode


def _denied(why: str) -> LDAPError:
    return LDAPError(ResultCode.AUTHORIZATION_DENIED, why)


def _target(op: Operation, authzid: AuthzId) -> DN:
    if not authzid.text:
        return DN.ROOT
    if not authzid.text.startswith("dn:"):
        raise _denied(f"authzId {authzid.text!r}: only the dn: form is supported")
    try:
        return op.dsa.parse_dn(authzid.text.removeprefix("dn:"))
    except LDAPError:
        raise _denied(f"authzId {authzid.text!r} is not a DN") from None


def overlay(handler: Handler) -> Handler:
    def proxied(op: Operation) -> Outcome:
        authzid = op.controls.get(PROXIED_AUTHZ)
        if authzid is None:
            return handler(op)
        target = _target(op, authzid)
        who = identity_of(op)
        if not View(op.dsa.acl, who, op.dsa.backend.get).may_proxy(target):
            raise _denied(f"{who.dn or 'anonymous'} may not act as {target or 'anonymous'}")
        op.authz = target
        return handler(op)

    return proxied
