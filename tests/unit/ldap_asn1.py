"""An independent oracle for the LDAP codec: RFC 4511 Appendix B through asn1tools.

- The ASN.1 module is tests/data/asn1/rfc4511.asn, retyped from the RFC; asn1tools
  compiles it with its generic BER codec, which shares no code with ours.
- `to_asn1` / `from_asn1` translate between our frozen dataclasses and the
  dicts/tuples asn1tools uses, naming every field as Appendix B names it.
- Enumerations travel by their Appendix B names, so values the RFC module does not
  list (scope `children`, modify `increment`, result codes above 80) cannot be
  expressed here; strategies feeding the oracle leave them out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import asn1tools

from directory.protocol.filter import (
    And,
    Approx,
    Equality,
    Extensible,
    Filter,
    GreaterOrEqual,
    LessOrEqual,
    Not,
    Or,
    Present,
    Substrings,
)
from directory.protocol.messages import (
    AbandonRequest,
    AddRequest,
    AddResponse,
    BindRequest,
    BindResponse,
    Change,
    CompareRequest,
    CompareResponse,
    Control,
    DelRequest,
    DelResponse,
    Deref,
    ExtendedRequest,
    ExtendedResponse,
    IntermediateResponse,
    LDAPMessage,
    ModifyDNRequest,
    ModifyDNResponse,
    ModifyRequest,
    ModifyResponse,
    ModOp,
    ProtocolOp,
    Result,
    Scope,
    SearchRequest,
    SearchResultDone,
    SearchResultEntry,
    SearchResultReference,
    UnbindRequest,
)
from directory.protocol.results import ResultCode

MODULE = Path(__file__).parent.parent / "data" / "asn1" / "rfc4511.asn"


@cache
def spec() -> Any:
    return asn1tools.compile_files(str(MODULE), "ber")


@cache
def _enumerations() -> dict[str, dict[int, str]]:
    """Appendix B's ENUMERATED names by number, read from the module itself."""
    types = asn1tools.parse_files(str(MODULE))["Lightweight-Directory-Access-Protocol-V3"][
        "types"]

    def named(members: list[dict[str, Any]], name: str) -> dict[int, str]:
        member = next(m for m in members if m["name"] == name)
        # An extension marker is listed as None among the (name, number) pairs.
        return {pair[1]: pair[0] for pair in member["values"] if pair is not None}

    search = types["SearchRequest"]["members"]
    change = types["ModifyRequest"]["members"][1]["element"]["members"]
    return {
        "result": named(types["LDAPResult"]["members"], "resultCode"),
        "scope": named(search, "scope"),
        "deref": named(search, "derefAliases"),
        "modop": named(change, "operation"),
    }


def enum_name(kind: str, number: int) -> str:
    return _enumerations()[kind][number]


def enum_number(kind: str, name: str) -> int:
    return next(n for n, label in _enumerations()[kind].items() if label == name)


def representable_codes() -> tuple[ResultCode, ...]:
    return tuple(ResultCode(n) for n in _enumerations()["result"])


def _ava(f: Equality | GreaterOrEqual | LessOrEqual | Approx) -> dict[str, bytes]:
    return {"attributeDesc": f.attribute.encode(), "assertionValue": f.value}


def _substrings(f: Substrings) -> dict[str, Any]:
    pieces = ([("initial", f.initial)] if f.initial is not None else []) + [
        ("any", p) for p in f.any] + ([("final", f.final)] if f.final is not None else [])
    return {"type": f.attribute.encode(), "substrings": pieces}


def _extensible(f: Extensible) -> dict[str, Any]:
    out: dict[str, Any] = {"matchValue": f.value, "dnAttributes": f.dn_attributes}
    if f.rule is not None:
        out["matchingRule"] = f.rule.encode()
    if f.attribute is not None:
        out["type"] = f.attribute.encode()
    return out


FILTERS: Mapping[type, Callable[[Any], tuple[str, Any]]] = {
    And: lambda f: ("and", [filter_to_asn1(p) for p in f.filters]),
    Or: lambda f: ("or", [filter_to_asn1(p) for p in f.filters]),
    Not: lambda f: ("not", filter_to_asn1(f.filter)),
    Equality: lambda f: ("equalityMatch", _ava(f)),
    Substrings: lambda f: ("substrings", _substrings(f)),
    GreaterOrEqual: lambda f: ("greaterOrEqual", _ava(f)),
    LessOrEqual: lambda f: ("lessOrEqual", _ava(f)),
    Present: lambda f: ("present", f.attribute.encode()),
    Approx: lambda f: ("approxMatch", _ava(f)),
    Extensible: lambda f: ("extensibleMatch", _extensible(f)),
}


def filter_to_asn1(f: Filter) -> tuple[str, Any]:
    return FILTERS[type(f)](f)


def _filter_from_ava(cls: Any) -> Callable[[Any], Filter]:
    return lambda v: cls(v["attributeDesc"].decode(), v["assertionValue"])


def _substrings_from(v: dict[str, Any]) -> Substrings:
    pieces = v["substrings"]
    initial = pieces[0][1] if pieces[0][0] == "initial" else None
    final = pieces[-1][1] if pieces[-1][0] == "final" else None
    middle = tuple(p for kind, p in pieces if kind == "any")
    return Substrings(v["type"].decode(), initial, middle, final)


def _optional_text(v: dict[str, Any], key: str) -> str | None:
    return v[key].decode() if key in v else None


FILTERS_BACK: Mapping[str, Callable[[Any], Filter]] = {
    "and": lambda v: And(tuple(filter_from_asn1(p) for p in v)),
    "or": lambda v: Or(tuple(filter_from_asn1(p) for p in v)),
    "not": lambda v: Not(filter_from_asn1(v)),
    "equalityMatch": _filter_from_ava(Equality),
    "substrings": _substrings_from,
    "greaterOrEqual": _filter_from_ava(GreaterOrEqual),
    "lessOrEqual": _filter_from_ava(LessOrEqual),
    "present": lambda v: Present(v.decode()),
    "approxMatch": _filter_from_ava(Approx),
    "extensibleMatch": lambda v: Extensible(
        _optional_text(v, "matchingRule"), _optional_text(v, "type"), v["matchValue"],
        v.get("dnAttributes", False)),
}


def filter_from_asn1(choice: tuple[str, Any]) -> Filter:
    kind, value = choice
    return FILTERS_BACK[kind](value)


def _result(r: Result) -> dict[str, Any]:
    out: dict[str, Any] = {
        "resultCode": enum_name("result", r.code),
        "matchedDN": r.matched.encode(),
        "diagnosticMessage": r.message.encode(),
    }
    if r.referrals:
        out["referral"] = [u.encode() for u in r.referrals]
    return out


def _result_from(v: dict[str, Any]) -> Result:
    return Result(ResultCode(enum_number("result", v["resultCode"])), v["matchedDN"].decode(),
                  v["diagnosticMessage"].decode(),
                  tuple(u.decode() for u in v.get("referral", ())))


def _with(base: dict[str, Any], **optional: bytes | None) -> dict[str, Any]:
    return {**base, **{k: v for k, v in optional.items() if v is not None}}


def _attributes(attributes: tuple[tuple[str, tuple[bytes, ...]], ...]) -> list[dict[str, Any]]:
    return [{"type": name.encode(), "vals": list(values)} for name, values in attributes]


def _attributes_from(v: list[dict[str, Any]]) -> tuple[tuple[str, tuple[bytes, ...]], ...]:
    return tuple((a["type"].decode(), tuple(a["vals"])) for a in v)


def _bind_request(op: BindRequest) -> dict[str, Any]:
    if op.mechanism is not None:
        auth: tuple[str, Any] = ("sasl", _with({"mechanism": op.mechanism.encode()},
                                               credentials=op.credentials))
    else:
        auth = ("simple", op.password or b"")
    return {"version": op.version, "name": op.name.encode(), "authentication": auth}


def _bind_request_from(v: dict[str, Any]) -> BindRequest:
    kind, auth = v["authentication"]
    if kind == "simple":
        return BindRequest(v["version"], v["name"].decode(), password=auth)
    return BindRequest(v["version"], v["name"].decode(), mechanism=auth["mechanism"].decode(),
                       credentials=auth.get("credentials"))


def _search_request(op: SearchRequest) -> dict[str, Any]:
    return {
        "baseObject": op.base.encode(),
        "scope": enum_name("scope", op.scope),
        "derefAliases": enum_name("deref", op.deref),
        "sizeLimit": op.size_limit,
        "timeLimit": op.time_limit,
        "typesOnly": op.types_only,
        "filter": filter_to_asn1(op.filter),
        "attributes": [a.encode() for a in op.attributes],
    }


def _search_request_from(v: dict[str, Any]) -> SearchRequest:
    return SearchRequest(
        v["baseObject"].decode(), Scope(enum_number("scope", v["scope"])),
        Deref(enum_number("deref", v["derefAliases"])), v["sizeLimit"], v["timeLimit"],
        v["typesOnly"], filter_from_asn1(v["filter"]),
        tuple(a.decode() for a in v["attributes"]))


def _modify_request(op: ModifyRequest) -> dict[str, Any]:
    return {"object": op.dn.encode(), "changes": [
        {"operation": enum_name("modop", c.op),
         "modification": {"type": c.attribute.encode(), "vals": list(c.values)}}
        for c in op.changes]}


def _modify_request_from(v: dict[str, Any]) -> ModifyRequest:
    return ModifyRequest(v["object"].decode(), tuple(
        Change(ModOp(enum_number("modop", c["operation"])),
               c["modification"]["type"].decode(), tuple(c["modification"]["vals"]))
        for c in v["changes"]))


def _moddn_request(op: ModifyDNRequest) -> dict[str, Any]:
    superior = None if op.new_superior is None else op.new_superior.encode()
    return _with({"entry": op.dn.encode(), "newrdn": op.new_rdn.encode(),
                  "deleteoldrdn": op.delete_old_rdn}, newSuperior=superior)


def _moddn_request_from(v: dict[str, Any]) -> ModifyDNRequest:
    return ModifyDNRequest(v["entry"].decode(), v["newrdn"].decode(), v["deleteoldrdn"],
                           _optional_text(v, "newSuperior"))


def _name(name: str | None) -> bytes | None:
    return None if name is None else name.encode()


# Our class -> (Appendix B alternative, to asn1tools, from asn1tools)
OPS: Mapping[type, tuple[str, Callable[[Any], Any], Callable[[Any], ProtocolOp]]] = {
    BindRequest: ("bindRequest", _bind_request, _bind_request_from),
    BindResponse: (
        "bindResponse",
        lambda op: _with(_result(op.result), serverSaslCreds=op.credentials),
        lambda v: BindResponse(_result_from(v), v.get("serverSaslCreds"))),
    UnbindRequest: ("unbindRequest", lambda op: None, lambda v: UnbindRequest()),
    SearchRequest: ("searchRequest", _search_request, _search_request_from),
    SearchResultEntry: (
        "searchResEntry",
        lambda op: {"objectName": op.dn.encode(), "attributes": _attributes(op.attributes)},
        lambda v: SearchResultEntry(v["objectName"].decode(),
                                    _attributes_from(v["attributes"]))),
    SearchResultDone: ("searchResDone", lambda op: _result(op.result),
                       lambda v: SearchResultDone(_result_from(v))),
    SearchResultReference: (
        "searchResRef", lambda op: [u.encode() for u in op.uris],
        lambda v: SearchResultReference(tuple(u.decode() for u in v))),
    ModifyRequest: ("modifyRequest", _modify_request, _modify_request_from),
    ModifyResponse: ("modifyResponse", lambda op: _result(op.result),
                     lambda v: ModifyResponse(_result_from(v))),
    AddRequest: (
        "addRequest",
        lambda op: {"entry": op.dn.encode(), "attributes": _attributes(op.attributes)},
        lambda v: AddRequest(v["entry"].decode(), _attributes_from(v["attributes"]))),
    AddResponse: ("addResponse", lambda op: _result(op.result),
                  lambda v: AddResponse(_result_from(v))),
    DelRequest: ("delRequest", lambda op: op.dn.encode(), lambda v: DelRequest(v.decode())),
    DelResponse: ("delResponse", lambda op: _result(op.result),
                  lambda v: DelResponse(_result_from(v))),
    ModifyDNRequest: ("modDNRequest", _moddn_request, _moddn_request_from),
    ModifyDNResponse: ("modDNResponse", lambda op: _result(op.result),
                       lambda v: ModifyDNResponse(_result_from(v))),
    CompareRequest: (
        "compareRequest",
        lambda op: {"entry": op.dn.encode(), "ava": {"attributeDesc": op.attribute.encode(),
                                                      "assertionValue": op.value}},
        lambda v: CompareRequest(v["entry"].decode(), v["ava"]["attributeDesc"].decode(),
                                 v["ava"]["assertionValue"])),
    CompareResponse: ("compareResponse", lambda op: _result(op.result),
                      lambda v: CompareResponse(_result_from(v))),
    AbandonRequest: ("abandonRequest", lambda op: op.message_id, AbandonRequest),
    ExtendedRequest: (
        "extendedReq",
        lambda op: _with({"requestName": op.name.encode()}, requestValue=op.value),
        lambda v: ExtendedRequest(v["requestName"].decode(), v.get("requestValue"))),
    ExtendedResponse: (
        "extendedResp",
        lambda op: _with(_result(op.result), responseName=_name(op.name),
                         responseValue=op.value),
        lambda v: ExtendedResponse(_result_from(v), _optional_text(v, "responseName"),
                                   v.get("responseValue"))),
    IntermediateResponse: (
        "intermediateResponse",
        lambda op: _with({}, responseName=_name(op.name), responseValue=op.value),
        lambda v: IntermediateResponse(_optional_text(v, "responseName"),
                                       v.get("responseValue"))),
}

ALTERNATIVES: Mapping[str, Callable[[Any], ProtocolOp]] = {
    alternative: back for alternative, _, back in OPS.values()}


def _control(c: Control) -> dict[str, Any]:
    return _with({"controlType": c.oid.encode(), "criticality": c.critical}, controlValue=c.value)


def to_asn1(message: LDAPMessage) -> dict[str, Any]:
    alternative, forth, _ = OPS[type(message.op)]
    out: dict[str, Any] = {"messageID": message.message_id,
                           "protocolOp": (alternative, forth(message.op))}
    if message.controls:
        out["controls"] = [_control(c) for c in message.controls]
    return out


def from_asn1(value: dict[str, Any]) -> LDAPMessage:
    alternative, op = value["protocolOp"]
    controls = tuple(Control(c["controlType"].decode(), c.get("criticality", False),
                             c.get("controlValue")) for c in value.get("controls", ()))
    return LDAPMessage(value["messageID"], ALTERNATIVES[alternative](op), controls)


def oracle_encode(message: LDAPMessage) -> bytes:
    data: bytes = spec().encode("LDAPMessage", to_asn1(message))
    return data


def oracle_decode(data: bytes) -> LDAPMessage:
    return from_asn1(spec().decode("LDAPMessage", data))
