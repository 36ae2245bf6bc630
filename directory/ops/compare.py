"""Compare (RFC 4511 §4.10).

- The entry must exist (noSuchObject); the attribute type must be known
  (undefinedAttributeType) and have an equality rule
  (inappropriateMatching).
- compareTrue (6) when some value of the attribute, or of a subtype,
  matches; compareFalse (5) when none does; noSuchAttribute (16) when the
  entry has no such attribute.
- Access (`privileges`): compare on the attribute, else
  insufficientAccessRights (50), so passwords cannot be guessed this way;
  an entry not disclosed to the requester gives noSuchObject whatever the
  attribute (as slapd answers). A subtype the requester may not compare
  counts as absent.
"""

from __future__ import annotations

from directory.acl.rights import Rights
from directory.entry import resolve
from directory.matching import InvalidValue
from directory.operation import Operation, Outcome, Reply
from directory.ops import assertion, privileges
from directory.ops.visibility import values_with, view_of
from directory.protocol.messages import CompareRequest, CompareResponse, Result
from directory.protocol.results import LDAPError, ResultCode


def handle(op: Operation) -> Outcome:
    request = op.request
    assert isinstance(request, CompareRequest)
    dsa = op.dsa
    dn = op.target
    op.detail = f'dn="{request.dn}" attr="{request.attribute}"'
    resolved = resolve(dsa.schema, request.attribute)
    view = view_of(op)
    entry = privileges.disclosed(view, dn)
    privileges.require(view, entry, Rights.COMPARE, resolved.type.key)
    assertion.check(op, entry, view)
    rule = dsa.schema.equality(resolved.type)
    if rule is None:
        raise LDAPError(ResultCode.INAPPROPRIATE_MATCHING,
                        f"{request.attribute} has no equality matching rule")
    values = values_with(view, dsa.schema, entry, resolved, Rights.COMPARE)
    if not values:
        raise LDAPError(ResultCode.NO_SUCH_ATTRIBUTE, f"{dn} has no {request.attribute}")
    try:
        wanted = rule.assertion_key(request.value)
    except InvalidValue:
        raise LDAPError(ResultCode.INVALID_ATTRIBUTE_SYNTAX,
                        f"value does not fit the syntax of {request.attribute}") from None
    for value in values:
        try:
            if rule.value_key(value) == wanted:
                return [Reply(CompareResponse(Result(ResultCode.COMPARE_TRUE)))]
        except InvalidValue:
            continue
    return [Reply(CompareResponse(Result(ResultCode.COMPARE_FALSE)))]
