"""Which handler answers which request, and the overlays stacked over them.

Overlays run outermost first, in the order of `OVERLAYS`: the proxied
authorization control settles who is asking before anything else; chaining
to the referral list comes next, so what it asks the peers for, and which
local misses it answers, are the search as the client sent it; a replica
refers every write to its provider before anything looks at it; referrals
are decided before access control, so a client is told where an entry lives
even when it may not read it here (as slapd's chaining does). The password
policy comes next: it judges only what access control let through. The
syncrepl provider is innermost: a search with the sync request control is
answered there, with everything before it applied.

Before the first overlay, the dispatcher parses what the request names,
once (`PARSERS`): the target DN (`Operation.target`; invalidDNSyntax is
raised where it is first read, so the overlays' own checks keep their
order), and for a search the filter with its attribute descriptions
resolved, the attribute selection and the matched values control's
items compiled. Overlays, operations, the planner,
the predicates and the selection use these and parse nothing again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from operator import attrgetter
from typing import Any

from directory import matched_values
from directory.operation import Handler, Operation, Outcome, Overlay
from directory.ops import add, bind, compare, delete, extended, moddn, modify, search
from directory.overlays import access, chaining, ppolicy, proxy, referral, replica, syncprov
from directory.protocol.controls import MATCHED_VALUES
from directory.protocol.messages import (
    AddRequest,
    AddResponse,
    BindRequest,
    BindResponse,
    CompareRequest,
    CompareResponse,
    DelRequest,
    DelResponse,
    ExtendedRequest,
    ExtendedResponse,
    ModifyDNRequest,
    ModifyDNResponse,
    ModifyRequest,
    ModifyResponse,
    SearchRequest,
    SearchResultDone,
)
from directory.protocol.results import LDAPError
from directory.resolved_filter import resolve_filter
from directory.selection import select

HANDLERS: Mapping[type, Handler] = {
    BindRequest: bind.handle,
    SearchRequest: search.handle,
    CompareRequest: compare.handle,
    AddRequest: add.handle,
    DelRequest: delete.handle,
    ModifyRequest: modify.handle,
    ModifyDNRequest: moddn.handle,
    ExtendedRequest: extended.handle,
}

RESPONSE_FOR: Mapping[type, Callable[..., Any]] = {
    BindRequest: BindResponse,
    SearchRequest: SearchResultDone,
    CompareRequest: CompareResponse,
    AddRequest: AddResponse,
    DelRequest: DelResponse,
    ModifyRequest: ModifyResponse,
    ModifyDNRequest: ModifyDNResponse,
    ExtendedRequest: ExtendedResponse,
}

OVERLAYS: tuple[Overlay, ...] = (proxy.overlay, chaining.overlay, replica.overlay,
                                 referral.overlay, access.overlay, ppolicy.overlay,
                                 syncprov.overlay)


def _stack(handler: Handler) -> Handler:
    for overlay in reversed(OVERLAYS):
        handler = overlay(handler)
    return handler


STACKED: Mapping[type, Handler] = {kind: _stack(h) for kind, h in HANDLERS.items()}


def _target(text_of: Callable[[Any], str]) -> Callable[[Operation], None]:
    def parse(op: Operation) -> None:
        try:
            op.parsed = op.dsa.parse_dn(text_of(op.request))
        except LDAPError as e:
            op.parsed = e

    return parse


_BASE = _target(attrgetter("base"))
_ENTRY = _target(attrgetter("dn"))


def _search(op: Operation) -> None:
    request = op.request
    assert isinstance(request, SearchRequest)
    _BASE(op)
    schema = op.dsa.schema
    op.filter = resolve_filter(schema, request.filter)
    op.selection = select(schema, request.attributes)
    values_return = op.controls.get(MATCHED_VALUES)
    if values_return is not None:
        op.values_return = matched_values.predicates(schema, values_return)


PARSERS: Mapping[type, Callable[[Operation], None]] = {
    BindRequest: _target(attrgetter("name")),
    SearchRequest: _search,
    CompareRequest: _ENTRY,
    AddRequest: _ENTRY,
    DelRequest: _ENTRY,
    ModifyRequest: _ENTRY,
    ModifyDNRequest: _ENTRY,
}


def handle(op: Operation) -> Outcome:
    parse = PARSERS.get(type(op.request))
    if parse is not None:
        parse(op)
    return STACKED[type(op.request)](op)
