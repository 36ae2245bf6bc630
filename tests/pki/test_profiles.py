"""Profiles as data: built-ins, YAML overrides and refusals (ca.profiles)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from ca import builder
from ca.errors import CAError
from ca.profiles import BUILTIN, SUBJECT_TEMPLATES, load_profiles, profile


def test_builtin_names() -> None:
    assert set(BUILTIN) == {
        "smime-user", "smime-signing", "smime-encryption",
        "tls-server", "tls-client", "sub-ca", "ocsp-signing",
    }


def test_builtins_pass_their_own_validation() -> None:
    yaml_form = {name: {"validity_days": p.validity_days} for name, p in BUILTIN.items()}
    assert load_profiles(yaml_form) == BUILTIN


def test_subject_and_san_tables_agree_with_the_builder() -> None:
    assert set(builder.SUBJECT_TEMPLATES) == SUBJECT_TEMPLATES
    assert {"mail", "dns", "ip"} == set(builder.SAN_SOURCES)


def test_none_means_builtins_only() -> None:
    assert load_profiles(None) == BUILTIN


def test_override_keeps_the_other_fields() -> None:
    loaded = load_profiles(yaml.safe_load("smime-user:\n  validity_days: 365\n"))
    assert loaded["smime-user"].validity_days == 365
    assert loaded["smime-user"].key_usage == BUILTIN["smime-user"].key_usage
    assert loaded["tls-server"] == BUILTIN["tls-server"]


def test_new_profile() -> None:
    loaded = load_profiles(
        yaml.safe_load(
            """
            policy-ca:
              key_usage: [key_cert_sign, crl_sign]
              extended_key_usage: []
              san: []
              validity_days: 3650
              key_types: [p384, rsa4096]
              ca: true
              path_length: 1
            """
        )
    )
    policy_ca = loaded["policy-ca"]
    assert policy_ca.ca and policy_ca.path_length == 1
    assert policy_ca.key_types == frozenset({"p384", "rsa4096"})
    assert policy_ca.subject == "request"


def test_individual_smime_profile() -> None:
    loaded = load_profiles(
        {"smime-user": {"subject": "individual", "policies": ["2.23.140.1.5.4.3"]}}
    )
    assert loaded["smime-user"].subject == "individual"


REFUSED: list[tuple[str, Any, str]] = [
    ("not a mapping", ["smime-user"], r"^ca\.profiles: expected a mapping of profile names"),
    ("fields not a mapping", {"smime-user": 3},
     r"^ca\.profiles\.smime-user: expected a mapping of profile fields, got 3$"),
    ("validity a string", {"smime-user": {"validity_days": "x"}},
     r"^ca\.profiles\.smime-user\.validity_days: expected a positive integer, got 'x'$"),
    ("validity zero", {"tls-client": {"validity_days": 0}},
     r"^ca\.profiles\.tls-client\.validity_days: expected a positive integer, got 0$"),
    ("validity a boolean", {"tls-client": {"validity_days": True}},
     r"validity_days: expected a positive integer, got True"),
    ("S/MIME too long", {"smime-user": {"validity_days": 826}},
     r"^ca\.profiles\.smime-user\.validity_days: at most 825 days for S/MIME"),
    ("TLS server too long", {"tls-server": {"validity_days": 399}},
     r"^ca\.profiles\.tls-server\.validity_days: at most 398 days for TLS servers"),
    ("unknown key usage", {"tls-client": {"key_usage": ["digital_signature", "sign_everything"]}},
     r"^ca\.profiles\.tls-client\.key_usage: unknown name 'sign_everything' \(known: .*crl_sign"),
    ("empty key usage", {"tls-client": {"key_usage": []}},
     r"^ca\.profiles\.tls-client\.key_usage: at least one key usage is needed$"),
    ("unknown EKU", {"tls-client": {"extended_key_usage": ["anything"]}},
     r"^ca\.profiles\.tls-client\.extended_key_usage: unknown name 'anything' \(known: "),
    ("EKU a string", {"tls-client": {"extended_key_usage": "clientAuth"}},
     r"extended_key_usage: expected a list of names, got 'clientAuth'$"),
    ("unknown key type", {"tls-client": {"key_types": ["rsa1024"]}},
     r"^ca\.profiles\.tls-client\.key_types: unknown name 'rsa1024' \(known: ed25519, p256"),
    ("unknown SAN source", {"tls-client": {"san": ["uri"]}},
     r"^ca\.profiles\.tls-client\.san: unknown name 'uri' \(known: dns, ip, mail\)$"),
    ("unknown field", {"tls-client": {"colour": "blue"}},
     r"^ca\.profiles\.tls-client\.colour: unknown field \(known: ca, extended_key_usage"),
    ("unknown subject template", {"tls-client": {"subject": "whatever"}},
     r"^ca\.profiles\.tls-client\.subject: unknown subject template 'whatever'"),
    ("bad policy OID", {"smime-user": {"policies": ["not.an.oid"]}},
     r"^ca\.profiles\.smime-user\.policies: 'not\.an\.oid' is not a dotted OID$"),
    ("S/MIME without the BR policy", {"smime-user": {"policies": ["1.3.6.1.4.1.99999.1"]}},
     r"^ca\.profiles\.smime-user\.policies: S/MIME needs a CA/Browser Forum S/MIME policy OID"),
    ("S/MIME with serverAuth",
     {"smime-user": {"extended_key_usage": ["emailProtection", "serverAuth"]}},
     r"^ca\.profiles\.smime-user\.extended_key_usage: S/MIME needs emailProtection only$"),
    ("S/MIME without mail", {"smime-user": {"san": ["dns"]}},
     r"^ca\.profiles\.smime-user\.san: S/MIME needs the mail source$"),
    ("path length on an end entity", {"tls-client": {"path_length": 0}},
     r"^ca\.profiles\.tls-client\.path_length: only a CA profile \(ca: true\) has a path length$"),
    ("negative path length", {"sub-ca": {"path_length": -1}},
     r"^ca\.profiles\.sub-ca\.path_length: expected a non-negative integer or null, got -1$"),
    ("ca a string", {"sub-ca": {"ca": "yes"}},
     r"^ca\.profiles\.sub-ca\.ca: expected true or false, got 'yes'$"),
    ("unknown publish attribute", {"smime-user": {"publish": ["description"]}},
     r"^ca\.profiles\.smime-user\.publish: unknown name 'description'"),
    ("new profile missing fields", {"mine": {"key_usage": ["digital_signature"]}},
     r"^ca\.profiles\.mine: a new profile needs extended_key_usage, san, validity_days, "
     r"key_types$"),
]


@pytest.mark.parametrize(("description", "data", "message"), REFUSED, ids=[r[0] for r in REFUSED])
def test_refused_profile_data(description: str, data: Any, message: str) -> None:
    with pytest.raises(CAError, match=message):
        load_profiles(data)


def test_where_prefixes_every_message() -> None:
    with pytest.raises(CAError, match=r"^site\.yaml:ca\.profiles\.tls-client\.colour: "):
        load_profiles({"tls-client": {"colour": 1}}, where="site.yaml:ca.profiles")


def test_profile_lookup() -> None:
    assert profile(BUILTIN, "tls-server") is BUILTIN["tls-server"]
    with pytest.raises(
        CAError, match=r"^unknown profile 'x' \(known: ocsp-signing, .*, tls-server\)$"
    ):
        profile(BUILTIN, "x")
