"""Access control for every operation (slapd.access(5)).

- Each operation gets `op.access`, the access policy's answers for the
  identity it acts as (the bound DN, or the proxied one); the root DN has
  every right. The operations ask it for every entry and attribute they
  read, test, return or change (`directory.ops.visibility`,
  `directory.ops.privileges`).
- Updates need an authenticated identity: anonymous updates get
  insufficientAccessRights whatever the rules, before anything is read.
"""

from __future__ import annotations

from directory.acl.identity import identity_of
from directory.acl.view import View
from directory.operation import Handler, Operation, Outcome
from directory.protocol.messages import AddRequest, DelRequest, ModifyDNRequest, ModifyRequest
from directory.protocol.results import LDAPError, ResultCode

UPDATES = (AddRequest, DelRequest, ModifyRequest, ModifyDNRequest)


def overlay(handler: Handler) -> Handler:
    def check(op: Operation) -> Outcome:
        view = op.access = View(op.dsa.acl, identity_of(op), op.dsa.backend.get)
        if isinstance(op.request, UPDATES) and view.who.anonymous:
            raise LDAPError(ResultCode.INSUFFICIENT_ACCESS_RIGHTS,
                            "anonymous updates are not allowed; bind first")
        return handler(op)

    return check
