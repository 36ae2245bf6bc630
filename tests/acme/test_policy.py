"""Identifiers (RFC 8555 §7.1.4, RFC 8738) and the `ca.acme` policy: what may be
ordered, and every bad key of certdir.yaml's `ca.acme` named in its ConfigError."""

from __future__ import annotations

from typing import Any

import pytest

from ca.acme.policy import AcmePolicy, Identifier, default_allowed, policy_from
from ca.acme.problems import AcmeProblem
from certdir.config import ConfigError, _Section
from tests.acme.servers import ip

IDENTIFIERS = [
    # (type, value as sent, normal form, or the problem type)
    ("dns", "www.certdir.test", "www.certdir.test"),
    ("dns", "WWW.CertDir.Test.", "www.certdir.test"),
    ("dns", "*.certdir.test", "*.certdir.test"),
    ("dns", "localhost", "localhost"),
    ("dns", "xn--bcher-kva.certdir.test", "xn--bcher-kva.certdir.test"),
    ("dns", "a-1.b2.certdir.test", "a-1.b2.certdir.test"),
    ("dns", "bücher.certdir.test", "rejectedIdentifier"),
    ("dns", "xn--zz.certdir.test", "rejectedIdentifier"),
    ("dns", "ab--c.certdir.test", "rejectedIdentifier"),
    ("dns", "-a.certdir.test", "rejectedIdentifier"),
    ("dns", "a-.certdir.test", "rejectedIdentifier"),
    ("dns", "a_b.certdir.test", "rejectedIdentifier"),
    ("dns", "a..certdir.test", "rejectedIdentifier"),
    ("dns", "", "rejectedIdentifier"),
    ("dns", "*", "rejectedIdentifier"),
    ("dns", "*.*.certdir.test", "rejectedIdentifier"),
    ("dns", "www.*.certdir.test", "rejectedIdentifier"),
    ("dns", "x" * 64 + ".certdir.test", "rejectedIdentifier"),
    ("dns", ("a" * 63 + ".") * 4 + "test", "rejectedIdentifier"),
    ("dns", "127.0.0.1", "rejectedIdentifier"),
    ("dns", "www.certdir.123", "rejectedIdentifier"),
    ("ip", "127.0.0.1", "127.0.0.1"),
    ("ip", "2001:DB8:0:0:0:0:0:1", "2001:db8::1"),
    ("ip", "::ffff:127.0.0.1", "::ffff:7f00:1"),
    ("ip", "127.000.000.001", "rejectedIdentifier"),
    ("ip", "127.0.0.0/8", "rejectedIdentifier"),
    ("ip", "fe80::1%eth0", "rejectedIdentifier"),
    ("ip", "www.certdir.test", "rejectedIdentifier"),
    ("email", "a@certdir.test", "unsupportedIdentifier"),
]


@pytest.mark.parametrize("kind, value, normal", IDENTIFIERS,
                         ids=[f"{c[0]}:{c[1][:30]}" for c in IDENTIFIERS])
def test_identifier(kind: str, value: str, normal: str) -> None:
    try:
        identifier = Identifier(kind, value)
    except AcmeProblem as problem:
        assert problem.kind == normal
    else:
        assert identifier.value == normal


def test_a_wildcard_is_validated_at_the_name_below_it() -> None:
    wildcard = Identifier("dns", "*.www.certdir.test")
    assert (wildcard.wildcard, wildcard.name) == (True, "www.certdir.test")
    assert Identifier("dns", "www.certdir.test") == Identifier("dns", "WWW.certdir.test")


ALLOWED = (".certdir.test", "exact.example.com", "*.wild.example.com", "127.0.0.0/8",
           "2001:db8::/32")
ALLOWS = [
    ("dns", "www.certdir.test", True),
    ("dns", "a.b.certdir.test", True),
    ("dns", "*.certdir.test", True),
    ("dns", "*.a.certdir.test", True),
    ("dns", "certdir.test", False),
    ("dns", "evilcertdir.test", False),
    ("dns", "exact.example.com", True),
    ("dns", "www.exact.example.com", False),
    ("dns", "*.wild.example.com", True),
    ("dns", "a.wild.example.com", False),
    ("ip", "127.0.0.9", True),
    ("ip", "2001:db8::7", True),
    ("ip", "10.0.0.1", False),
    ("ip", "::1", False),
]


@pytest.mark.parametrize("kind, value, allowed", ALLOWS, ids=[c[1] for c in ALLOWS])
def test_allows(kind: str, value: str, allowed: bool) -> None:
    assert AcmePolicy(allowed=ALLOWED).allows(Identifier(kind, value)) is allowed


def test_by_default_this_machines_names_and_loopback() -> None:
    policy = AcmePolicy()
    assert policy.allowed == default_allowed()
    assert policy.allows(Identifier("ip", "127.0.0.1"))
    assert policy.allows(Identifier("ip", "::1"))
    assert not policy.allows(Identifier("ip", "192.0.2.1"))
    assert not policy.allows(Identifier("dns", "www.example.com"))
    assert policy_from(_Section({}, "ca.acme")) == policy


def test_addresses_are_connected_to_only_inside_the_networks_listed() -> None:
    assert AcmePolicy(allowed=ALLOWED).connects_to(ip("127.1.2.3"))
    assert not AcmePolicy(allowed=ALLOWED).connects_to(ip("10.0.0.1"))
    assert AcmePolicy(allowed=(".certdir.test",)).connects_to(ip("10.0.0.1"))


def test_every_key_read() -> None:
    section = _Section({
        "allowed": [".certdir.test", "127.0.0.0/8", "::1"],
        "resolve": {"www.certdir.test": "127.0.0.1", "Two.certdir.test": ["127.0.0.2", "::1"]},
        "http01_port": 5002, "tls_alpn01_port": 5001, "connect_timeout_s": 2,
        "read_timeout_s": 3.5, "total_timeout_s": 20, "retries": 4, "backoff_s": 0.5,
        "dns_resolver": "[::1]:5353", "profile": "acme-server"}, "ca.acme")
    assert policy_from(section) == AcmePolicy(
        allowed=(".certdir.test", "127.0.0.0/8", "::1/128"),
        resolve={"www.certdir.test": (ip("127.0.0.1"),),
                 "two.certdir.test": (ip("127.0.0.2"), ip("::1"))},
        http01_port=5002, tls_alpn01_port=5001, connect_timeout_s=2.0, read_timeout_s=3.5,
        total_timeout_s=20.0, retries=4, backoff_s=0.5, dns_resolver=("::1", 5353),
        profile="acme-server")


@pytest.mark.parametrize("text, resolver", [
    ("127.0.0.1", ("127.0.0.1", 53)), ("127.0.0.1:5353", ("127.0.0.1", 5353)),
    ("::1", ("::1", 53)), ("[::1]", ("::1", 53)), ("[::1]:5353", ("::1", 5353))])
def test_dns_resolver(text: str, resolver: tuple[str, int]) -> None:
    assert policy_from(_Section({"dns_resolver": text}, "ca.acme")).dns_resolver == resolver


BAD = [
    # (the ca.acme mapping, the key its ConfigError names)
    ({"allowed": ".certdir.test"}, "ca.acme.allowed"),
    ({"allowed": [".certdir.test", 7]}, "ca.acme.allowed[1]"),
    ({"allowed": ["127.0.0.0/33"]}, "ca.acme.allowed[0]"),
    ({"allowed": ["127.0.0.1/8"]}, "ca.acme.allowed[0]"),
    ({"allowed": ["1.2.3.4.5"]}, "ca.acme.allowed[0]"),
    ({"allowed": ["a", "bad_name.test"]}, "ca.acme.allowed[1]"),
    ({"allowed": [".*.certdir.test"]}, "ca.acme.allowed[0]"),
    ({"allowed": ["."]}, "ca.acme.allowed[0]"),
    ({"resolve": ["www.certdir.test"]}, "ca.acme.resolve"),
    ({"resolve": {"bad_name": "127.0.0.1"}}, "ca.acme.resolve['bad_name']"),
    ({"resolve": {"www.certdir.test": "nowhere"}}, "ca.acme.resolve['www.certdir.test']"),
    ({"resolve": {"www.certdir.test": "10.0.0.0/8"}}, "ca.acme.resolve['www.certdir.test']"),
    ({"resolve": {"www.certdir.test": []}}, "ca.acme.resolve['www.certdir.test']"),
    ({"resolve": {"www.certdir.test": [1]}}, "ca.acme.resolve['www.certdir.test']"),
    ({"resolve": {7: "127.0.0.1"}}, "ca.acme.resolve[7]"),
    ({"http01_port": 0}, "ca.acme.http01_port"),
    ({"http01_port": 65536}, "ca.acme.http01_port"),
    ({"http01_port": "80"}, "ca.acme.http01_port"),
    ({"http01_port": True}, "ca.acme.http01_port"),
    ({"tls_alpn01_port": -443}, "ca.acme.tls_alpn01_port"),
    ({"connect_timeout_s": 0}, "ca.acme.connect_timeout_s"),
    ({"connect_timeout_s": True}, "ca.acme.connect_timeout_s"),
    ({"read_timeout_s": "10s"}, "ca.acme.read_timeout_s"),
    ({"total_timeout_s": -1.5}, "ca.acme.total_timeout_s"),
    ({"retries": -1}, "ca.acme.retries"),
    ({"retries": 11}, "ca.acme.retries"),
    ({"retries": 1.5}, "ca.acme.retries"),
    ({"backoff_s": 0}, "ca.acme.backoff_s"),
    ({"dns_resolver": "ns.certdir.test"}, "ca.acme.dns_resolver"),
    ({"dns_resolver": "127.0.0.1:99999"}, "ca.acme.dns_resolver"),
    ({"dns_resolver": "127.0.0.1:"}, "ca.acme.dns_resolver"),
    ({"dns_resolver": "[::1]x"}, "ca.acme.dns_resolver"),
    ({"dns_resolver": 53}, "ca.acme.dns_resolver"),
    ({"profile": ""}, "ca.acme.profile"),
    ({"profile": ["tls-server"]}, "ca.acme.profile"),
    ({"allowd": [".certdir.test"]}, "ca.acme.allowd"),
]


@pytest.mark.parametrize("data, key", BAD, ids=[f"{key}-{i}" for i, (_, key) in enumerate(BAD)])
def test_a_bad_key_is_a_config_error_naming_it(data: dict[Any, Any], key: str) -> None:
    with pytest.raises(ConfigError) as raised:
        policy_from(_Section(data, "ca.acme"))
    assert str(raised.value).startswith(key + ": ")


@pytest.mark.parametrize("changes", [
    {"http01_port": 0}, {"tls_alpn01_port": 70000}, {"connect_timeout_s": 0.0},
    {"total_timeout_s": -1.0}, {"retries": -1}, {"backoff_s": 0}, {"allowed": ("bad_name",)},
    {"resolve": {"www.certdir.test": ("nowhere",)}}, {"resolve": {"bad_name": ("::1",)}}])
def test_a_policy_is_valid_however_it_is_made(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        AcmePolicy(**changes)
