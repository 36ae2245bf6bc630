"""Compare (RFC 4511 §4.10).

- The entry must exist (noSuchObject); the attribute type must be known
  (undefinedAttributeType) and have an equality rule
  (inappropriateMatching).
- compareTrue (6) when some value of the attribute, or of a subtype,
  matches; compareFalse (5) when none does; noSuchAttribute (16) when the
  entry has no such attribute.
- Attributes hidden from the requester cannot be compared
  (insufficientAccessRights), so passwords cannot be guessed this way.
"""

from __future__ import annotations

from directory.entry import resolve
from directory.matching import InvalidValue
from directory.operation import Operation, Outcome, Reply
from directory.ops import assertion
from directory.protocol.messages import CompareRequest, CompareResponse, Result
from directory.protocol.results import LDAPError, ResultCode


def handle(op: Operation) -> Outcome:
    request = op.request
    assert isinstance(request, CompareRequest)
    dsa = op.dsa
    dn = dsa.parse_dn(request.dn)
    op.detail = f'dn="{request.dn}" attr="{request.attribute}"'
    resolved = resolve(dsa.schema, request.attribute)
    if resolved.type.key in op.hidden:
        raise LDAPError(ResultCode.INSUFFICIENT_ACCESS_RIGHTS,
                        f"no compare access to {request.attribute}")
    entry = dsa.backend.get(dn)
    if entry is None:
        raise dsa.no_such_object(dn)
    assertion.check(op, entry)
    rule = dsa.schema.equality(resolved.type)
    if rule is None:
        raise LDAPError(ResultCode.INAPPROPRIATE_MATCHING,
                        f"{request.attribute} has no equality matching rule")
    values = list(entry.values_for(dsa.schema, resolved))
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
