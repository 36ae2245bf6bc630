"""dns-01 (RFC 8555 §8.4) against twisted.names' authoritative server, in process, over UDP.

The zone (servers.Zone) holds each case's `_acme-challenge` name; each case
has exactly one outcome: valid, or the problem type.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import pytest_twisted
from twisted.names import dns

from ca.acme.dns01 import record
from ca.acme.policy import AcmePolicy, Identifier
from ca.acme.problems import AcmeProblem
from ca.acme.validation import offered, validate
from tests.acme.servers import Zone, dns_server, key_authorization
from tests.ports import free_port

TOKEN = "dns-token"
KEY_AUTHORIZATION = key_authorization(TOKEN)
VALUE = record(KEY_AUTHORIZATION).encode()


def _txt(*strings: bytes) -> dns.Record_TXT:
    return dns.Record_TXT(*strings, ttl=5)


ZONE: dict[bytes, list[Any]] = {
    b"_acme-challenge.www.certdir.test": [_txt(b"left over"), _txt(VALUE)],
    b"_acme-challenge.split.certdir.test": [_txt(VALUE[:20], VALUE[20:])],
    b"_acme-challenge.wild.certdir.test": [_txt(VALUE)],
    b"_acme-challenge.wrong.certdir.test": [_txt(record("other." + "x" * 43).encode())],
    b"_acme-challenge.address.certdir.test": [dns.Record_A("127.0.0.1", ttl=5)],
}


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    listening = dns_server(Zone(b"certdir.test", ZONE))
    try:
        yield listening.getHost().port
    finally:
        listening.stopListening()


def _policy(port: int) -> AcmePolicy:
    return AcmePolicy(allowed=(".certdir.test", "127.0.0.0/8"), dns_resolver=("127.0.0.1", port),
                      connect_timeout_s=1.0, read_timeout_s=1.0, total_timeout_s=5.0,
                      retries=0)


async def _outcome(policy: AcmePolicy, identifier: Identifier) -> str | None:
    try:
        await validate(policy, "dns-01", identifier, TOKEN, KEY_AUTHORIZATION)
    except AcmeProblem as problem:
        return problem.kind
    return None


CASES = [
    # (name, outcome: None when valid, else the problem type)
    ("www.certdir.test", None),
    ("split.certdir.test", None),
    ("*.wild.certdir.test", None),
    ("wrong.certdir.test", "incorrectResponse"),
    ("address.certdir.test", "dns"),
    ("absent.certdir.test", "dns"),
]


@pytest.mark.parametrize("name, expected", CASES, ids=[c[0] for c in CASES])
@pytest_twisted.ensureDeferred
async def test_dns01(port: int, name: str, expected: str | None) -> None:
    assert await _outcome(_policy(port), Identifier("dns", name)) == expected


def test_the_record_is_the_base64url_sha256_of_the_key_authorization() -> None:
    # SHA-256("abc") is FIPS 180-2's first example, ba7816bf...f20015ad; its base64
    # is "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=": base64url turns + and /
    # into - and _, and RFC 8555 §2 drops the padding.
    assert record("abc") == "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0"


@pytest_twisted.ensureDeferred
async def test_a_silent_resolver_is_a_dns_problem() -> None:
    policy = _policy(free_port())
    assert await _outcome(policy, Identifier("dns", "www.certdir.test")) == "dns"


def test_dns01_is_offered_only_with_a_resolver() -> None:
    name = Identifier("dns", "www.certdir.test")
    assert offered(AcmePolicy(allowed=(".certdir.test",)), name) == ("http-01", "tls-alpn-01")
    with_resolver = _policy(53)
    assert offered(with_resolver, name) == ("http-01", "tls-alpn-01", "dns-01")
    assert offered(with_resolver, Identifier("dns", "*.certdir.test")) == ("dns-01",)
    assert offered(with_resolver, Identifier("ip", "127.0.0.1")) == ("http-01", "tls-alpn-01")
