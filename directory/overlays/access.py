"""The minimum access policy, until fine-grained ACLs arrive.

- userPassword is hidden from everyone but the root DN: never returned,
  never usable in a filter or compare (RFC 4513 §6.3: stored passwords are
  sensitive even when hashed).
- Anonymous search and compare are allowed when `access.anonymous_read`
  is on (the default, mail clients need it); otherwise refused with
  insufficientAccessRights. The root DSE and the subschema subentry are
  always readable: clients need them to connect (RFC 4512 §5.1).
- Updates need an authenticated identity: anonymous updates get
  insufficientAccessRights. The root DN may change anything; any other
  identity may only change its own userPassword (modify), and use
  Password Modify for itself (checked by that operation).
"""

from __future__ import annotations

from directory.acl.identity import identity_of
from directory.acl.view import View
from directory.operation import Handler, Operation, Outcome
from directory.protocol.messages import (
    AddRequest,
    CompareRequest,
    DelRequest,
    ModifyDNRequest,
    ModifyRequest,
    SearchRequest,
)
from directory.protocol.results import LDAPError, ResultCode

HIDDEN = frozenset({"userpassword"})
READS = (SearchRequest, CompareRequest)
UPDATES = (AddRequest, DelRequest, ModifyRequest, ModifyDNRequest)


def _denied(what: str) -> LDAPError:
    return LDAPError(ResultCode.INSUFFICIENT_ACCESS_RIGHTS, what)


def _own_password(op: Operation) -> bool:
    request = op.request
    if not isinstance(request, ModifyRequest) or op.session.anonymous:
        return False
    if op.dsa.parse_dn(request.dn) != op.session.bound:
        return False
    return all(op.dsa.schema.attribute(c.attribute.split(";")[0]).key == "userpassword"
               for c in request.changes)


def overlay(handler: Handler) -> Handler:
    def check(op: Operation) -> Outcome:
        session = op.session
        request = op.request
        op.access = View(op.dsa.acl, identity_of(op), op.dsa.backend.get)
        if not session.is_root:
            op.hidden = HIDDEN
        if isinstance(request, READS) and session.anonymous and (
                not op.dsa.config.anonymous_read):
            target = request.base if isinstance(request, SearchRequest) else request.dn
            dn = op.dsa.parse_dn(target)
            if dn and dn != op.dsa.subschema_dn:
                raise _denied("anonymous read access is disabled")
        if isinstance(request, UPDATES) and not session.is_root:
            if session.anonymous:
                raise _denied("anonymous updates are not allowed; bind first")
            if not _own_password(op):
                raise _denied(f"{session.bound} may only change its own password")
        return handler(op)

    return check
