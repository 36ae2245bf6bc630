"""http-01 (RFC 8555 §8.3) against a real twisted.web server on a loopback port.

Each case is one token the server answers in its own way, and exactly one
outcome: valid, or the problem type validation gives. One attempt each
(`retries: 0`); retries have their own tests (test_validation.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import pytest_twisted

from ca.acme.http01 import MAX_BODY, MAX_REDIRECTS
from ca.acme.policy import AcmePolicy, Identifier
from ca.acme.problems import AcmeProblem
from ca.acme.validation import validate
from tests.acme.servers import (
    Challenges,
    TLSServer,
    body,
    challenge_site,
    https_site,
    ip,
    key_authorization,
    not_tls_server,
    redirect,
    silence,
    status,
)
from tests.ports import free_port

NAME = "www.certdir.test"


@dataclass(frozen=True)
class Site:
    port: int
    challenges: Challenges

    def policy(self, **changes: object) -> AcmePolicy:
        settings: dict[str, object] = {
            "allowed": (".certdir.test", "127.0.0.0/8"),
            "resolve": {NAME: (ip("127.0.0.1"),), "other.certdir.test": (ip("127.0.0.1"),),
                        "internal.certdir.test": (ip("10.1.2.3"),)},
            "http01_port": self.port, "connect_timeout_s": 2.0, "read_timeout_s": 1.0,
            "total_timeout_s": 5.0, "retries": 0}
        settings.update(changes)
        return AcmePolicy(**settings)  # type: ignore[arg-type]


def _url(port: int, token: str, host: str = NAME) -> str:
    return f"http://{host}:{port}/.well-known/acme-challenge/{token}"


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    challenges = Challenges({})
    listening = challenge_site(challenges)
    port = listening.getHost().port
    challenges.answers = {
        "good": body(key_authorization("good").encode() + b" \r\n\t\n"),
        "wrong": body(b"good." + b"x" * 43),
        "empty": body(b""),
        "huge": body(key_authorization("huge").encode() + b" " * MAX_BODY),
        "moved": redirect(_url(port, "moved-here", "other.certdir.test")),
        "moved-here": body(key_authorization("moved").encode()),
        "relative": redirect("/.well-known/acme-challenge/relative-here"),
        "relative-here": body(key_authorization("relative").encode()),
        "ftp": redirect("ftp://other.certdir.test/good"),
        "port": redirect(_url(port + 1, "good")),
        "outside": redirect(_url(port, "good", "www.example.com")),
        "internal": redirect(_url(port, "good", "internal.certdir.test")),
        "address": redirect(_url(port, "good", "10.1.2.3")),
        "loop": redirect(_url(port, "loop")),
        "nowhere": redirect("http://exa mple/"),
        "silent": silence,
        "error": status(500),
    }
    try:
        yield Site(port, challenges)
    finally:
        listening.stopListening()


CASES = [
    # (token, identifier, outcome: None when valid, else the problem type)
    ("good", Identifier("dns", NAME), None),
    ("good", Identifier("ip", "127.0.0.1"), None),
    ("moved", Identifier("dns", NAME), None),
    ("relative", Identifier("dns", NAME), None),
    ("wrong", Identifier("dns", NAME), "incorrectResponse"),
    ("empty", Identifier("dns", NAME), "incorrectResponse"),
    ("huge", Identifier("dns", NAME), "incorrectResponse"),
    ("missing", Identifier("dns", NAME), "unauthorized"),
    ("error", Identifier("dns", NAME), "unauthorized"),
    ("ftp", Identifier("dns", NAME), "unauthorized"),
    ("port", Identifier("dns", NAME), "unauthorized"),
    ("outside", Identifier("dns", NAME), "unauthorized"),
    ("internal", Identifier("dns", NAME), "unauthorized"),
    ("address", Identifier("dns", NAME), "unauthorized"),
    ("loop", Identifier("dns", NAME), "unauthorized"),
    ("nowhere", Identifier("dns", NAME), "unauthorized"),
    ("silent", Identifier("dns", NAME), "connection"),
    ("good", Identifier("dns", "internal.certdir.test"), "rejectedIdentifier"),
    ("good", Identifier("dns", "www.example.com"), "rejectedIdentifier"),
    ("good", Identifier("ip", "10.1.2.3"), "rejectedIdentifier"),
]


async def outcome(policy: AcmePolicy, identifier: Identifier, token: str) -> str | None:
    try:
        await validate(policy, "http-01", identifier, token, key_authorization(token))
    except AcmeProblem as problem:
        return problem.kind
    return None


@pytest.mark.parametrize("token, identifier, expected", CASES,
                         ids=[f"{c[0]}-{c[1].value}" for c in CASES])
@pytest_twisted.ensureDeferred
async def test_http01(site: Site, token: str, identifier: Identifier,
                      expected: str | None) -> None:
    assert await outcome(site.policy(), identifier, token) == expected


@pytest_twisted.ensureDeferred
async def test_the_request_names_the_identifier_in_host(site: Site) -> None:
    del site.challenges.seen[:]
    assert await outcome(site.policy(), Identifier("dns", NAME), "good") is None
    assert site.challenges.seen == [("/.well-known/acme-challenge/good", NAME.encode())]


@pytest_twisted.ensureDeferred
async def test_redirects_stop_after_the_limit(site: Site) -> None:
    del site.challenges.seen[:]
    assert await outcome(site.policy(), Identifier("dns", NAME), "loop") == "unauthorized"
    assert len(site.challenges.seen) == MAX_REDIRECTS + 1


@pytest_twisted.ensureDeferred
async def test_a_name_resolving_outside_the_networks_is_never_connected_to(site: Site) -> None:
    del site.challenges.seen[:]
    policy = site.policy(resolve={NAME: (ip("127.0.0.1"), ip("192.0.2.7"))})
    assert await outcome(policy, Identifier("dns", NAME), "good") == "rejectedIdentifier"
    assert site.challenges.seen == []


@pytest_twisted.ensureDeferred
async def test_without_networks_any_address_may_be_connected_to(site: Site) -> None:
    policy = site.policy(allowed=(".certdir.test",))
    assert await outcome(policy, Identifier("dns", NAME), "good") is None


@pytest_twisted.ensureDeferred
async def test_nothing_listening_is_a_connection_problem(site: Site) -> None:
    policy = site.policy(http01_port=free_port())
    assert await outcome(policy, Identifier("dns", NAME), "good") == "connection"


@pytest.fixture(scope="module")
def secure() -> Iterator[TLSServer]:
    server = https_site(Challenges({"secure-here": body(key_authorization("secure").encode())}),
                        "other.certdir.test")
    try:
        yield server
    finally:
        server.listening.stopListening()


@pytest_twisted.ensureDeferred
async def test_a_redirect_to_https_is_followed_without_verifying_the_certificate(
        site: Site, secure: TLSServer) -> None:
    site.challenges.answers = {**site.challenges.answers, "secure": redirect(
        f"https://other.certdir.test:{secure.port}/.well-known/acme-challenge/secure-here")}
    policy = site.policy(tls_alpn01_port=secure.port)
    assert await outcome(policy, Identifier("dns", NAME), "secure") is None
    assert secure.server_names[-1] == b"other.certdir.test"
    assert await outcome(site.policy(), Identifier("dns", NAME), "secure") == "unauthorized"


@pytest_twisted.ensureDeferred
async def test_a_redirect_to_https_without_tls_there_is_a_tls_problem(site: Site) -> None:
    listening = not_tls_server()
    port = listening.getHost().port
    site.challenges.answers = {**site.challenges.answers, "plain": redirect(
        f"https://other.certdir.test:{port}/.well-known/acme-challenge/good")}
    try:
        outcome_ = await outcome(site.policy(tls_alpn01_port=port), Identifier("dns", NAME),
                                 "plain")
    finally:
        await listening.stopListening()
    assert outcome_ == "tls"


@pytest_twisted.ensureDeferred
async def test_an_ipv6_address_is_asked_for_in_brackets() -> None:
    challenges = Challenges({"six": body(key_authorization("six").encode())})
    listening = challenge_site(challenges, "::1")
    try:
        policy = AcmePolicy(allowed=("::1",), http01_port=listening.getHost().port, retries=0,
                            connect_timeout_s=2.0, read_timeout_s=2.0, total_timeout_s=5.0)
        assert await outcome(policy, Identifier("ip", "::1"), "six") is None
    finally:
        await listening.stopListening()
    assert challenges.seen == [("/.well-known/acme-challenge/six", b"[::1]")]
