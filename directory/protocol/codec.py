"""Sans-IO LDAP codec: bytes in, messages out, and back (RFC 4511 §4, §5).

- `LDAPConnection.receive_data()` buffers bytes; `requests()` yields every
  complete LDAPMessage. Any malformed structure raises `ProtocolError`; per
  RFC 4511 §4.1.1 the caller then sends a Notice of Disconnection and closes.
- A PDU larger than `Limits.max_pdu` is refused as soon as its header is
  seen, before it is buffered (RFC 4511 §4.1.1 lets the server drop it).
  `LDAPConnection.limits` may be replaced between PDUs: the next PDU is
  checked against the new limits (a server allows bound clients more).
- messageID is 1..maxInt in requests (0 is reserved for unsolicited
  notifications, RFC 4511 §4.1.1.1).
- Every string field (LDAPString, LDAPDN, LDAPOID) must be valid UTF-8.
- Lists (attributes, values, changes, controls) hold at most
  `Limits.max_elements` elements; filters obey `Limits.filter`.
- A search's attribute selection is a set (RFC 4511 §4.5.1.8): a
  description repeated in it is kept once, as it is read, so what follows
  costs what the distinct descriptions cost.
- Only the APPLICATION tags of RFC 4511 Appendix B are accepted as
  protocolOp; `decode()` accepts responses too, for clients and tests.

No Twisted, no sockets, no globals.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from directory.protocol import ber
from directory.protocol.ber import (
    children,
    decode_bool,
    decode_int,
    encode_bool,
    encode_int,
    read_tlv,
    tlv,
)
from directory.protocol.ber import octets as enc_octets
from directory.protocol.filter import FilterLimits
from directory.protocol.filter import from_ber as filter_from_ber
from directory.protocol.filter import to_ber as filter_to_ber
from directory.protocol.messages import (
    MAX_INT,
    AbandonRequest,
    AddRequest,
    AddResponse,
    Attributes,
    BindRequest,
    BindResponse,
    Change,
    CompareRequest,
    CompareResponse,
    Control,
    DelRequest,
    DelResponse,
    Deref,
    EncodedSearchResultEntry,
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
    Values,
)
from directory.protocol.results import ProtocolError, ResultCode


@dataclass(frozen=True, slots=True)
class Limits:
    max_pdu: int = 10 * 1024 * 1024
    max_elements: int = 100_000
    filter: FilterLimits = field(default_factory=FilterLimits)


def _text(data: bytes, start: int, end: int) -> str:
    try:
        return data[start:end].decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError(f"invalid UTF-8 in string at offset {start}") from None


def _uris(data: bytes, start: int, end: int, what: str) -> tuple[str, ...]:
    uris = []
    for tag, s, e in children(data, start, end):
        if tag != ber.OCTET_STRING:
            raise ProtocolError(f"{what} URI is not an OCTET STRING")
        uris.append(_text(data, s, e))
    return tuple(uris)


def _string(data: bytes, pos: int, end: int, what: str) -> tuple[str, int]:
    start, stop = ber.expect(data, pos, end, ber.OCTET_STRING, what)
    return _text(data, start, stop), stop


def _bytes(data: bytes, pos: int, end: int, what: str) -> tuple[bytes, int]:
    start, stop = ber.expect(data, pos, end, ber.OCTET_STRING, what)
    return data[start:stop], stop


def _enum(data: bytes, pos: int, end: int, what: str) -> tuple[int, int]:
    start, stop = ber.expect(data, pos, end, ber.ENUMERATED, what)
    return decode_int(data, start, stop), stop


def _done(pos: int, end: int, what: str) -> None:
    if pos != end:
        raise ProtocolError(f"{what}: unexpected data after the last field")


def _counted(items: Iterator[Any], limits: Limits, what: str) -> tuple[Any, ...]:
    out = []
    for item in items:
        out.append(item)
        if len(out) > limits.max_elements:
            raise ProtocolError(f"{what}: more than {limits.max_elements} elements")
    return tuple(out)


def _values(data: bytes, start: int, end: int, limits: Limits) -> Values:
    values = []
    for tag, vstart, vend in children(data, start, end):
        if tag != ber.OCTET_STRING:
            raise ProtocolError("attribute value is not an OCTET STRING")
        values.append(data[vstart:vend])
        if len(values) > limits.max_elements:
            raise ProtocolError(f"more than {limits.max_elements} values")
    return tuple(values)


def _attribute(data: bytes, start: int, end: int, limits: Limits) -> tuple[str, Values]:
    name, pos = _string(data, start, end, "attribute type")
    vstart, vend = ber.expect(data, pos, end, ber.SET, "attribute values")
    _done(vend, end, "attribute")
    return name, _values(data, vstart, vend, limits)


def _attributes(data: bytes, start: int, end: int, limits: Limits) -> Attributes:
    def each() -> Iterator[tuple[str, Values]]:
        for tag, astart, aend in children(data, start, end):
            if tag != ber.SEQUENCE:
                raise ProtocolError("attribute is not a SEQUENCE")
            yield _attribute(data, astart, aend, limits)

    attributes: Attributes = _counted(each(), limits, "attribute list")
    return attributes


def decode_attributes(data: bytes, limits: Limits = Limits()) -> Attributes:
    """Decode a SEQUENCE OF PartialAttribute (the stored form of an entry)."""
    start, end = ber.expect(data, 0, len(data), ber.SEQUENCE, "attribute list")
    return _attributes(data, start, end, limits)


def _result(data: bytes, start: int, end: int, what: str) -> tuple[Result, int]:
    code, pos = _enum(data, start, end, what)
    matched, pos = _string(data, pos, end, what)
    message, pos = _string(data, pos, end, what)
    referrals: tuple[str, ...] = ()
    if pos < end and data[pos] == 0xA3:
        _, rstart, rend = read_tlv(data, pos, end)
        referrals = _uris(data, rstart, rend, "referral")
        if not referrals:
            raise ProtocolError(f"{what}: a referral holds at least one URI")
        pos = rend
    try:
        result_code = ResultCode(code)
    except ValueError:
        raise ProtocolError(f"{what}: unknown result code {code}") from None
    return Result(result_code, matched, message, referrals), pos


def _optional(data: bytes, pos: int, end: int, tag: int) -> tuple[bytes | None, int]:
    if pos < end and data[pos] == tag:
        _, start, stop = read_tlv(data, pos, end)
        return data[start:stop], stop
    return None, pos


def _dec_bind_request(data: bytes, start: int, end: int, limits: Limits) -> BindRequest:
    vstart, vend = ber.expect(data, start, end, ber.INTEGER, "bind version")
    version = decode_int(data, vstart, vend)
    name, pos = _string(data, vend, end, "bind name")
    tag, astart, aend = read_tlv(data, pos, end)
    _done(aend, end, "bind request")
    if tag == 0x80:
        return BindRequest(version, name, password=data[astart:aend])
    if tag == 0xA3:
        mechanism, mpos = _string(data, astart, aend, "SASL mechanism")
        credentials, cpos = _bytes(data, mpos, aend, "SASL credentials") if mpos < aend else (
            None, mpos)
        _done(cpos, aend, "SASL credentials")
        return BindRequest(version, name, mechanism=mechanism, credentials=credentials)
    if tag & 0xC0 != ber.CONTEXT:
        raise ProtocolError(f"bind authentication 0x{tag:02x} is not a context tag")
    return BindRequest(version, name, credentials=data[astart:aend], other_method=tag)


def _dec_search_request(data: bytes, start: int, end: int, limits: Limits) -> SearchRequest:
    base, pos = _string(data, start, end, "search base")
    scope, pos = _enum(data, pos, end, "search scope")
    deref, pos = _enum(data, pos, end, "search derefAliases")
    s, e = ber.expect(data, pos, end, ber.INTEGER, "search sizeLimit")
    size_limit = decode_int(data, s, e)
    s, pos = ber.expect(data, e, end, ber.INTEGER, "search timeLimit")
    time_limit = decode_int(data, s, pos)
    s, e = ber.expect(data, pos, end, ber.BOOLEAN, "search typesOnly")
    types_only = decode_bool(data, s, e)
    ftag, fstart, fend = read_tlv(data, e, end)
    search_filter = filter_from_ber(data, fstart, fend, ftag, 0, limits.filter)
    astart, aend = ber.expect(data, fend, end, ber.SEQUENCE, "search attributes")
    _done(aend, end, "search request")

    def names() -> Iterator[str]:
        for tag, s2, e2 in children(data, astart, aend):
            if tag != ber.OCTET_STRING:
                raise ProtocolError("search attribute is not an OCTET STRING")
            yield _text(data, s2, e2)

    attributes: tuple[str, ...] = tuple(dict.fromkeys(
        _counted(names(), limits, "search attributes")))
    if scope not in _SCOPES or deref not in _DEREFS:
        raise ProtocolError(f"bad search scope {scope} or derefAliases {deref}")
    if not (0 <= size_limit <= MAX_INT and 0 <= time_limit <= MAX_INT):
        raise ProtocolError("negative or too large search limit")
    return SearchRequest(base, _SCOPES[scope], _DEREFS[deref], size_limit, time_limit,
                         types_only, search_filter, attributes)


_SCOPES = {s.value: s for s in Scope}
_DEREFS = {d.value: d for d in Deref}
_MODOPS = {m.value: m for m in ModOp}


def _dec_modify_request(data: bytes, start: int, end: int, limits: Limits) -> ModifyRequest:
    dn, pos = _string(data, start, end, "modify object")
    cstart, cend = ber.expect(data, pos, end, ber.SEQUENCE, "modify changes")
    _done(cend, end, "modify request")

    def changes() -> Iterator[Change]:
        for tag, s, e in children(data, cstart, cend):
            if tag != ber.SEQUENCE:
                raise ProtocolError("change is not a SEQUENCE")
            op, p = _enum(data, s, e, "modify operation")
            if op not in _MODOPS:
                raise ProtocolError(f"unknown modify operation {op}")
            mstart, mend = ber.expect(data, p, e, ber.SEQUENCE, "modification")
            _done(mend, e, "change")
            name, values = _attribute(data, mstart, mend, limits)
            yield Change(_MODOPS[op], name, values)

    return ModifyRequest(dn, _counted(changes(), limits, "modify changes"))


def _dec_add_request(data: bytes, start: int, end: int, limits: Limits) -> AddRequest:
    dn, pos = _string(data, start, end, "add entry")
    astart, aend = ber.expect(data, pos, end, ber.SEQUENCE, "add attributes")
    _done(aend, end, "add request")
    return AddRequest(dn, _attributes(data, astart, aend, limits))


def _dec_del_request(data: bytes, start: int, end: int, limits: Limits) -> DelRequest:
    return DelRequest(_text(data, start, end))


def _dec_moddn_request(data: bytes, start: int, end: int, limits: Limits) -> ModifyDNRequest:
    dn, pos = _string(data, start, end, "modifyDN entry")
    new_rdn, pos = _string(data, pos, end, "modifyDN newrdn")
    s, pos = ber.expect(data, pos, end, ber.BOOLEAN, "modifyDN deleteoldrdn")
    delete_old = decode_bool(data, s, pos)
    superior, pos = _optional(data, pos, end, 0x80)
    _done(pos, end, "modifyDN request")
    new_superior = None if superior is None else _text(superior, 0, len(superior))
    return ModifyDNRequest(dn, new_rdn, delete_old, new_superior)


def _dec_compare_request(data: bytes, start: int, end: int, limits: Limits) -> CompareRequest:
    dn, pos = _string(data, start, end, "compare entry")
    s, e = ber.expect(data, pos, end, ber.SEQUENCE, "compare assertion")
    _done(e, end, "compare request")
    attribute, p = _string(data, s, e, "compare attribute")
    value, p = _bytes(data, p, e, "compare value")
    _done(p, e, "compare assertion")
    return CompareRequest(dn, attribute, value)


def _dec_abandon_request(data: bytes, start: int, end: int, limits: Limits) -> AbandonRequest:
    message_id = decode_int(data, start, end)
    if not 0 <= message_id <= MAX_INT:
        raise ProtocolError(f"abandon of messageID {message_id} outside 0..maxInt")
    return AbandonRequest(message_id)


def _dec_unbind_request(data: bytes, start: int, end: int, limits: Limits) -> UnbindRequest:
    if end != start:
        raise ProtocolError("the NULL of an unbind request has contents")
    return UnbindRequest()


def _dec_extended_request(data: bytes, start: int, end: int, limits: Limits) -> ExtendedRequest:
    s, e = ber.expect(data, start, end, 0x80, "extended requestName")
    name = _text(data, s, e)
    value, pos = _optional(data, e, end, 0x81)
    _done(pos, end, "extended request")
    return ExtendedRequest(name, value)


def _dec_bind_response(data: bytes, start: int, end: int, limits: Limits) -> BindResponse:
    result, pos = _result(data, start, end, "bind response")
    creds, pos = _optional(data, pos, end, 0x87)
    _done(pos, end, "bind response")
    return BindResponse(result, creds)


def _dec_search_entry(data: bytes, start: int, end: int, limits: Limits) -> SearchResultEntry:
    dn, pos = _string(data, start, end, "search entry name")
    astart, aend = ber.expect(data, pos, end, ber.SEQUENCE, "search entry attributes")
    _done(aend, end, "search entry")
    return SearchResultEntry(dn, _attributes(data, astart, aend, limits))


def _dec_search_reference(
    data: bytes, start: int, end: int, limits: Limits
) -> SearchResultReference:
    return SearchResultReference(_uris(data, start, end, "search reference"))


def _dec_extended_response(
    data: bytes, start: int, end: int, limits: Limits
) -> ExtendedResponse:
    result, pos = _result(data, start, end, "extended response")
    name, pos = _optional(data, pos, end, 0x8A)
    value, pos = _optional(data, pos, end, 0x8B)
    _done(pos, end, "extended response")
    return ExtendedResponse(result, None if name is None else _text(name, 0, len(name)), value)


def _dec_intermediate(
    data: bytes, start: int, end: int, limits: Limits
) -> IntermediateResponse:
    name, pos = _optional(data, start, end, 0x80)
    value, pos = _optional(data, pos, end, 0x81)
    _done(pos, end, "intermediate response")
    return IntermediateResponse(None if name is None else _text(name, 0, len(name)), value)


def _result_only(cls: Callable[[Result], ProtocolOp]) -> Callable[..., ProtocolOp]:
    def decode(data: bytes, start: int, end: int, limits: Limits) -> ProtocolOp:
        result, pos = _result(data, start, end, cls.__name__)
        _done(pos, end, cls.__name__)
        return cls(result)

    return decode


Decoder = Callable[[bytes, int, int, Limits], ProtocolOp]

REQUEST_DECODERS: dict[int, Decoder] = {
    0x60: _dec_bind_request,
    0x42: _dec_unbind_request,
    0x63: _dec_search_request,
    0x66: _dec_modify_request,
    0x68: _dec_add_request,
    0x4A: _dec_del_request,
    0x6C: _dec_moddn_request,
    0x6E: _dec_compare_request,
    0x50: _dec_abandon_request,
    0x77: _dec_extended_request,
}

RESPONSE_DECODERS: dict[int, Decoder] = {
    0x61: _dec_bind_response,
    0x64: _dec_search_entry,
    0x65: _result_only(SearchResultDone),
    0x73: _dec_search_reference,
    0x67: _result_only(ModifyResponse),
    0x69: _result_only(AddResponse),
    0x6B: _result_only(DelResponse),
    0x6D: _result_only(ModifyDNResponse),
    0x6F: _result_only(CompareResponse),
    0x78: _dec_extended_response,
    0x79: _dec_intermediate,
}

ALL_DECODERS = {**REQUEST_DECODERS, **RESPONSE_DECODERS}


def _controls(data: bytes, start: int, end: int, limits: Limits) -> tuple[Control, ...]:
    def each() -> Iterator[Control]:
        for tag, s, e in children(data, start, end):
            if tag != ber.SEQUENCE:
                raise ProtocolError("control is not a SEQUENCE")
            oid, pos = _string(data, s, e, "controlType")
            critical = False
            if pos < e and data[pos] == ber.BOOLEAN:
                bs, pos = ber.expect(data, pos, e, ber.BOOLEAN, "criticality")
                critical = decode_bool(data, bs, pos)
            value, pos = _optional(data, pos, e, ber.OCTET_STRING)
            _done(pos, e, "control")
            yield Control(oid, critical, value)

    controls: tuple[Control, ...] = _counted(each(), limits, "controls")
    return controls


def decode(
    data: bytes, limits: Limits = Limits(), decoders: dict[int, Decoder] = ALL_DECODERS
) -> LDAPMessage:
    """Decode one complete LDAPMessage held exactly in `data`."""
    start, end = ber.expect(data, 0, len(data), ber.SEQUENCE, "LDAPMessage")
    _done(end, len(data), "LDAPMessage")
    s, pos = ber.expect(data, start, end, ber.INTEGER, "messageID")
    message_id = decode_int(data, s, pos)
    if not 0 <= message_id <= MAX_INT:
        raise ProtocolError(f"messageID {message_id} out of range")
    tag, ostart, oend = read_tlv(data, pos, end)
    decoder = decoders.get(tag)
    if decoder is None:
        raise ProtocolError(f"unknown protocolOp tag 0x{tag:02x}")
    op = decoder(data, ostart, oend, limits)
    controls: tuple[Control, ...] = ()
    if oend < end:
        cstart, cend = ber.expect(data, oend, end, 0xA0, "controls")
        _done(cend, end, "LDAPMessage")
        controls = _controls(data, cstart, cend, limits)
    return LDAPMessage(message_id, op, controls)


def _enc_result(result: Result) -> bytes:
    out = (
        encode_int(result.code, ber.ENUMERATED)
        + enc_octets(result.matched.encode())
        + enc_octets(result.message.encode())
    )
    if result.referrals:
        out += tlv(0xA3, b"".join(enc_octets(u.encode()) for u in result.referrals))
    return out


def _enc_values(values: Values) -> bytes:
    return tlv(ber.SET, b"".join([tlv(ber.OCTET_STRING, v) for v in values]))


def encode_attribute(name: str, values: Values) -> bytes:
    """One PartialAttribute: also used to pre-encode cached entries."""
    return tlv(ber.SEQUENCE, enc_octets(name.encode()) + _enc_values(values))


def encode_attributes(attributes: Attributes) -> bytes:
    return tlv(ber.SEQUENCE, b"".join([encode_attribute(n, v) for n, v in attributes]))


def encode_entry_body(dn: str, encoded_attributes: bytes) -> bytes:
    """The value of a SearchResultEntry from already encoded PartialAttributes."""
    return enc_octets(dn.encode()) + tlv(ber.SEQUENCE, encoded_attributes)


def _optional_field(tag: int, value: bytes | None) -> bytes:
    return b"" if value is None else tlv(tag, value)


def _enc_bind_request(op: BindRequest) -> bytes:
    if op.other_method is not None:
        auth = tlv(op.other_method, op.credentials or b"")
    elif op.mechanism is not None:
        auth = tlv(0xA3, enc_octets(op.mechanism.encode())
                   + _optional_field(ber.OCTET_STRING, op.credentials))
    else:
        auth = tlv(0x80, op.password or b"")
    return tlv(0x60, encode_int(op.version) + enc_octets(op.name.encode()) + auth)


def _enc_search_request(op: SearchRequest) -> bytes:
    return tlv(0x63, b"".join((
        enc_octets(op.base.encode()),
        encode_int(op.scope, ber.ENUMERATED),
        encode_int(op.deref, ber.ENUMERATED),
        encode_int(op.size_limit),
        encode_int(op.time_limit),
        encode_bool(op.types_only),
        filter_to_ber(op.filter),
        tlv(ber.SEQUENCE, b"".join(enc_octets(a.encode()) for a in op.attributes)),
    )))


def _enc_modify_request(op: ModifyRequest) -> bytes:
    changes = b"".join(
        tlv(ber.SEQUENCE,
            encode_int(c.op, ber.ENUMERATED) + encode_attribute(c.attribute, c.values))
        for c in op.changes
    )
    return tlv(0x66, enc_octets(op.dn.encode()) + tlv(ber.SEQUENCE, changes))


def _enc_moddn_request(op: ModifyDNRequest) -> bytes:
    superior = b"" if op.new_superior is None else tlv(0x80, op.new_superior.encode())
    return tlv(0x6C, enc_octets(op.dn.encode()) + enc_octets(op.new_rdn.encode())
               + encode_bool(op.delete_old_rdn) + superior)


def _enc_compare_request(op: CompareRequest) -> bytes:
    ava = tlv(ber.SEQUENCE, enc_octets(op.attribute.encode()) + enc_octets(op.value))
    return tlv(0x6E, enc_octets(op.dn.encode()) + ava)


def _enc_extended_request(op: ExtendedRequest) -> bytes:
    return tlv(0x77, tlv(0x80, op.name.encode()) + _optional_field(0x81, op.value))


def _enc_bind_response(op: BindResponse) -> bytes:
    return tlv(0x61, _enc_result(op.result) + _optional_field(0x87, op.credentials))


def _enc_extended_response(op: ExtendedResponse) -> bytes:
    name = None if op.name is None else op.name.encode()
    return tlv(0x78, _enc_result(op.result) + _optional_field(0x8A, name)
               + _optional_field(0x8B, op.value))


def _enc_intermediate(op: IntermediateResponse) -> bytes:
    name = None if op.name is None else op.name.encode()
    return tlv(0x79, _optional_field(0x80, name) + _optional_field(0x81, op.value))


def _enc_result_only(tag: int) -> Callable[[Any], bytes]:
    return lambda op: tlv(tag, _enc_result(op.result))


ENCODERS: dict[type, Callable[[Any], bytes]] = {
    BindRequest: _enc_bind_request,
    UnbindRequest: lambda op: b"\x42\x00",
    SearchRequest: _enc_search_request,
    ModifyRequest: _enc_modify_request,
    AddRequest: lambda op: tlv(0x68, enc_octets(op.dn.encode()) + encode_attributes(op.attributes)),
    DelRequest: lambda op: tlv(0x4A, op.dn.encode()),
    ModifyDNRequest: _enc_moddn_request,
    CompareRequest: _enc_compare_request,
    AbandonRequest: lambda op: encode_int(op.message_id, 0x50),
    ExtendedRequest: _enc_extended_request,
    BindResponse: _enc_bind_response,
    SearchResultEntry: lambda op: tlv(
        0x64, enc_octets(op.dn.encode()) + encode_attributes(op.attributes)),
    EncodedSearchResultEntry: lambda op: tlv(0x64, op.body),
    SearchResultReference: lambda op: tlv(0x73, b"".join(enc_octets(u.encode()) for u in op.uris)),
    SearchResultDone: _enc_result_only(0x65),
    ModifyResponse: _enc_result_only(0x67),
    AddResponse: _enc_result_only(0x69),
    DelResponse: _enc_result_only(0x6B),
    ModifyDNResponse: _enc_result_only(0x6D),
    CompareResponse: _enc_result_only(0x6F),
    ExtendedResponse: _enc_extended_response,
    IntermediateResponse: _enc_intermediate,
}


def _enc_control(control: Control) -> bytes:
    body = enc_octets(control.oid.encode())
    if control.critical:
        body += encode_bool(True)
    return tlv(ber.SEQUENCE, body + _optional_field(ber.OCTET_STRING, control.value))


def encode(message: LDAPMessage) -> bytes:
    body = encode_int(message.message_id) + ENCODERS[type(message.op)](message.op)
    if message.controls:
        body += tlv(0xA0, b"".join(_enc_control(c) for c in message.controls))
    return tlv(ber.SEQUENCE, body)


def next_pdu(buf: bytearray, max_pdu: int) -> bytes | None:
    """The next complete LDAPMessage PDU, taken out of `buf`; None while it
    is incomplete. Raises ProtocolError for a PDU that is not a SEQUENCE or
    is larger than `max_pdu` (known from its header, before it arrives)."""
    header = ber.header_length(buf)
    if header is None:
        return None
    if buf[0] != ber.SEQUENCE:
        raise ProtocolError(f"LDAPMessage must be a SEQUENCE, got 0x{buf[0]:02x}")
    size = header[0] + header[1]
    if size > max_pdu:
        raise ProtocolError(f"PDU of {size} bytes exceeds the limit of {max_pdu}")
    if len(buf) < size:
        return None
    pdu = bytes(buf[:size])
    del buf[:size]
    return pdu


class LDAPConnection:
    """The server side of one LDAP session, without I/O."""

    def __init__(self, limits: Limits = Limits()) -> None:
        self.limits = limits
        self._buffer = bytearray()

    def receive_data(self, data: bytes) -> None:
        self._buffer += data

    @property
    def buffered(self) -> int:
        """Bytes received and not yet yielded: once `requests()` is exhausted, the
        start of a PDU still incomplete."""
        return len(self._buffer)

    def requests(self) -> Iterator[LDAPMessage]:
        """Yield each complete request buffered so far; raise ProtocolError.
        Stopping early leaves the requests not yet yielded buffered."""
        while (pdu := next_pdu(self._buffer, self.limits.max_pdu)) is not None:
            message = decode(pdu, self.limits, REQUEST_DECODERS)
            if message.message_id == 0:
                raise ProtocolError("messageID 0 is reserved for unsolicited notifications")
            yield message

    @staticmethod
    def send(message: LDAPMessage) -> bytes:
        return encode(message)
