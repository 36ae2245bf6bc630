"""Which handler answers which request, and the overlays stacked over them.

Overlays run outermost first, in the order of `OVERLAYS`: the proxied
authorization control settles who is asking before anything else; referrals
are decided before access control, so a client is told where an entry lives
even when it may not read it here (as slapd's chaining does). The password
policy comes last: it judges only what access control let through.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from directory.operation import Handler, Operation, Outcome, Overlay
from directory.ops import add, bind, compare, delete, extended, moddn, modify, search
from directory.overlays import access, ppolicy, proxy, referral
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

OVERLAYS: tuple[Overlay, ...] = (proxy.overlay, referral.overlay, access.overlay,
                                 ppolicy.overlay)


def _stack(handler: Handler) -> Handler:
    for overlay in reversed(OVERLAYS):
        handler = overlay(handler)
    return handler


STACKED: Mapping[type, Handler] = {kind: _stack(h) for kind, h in HANDLERS.items()}


def handle(op: Operation) -> Outcome:
    return STACKED[type(op.request)](op)
