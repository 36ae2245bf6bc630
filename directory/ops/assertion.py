"""The assertion control (RFC 4528): the operation proceeds only when the
filter is True for the target entry, evaluated inside the update's
transaction; otherwise assertionFailed (122) and nothing changes."""

from __future__ import annotations

from directory.entry import Entry
from directory.operation import Operation
from directory.predicates import compile_filter
from directory.protocol.controls import ASSERTION
from directory.protocol.results import LDAPError, ResultCode


def check(op: Operation, entry: Entry) -> None:
    condition = op.controls.get(ASSERTION)
    if condition is None:
        return
    if compile_filter(op.dsa.schema, condition, op.hidden)(entry) is not True:
        raise LDAPError(ResultCode.ASSERTION_FAILED, "assertion control filter is not true")
