"""The control registry against RFC 4511 §4.1.11 and each control's own RFC.

- An unknown control, or one that does not apply to the operation, is ignored
  when non-critical and fails with unavailableCriticalExtension (12) when
  critical (RFC 4511 §4.1.11).
- A recognised control given twice, or with a value that does not decode, or a
  value where none is allowed, fails with protocolError (2).
- Values: paged results (RFC 2696 §2), sort request and response (RFC 2891
  §1.1, §1.2), ManageDsaIT (RFC 3296 §3), assertion (RFC 4528 §3), pre-/post-read
  (RFC 4527 §3), subtree delete (draft-armijo-ldap-treedelete), proxied
  authorization (RFC 4370 §3: critical, an authzId value, not on bind or
  StartTLS), chaining behavior (draft-sermersheim-ldap-chaining §3, searches
  only).
"""

from __future__ import annotations

from typing import Any

import pytest

from directory.protocol.controls import (
    ASSERTION,
    CHAINING_BEHAVIOR,
    CONTROLS,
    MANAGE_DSA_IT,
    MATCHED_VALUES,
    PAGED_RESULTS,
    POST_READ,
    PRE_READ,
    PROXIED_AUTHZ,
    SORT_REQUEST,
    SORT_RESPONSE,
    SUBTREE_DELETE,
    AttributeSelection,
    AuthzId,
    Behavior,
    ChainingBehavior,
    PagedResults,
    Present,
    SortKey,
    ValuesReturnFilter,
    encode_sort_result,
    parse_controls,
)
from directory.protocol.filter import And, Equality, Extensible
from directory.protocol.filter import Present as PresentFilter
from directory.protocol.messages import (
    AddRequest,
    BindRequest,
    CompareRequest,
    Control,
    DelRequest,
    Deref,
    ExtendedRequest,
    ModifyDNRequest,
    ModifyRequest,
    Request,
    Scope,
    SearchRequest,
)
from directory.protocol.ppolicy_control import PASSWORD_POLICY
from directory.protocol.results import LDAPError, ResultCode
from directory.protocol.sync import SYNC_REQUEST


def h(text: str) -> bytes:
    return bytes.fromhex(text)


SEARCH = SearchRequest("", Scope.BASE, Deref.NEVER, 0, 0, False, PresentFilter("objectClass"))
ADD = AddRequest("cn=a", (("cn", (b"a",)),))
DELETE = DelRequest("cn=a")
MODIFY = ModifyRequest("cn=a", ())
MODDN = ModifyDNRequest("cn=a", "cn=b", True)
COMPARE = CompareRequest("cn=a", "cn", b"a")
BIND = BindRequest(3, "", password=b"")
EXTENDED = ExtendedRequest("1.3.6.1.4.1.4203.1.11.3")
START_TLS = ExtendedRequest("1.3.6.1.4.1.1466.20037")

PAGE_5_X = h("3006 020105 040178")
SORT_TWO_KEYS = h("3019 3004 0402636e 3011 0402736e 8008322e352e31332e33 8101ff")
CN_EQUALS_A = h("a307 0402636e 040161")
CN_SN = h("3008 0402636e 0402736e")

ACCEPTED: list[tuple[str, Request, tuple[Control, ...], dict[str, Any]]] = [
    # (why, operation, controls, parsed)
    ("no controls", SEARCH, (), {}),
    ("16 sort keys, MAX_SORT_KEYS", SEARCH,
     (Control(SORT_REQUEST, True, h("3060" + "3004 0402636e" * 16)),),
     {SORT_REQUEST: (SortKey("cn"),) * 16}),
    ("a repeated pre-read description is kept once", DELETE,
     (Control(PRE_READ, True, h("300c 0402636e 0402736e 0402636e")),),
     {PRE_READ: AttributeSelection(("cn", "sn"))}),
    ("RFC 2696 paged results", SEARCH, (Control(PAGED_RESULTS, True, PAGE_5_X),),
     {PAGED_RESULTS: PagedResults(5, b"x")}),
    ("RFC 2696 first page: empty cookie", SEARCH, (Control(PAGED_RESULTS, False,
                                                           h("3005 02010a 0400")),),
     {PAGED_RESULTS: PagedResults(10, b"")}),
    ("RFC 2891 sort keys, orderingRule and reverseOrder", SEARCH,
     (Control(SORT_REQUEST, True, SORT_TWO_KEYS),),
     {SORT_REQUEST: (SortKey("cn"), SortKey("sn", "2.5.13.3", True))}),
    ("RFC 2891 reverseOrder FALSE sent explicitly", SEARCH,
     (Control(SORT_REQUEST, False, h("3009 3007 0402636e 810100")),),
     {SORT_REQUEST: (SortKey("cn"),)}),
    ("RFC 4528 assertion on a search", SEARCH, (Control(ASSERTION, True, CN_EQUALS_A),),
     {ASSERTION: Equality("cn", b"a")}),
    ("RFC 4528 assertion on compare, composite filter", COMPARE,
     (Control(ASSERTION, True, h("a009 a307 0402636e 040161")),),
     {ASSERTION: And((Equality("cn", b"a"),))}),
    ("RFC 4527 pre-read on delete", DELETE, (Control(PRE_READ, True, CN_SN),),
     {PRE_READ: AttributeSelection(("cn", "sn"))}),
    ("RFC 4527 post-read on add, empty selection", ADD, (Control(POST_READ, True, h("3000")),),
     {POST_READ: AttributeSelection(())}),
    ("RFC 4527 pre- and post-read on modify DN", MODDN,
     (Control(PRE_READ, False, CN_SN), Control(POST_READ, False, h("3003 04012a"))),
     {PRE_READ: AttributeSelection(("cn", "sn")), POST_READ: AttributeSelection(("*",))}),
    ("RFC 3876 matched values, two items", SEARCH,
     (Control(MATCHED_VALUES, True, h("3011 a307 0402636e 040161 8706 6f626a656374")),),
     {MATCHED_VALUES: ValuesReturnFilter((Equality("cn", b"a"), PresentFilter("object")))}),
    ("RFC 3876 matched values, extensible item without dnAttributes", SEARCH,
     (Control(MATCHED_VALUES, False, h("300d a90b 8102322e 8202636e 830161")),),
     {MATCHED_VALUES: ValuesReturnFilter((Extensible("2.", "cn", b"a"),))}),
    ("RFC 3296 ManageDsaIT on modify", MODIFY, (Control(MANAGE_DSA_IT, True),),
     {MANAGE_DSA_IT: Present()}),
    ("subtree delete", DELETE, (Control(SUBTREE_DELETE, True), Control(MANAGE_DSA_IT)),
     {SUBTREE_DELETE: Present(), MANAGE_DSA_IT: Present()}),
    ("§4.1.11 unknown non-critical control is ignored", SEARCH,
     (Control("1.2.3.4", False, b"anything"),), {}),
    ("§4.1.11 non-critical control on the wrong operation is ignored", DELETE,
     (Control(PAGED_RESULTS, False, PAGE_5_X),), {}),
    ("non-critical, wrong operation, even with a bad value", BIND,
     (Control(SORT_REQUEST, False, b"junk"),), {}),
    ("RFC 4370 proxied authorization on a search", SEARCH,
     (Control(PROXIED_AUTHZ, True, b"dn:cn=a"),), {PROXIED_AUTHZ: AuthzId("dn:cn=a")}),
    ("RFC 4370 empty authzId: anonymous, on WhoAmI", EXTENDED,
     (Control(PROXIED_AUTHZ, True, b""),), {PROXIED_AUTHZ: AuthzId("")}),
    ("chaining behavior: resolve and continuation", SEARCH,
     (Control(CHAINING_BEHAVIOR, False, h("3006 0a0102 0a0100")),),
     {CHAINING_BEHAVIOR: ChainingBehavior(Behavior.REFERRALS_PREFERRED,
                                          Behavior.CHAINING_PREFERRED)}),
    ("chaining behavior: a resolve behaviour alone also names the continuation one", SEARCH,
     (Control(CHAINING_BEHAVIOR, True, h("3003 0a0103")),),
     {CHAINING_BEHAVIOR: ChainingBehavior(Behavior.REFERRALS_REQUIRED,
                                          Behavior.REFERRALS_REQUIRED)}),
    ("chaining behavior: neither given is chainingPreferred", SEARCH,
     (Control(CHAINING_BEHAVIOR, True, h("3000")),), {CHAINING_BEHAVIOR: ChainingBehavior()}),
    ("an ignored control does not count as a duplicate", DELETE,
     (Control(PAGED_RESULTS, False, PAGE_5_X), Control(PAGED_RESULTS, False, PAGE_5_X)), {}),
]


@pytest.mark.parametrize(("why", "op", "controls", "parsed"), ACCEPTED,
                         ids=[c[0] for c in ACCEPTED])
def test_parse_controls(why: str, op: Request, controls: tuple[Control, ...],
                        parsed: dict[str, Any]) -> None:
    assert parse_controls(op, controls) == parsed


UNAVAILABLE = ResultCode.UNAVAILABLE_CRITICAL_EXTENSION
PROTOCOL = ResultCode.PROTOCOL_ERROR

REFUSED: list[tuple[str, Request, tuple[Control, ...], ResultCode]] = [
    ("RFC 3876 an and is not a SimpleFilterItem", SEARCH,
     (Control(MATCHED_VALUES, True, h("300b a009 a307 0402636e 040161")),), PROTOCOL),
    ("RFC 3876 a not is not a SimpleFilterItem", SEARCH,
     (Control(MATCHED_VALUES, True, h("300b a209 a307 0402636e 040161")),), PROTOCOL),
    ("RFC 3876 an extensible item has no dnAttributes", SEARCH,
     (Control(MATCHED_VALUES, True, h("300c a90a 8202636e 830161 8401ff")),), PROTOCOL),
    ("RFC 3876 at least one item", SEARCH, (Control(MATCHED_VALUES, True, h("3000")),),
     PROTOCOL),
    ("RFC 3876 matched values needs a value", SEARCH, (Control(MATCHED_VALUES, True),),
     PROTOCOL),
    ("RFC 3876 matched values is for search only", COMPARE,
     (Control(MATCHED_VALUES, True, h("3009 a307 0402636e 040161")),),
     ResultCode.UNAVAILABLE_CRITICAL_EXTENSION),
    # (why, operation, controls, result code)
    ("§4.1.11 unknown critical control", SEARCH, (Control("1.2.3.4", True),), UNAVAILABLE),
    ("critical paged results on delete", DELETE, (Control(PAGED_RESULTS, True, PAGE_5_X),),
     UNAVAILABLE),
    ("critical sort on bind", BIND, (Control(SORT_REQUEST, True, SORT_TWO_KEYS),),
     UNAVAILABLE),
    ("RFC 4527 post-read does not apply to delete", DELETE,
     (Control(POST_READ, True, CN_SN),), UNAVAILABLE),
    ("RFC 4527 pre-read does not apply to add", ADD, (Control(PRE_READ, True, CN_SN),),
     UNAVAILABLE),
    ("critical subtree delete on a search", SEARCH, (Control(SUBTREE_DELETE, True),),
     UNAVAILABLE),
    ("critical assertion on an extended operation", EXTENDED,
     (Control(ASSERTION, True, CN_EQUALS_A),), UNAVAILABLE),
    ("RFC 4370 proxied authorization not marked critical", MODIFY,
     (Control(PROXIED_AUTHZ, False, b"dn:cn=a"),), PROTOCOL),
    ("RFC 4370 proxied authorization without a value", MODIFY,
     (Control(PROXIED_AUTHZ, True),), PROTOCOL),
    ("RFC 4370 §3 proxied authorization does not apply to bind", BIND,
     (Control(PROXIED_AUTHZ, True, b""),), UNAVAILABLE),
    ("RFC 4370 §3 proxied authorization does not apply to StartTLS", START_TLS,
     (Control(PROXIED_AUTHZ, True, b""),), UNAVAILABLE),
    ("same control twice", SEARCH,
     (Control(PAGED_RESULTS, False, PAGE_5_X), Control(PAGED_RESULTS, True, PAGE_5_X)),
     PROTOCOL),
    ("paged results without a value", SEARCH, (Control(PAGED_RESULTS, True),), PROTOCOL),
    ("paged results value is not BER", SEARCH, (Control(PAGED_RESULTS, True, b"junk"),),
     PROTOCOL),
    ("paged results: negative size", SEARCH, (Control(PAGED_RESULTS, True,
                                                      h("3005 0201ff 0400")),), PROTOCOL),
    ("RFC 2696 size is INTEGER (0..maxInt)", SEARCH,
     (Control(PAGED_RESULTS, True, h("3009 02050080000000 0400")),), PROTOCOL),
    ("paged results: cookie missing", SEARCH, (Control(PAGED_RESULTS, True, h("3003 020105")),),
     PROTOCOL),
    ("paged results: data after the SEQUENCE", SEARCH,
     (Control(PAGED_RESULTS, True, PAGE_5_X + h("00")),), PROTOCOL),
    ("paged results: data inside the SEQUENCE", SEARCH,
     (Control(PAGED_RESULTS, True, h("3008 020105 040178 0500")),), PROTOCOL),
    ("non-critical control with a bad value still fails", SEARCH,
     (Control(PAGED_RESULTS, False, b"junk"),), PROTOCOL),
    ("sort without keys", SEARCH, (Control(SORT_REQUEST, True, h("3000")),), PROTOCOL),
    ("17 sort keys, one more than MAX_SORT_KEYS", SEARCH,
     (Control(SORT_REQUEST, True, h("3066" + "3004 0402636e" * 17)),),
     ResultCode.ADMIN_LIMIT_EXCEEDED),
    ("sort key is not a SEQUENCE", SEARCH, (Control(SORT_REQUEST, True, h("3004 0402636e")),),
     PROTOCOL),
    ("sort key with an unknown field", SEARCH,
     (Control(SORT_REQUEST, True, h("3009 3007 0402636e 820100")),), PROTOCOL),
    ("sort key attribute is not UTF-8", SEARCH,
     (Control(SORT_REQUEST, True, h("3006 3004 0402c328")),), PROTOCOL),
    ("sort orderingRule is not UTF-8", SEARCH,
     (Control(SORT_REQUEST, True, h("300a 3008 0402636e 8002c328")),), PROTOCOL),
    ("RFC 3296 ManageDsaIT with a value", MODIFY, (Control(MANAGE_DSA_IT, False, b""),),
     PROTOCOL),
    ("subtree delete with a value", DELETE, (Control(SUBTREE_DELETE, True, h("3000")),),
     PROTOCOL),
    ("assertion without a filter", SEARCH, (Control(ASSERTION, True),), PROTOCOL),
    ("assertion with data after the filter", SEARCH,
     (Control(ASSERTION, True, CN_EQUALS_A + h("00")),), PROTOCOL),
    ("assertion with an unknown filter choice", SEARCH, (Control(ASSERTION, True, h("aa00")),),
     PROTOCOL),
    ("pre-read without a value", DELETE, (Control(PRE_READ, True),), PROTOCOL),
    ("pre-read selection holds a non-string", DELETE,
     (Control(PRE_READ, True, h("3003 020101")),), PROTOCOL),
    ("chaining behavior without a value", SEARCH, (Control(CHAINING_BEHAVIOR, True),),
     PROTOCOL),
    ("chaining behavior of an unknown behaviour", SEARCH,
     (Control(CHAINING_BEHAVIOR, True, h("3003 0a0104")),), PROTOCOL),
    ("chaining behavior of three behaviours", SEARCH,
     (Control(CHAINING_BEHAVIOR, True, h("3009 0a0100 0a0100 0a0100")),), PROTOCOL),
    ("chaining behavior on a modify: certdir chains searches only", MODIFY,
     (Control(CHAINING_BEHAVIOR, True, h("3003 0a0100")),), UNAVAILABLE),
    ("post-read attribute is not UTF-8", ADD, (Control(POST_READ, True, h("3004 0402c328")),),
     PROTOCOL),
]


@pytest.mark.parametrize(("why", "op", "controls", "code"), REFUSED,
                         ids=[c[0] for c in REFUSED])
def test_parse_controls_refuses(why: str, op: Request, controls: tuple[Control, ...],
                                code: ResultCode) -> None:
    with pytest.raises(LDAPError) as caught:
        parse_controls(op, controls)
    assert caught.value.code == code


@pytest.mark.parametrize(("paged", "value"), [
    (PagedResults(10, b"ck"), h("3007 02010a 0402636b")),
    (PagedResults(0, b""), h("3005 020100 0400")),
    (PagedResults(200, b"x"), h("3007 020200c8 040178")),
])
def test_paged_results_response(paged: PagedResults, value: bytes) -> None:
    assert paged.to_control() == Control(PAGED_RESULTS, False, value)


def test_paged_results_response_parses_back() -> None:
    paged = PagedResults(42, b"\x00cookie")
    assert parse_controls(SEARCH, (paged.to_control(),)) == {PAGED_RESULTS: paged}


@pytest.mark.parametrize(("code", "attribute", "value"), [
    (ResultCode.SUCCESS, None, h("3003 0a0100")),
    (ResultCode.NO_SUCH_ATTRIBUTE, "cn", h("3007 0a0110 8002636e")),
    (ResultCode.INAPPROPRIATE_MATCHING, "sn", h("3007 0a0112 8002736e")),
])
def test_encode_sort_result(code: ResultCode, attribute: str | None, value: bytes) -> None:
    assert encode_sort_result(code, attribute) == Control(SORT_RESPONSE, False, value)


def test_registry_names_every_control_once() -> None:
    assert sorted(CONTROLS) == sorted({PAGED_RESULTS, SORT_REQUEST, MANAGE_DSA_IT, ASSERTION,
                                       PRE_READ, POST_READ, SUBTREE_DELETE, PROXIED_AUTHZ,
                                       PASSWORD_POLICY, MATCHED_VALUES,
                                       CHAINING_BEHAVIOR, SYNC_REQUEST})


def test_chaining_behavior_encodes_both_behaviours() -> None:
    behavior = ChainingBehavior(Behavior.REFERRALS_REQUIRED, Behavior.REFERRALS_REQUIRED)
    assert behavior.to_control() == Control(CHAINING_BEHAVIOR, False, h("3006 0a0103 0a0103"))
