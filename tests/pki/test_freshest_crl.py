"""The Freshest CRL extension (RFC 5280 §4.2.1.15) and the profile field that asks for it.

- A profile with `freshest_crl` gets a non-critical freshestCRL naming the
  issuer's delta CRL URL (one distribution point, full name only); a
  profile without it, or an issuer without a delta URL, gets none.
- The built-ins that carry it are the S/MIME profiles and tls-client;
  tls-server, sub-ca and ocsp-signing do not, and pkilint's TLS BR linter
  shows why for tls-server (BR §7.1.2.7.6: an unlisted extension is a
  warning).
- On S/MIME certificates only http:// delta URLs remain (S/MIME BR §7.1.2.3).
- `ca.authority.issuer_urls` names `<base_url>/<slug>-delta.crl`.
- The field is a boolean in the YAML, refused otherwise.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from pkilint import loader  # type: ignore[import-untyped]
from pkilint.cabf import serverauth  # type: ignore[import-untyped]
from pkilint.pkix import certificate  # type: ignore[import-untyped]

from ca.authority import issuer_urls
from ca.builder import IssuerURLs
from ca.config import CAConfig
from ca.errors import CAError
from ca.profiles import BUILTIN, load_profiles
from tests.pki.lint import lint, warnings
from tests.pki.test_builder import HTTP_DELTA_CRL, URLS, _issue, _name

LDAP_DELTA_CRL = (
    "ldap://ldap.example.com/cn=Example%20Issuing%20CA,cn=CAs,cn=PKI,dc=example,dc=com"
    "?deltaRevocationList;binary"
)
WITH_FRESHEST = {"smime-user", "smime-signing", "smime-encryption", "tls-client"}


def _freshest(leaf: x509.Certificate) -> x509.Extension[x509.FreshestCRL] | None:
    try:
        return leaf.extensions.get_extension_for_class(x509.FreshestCRL)
    except x509.ExtensionNotFound:
        return None


def _key_type(name: str) -> str:
    return "p256" if "p256" in BUILTIN[name].key_types else "rsa2048"


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_builtin_profiles_carry_it_as_decided(name: str) -> None:
    leaf = _issue(BUILTIN[name], _key_type(name))
    assert (_freshest(leaf) is not None) == (name in WITH_FRESHEST)
    assert BUILTIN[name].freshest_crl == (name in WITH_FRESHEST)


def test_extension_names_the_delta_crl_and_is_not_critical() -> None:
    found = _freshest(_issue(BUILTIN["tls-client"], "p256"))
    assert found is not None
    assert not found.critical
    assert list(found.value) == [x509.DistributionPoint(
        [x509.UniformResourceIdentifier(HTTP_DELTA_CRL)], None, None, None)]


def test_no_delta_url_no_extension() -> None:
    leaf = _issue(BUILTIN["smime-user"], "p256", urls=dataclasses.replace(URLS, delta_crl=()))
    assert _freshest(leaf) is None


def test_smime_keeps_only_http_delta_urls() -> None:
    urls = dataclasses.replace(URLS, delta_crl=(LDAP_DELTA_CRL, HTTP_DELTA_CRL))
    found = _freshest(_issue(BUILTIN["smime-user"], "p256", urls=urls))
    assert found is not None
    assert [n.value for n in found.value[0].full_name or ()] == [HTTP_DELTA_CRL]


def test_smime_with_it_lints_clean_and_without_warnings() -> None:
    leaf = _issue(BUILTIN["smime-user"], "p256")
    assert (lint(leaf, "smime"), warnings(leaf, "smime"), lint(leaf, "rfc5280"),
            warnings(leaf, "rfc5280")) == ([], [], [], [])


def _serverauth_findings(leaf: x509.Certificate) -> set[str]:
    document = loader.RFC5280CertificateDocumentLoader().load_der_document(
        leaf.public_bytes(Encoding.DER), "certificate")
    validator = certificate.create_pkix_certificate_validator_container(
        serverauth.create_decoding_validators(),
        serverauth.create_validators(serverauth.determine_certificate_type(document)))
    return {d.finding.code for result in validator.validate(document.root)
            for d in result.finding_descriptions}


def test_tls_br_linter_warns_on_it_for_tls_server() -> None:
    plain = _serverauth_findings(_issue(BUILTIN["tls-server"], "p256"))
    fresh = _serverauth_findings(_issue(
        dataclasses.replace(BUILTIN["tls-server"], freshest_crl=True), "p256"))
    assert fresh - plain == {"cabf.serverauth.subscriber.unknown_extension_present"}


def _config(base_url: str) -> CAConfig:
    return CAConfig(name="cn=Example Issuing CA", key_type="p256", validity_days=1,
                    passphrase_file=Path("/nonexistent"), passphrase_env="X",
                    base_url=base_url, ldap_url="ldap://ldap.example.com", profiles=BUILTIN,
                    policies={})


def test_issuer_urls_name_the_delta_crl() -> None:
    urls = issuer_urls(_config("http://pki.example.com"), _name("Example Issuing CA"),
                       "dc=example,dc=com")
    assert urls.delta_crl == ("http://pki.example.com/Example-Issuing-CA-delta.crl",)
    assert urls.crl[0] == "http://pki.example.com/Example-Issuing-CA.crl"


def test_issuer_urls_default_to_no_delta() -> None:
    assert IssuerURLs().delta_crl == ()


@pytest.mark.parametrize(("name", "value"), (("tls-server", True), ("smime-user", False)))
def test_yaml_field_overrides_the_builtin(name: str, value: bool) -> None:
    assert load_profiles({name: {"freshest_crl": value}})[name].freshest_crl is value


@pytest.mark.parametrize("value", ("yes", 1, None))
def test_yaml_field_must_be_a_boolean(value: Any) -> None:
    with pytest.raises(CAError, match=r"^ca\.profiles\.tls-client\.freshest_crl: expected "
                                      r"true or false, got "):
        load_profiles({"tls-client": {"freshest_crl": value}})
