"""DN limits and the DN parse cache (issue 10 part 4).

- A DN of `max_bytes` bytes (UTF-8) parses; one byte more is invalidDNSyntax,
  as slapd answers a DN over its 8192-byte SLAP_LDAPDN_MAXLEN. A DN of
  `max_rdns` RDNs parses; one more is invalidDNSyntax.
- With the limits lifted, a DN far deeper than Python's recursion limit
  parses, prints and walks up to the root: nothing is recursive.
- A client's DN never enters the cache of stored DNs (a short one is kept
  in a smaller cache of its own, within its bytes and still checked
  against the limits); a stored DN is, and the cache stays within its byte
  bound however many are added. A DN below a kept parent shares the
  parent's RDN objects; one RDN more than `max_rdns` below a kept parent
  is still invalidDNSyntax.
- The diagnostic for a huge DN quotes only its start.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from directory.protocol import dn as dn_module
from directory.protocol.dn import DN, DNLimits
from directory.protocol.results import LDAPError, ResultCode
from directory.schema import Schema

SCHEMA = Schema.load([Path(__file__).resolve().parents[2] / "schema"])
LIFTED = DNLimits(sys.maxsize, sys.maxsize)
DEFAULT = DNLimits()


def refusal(text: str, limits: DNLimits = DEFAULT) -> LDAPError:
    with pytest.raises(LDAPError) as caught:
        DN.parse(text, SCHEMA, limits)
    return caught.value


TAIL = ",dc=example,dc=com"
SIZES = [
    # (why, DN, its size in bytes, parses)
    ("8192 ASCII bytes", "cn=" + "x" * 8171 + TAIL, 8192, True),
    ("8193 ASCII bytes", "cn=" + "x" * 8172 + TAIL, 8193, False),
    ("8192 bytes, mostly two-byte characters", "cn=a" + "é" * 4085 + TAIL, 8192, True),
    ("8194 bytes in 4,108 characters", "cn=a" + "é" * 4086 + TAIL, 8194, False),
]


@pytest.mark.parametrize("why, text, size, parses", SIZES)
def test_dn_bytes_limit(why: str, text: str, size: int, parses: bool) -> None:
    assert len(text.encode()) == size
    if parses:
        assert DN.parse(text, SCHEMA).rdn.avas[0].key == "cn"
    else:
        assert refusal(text).code == ResultCode.INVALID_DN_SYNTAX


def rdns(count: int) -> str:
    return ",".join(f"ou=u{i}" for i in range(count - 2)) + ",dc=example,dc=com"


def test_max_rdns_parses() -> None:
    assert len(DN.parse(rdns(256), SCHEMA)) == 256


def test_one_rdn_more_than_max_rdns_is_invalid_dn_syntax() -> None:
    error = refusal(rdns(257))
    assert error.code == ResultCode.INVALID_DN_SYNTAX
    assert "more than 256 RDNs" in error.message


def test_limits_are_configurable() -> None:
    assert refusal(rdns(5), DNLimits(max_rdns=4)).code == ResultCode.INVALID_DN_SYNTAX
    assert refusal("cn=abcdef", DNLimits(max_bytes=8)).code == ResultCode.INVALID_DN_SYNTAX
    assert str(DN.parse("cn=abcde", SCHEMA, DNLimits(max_bytes=8))) == "cn=abcde"


def test_deep_dn_parses_without_recursion() -> None:
    count = 2 * sys.getrecursionlimit()
    dn = DN.parse(rdns(count), SCHEMA, LIFTED)
    assert len(dn) == count
    assert DN.parse(str(dn), SCHEMA, LIFTED) == dn
    depth, parent = 0, dn
    while parent:
        parent, depth = parent.parent, depth + 1
    assert depth == count


def test_huge_dn_message_quotes_only_its_start() -> None:
    error = refusal("cn=" + "x" * 1_000_000)
    assert len(error.message) < 300


def test_client_dns_never_enter_the_cache_of_stored_ones() -> None:
    kept = len(dn_module._SHARED)
    for i in range(1000):
        DN.parse(f"uid=client{i},ou=nowhere{i},dc=example,dc=com", SCHEMA)
    assert len(dn_module._SHARED) == kept


def test_long_client_dns_are_not_kept_and_short_ones_within_bytes() -> None:
    recent = dn_module._RECENT
    long_dn = "cn=" + "y" * 5000 + ",dc=example,dc=com"
    DN.parse(long_dn, SCHEMA)
    assert (long_dn, SCHEMA) not in recent
    for i in range(20_000):
        DN.parse(f"cn={i:05d}{'z' * 200},dc=example,dc=com", SCHEMA)
    assert 0 < recent.used <= recent.max_bytes


def test_a_recent_dn_still_obeys_stricter_limits() -> None:
    text = rdns(10)
    assert len(DN.parse(text, SCHEMA)) == 10
    assert refusal(text, DNLimits(max_rdns=9)).code == ResultCode.INVALID_DN_SYNTAX


def test_stored_dns_are_kept_within_the_byte_bound() -> None:
    cache = dn_module._SHARED
    for i in range(600):
        DN.shared(f"ou={i:05d}{'x' * 8000},dc=example,dc=com", SCHEMA)
    assert 0 < cache.used <= cache.max_bytes


def test_a_dn_below_a_kept_parent_shares_its_rdns() -> None:
    parent = DN.shared("ou=sharing,dc=example,dc=com", SCHEMA)
    child = DN.parse("uid=someone,ou=sharing,dc=example,dc=com", SCHEMA)
    assert child.parent is parent
    assert all(a is b for a, b in zip(child.rdns[1:], parent.rdns, strict=True))


def test_a_kept_parent_leaves_the_dn_to_its_limits() -> None:
    parent = rdns(256)
    DN.shared(parent, SCHEMA)
    error = refusal(f"cn=x,{parent}")
    assert "more than 256 RDNs" in error.message
    assert len(DN.parse(f"cn=x,{parent}", SCHEMA, LIFTED)) == 257


def test_deep_dn_shares_the_kept_suffix() -> None:
    suffix = DN.shared("dc=example,dc=com", SCHEMA)
    dn = DN.parse(rdns(200), SCHEMA)
    assert all(a is b for a, b in zip(dn.rdns[-2:], suffix.rdns, strict=True))
