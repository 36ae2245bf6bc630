"""Referrals (RFC 4511 §4.1.10, RFC 3296).

- An operation whose target is a referral object, or lies below one,
  gets referral (10) with the object's `ref` URLs naming the target, a
  search's with its scope (`directory.referral_urls`; RFC 3296 §5.2,
  §5.3), unless ManageDsaIT is given, which lets clients manage the
  referral objects themselves. An Add is referred when the new entry's
  parent is (or lies below) a referral object, and its URLs name the new
  entry.
- A target outside every naming context gets the configured default
  referral (RFC 4511 §4.1.10), its URLs naming the target, a search's with
  its scope; without one, the operation goes on and answers noSuchObject.
- The root DSE and the subschema subentry are never referred.
- The target is the DN the dispatcher parsed (`Operation.target`).
"""

from __future__ import annotations

from directory import referral_urls
from directory.operation import Handler, Operation, Outcome
from directory.protocol.controls import MANAGE_DSA_IT
from directory.protocol.dn import DN
from directory.protocol.messages import (
    AddRequest,
    CompareRequest,
    DelRequest,
    ModifyDNRequest,
    ModifyRequest,
    SearchRequest,
)
from directory.protocol.results import LDAPError, ResultCode

REFERRED = (SearchRequest, CompareRequest, DelRequest, ModifyRequest, ModifyDNRequest)


def _target(op: Operation) -> DN | None:
    request = op.request
    if isinstance(request, AddRequest):
        dn = op.target
        return dn if dn == op.dsa.suffix else dn.parent
    if isinstance(request, REFERRED):
        return op.target
    return None


def overlay(handler: Handler) -> Handler:
    def refer(op: Operation) -> Outcome:
        target = _target(op)
        if target is None or MANAGE_DSA_IT in op.controls:
            return handler(op)
        dsa = op.dsa
        if not target or target == dsa.subschema_dn:
            return handler(op)
        request = op.request
        scope = request.scope if isinstance(request, SearchRequest) else None
        if not dsa.in_naming_context(target):
            if dsa.config.default_referrals:
                uris = referral_urls.superior(dsa.config.default_referrals, op.target, scope)
                raise LDAPError(ResultCode.REFERRAL, "outside the naming context",
                                referrals=uris)
            return handler(op)
        for dn, entry in dsa.referral_objects().items():
            if target.is_descendant_of(dn):
                uris = referral_urls.referral(entry.get("ref"), dn, op.target, scope)
                raise LDAPError(ResultCode.REFERRAL, "referral", matched=str(dn),
                                referrals=uris)
        return handler(op)

    return refer
