"""The sans-IO codec against RFC 4511 §4 and §5.1, with asn1tools as an oracle.

- Every PDU of Appendix B decodes from, and encodes to, the bytes written here by
  hand from the BER rules; asn1tools (compiling the RFC's own ASN.1 module) agrees
  on each of them, so the table is not our encoder's echo.
- `LDAPConnection` frames PDUs however the bytes arrive, accepts the four-octet
  long-form lengths Microsoft clients send, and raises `ProtocolError` for every
  malformed or disallowed PDU (RFC 4511 §4.1.1: the server then disconnects).
- Hypothesis round trips: decode(encode(m)) == m for every message type, and
  asn1tools reads our bytes, and we read its bytes, as the same message.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from directory.protocol.codec import (
    LDAPConnection,
    Limits,
    decode,
    decode_attributes,
    encode,
    encode_attribute,
    encode_attributes,
    encode_entry_body,
)
from directory.protocol.filter import (
    And,
    Approx,
    Equality,
    Extensible,
    Filter,
    FilterLimits,
    GreaterOrEqual,
    LessOrEqual,
    Not,
    Or,
    Present,
    Substrings,
)
from directory.protocol.messages import (
    MAX_INT,
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
    Result,
    Scope,
    SearchRequest,
    SearchResultDone,
    SearchResultEntry,
    SearchResultReference,
    UnbindRequest,
)
from directory.protocol.results import ProtocolError, ResultCode
from tests.unit.ldap_asn1 import oracle_decode, oracle_encode, representable_codes


def h(text: str) -> bytes:
    return bytes.fromhex(text)


OK = Result()
STARTTLS = "1.3.6.1.4.1.1466.20037"
STARTTLS_HEX = "312e332e362e312e342e312e313436362e3230303337"
WHOAMI_HEX = "312e332e362e312e342e312e343230332e312e31312e33"
PASSWD_HEX = "312e332e362e312e342e312e343230332e312e31312e31"
DISCONNECT_HEX = "312e332e362e312e342e312e313436362e3230303336"
SYNC_INFO_HEX = "312e332e362e312e342e312e343230332e312e392e312e34"
TREE_DELETE_HEX = "312e322e3834302e3131333535362e312e342e383035"
MANAGE_DSA_IT_HEX = "322e31362e3834302e312e3131333733302e332e342e32"
PAGED_HEX = "312e322e3834302e3131333535362e312e342e333139"
OBJECT_CLASS_HEX = "6f626a656374436c617373"

CASES: list[tuple[str, bytes, LDAPMessage]] = [
    # (why, wire, message)
    ("§4.2 anonymous simple bind", h("300c 020101 6007 020103 0400 8000"),
     LDAPMessage(1, BindRequest(3, "", password=b""))),
    ("§4.2 simple bind with DN and password",
     h("3012 020102 600d 020103 0404 636e3d61 8002 7077"),
     LDAPMessage(2, BindRequest(3, "cn=a", password=b"pw"))),
    ("§4.2 SASL bind without credentials",
     h("3016 020103 6011 020103 0400 a30a 0408 45585445524e414c"),
     LDAPMessage(3, BindRequest(3, "", mechanism="EXTERNAL"))),
    ("§4.2 SASL bind with credentials",
     h("3019 020104 6014 020103 0400 a30d 0405 504c41494e 0404 00750070"),
     LDAPMessage(4, BindRequest(3, "", mechanism="PLAIN", credentials=b"\0u\0p"))),
    ("§4.2.2 bind response", h("300c 020101 6107 0a0100 0400 0400"),
     LDAPMessage(1, BindResponse(OK))),
    ("§4.2.2 bind response with serverSaslCreds",
     h("3011 020101 610c 0a010e 0400 0400 8703 616263"),
     LDAPMessage(1, BindResponse(Result(ResultCode.SASL_BIND_IN_PROGRESS), b"abc"))),
    ("§4.3 unbind", h("3005 020103 4200"), LDAPMessage(3, UnbindRequest())),
    ("§4.5.1 search, equality filter, two attributes",
     h("302f 020102 632a 0404 64633d78 0a0101 0a0103 02010a 020100 010100"
       " a307 0402636e 040161 300a 0402636e 04046d61696c"),
     LDAPMessage(2, SearchRequest("dc=x", Scope.ONE, Deref.ALWAYS, 10, 0, False,
                                  Equality("cn", b"a"), ("cn", "mail")))),
    ("§4.5.1.7.2 search, substrings initial/any/final",
     h("302c 020103 6327 0400 0a0100 0a0100 020100 020100 010100"
       " a412 0402636e 300c 80026162 81026364 82026566 3000"),
     LDAPMessage(3, SearchRequest("", Scope.BASE, Deref.NEVER, 0, 0, False,
                                  Substrings("cn", b"ab", (b"cd",), b"ef")))),
    ("§4.5.1.7 search, or of not/present, >=, <=, ~=, extensible; typesOnly",
     h("305c 020104 6357 0400 0a0102 0a0100 020100 020100 0101ff"
       f" a142 a20d 870b {OBJECT_CLASS_HEX}"
       " a508 0403616765 040135 a608 0403616765 040139 a807 0402736e 040178"
       " a914 8108 322e352e31332e32 8202636e 830179 8401ff 3000"),
     LDAPMessage(4, SearchRequest("", Scope.SUB, Deref.NEVER, 0, 0, True, Or((
         Not(Present("objectClass")), GreaterOrEqual("age", b"5"),
         LessOrEqual("age", b"9"), Approx("sn", b"x"),
         Extensible("2.5.13.2", "cn", b"y", dn_attributes=True)))))),
    ("RFC 4526 absolute true filter, attribute list 1.1",
     h("301f 020105 631a 0400 0a0100 0a0100 020100 020100 010100 a000 3005 0403312e31"),
     LDAPMessage(5, SearchRequest("", Scope.BASE, Deref.NEVER, 0, 0, False, And(()),
                                  ("1.1",)))),
    ("§4.5.2 search result entry",
     h("3036 020102 6431 0404636e3d61 3029 3009 0402636e 3103 040161"
       f" 301c 040b{OBJECT_CLASS_HEX} 310d 0403746f70 0406706572736f6e"),
     LDAPMessage(2, SearchResultEntry("cn=a", (("cn", (b"a",)),
                                               ("objectClass", (b"top", b"person")))))),
    ("§4.5.3 search result reference", h("3010 020102 730b 0409 6c6461703a2f2f622f"),
     LDAPMessage(2, SearchResultReference(("ldap://b/",)))),
    ("§4.1.10 search done with a referral",
     h("3019 020102 6514 0a010a 0400 0400 a30b 0409 6c6461703a2f2f622f"),
     LDAPMessage(2, SearchResultDone(Result(ResultCode.REFERRAL, referrals=("ldap://b/",))))),
    ("§4.1.9 search done with matchedDN and diagnosticMessage",
     h("3012 020102 650d 0a0120 040464633d78 04026e6f"),
     LDAPMessage(2, SearchResultDone(Result(ResultCode.NO_SUCH_OBJECT, "dc=x", "no")))),
    ("§4.6 modify: replace with a value, delete a whole attribute",
     h("302c 020103 6627 0404636e3d61 301f 3010 0a0102 300b 04046d61696c 3103 04016d"
       " 300b 0a0101 3006 0402736e 3100"),
     LDAPMessage(3, ModifyRequest("cn=a", (Change(ModOp.REPLACE, "mail", (b"m",)),
                                           Change(ModOp.DELETE, "sn"))))),
    ("§4.6 modify response", h("300c 020103 6707 0a0100 0400 0400"),
     LDAPMessage(3, ModifyResponse(OK))),
    ("§4.7 add",
     h(f"3031 020104 682c 0404636e3d61 3024 3017 040b{OBJECT_CLASS_HEX}"
       " 3108 0406706572736f6e 3009 0402636e 3103 040161"),
     LDAPMessage(4, AddRequest("cn=a", (("objectClass", (b"person",)), ("cn", (b"a",)))))),
    ("§4.7 add response with a message",
     h("3012 020104 690d 0a0144 0400 0406657869737473"),
     LDAPMessage(4, AddResponse(Result(ResultCode.ENTRY_ALREADY_EXISTS, message="exists")))),
    ("§4.8 delete: the DN is the primitive body", h("3009 020105 4a04636e3d61"),
     LDAPMessage(5, DelRequest("cn=a"))),
    ("§4.8 delete response", h("300c 020105 6b07 0a0100 0400 0400"),
     LDAPMessage(5, DelResponse(OK))),
    ("§4.9 modify DN without newSuperior",
     h("3014 020106 6c0f 0404636e3d61 0404636e3d62 0101ff"),
     LDAPMessage(6, ModifyDNRequest("cn=a", "cn=b", True))),
    ("§4.9 modify DN with newSuperior",
     h("301a 020107 6c15 0404636e3d61 0404636e3d62 010100 800464633d78"),
     LDAPMessage(7, ModifyDNRequest("cn=a", "cn=b", False, "dc=x"))),
    ("§4.9 modify DN response", h("300c 020106 6d07 0a0100 0400 0400"),
     LDAPMessage(6, ModifyDNResponse(OK))),
    ("§4.10 compare", h("3014 020107 6e0f 0404636e3d61 3007 0402636e 040161"),
     LDAPMessage(7, CompareRequest("cn=a", "cn", b"a"))),
    ("§4.10 compare response compareTrue", h("300c 020107 6f07 0a0106 0400 0400"),
     LDAPMessage(7, CompareResponse(Result(ResultCode.COMPARE_TRUE)))),
    ("§4.11 abandon: the messageID is the primitive body", h("3006 020108 500105"),
     LDAPMessage(8, AbandonRequest(5))),
    ("§4.12 extended request without value", h(f"301e 020101 7719 8017{WHOAMI_HEX}"),
     LDAPMessage(1, ExtendedRequest("1.3.6.1.4.1.4203.1.11.3"))),
    ("§4.12 extended request with value",
     h(f"3022 020102 771d 8017{PASSWD_HEX} 81023000"),
     LDAPMessage(2, ExtendedRequest("1.3.6.1.4.1.4203.1.11.1", b"\x30\x00"))),
    ("§4.12 extended response without name or value", h("300c 020101 7807 0a0100 0400 0400"),
     LDAPMessage(1, ExtendedResponse(OK))),
    ("§4.4.1 notice of disconnection: messageID 0, responseName",
     h(f"3027 020100 7822 0a0102 0400 0403627965 8a16{DISCONNECT_HEX}"),
     LDAPMessage(0, ExtendedResponse(Result(ResultCode.PROTOCOL_ERROR, message="bye"),
                                     "1.3.6.1.4.1.1466.20036"))),
    ("§4.12 extended response with value only",
     h("3010 020102 780b 0a0100 0400 0400 8b023000"),
     LDAPMessage(2, ExtendedResponse(OK, value=b"\x30\x00"))),
    ("§4.13 empty intermediate response", h("3005 020103 7900"),
     LDAPMessage(3, IntermediateResponse())),
    ("§4.13 intermediate response with name and value",
     h(f"3022 020103 791d 8018{SYNC_INFO_HEX} 810178"),
     LDAPMessage(3, IntermediateResponse("1.3.6.1.4.1.4203.1.9.1.4", b"x"))),
    ("§4.1.11 controls: critical without value, non-critical without value",
     h(f"3043 020109 4a04636e3d61 a038 301b 0416{TREE_DELETE_HEX} 0101ff"
       f" 3019 0417{MANAGE_DSA_IT_HEX}"),
     LDAPMessage(9, DelRequest("cn=a"), (Control("1.2.840.113556.1.4.805", True),
                                         Control("2.16.840.1.113730.3.4.2")))),
    ("§4.1.11 critical control with a value (RFC 2696 paged results)",
     h(f"304d 02010a 6320 0400 0a0100 0a0100 020100 020100 010100 870b{OBJECT_CLASS_HEX}"
       f" 3000 a026 3024 0416{PAGED_HEX} 0101ff 0407 3005 020105 0400"),
     LDAPMessage(10, SearchRequest("", Scope.BASE, Deref.NEVER, 0, 0, False,
                                   Present("objectClass")),
                 (Control("1.2.840.113556.1.4.319", True, h("3005 020105 0400")),))),
    ("§4.1.11 non-critical control with a value",
     h("3018 020101 4200 a011 300f 0407312e322e332e34 0404 00ff0102"),
     LDAPMessage(1, UnbindRequest(), (Control("1.2.3.4", False, h("00ff0102")),))),
    ("long-form lengths from 128 octets on",
     h("3081 97 020101 6881 91 0400 3081 8c 3081 89 040161 3181 83 0481 80") + b"a" * 128,
     LDAPMessage(1, AddRequest("", (("a", (b"a" * 128,)),)))),
]

# BER allows more than one encoding; these are the ones our encoder never
# produces but must accept.
DECODE_ONLY: list[tuple[str, bytes, LDAPMessage]] = [
    ("four-octet long-form lengths everywhere (Microsoft clients)",
     h("3084 0000000d 020101 4a84 00000004 636e3d61"), LDAPMessage(1, DelRequest("cn=a"))),
    ("long-form length of a short value", h("3081 05 020101 4200"),
     LDAPMessage(1, UnbindRequest())),
    ("criticality FALSE sent explicitly (DEFAULT FALSE)",
     h("3015 020101 4200 a00e 300c 0407312e322e332e34 010100"),
     LDAPMessage(1, UnbindRequest(), (Control("1.2.3.4"),))),
    ("messageID with a leading zero octet", h("3006 02020080 4200"),
     LDAPMessage(128, UnbindRequest())),
    ("any non-zero octet is TRUE", h("3014 020106 6c0f 0404636e3d61 0404636e3d62 010101"),
     LDAPMessage(6, ModifyDNRequest("cn=a", "cn=b", True))),
    ("empty controls [0]", h("3007 020101 4200 a000"), LDAPMessage(1, UnbindRequest())),
]


def named(cases: list[tuple[Any, ...]]) -> dict[str, Any]:
    return {"argvalues": cases, "ids": [case[0] for case in cases]}


@pytest.mark.parametrize(("why", "wire", "message"), **named(CASES + DECODE_ONLY))
def test_decode(why: str, wire: bytes, message: LDAPMessage) -> None:
    assert decode(wire) == message


@pytest.mark.parametrize(("why", "wire", "message"), **named(CASES))
def test_encode(why: str, wire: bytes, message: LDAPMessage) -> None:
    assert encode(message) == wire


@pytest.mark.parametrize(("why", "wire", "message"), **named(CASES))
def test_oracle_agrees_with_table(why: str, wire: bytes, message: LDAPMessage) -> None:
    assert oracle_encode(message) == wire
    assert oracle_decode(wire) == message


@pytest.mark.parametrize(("why", "wire", "message"), **named(DECODE_ONLY))
def test_oracle_accepts_decode_only_forms(why: str, wire: bytes, message: LDAPMessage) -> None:
    assert oracle_decode(wire) == message


def test_unknown_authentication_choice_is_kept_for_the_bind_to_refuse() -> None:
    """§4.2: AuthenticationChoice is extensible, so a choice certdir does not
    know decodes (the bind answers authMethodNotSupported) instead of ending
    the connection. The RFC 4511 ASN.1 oracle has no such choice."""
    wire = h("300c 020101 6007 020103 0400 8100")
    message = LDAPMessage(1, BindRequest(3, "", credentials=b"", other_method=0x81))
    assert decode(wire) == message
    assert encode(message) == wire


@pytest.mark.parametrize("size", [127, 128, 255, 256, 65535, 65536, 70000])
def test_large_values_round_trip(size: int) -> None:
    message = LDAPMessage(3, CompareRequest("cn=a", "description", b"v" * size))
    wire = encode(message)
    assert decode(wire) == message
    assert oracle_decode(wire) == message


def test_stored_attribute_list_round_trip() -> None:
    attributes = (("cn", (b"a", b"b")), ("objectClass", (b"top",)), ("empty", ()))
    assert decode_attributes(encode_attributes(attributes)) == attributes


def test_stored_attribute_list_must_be_a_sequence() -> None:
    with pytest.raises(ProtocolError):
        decode_attributes(h("3103 040161"))


def test_pre_encoded_entry_is_the_same_pdu() -> None:
    attributes = (("cn", (b"a",)), ("objectClass", (b"top", b"person")))
    body = encode_entry_body("cn=a", b"".join(encode_attribute(n, v) for n, v in attributes))
    assert encode(LDAPMessage(2, EncodedSearchResultEntry(body))) == encode(
        LDAPMessage(2, SearchResultEntry("cn=a", attributes)))


# --- framing ----------------------------------------------------------------

REQUESTS = [(wire, message) for why, wire, message in CASES
            if type(message.op).__name__.endswith("Request") and message.message_id > 0]


def drain(conn: LDAPConnection) -> list[LDAPMessage]:
    return list(conn.requests())


def test_every_request_through_the_connection() -> None:
    conn = LDAPConnection()
    conn.receive_data(b"".join(wire for wire, _ in REQUESTS))
    assert drain(conn) == [message for _, message in REQUESTS]
    assert drain(conn) == []


@pytest.mark.parametrize(("wire", "message"), REQUESTS)
def test_pdu_split_byte_by_byte(wire: bytes, message: LDAPMessage) -> None:
    conn = LDAPConnection()
    seen: list[LDAPMessage] = []
    for i in range(len(wire)):
        assert seen == []
        conn.receive_data(wire[i : i + 1])
        seen += drain(conn)
    assert seen == [message]


def test_two_pdus_in_one_chunk_then_a_partial_one() -> None:
    bind, unbind = h("300c 020101 6007 020103 0400 8000"), h("3005 020102 4200")
    conn = LDAPConnection()
    conn.receive_data(bind + unbind + bind[:5])
    assert [m.message_id for m in drain(conn)] == [1, 2]
    conn.receive_data(bind[5:])
    assert [m.op for m in drain(conn)] == [BindRequest(3, "", password=b"")]


def test_four_octet_length_through_the_connection() -> None:
    conn = LDAPConnection()
    conn.receive_data(h("3084 00000005 020107 4200"))
    assert drain(conn) == [LDAPMessage(7, UnbindRequest())]


def test_pdu_of_exactly_max_pdu_is_accepted() -> None:
    wire = h("3005 020102 4200")
    conn = LDAPConnection(Limits(max_pdu=len(wire)))
    conn.receive_data(wire)
    assert drain(conn) == [LDAPMessage(2, UnbindRequest())]


def test_oversized_pdu_refused_from_its_header_alone() -> None:
    conn = LDAPConnection(Limits(max_pdu=1000))
    conn.receive_data(h("3084 00001000"))
    with pytest.raises(ProtocolError):
        drain(conn)


def test_oversized_pdu_refused_with_short_form_header() -> None:
    conn = LDAPConnection(Limits(max_pdu=100))
    conn.receive_data(h("3081 ff 020101"))
    with pytest.raises(ProtocolError):
        drain(conn)


def test_replaced_limits_apply_to_the_next_pdu() -> None:
    bind = h("300c 020101 6007 020103 0400 8000")
    conn = LDAPConnection(Limits(max_pdu=len(bind)))
    conn.receive_data(bind + h("3081 80") + bytes(0x80))
    requests = conn.requests()
    assert next(requests).message_id == 1
    conn.limits = Limits(max_pdu=len(bind) - 1)
    with pytest.raises(ProtocolError):
        next(requests)


def test_stopping_early_leaves_the_rest_buffered() -> None:
    bind, unbind = h("300c 020101 6007 020103 0400 8000"), h("3005 020102 4200")
    conn = LDAPConnection()
    conn.receive_data(bind + unbind + bind[:5])
    assert next(conn.requests()).message_id == 1
    assert conn.buffered == len(unbind) + 5
    assert [m.message_id for m in drain(conn)] == [2]
    assert conn.buffered == 5


def nested_not(depth: int) -> bytes:
    inner = h("870163")
    for _ in range(depth):
        inner = bytes((0xA2, len(inner))) + inner
    return inner


def search_with_filter(filter_ber: bytes, scope: int = 0) -> bytes:
    body = h("0400 0a01") + bytes((scope,)) + h("0a0100 020100 020100 010100") + filter_ber + h(
        "3000")
    op = bytes((0x63, len(body))) + body
    return bytes((0x30, len(op) + 3)) + h("020101") + op


THREE_VALUES = h("3019 020101 6814 0400 3010 300e 040161 3109 040178 040179 04017a")

REJECTED: list[tuple[str, bytes, Limits]] = [
    # (why, wire, limits)
    ("§5.1 indefinite length", h("3080 020101 4200 0000"), Limits()),
    ("five length octets", h("3085 0000000005 020101 4200"), Limits()),
    ("element runs past its container", h("300c 020101 6007 020103 0400 8005 00"), Limits()),
    ("high-tag-number identifier", h("3006 020101 7f2200"), Limits()),
    ("high-tag-number in the outer identifier", h("3f05 020101 4200"), Limits()),
    ("outer element is not a SEQUENCE", h("3105 020101 4200"), Limits()),
    ("unknown protocolOp tag", h("3005 020101 7a00"), Limits()),
    ("bind response sent as a request", h("300c 020101 6107 0a0100 0400 0400"), Limits()),
    ("search done sent as a request", h("300c 020101 6507 0a0100 0400 0400"), Limits()),
    ("extended response sent as a request", h("300c 020101 7807 0a0100 0400 0400"), Limits()),
    ("intermediate response sent as a request", h("3005 020101 7900"), Limits()),
    ("§4.1.1.1 messageID 0", h("3005 020100 4200"), Limits()),
    ("messageID 2^31", h("3009 020500 80000000 4200"), Limits()),
    ("negative messageID", h("3005 0201ff 4200"), Limits()),
    ("messageID is not an INTEGER", h("3005 0a0101 4200"), Limits()),
    ("invalid UTF-8 in a DN", h("3007 020101 4a02 c328"), Limits()),
    ("invalid UTF-8 in a bind name", h("300e 020101 6009 020103 0402 c328 8000"), Limits()),
    ("trailing garbage inside the bind SEQUENCE",
     h("300e 020101 6009 020103 0400 8000 0500"), Limits()),
    ("trailing garbage after the controls", h("3009 020101 4200 a000 0500"), Limits()),
    ("controls with the wrong tag", h("3007 020101 4200 3000"), Limits()),
    ("control value before criticality",
     h("3017 020101 4200 a010 300e 0407312e322e332e34 0400 0101ff"), Limits()),
    ("criticality of two octets",
     h("3016 020101 4200 a00f 300d 0407312e322e332e34 01020000"), Limits()),
    ("controlType is not UTF-8", h("3010 020101 4200 a009 3007 0405312ec3282e"), Limits()),
    ("more than max_elements controls",
     h("3016 020101 4200 a00f 3003 040161 3003 040162 3003 040163"), Limits(max_elements=2)),
    ("§4.2 bind authentication is a context-specific CHOICE",
     h("300c 020101 6007 020103 0400 0400"), Limits()),
    ("search scope 4", search_with_filter(h("870163"), scope=4), Limits()),
    ("modify operation 4",
     h("301a 020103 6615 0404636e3d61 300d 300b 0a0104 3006 0402736e 3100"), Limits()),
    ("more than max_elements values", THREE_VALUES, Limits(max_elements=2)),
    ("more than max_elements attributes",
     h("301e 020101 6819 0400 3015 3005 040161 3100 3005 040162 3100 3005 040163 3100"),
     Limits(max_elements=2)),
    ("filter nesting deeper than max_depth", search_with_filter(nested_not(4)),
     Limits(filter=FilterLimits(max_depth=3))),
    ("filter nesting deeper than the default limit", search_with_filter(nested_not(65)),
     Limits()),
    ("substrings filter without pieces",
     search_with_filter(h("a406 0402636e 3000")), Limits()),
    ("extensible match without rule or type", search_with_filter(h("a903 830179")), Limits()),
    ("unknown filter choice", search_with_filter(h("aa00")), Limits()),
    ("more filter items than max_items",
     search_with_filter(h("a009 870161 870162 870163")), Limits(filter=FilterLimits(max_items=3))),
    ("substrings pieces count as filter items",
     search_with_filter(h("a40f 0402636e 3009 800161 810162 820163")),
     Limits(filter=FilterLimits(max_items=2))),
    ("more than max_elements modify changes",
     encode(LDAPMessage(1, ModifyRequest("cn=a", (Change(ModOp.ADD, "cn", (b"x",)),) * 3))),
     Limits(max_elements=2)),
    ("more than max_elements search attributes, even one repeated",
     encode(LDAPMessage(1, SearchRequest("", Scope.BASE, Deref.NEVER, 0, 0, False,
                                         Present("cn"), ("cn",) * 3))),
     Limits(max_elements=2)),
    ("negative sizeLimit", h("301b 020101 6316 0400 0a0100 0a0100 0201ff 020100 010100"
                             " 870163 3000"), Limits()),
    ("§4.11 abandon of a negative messageID (MessageID is 0..maxInt)",
     h("3006 020101 5001ff"), Limits()),
    ("§4.11 abandon of messageID 2^31", h("300a 020101 5005 0080000000"), Limits()),
    ("X.690 §8.8.2: the NULL of an unbind has no contents", h("3006 020101 420100"), Limits()),
]


@pytest.mark.parametrize(("why", "wire", "limits"), **named(REJECTED))
def test_connection_rejects(why: str, wire: bytes, limits: Limits) -> None:
    conn = LDAPConnection(limits)
    conn.receive_data(wire)
    with pytest.raises(ProtocolError):
        drain(conn)


def test_filter_at_exactly_max_depth_is_accepted() -> None:
    conn = LDAPConnection(Limits(filter=FilterLimits(max_depth=3)))
    conn.receive_data(search_with_filter(nested_not(3)))
    (message,) = drain(conn)
    assert isinstance(message.op, SearchRequest)
    assert message.op.filter == Not(Not(Not(Present("c"))))


def test_substrings_pieces_within_max_items_are_accepted() -> None:
    conn = LDAPConnection(Limits(filter=FilterLimits(max_items=3)))
    conn.receive_data(search_with_filter(h("a40f 0402636e 3009 800161 810162 820163")))
    (message,) = drain(conn)
    assert isinstance(message.op, SearchRequest)
    assert message.op.filter == Substrings("cn", b"a", (b"b",), b"c")


def test_repeated_search_attributes_are_kept_once() -> None:
    conn = LDAPConnection()
    conn.receive_data(encode(LDAPMessage(1, SearchRequest(
        "", Scope.BASE, Deref.NEVER, 0, 0, False, Present("cn"), ("name",) * 20_000 + ("cn",)))))
    (message,) = drain(conn)
    assert isinstance(message.op, SearchRequest)
    assert message.op.attributes == ("name", "cn")


def test_max_elements_values_is_accepted() -> None:
    conn = LDAPConnection(Limits(max_elements=3))
    conn.receive_data(THREE_VALUES)
    (message,) = drain(conn)
    assert message.op == AddRequest("", (("a", (b"x", b"y", b"z")),))


BAD_RESPONSES: list[tuple[str, bytes]] = [
    # (why, wire): decode() reads responses too (clients, tests); same rules apply.
    ("bytes after the message", h("3005 020101 4200 00")),
    ("unknown result code 9", h("300c 020101 6707 0a0109 0400 0400")),
    ("responseName is not UTF-8", h("3010 020101 780b 0a0100 0400 0400 8a02c328")),
    ("intermediate responseName is not UTF-8", h("3009 020101 7904 8002c328")),
    ("search reference URI is not an OCTET STRING", h("3008 020101 7303 020101")),
    ("referral URI is not an OCTET STRING", h("3011 020101 650c 0a010a 0400 0400 a303 020101")),
    ("§4.1.10 Referral is SIZE (1..MAX)", h("300e 020101 6509 0a010a 0400 0400 a300")),
]


@pytest.mark.parametrize(("why", "wire"), **named(BAD_RESPONSES))
def test_decode_rejects(why: str, wire: bytes) -> None:
    with pytest.raises(ProtocolError):
        decode(wire)


# --- property tests ---------------------------------------------------------

ORACLE_SCOPES = (Scope.BASE, Scope.ONE, Scope.SUB)
ORACLE_MODOPS = (ModOp.ADD, ModOp.DELETE, ModOp.REPLACE)

texts = st.text(max_size=12)
blobs = st.binary(max_size=12) | st.binary(min_size=120, max_size=300)
ints = st.integers(0, MAX_INT)
optional_blobs = st.none() | blobs
optional_texts = st.none() | texts


def filters() -> st.SearchStrategy[Filter]:
    def avas(cls: Any) -> st.SearchStrategy[Filter]:
        return st.builds(cls, texts, blobs)

    substrings = st.builds(Substrings, texts, optional_blobs, st.lists(blobs, max_size=3).map(
        tuple), optional_blobs).filter(lambda f: bool(f.initial is not None or f.any
                                                      or f.final is not None))
    extensible = st.builds(Extensible, optional_texts, optional_texts, blobs,
                           st.booleans()).filter(lambda f: f.rule is not None
                                                 or f.attribute is not None)
    leaves = (avas(Equality) | avas(GreaterOrEqual) | avas(LessOrEqual) | avas(Approx)
              | st.builds(Present, texts) | substrings | extensible)

    def branches(inner: st.SearchStrategy[Filter]) -> st.SearchStrategy[Filter]:
        parts = st.lists(inner, max_size=3).map(tuple)
        return st.builds(And, parts) | st.builds(Or, parts) | st.builds(Not, inner)

    return st.recursive(leaves, branches, max_leaves=8)


def ops(oracle: bool) -> st.SearchStrategy[Any]:
    codes = st.sampled_from(representable_codes() if oracle else tuple(ResultCode))
    scopes = st.sampled_from(ORACLE_SCOPES if oracle else tuple(Scope))
    modops = st.sampled_from(ORACLE_MODOPS if oracle else tuple(ModOp))
    results = st.builds(Result, codes, texts, texts, st.lists(texts, max_size=2).map(tuple))
    values = st.lists(blobs, max_size=3).map(tuple)
    attributes = st.lists(st.tuples(texts, values), max_size=3).map(tuple)
    versions = st.integers(1, 127)
    return st.one_of(
        st.builds(BindRequest, versions, texts, password=blobs),
        st.builds(BindRequest, versions, texts, mechanism=texts, credentials=optional_blobs),
        st.just(UnbindRequest()),
        st.builds(SearchRequest, texts, scopes, st.sampled_from(tuple(Deref)), ints, ints,
                  st.booleans(), filters(), st.lists(texts, max_size=3, unique=True).map(tuple)),
        st.builds(ModifyRequest, texts, st.lists(st.builds(Change, modops, texts, values),
                                                 max_size=3).map(tuple)),
        st.builds(AddRequest, texts, attributes),
        st.builds(DelRequest, texts),
        st.builds(ModifyDNRequest, texts, texts, st.booleans(), optional_texts),
        st.builds(CompareRequest, texts, texts, blobs),
        st.builds(AbandonRequest, ints),
        st.builds(ExtendedRequest, texts, optional_blobs),
        st.builds(BindResponse, results, optional_blobs),
        st.builds(SearchResultEntry, texts, attributes),
        st.builds(SearchResultReference, st.lists(texts, min_size=1, max_size=3).map(tuple)),
        *(st.builds(cls, results) for cls in (SearchResultDone, ModifyResponse, AddResponse,
                                              DelResponse, ModifyDNResponse, CompareResponse)),
        st.builds(ExtendedResponse, results, optional_texts, optional_blobs),
        st.builds(IntermediateResponse, optional_texts, optional_blobs),
    )


def messages(oracle: bool) -> st.SearchStrategy[LDAPMessage]:
    controls = st.lists(st.builds(Control, texts, st.booleans(), optional_blobs), max_size=2)
    return st.builds(LDAPMessage, ints, ops(oracle), controls.map(tuple))


PROPERTY = settings(max_examples=200, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


@PROPERTY
@given(messages(oracle=False))
def test_round_trip(message: LDAPMessage) -> None:
    assert decode(encode(message)) == message


@PROPERTY
@given(messages(oracle=True))
def test_oracle_reads_our_bytes(message: LDAPMessage) -> None:
    assert oracle_decode(encode(message)) == message


@PROPERTY
@given(messages(oracle=True))
def test_we_read_oracle_bytes(message: LDAPMessage) -> None:
    assert decode(oracle_encode(message)) == message


@PROPERTY
@given(st.lists(messages(oracle=False), min_size=1, max_size=4), st.data())
def test_requests_survive_any_chunking(batch: list[LDAPMessage], data: st.DataObject) -> None:
    requests = [m for m in batch if type(m.op).__name__.endswith("Request") and m.message_id]
    stream = b"".join(encode(m) for m in requests)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=5)))
    conn = LDAPConnection()
    seen: list[LDAPMessage] = []
    for start, stop in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        conn.receive_data(stream[start:stop])
        seen += drain(conn)
    assert seen == requests
