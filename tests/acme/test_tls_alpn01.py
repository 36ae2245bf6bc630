"""tls-alpn-01 (RFC 8737) against a real TLS server on a loopback port.

Each case is a server presenting a certificate built here (servers.py) and
exactly one outcome: valid, or the problem type, with the rule it names.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import pytest_twisted
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from ca.acme.policy import AcmePolicy, Identifier
from ca.acme.problems import AcmeProblem
from ca.acme.validation import validate
from tests.acme.servers import (
    acme_identifier,
    alpn_certificate,
    alpn_server,
    digest,
    ip,
    key_authorization,
)
from tests.ports import free_port

NAME = "www.certdir.test"
TOKEN = "tls-token"
KEY_AUTHORIZATION = key_authorization(TOKEN)
GOOD = acme_identifier(digest(KEY_AUTHORIZATION))

Certificate = tuple[x509.Certificate, ec.EllipticCurvePrivateKey]


def _for(*names: x509.GeneralName, extension: bytes | None = GOOD,
         critical: bool = True) -> Callable[[], Certificate]:
    return lambda: alpn_certificate(names, extension, critical)


DNS = x509.DNSName(NAME)
CASES = [
    # (why, identifier, certificate, server negotiates ALPN, outcome, words in the detail)
    ("valid", NAME, _for(DNS), True, None, ""),
    ("valid for an address", "127.0.0.1", _for(x509.IPAddress(ip("127.0.0.1"))), True,
     None, ""),
    ("another name", NAME, _for(x509.DNSName("other.certdir.test")), True,
     "incorrectResponse", "subjectAltName"),
    ("a second name", NAME, _for(DNS, x509.DNSName("other.certdir.test")), True,
     "incorrectResponse", "subjectAltName"),
    ("a name for an address", "127.0.0.1", _for(x509.DNSName("127.0.0.1.certdir.test")), True,
     "incorrectResponse", "subjectAltName"),
    ("no subjectAltName", NAME, _for(), True, "incorrectResponse", "no subjectAltName"),
    ("no acmeIdentifier", NAME, _for(DNS, extension=None), True,
     "incorrectResponse", "no acmeIdentifier"),
    ("not critical", NAME, _for(DNS, critical=False), True,
     "incorrectResponse", "not critical"),
    ("the digest of another key authorization", NAME,
     _for(DNS, extension=acme_identifier(digest(key_authorization("other")))), True,
     "incorrectResponse", "SHA-256"),
    ("the digest, not in an OCTET STRING", NAME,
     _for(DNS, extension=digest(KEY_AUTHORIZATION)), True,
     "incorrectResponse", "OCTET STRING"),
    ("the digest, with more after it", NAME, _for(DNS, extension=GOOD + b"\x05\x00"), True,
     "incorrectResponse", "OCTET STRING"),
    ("no ALPN", NAME, _for(DNS), False, "tls", "acme-tls/1"),
]


def _policy(port: int) -> AcmePolicy:
    return AcmePolicy(allowed=(".certdir.test", "127.0.0.0/8"),
                      resolve={NAME: (ip("127.0.0.1"),)}, tls_alpn01_port=port,
                      connect_timeout_s=2.0, read_timeout_s=2.0, total_timeout_s=5.0,
                      retries=0)


async def _outcome(policy: AcmePolicy, identifier: Identifier) -> AcmeProblem | None:
    try:
        await validate(policy, "tls-alpn-01", identifier, TOKEN, KEY_AUTHORIZATION)
    except AcmeProblem as problem:
        return problem
    return None


@pytest.mark.parametrize("why, value, certificate, alpn, expected, words", CASES,
                         ids=[c[0] for c in CASES])
@pytest_twisted.ensureDeferred
async def test_tls_alpn01(why: str, value: str, certificate: Callable[[], Certificate],
                          alpn: bool, expected: str | None, words: str) -> None:
    server = alpn_server(*certificate(), alpn=alpn)
    identifier = Identifier("ip" if value[0].isdigit() else "dns", value)
    try:
        problem = await _outcome(_policy(server.port), identifier)
    finally:
        await server.listening.stopListening()
    assert (problem and problem.kind) == expected
    assert problem is None or words in problem.detail
    address = identifier.address
    sni = NAME if address is None else address.reverse_pointer
    assert server.server_names == [sni.encode()]


@pytest_twisted.ensureDeferred
async def test_nothing_listening_is_a_connection_problem() -> None:
    problem = await _outcome(_policy(free_port()), Identifier("dns", NAME))
    assert problem is not None and problem.kind == "connection"


@pytest_twisted.ensureDeferred
async def test_a_wildcard_is_not_validated_by_tls_alpn01() -> None:
    problem = await _outcome(_policy(443), Identifier("dns", "*.certdir.test"))
    assert problem is not None and problem.kind == "rejectedIdentifier"
