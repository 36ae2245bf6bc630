"""The assertion control (RFC 4528): the operation proceeds only when the
filter is True for the target entry, evaluated inside the update's
transaction; otherwise assertionFailed (122) and nothing changes. The
filter is evaluated as the requester may, as a search filter is
(`visibility`): attributes it may not search are Undefined; on the root
DSE and the subschema subentry, which anyone may read, nothing is."""

from __future__ import annotations

from directory.acl.view import View
from directory.entry import Entry
from directory.operation import Operation
from directory.ops.visibility import filter_test
from directory.predicates import compile_filter
from directory.protocol.controls import ASSERTION
from directory.protocol.results import LDAPError, ResultCode
from directory.resolved_filter import resolve_filter


def check(op: Operation, entry: Entry, view: View | None) -> None:
    """`view`: the requester's (reading through the writer's transaction for
    an update); None for an entry anyone may read."""
    condition = op.controls.get(ASSERTION)
    if condition is None:
        return
    schema = op.dsa.schema
    resolved = resolve_filter(schema, condition)
    test = (compile_filter(schema, resolved) if view is None
            else filter_test(schema, view, resolved))
    if test(entry) is not True:
        raise LDAPError(ResultCode.ASSERTION_FAILED, "assertion control filter is not true")
