"""validate(): the table of kinds, the checks before any connection, retries (RFC 8555 §8.2)
and the system resolver, against a real twisted.web server on a loopback port."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import pytest_twisted
from twisted.web.server import Request

from ca.acme.policy import AcmePolicy, Identifier
from ca.acme.problems import AcmeProblem
from ca.acme.resolve import addresses
from ca.acme.validation import validate
from tests.acme.servers import Challenges, challenge_site, ip, key_authorization

NAME = "www.certdir.test"


@dataclass
class Late:
    """Answers the key authorization from the `ready`th request on (the client was slow)."""

    ready: int
    token: str
    requests: int = field(default=0)

    def __call__(self, request: Request) -> bytes:
        self.requests += 1
        if self.requests < self.ready:
            request.setResponseCode(404)
            return b"not yet\n"
        return key_authorization(self.token).encode()


@dataclass(frozen=True)
class Site:
    port: int
    challenges: Challenges

    def policy(self, **changes: object) -> AcmePolicy:
        settings: dict[str, object] = {
            "allowed": (".certdir.test", "127.0.0.0/8"),
            "resolve": {NAME: (ip("127.0.0.1"),),
                        "rotated.certdir.test": (ip("127.0.0.2"), ip("127.0.0.1"))},
            "http01_port": self.port, "connect_timeout_s": 1.0, "read_timeout_s": 1.0,
            "total_timeout_s": 5.0, "retries": 2, "backoff_s": 0.05}
        settings.update(changes)
        return AcmePolicy(**settings)  # type: ignore[arg-type]

    def late(self, token: str, ready: int) -> Late:
        answer = Late(ready, token)
        self.challenges.answers = {token: answer}
        return answer


@pytest.fixture
def site() -> Iterator[Site]:
    challenges = Challenges({})
    listening = challenge_site(challenges)
    try:
        yield Site(listening.getHost().port, challenges)
    finally:
        listening.stopListening()


async def _outcome(policy: AcmePolicy, identifier: Identifier, token: str = "token",
                   kind: str = "http-01", key_authorization_: str | None = None) -> str | None:
    try:
        await validate(policy, kind, identifier, token,
                       key_authorization_ or key_authorization(token))
    except AcmeProblem as problem:
        return problem.kind
    return None


@pytest_twisted.ensureDeferred
async def test_a_failed_attempt_is_retried(site: Site) -> None:
    late = site.late("token", ready=3)
    assert await _outcome(site.policy(), Identifier("dns", NAME)) is None
    assert late.requests == 3


@pytest_twisted.ensureDeferred
async def test_the_last_attempts_problem_is_the_answer(site: Site) -> None:
    late = site.late("token", ready=4)
    assert await _outcome(site.policy(), Identifier("dns", NAME)) == "unauthorized"
    assert late.requests == 3


@pytest_twisted.ensureDeferred
async def test_attempts_back_off_within_the_total_timeout(site: Site) -> None:
    late = site.late("token", ready=100)
    started = time.monotonic()
    outcome = await _outcome(site.policy(retries=10, backoff_s=0.4, total_timeout_s=1.0),
                             Identifier("dns", NAME))
    assert (outcome, late.requests) == ("unauthorized", 2)
    assert time.monotonic() - started < 1.0


@pytest_twisted.ensureDeferred
async def test_each_attempt_connects_to_the_next_address(site: Site) -> None:
    site.late("token", ready=1)
    identifier = Identifier("dns", "rotated.certdir.test")
    assert await _outcome(site.policy(retries=0), identifier) == "connection"
    assert await _outcome(site.policy(retries=1), identifier) is None


@pytest_twisted.ensureDeferred
async def test_a_refusal_of_the_policy_is_not_retried(site: Site) -> None:
    late = site.late("token", ready=1)
    policy = site.policy(resolve={NAME: (ip("192.0.2.1"),)}, backoff_s=10.0)
    started = time.monotonic()
    assert await _outcome(policy, Identifier("dns", NAME)) == "rejectedIdentifier"
    assert time.monotonic() - started < 1.0
    assert late.requests == 0


CHECKS = [
    # (why, kind, identifier, token, key authorization, problem type)
    ("unknown kind", "http-02", "www.certdir.test", "t", None, "malformed"),
    ("dns-01 without a resolver", "dns-01", "www.certdir.test", "t", None, "malformed"),
    ("token outside base64url", "http-01", "www.certdir.test", "../etc", None, "malformed"),
    ("key authorization of another token", "http-01", "www.certdir.test", "t", "u.abc",
     "malformed"),
    ("key authorization without thumbprint", "http-01", "www.certdir.test", "t", "t.",
     "malformed"),
    ("key authorization with a space", "http-01", "www.certdir.test", "t", "t.a b",
     "malformed"),
    ("wildcard by http-01", "http-01", "*.certdir.test", "t", None, "rejectedIdentifier"),
    ("wildcard by tls-alpn-01", "tls-alpn-01", "*.certdir.test", "t", None,
     "rejectedIdentifier"),
    ("not allowed", "http-01", "www.example.com", "t", None, "rejectedIdentifier"),
    ("address not allowed", "http-01", "192.0.2.1", "t", None, "rejectedIdentifier"),
]


@pytest.mark.parametrize("why, kind, value, token, authorization, expected", CHECKS,
                         ids=[c[0] for c in CHECKS])
@pytest_twisted.ensureDeferred
async def test_checks_before_any_connection(site: Site, why: str, kind: str, value: str,
                                            token: str, authorization: str | None,
                                            expected: str) -> None:
    identifier = Identifier("ip" if value[0].isdigit() else "dns", value)
    assert await _outcome(site.policy(), identifier, token, kind, authorization) == expected
    assert site.challenges.seen == []


@pytest_twisted.ensureDeferred
async def test_the_system_resolver_answers_for_names_not_overridden() -> None:
    policy = AcmePolicy(allowed=("localhost", "127.0.0.0/8", "::1"))
    found = await addresses(policy, Identifier("dns", "localhost"))
    assert ip("127.0.0.1") in found or ip("::1") in found


@pytest_twisted.ensureDeferred
async def test_a_name_the_system_resolver_does_not_know_is_a_dns_problem() -> None:
    policy = AcmePolicy(allowed=(".invalid",), connect_timeout_s=3.0)
    with pytest.raises(AcmeProblem) as raised:
        await addresses(policy, Identifier("dns", "nowhere.invalid"))
    assert raised.value.kind == "dns"
