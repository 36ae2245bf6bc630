"""The controls certdir understands, as one table (RFC 4511 §4.1.11).

- A control whose OID is not in `CONTROLS`, or that does not apply to the
  operation it came with, is ignored when non-critical and fails the
  operation with unavailableCriticalExtension (12) when critical.
- A control value that does not decode fails the operation with
  protocolError (2); a control that must not carry a value and does, too.
- The same control twice in one request is a protocolError.
- A control that must be critical (proxied authorization, RFC 4370 §3) and
  is not marked so is a protocolError.
- A sort control with more than `MAX_SORT_KEYS` keys (each one a pass over
  the results) fails with adminLimitExceeded (11), a sortResult RFC 2891
  §1.2 names; a pre-/post-read selection keeps a repeated description once.
- The root DSE's supportedControl is `sorted(CONTROLS)`.

Value formats: paged results (RFC 2696 §2), server-side sorting (RFC 2891
§1.1, §1.2), ManageDsaIT (RFC 3296 §3), assertion (RFC 4528 §3), pre-/post-read
(RFC 4527 §3), subtree delete (draft-armijo-ldap-treedelete), proxied
authorization (RFC 4370 §3: an authzId, empty for anonymous; on every
operation but bind and the extended operations that change authentication
or confidentiality, StartTLS), password policy request
(draft-behera-ldap-password-policy §6.1, no value; the response is
`ppolicy_control`), matched values (RFC 3876 §2: a SEQUENCE OF
SimpleFilterItem, the filter choices but and, or and not, an extensible
match without dnAttributes), chaining behavior (draft-sermersheim-ldap-chaining §3:
a SEQUENCE of up to two ENUMERATED behaviours; on searches, the only
operation certdir chains), sync request (RFC 4533 §2.2, `sync`).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from directory.protocol import ber
from directory.protocol.ber import children, decode_bool, decode_int, encode_int, octets, tlv
from directory.protocol.filter import Extensible, Filter, FilterLimits
from directory.protocol.filter import from_ber as filter_from_ber
from directory.protocol.messages import (
    MAX_INT,
    START_TLS,
    AddRequest,
    BindRequest,
    CompareRequest,
    Control,
    DelRequest,
    ExtendedRequest,
    ModifyDNRequest,
    ModifyRequest,
    Request,
    SearchRequest,
)
from directory.protocol.ppolicy_control import PASSWORD_POLICY
from directory.protocol.results import LDAPError, ProtocolError, ResultCode
from directory.protocol.sync import SYNC_REQUEST, SyncRequest

PAGED_RESULTS = "1.2.840.113556.1.4.319"
SORT_REQUEST = "1.2.840.113556.1.4.473"
SORT_RESPONSE = "1.2.840.113556.1.4.474"
MANAGE_DSA_IT = "2.16.840.1.113730.3.4.2"
ASSERTION = "1.3.6.1.1.12"
PRE_READ = "1.3.6.1.1.13.1"
POST_READ = "1.3.6.1.1.13.2"
SUBTREE_DELETE = "1.2.840.113556.1.4.805"
PROXIED_AUTHZ = "2.16.840.1.113730.3.4.18"
MATCHED_VALUES = "1.2.826.0.1.3344810.2.3"
# draft-sermersheim-ldap-chaining; OpenLDAP's experimental arc (LDAP_CONTROL_X_CHAINING_BEHAVIOR).
CHAINING_BEHAVIOR = "1.3.6.1.4.1.4203.666.11.3"


@dataclass(frozen=True, slots=True)
class PagedResults:
    size: int
    cookie: bytes

    def to_control(self) -> Control:
        value = tlv(ber.SEQUENCE, encode_int(self.size) + octets(self.cookie))
        return Control(PAGED_RESULTS, False, value)


@dataclass(frozen=True, slots=True)
class SortKey:
    attribute: str
    ordering_rule: str | None = None
    reverse: bool = False


@dataclass(frozen=True, slots=True)
class Present:
    """A control that carries no value."""


@dataclass(frozen=True, slots=True)
class AuthzId:
    """An authzId as sent (RFC 4513 §5.2.1.8): "dn:<DN>", "u:<name>" or "" (anonymous)."""
    text: str


class Behavior(enum.IntEnum):
    """draft-sermersheim-ldap-chaining §3: what the client asks of a server
    that meets a referral (resolving the base) or a continuation (in scope)."""
    CHAINING_PREFERRED = 0
    CHAINING_REQUIRED = 1
    REFERRALS_PREFERRED = 2
    REFERRALS_REQUIRED = 3


@dataclass(frozen=True, slots=True)
class ChainingBehavior:
    resolve: Behavior = Behavior.CHAINING_PREFERRED
    continuation: Behavior = Behavior.CHAINING_PREFERRED

    @property
    def chains(self) -> bool:
        return self.resolve <= Behavior.CHAINING_REQUIRED

    @property
    def refers(self) -> bool:
        return not self.chains

    def to_control(self) -> Control:
        body = encode_int(self.resolve, ber.ENUMERATED) + encode_int(self.continuation,
                                                                     ber.ENUMERATED)
        return Control(CHAINING_BEHAVIOR, False, tlv(ber.SEQUENCE, body))


@dataclass(frozen=True, slots=True)
class AttributeSelection:
    attributes: tuple[str, ...]


def _sequence(value: bytes | None) -> tuple[bytes, int, int]:
    if value is None:
        raise ProtocolError("control needs a value")
    start, end = ber.expect(value, 0, len(value), ber.SEQUENCE, "control value")
    if end != len(value):
        raise ProtocolError("data after the control value")
    return value, start, end


def parse_paged(value: bytes | None) -> PagedResults:
    data, start, end = _sequence(value)
    s, pos = ber.expect(data, start, end, ber.INTEGER, "page size")
    size = decode_int(data, s, pos)
    cs, ce = ber.expect(data, pos, end, ber.OCTET_STRING, "page cookie")
    if ce != end or not 0 <= size <= MAX_INT:
        raise ProtocolError("bad paged results control")
    return PagedResults(size, data[cs:ce])


MAX_SORT_KEYS = 16


def parse_sort(value: bytes | None) -> tuple[SortKey, ...]:
    data, start, end = _sequence(value)
    keys: list[SortKey] = []
    for tag, s, e in children(data, start, end):
        if len(keys) == MAX_SORT_KEYS:
            raise LDAPError(ResultCode.ADMIN_LIMIT_EXCEEDED,
                            f"more than {MAX_SORT_KEYS} sort keys")
        if tag != ber.SEQUENCE:
            raise ProtocolError("sort key is not a SEQUENCE")
        name_start, pos = ber.expect(data, s, e, ber.OCTET_STRING, "sort attribute")
        rule: str | None = None
        reverse = False
        for ftag, fs, fe in children(data, pos, e):
            if ftag == 0x80:
                rule = data[fs:fe].decode("utf-8", "strict")
            elif ftag == 0x81:
                reverse = decode_bool(data, fs, fe)
            else:
                raise ProtocolError(f"unknown sort key field 0x{ftag:02x}")
        keys.append(SortKey(data[name_start:pos].decode(), rule, reverse))
    if not keys:
        raise ProtocolError("sort control without keys")
    return tuple(keys)


def encode_sort_result(code: ResultCode, attribute: str | None = None) -> Control:
    body = encode_int(code, ber.ENUMERATED)
    if attribute is not None:
        body += tlv(0x80, attribute.encode())
    return Control(SORT_RESPONSE, False, tlv(ber.SEQUENCE, body))


def parse_none(value: bytes | None) -> Present:
    if value is not None:
        raise ProtocolError("this control takes no value")
    return Present()


def parse_assertion(value: bytes | None) -> Filter:
    if value is None:
        raise ProtocolError("assertion control needs a filter")
    tag, start, end = ber.read_tlv(value, 0, len(value))
    if end != len(value):
        raise ProtocolError("data after the assertion filter")
    return filter_from_ber(value, start, end, tag, 0, FilterLimits())


@dataclass(frozen=True, slots=True)
class ValuesReturnFilter:
    items: tuple[Filter, ...]


# SimpleFilterItem (RFC 3876 §2): every filter choice but and, or and not.
_SIMPLE_ITEMS = frozenset({0xA3, 0xA4, 0xA5, 0xA6, 0x87, 0xA8, 0xA9})


def parse_values_return(value: bytes | None) -> ValuesReturnFilter:
    data, start, end = _sequence(value)
    items = []
    for tag, s, e in children(data, start, end):
        if tag not in _SIMPLE_ITEMS:
            raise ProtocolError(f"filter choice 0x{tag:02x} is not a SimpleFilterItem")
        item = filter_from_ber(data, s, e, tag, 0, FilterLimits())
        if isinstance(item, Extensible) and item.dn_attributes:
            raise ProtocolError("a SimpleMatchingAssertion has no dnAttributes")
        items.append(item)
    if not items:
        raise ProtocolError("empty ValuesReturnFilter")
    return ValuesReturnFilter(tuple(items))


def parse_authzid(value: bytes | None) -> AuthzId:
    if value is None:
        raise ProtocolError("proxied authorization control needs a value")
    return AuthzId(value.decode("utf-8", "strict"))


def parse_selection(value: bytes | None) -> AttributeSelection:
    data, start, end = _sequence(value)
    names = []
    for tag, s, e in children(data, start, end):
        if tag != ber.OCTET_STRING:
            raise ProtocolError("attribute selection holds a non-string")
        names.append(data[s:e].decode())
    return AttributeSelection(tuple(dict.fromkeys(names)))


def parse_chaining(value: bytes | None) -> ChainingBehavior:
    """Both behaviours are optional; one alone is the resolve behaviour, and a
    missing continuation behaviour follows it (as OpenLDAP's chain overlay)."""
    data, start, end = _sequence(value)
    found: list[Behavior] = []
    for tag, s, e in children(data, start, end):
        if tag != ber.ENUMERATED or len(found) == 2:
            raise ProtocolError("chaining behavior holds more than two behaviours")
        number = decode_int(data, s, e)
        try:
            found.append(Behavior(number))
        except ValueError:
            raise ProtocolError(f"unknown chaining behaviour {number}") from None
    if not found:
        return ChainingBehavior()
    return ChainingBehavior(found[0], found[-1])


@dataclass(frozen=True, slots=True)
class ControlSpec:
    parse: Callable[[bytes | None], Any]
    ops: frozenset[type]
    critical_only: bool = False
    # Extended operations (requestName) of `ops` the control does not apply to.
    not_extended: frozenset[str] = frozenset()

    def applies(self, op: Request) -> bool:
        if type(op) not in self.ops:
            return False
        return not (isinstance(op, ExtendedRequest) and op.name in self.not_extended)


UPDATES = frozenset({AddRequest, DelRequest, ModifyRequest, ModifyDNRequest})
WITH_DN = UPDATES | {SearchRequest, CompareRequest}

CONTROLS: Mapping[str, ControlSpec] = {
    PAGED_RESULTS: ControlSpec(parse_paged, frozenset({SearchRequest})),
    SORT_REQUEST: ControlSpec(parse_sort, frozenset({SearchRequest})),
    MANAGE_DSA_IT: ControlSpec(parse_none, WITH_DN),
    ASSERTION: ControlSpec(parse_assertion, WITH_DN),
    PRE_READ: ControlSpec(parse_selection, frozenset({DelRequest, ModifyRequest,
                                                      ModifyDNRequest})),
    POST_READ: ControlSpec(parse_selection, frozenset({AddRequest, ModifyRequest,
                                                       ModifyDNRequest})),
    SUBTREE_DELETE: ControlSpec(parse_none, frozenset({DelRequest})),
    PROXIED_AUTHZ: ControlSpec(parse_authzid, WITH_DN | {ExtendedRequest}, critical_only=True,
                               not_extended=frozenset({START_TLS})),
    CHAINING_BEHAVIOR: ControlSpec(parse_chaining, frozenset({SearchRequest})),
    PASSWORD_POLICY: ControlSpec(parse_none, frozenset({BindRequest, AddRequest, ModifyRequest,
                                                        ExtendedRequest})),
    MATCHED_VALUES: ControlSpec(parse_values_return, frozenset({SearchRequest})),
    SYNC_REQUEST: ControlSpec(SyncRequest.decode, frozenset({SearchRequest})),
}


def parse_controls(op: Request, controls: tuple[Control, ...]) -> dict[str, Any]:
    """Parse the request's controls against `CONTROLS`: OID -> parsed value."""
    parsed: dict[str, Any] = {}
    for control in controls:
        spec = CONTROLS.get(control.oid)
        if spec is None or not spec.applies(op):
            if control.critical:
                raise LDAPError(ResultCode.UNAVAILABLE_CRITICAL_EXTENSION,
                                f"critical control {control.oid} is not supported here")
            continue
        if control.oid in parsed:
            raise LDAPError(ResultCode.PROTOCOL_ERROR, f"control {control.oid} given twice")
        if spec.critical_only and not control.critical:
            raise LDAPError(ResultCode.PROTOCOL_ERROR,
                            f"control {control.oid} must be marked critical")
        try:
            parsed[control.oid] = spec.parse(control.value)
        except (ProtocolError, UnicodeDecodeError) as e:
            raise LDAPError(ResultCode.PROTOCOL_ERROR,
                            f"bad value for control {control.oid}: {e}") from None
    return parsed
