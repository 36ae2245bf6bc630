"""Certificates built from profiles (ca.builder), checked by pkilint and OpenSSL.

Every built-in profile is issued for each cheap key type it allows, from a
root and a sub-CA of the same key type; root and sub-CA pass pkilint's
RFC 5280 linter, every leaf passes it too, S/MIME leaves also pass the
CA/Browser Forum S/MIME BR linter, and `openssl verify -x509_strict`
accepts the leaf against root + sub-CA.
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtensionOID, NameOID

from ca import keys
from ca.builder import (
    IssuerURLs,
    build_certificate,
    random_serial,
    root_certificate,
    sans_for,
    subject_for,
)
from ca.errors import CAError
from ca.profiles import BUILTIN, SMIME_INDIVIDUAL_STRICT, Profile
from tests.pki.lint import lint, openssl_verify

CHEAP_TYPES = ("rsa2048", "p256", "p384", "ed25519")
HTTP_CRL = "http://pki.example.com/crl/issuing.crl"
LDAP_CRL = (
    "ldap://ldap.example.com/cn=Example%20Issuing%20CA,cn=CAs,cn=PKI,dc=example,dc=com"
    "?certificateRevocationList;binary"
)
HTTP_DELTA_CRL = "http://pki.example.com/crl/issuing-delta.crl"
URLS = IssuerURLs(
    ca_issuers=("http://pki.example.com/ca/issuing.crt",),
    ocsp=("http://pki.example.com/ocsp",),
    crl=(HTTP_CRL, LDAP_CRL),
    delta_crl=(HTTP_DELTA_CRL,),
)
ROOT_URLS = IssuerURLs(
    ca_issuers=("http://pki.example.com/ca/root.crt",),
    crl=("http://pki.example.com/crl/root.crl",),
)
ENTRY: Mapping[str, tuple[bytes, ...]] = {
    "cn": (b"Alice Smith",),
    "givenName": (b"Alice",),
    "sn": (b"Smith",),
    "mail": (b"alice@example.com", b"a.smith@example.com"),
}


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


@functools.cache
def _key(key_type: str, label: str = "") -> keys.PrivateKey:
    return keys.generate(key_type)


@dataclasses.dataclass(frozen=True)
class Chain:
    root: x509.Certificate
    sub: x509.Certificate
    sub_key: keys.PrivateKey


@functools.cache
def _chain(key_type: str) -> Chain:
    root_key = _key(key_type, "root")
    root = root_certificate(_name(f"Example Root CA {key_type}"), root_key, 3650, ROOT_URLS)
    sub_key = _key(key_type, "sub")
    sub = build_certificate(
        profile=BUILTIN["sub-ca"], subject=_name(f"Example Issuing CA {key_type}"),
        public_key=sub_key.public_key(), sans=(), issuer=root, issuer_key=root_key,
        urls=ROOT_URLS, serial=random_serial(),
    )
    return Chain(root, sub, sub_key)


def _request(
    key: keys.PrivateKey, dns_names: tuple[str, ...] = ()
) -> x509.CertificateSigningRequest:
    builder = x509.CertificateSigningRequestBuilder().subject_name(_name("admin"))
    if dns_names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names]), critical=False
        )
    return builder.sign(key, keys.signature_hash(key))


def _issue(p: Profile, key_type: str, entry: Mapping[str, tuple[bytes, ...]] | None = ENTRY,
           **overrides: object) -> x509.Certificate:
    chain = _chain(key_type)
    leaf_key = _key(key_type, "leaf")
    dns_names = ("host.example.com", "www.example.com")
    csr = _request(leaf_key, dns_names)
    arguments: dict[str, object] = {
        "profile": p,
        "subject": subject_for(p, csr.subject, entry, dns_names=dns_names),
        "public_key": leaf_key.public_key(),
        "sans": sans_for(p, csr, entry),
        "issuer": chain.sub,
        "issuer_key": chain.sub_key,
        "urls": URLS,
        "serial": random_serial(),
    }
    arguments.update(overrides)
    return build_certificate(**arguments)  # type: ignore[arg-type]


def _write(path: Path, *certificates: x509.Certificate) -> Path:
    path.write_bytes(b"".join(c.public_bytes(Encoding.PEM) for c in certificates))
    return path


CASES = [
    (name, key_type)
    for name, p in BUILTIN.items()
    for key_type in CHEAP_TYPES
    if key_type in p.key_types
]


@pytest.mark.parametrize("key_type", CHEAP_TYPES)
def test_root_and_sub_ca_pass_rfc5280_lint(key_type: str) -> None:
    chain = _chain(key_type)
    assert lint(chain.root, "rfc5280") == []
    assert lint(chain.sub, "rfc5280") == []


@pytest.mark.parametrize(("name", "key_type"), CASES, ids=[f"{n}-{k}" for n, k in CASES])
def test_every_profile_lints_clean_and_verifies(name: str, key_type: str, tmp_path: Path) -> None:
    p = BUILTIN[name]
    leaf = _issue(p, key_type)
    assert lint(leaf, "rfc5280") == []
    if p.smime:
        assert lint(leaf, "smime") == []
    chain = _chain(key_type)
    code, output = openssl_verify(
        _write(tmp_path / "leaf.pem", leaf),
        [_write(tmp_path / "sub.pem", chain.sub), _write(tmp_path / "root.pem", chain.root)],
    )
    assert code == 0, output


@pytest.mark.parametrize("key_type", ["rsa2048", "p256"])
def test_individual_validated_smime_lints_clean(key_type: str) -> None:
    p = dataclasses.replace(
        BUILTIN["smime-user"], subject="individual", policies=(SMIME_INDIVIDUAL_STRICT,)
    )
    leaf = _issue(p, key_type)
    assert [(a.oid, a.value) for a in leaf.subject] == [
        (NameOID.COMMON_NAME, "Alice Smith"),
        (NameOID.GIVEN_NAME, "Alice"),
        (NameOID.SURNAME, "Smith"),
    ]
    assert lint(leaf, "smime") == []
    assert lint(leaf, "rfc5280") == []


def test_three_level_hierarchy_verifies(tmp_path: Path) -> None:
    root_key, policy_key, issuing_key, leaf_key = (_key("p384", n) for n in ("r", "p", "i", "l"))
    root = root_certificate(_name("Example Root CA"), root_key, 3650, ROOT_URLS)
    policy_profile = dataclasses.replace(BUILTIN["sub-ca"], path_length=1)
    policy = build_certificate(
        profile=policy_profile, subject=_name("Example Policy CA"),
        public_key=policy_key.public_key(), sans=(), issuer=root, issuer_key=root_key,
        urls=ROOT_URLS, serial=random_serial(),
    )
    issuing = build_certificate(
        profile=BUILTIN["sub-ca"], subject=_name("Example Issuing CA"),
        public_key=issuing_key.public_key(), sans=(), issuer=policy, issuer_key=policy_key,
        urls=URLS, serial=random_serial(),
    )
    leaf = build_certificate(
        profile=BUILTIN["tls-server"], subject=_name("host.example.com"),
        public_key=leaf_key.public_key(), sans=[x509.DNSName("host.example.com")],
        issuer=issuing, issuer_key=issuing_key, urls=URLS, serial=random_serial(),
    )
    for certificate in (policy, issuing, leaf):
        assert lint(certificate, "rfc5280") == []
    code, output = openssl_verify(
        _write(tmp_path / "leaf.pem", leaf),
        [_write(tmp_path / "issuing.pem", issuing), _write(tmp_path / "policy.pem", policy),
         _write(tmp_path / "root.pem", root)],
    )
    assert code == 0, output


def _extension(certificate: x509.Certificate, oid: x509.ObjectIdentifier) -> x509.Extension[
    x509.ExtensionType
]:
    return certificate.extensions.get_extension_for_oid(oid)


def test_root_certificate_shape(tmp_path: Path) -> None:
    chain = _chain("p256")
    root = chain.root
    assert root.issuer == root.subject
    constraints = _extension(root, ExtensionOID.BASIC_CONSTRAINTS)
    assert constraints.critical
    assert constraints.value == x509.BasicConstraints(ca=True, path_length=None)
    usage = _extension(root, ExtensionOID.KEY_USAGE)
    assert usage.critical
    assert isinstance(usage.value, x509.KeyUsage)
    assert usage.value.key_cert_sign and usage.value.crl_sign and usage.value.digital_signature
    ski = _extension(root, ExtensionOID.SUBJECT_KEY_IDENTIFIER).value
    assert isinstance(ski, x509.SubjectKeyIdentifier)
    assert ski.digest == keys.key_id(keys.public_key_of(root))
    present = {e.oid for e in root.extensions}
    assert ExtensionOID.AUTHORITY_INFORMATION_ACCESS not in present
    # Its own CRL, so that checking every certificate of a path finds it in scope.
    points = _extension(root, ExtensionOID.CRL_DISTRIBUTION_POINTS).value
    assert isinstance(points, x509.CRLDistributionPoints)
    root.verify_directly_issued_by(root)
    root_pem = _write(tmp_path / "root.pem", root)
    assert openssl_verify(root_pem, [root_pem])[0] == 0


def test_sub_ca_and_leaf_extensions() -> None:
    chain = _chain("rsa2048")
    sub = chain.sub
    assert _extension(sub, ExtensionOID.BASIC_CONSTRAINTS).value == x509.BasicConstraints(
        ca=True, path_length=0
    )
    aki = _extension(sub, ExtensionOID.AUTHORITY_KEY_IDENTIFIER).value
    assert isinstance(aki, x509.AuthorityKeyIdentifier)
    assert aki.key_identifier == keys.key_id(keys.public_key_of(chain.root))
    sub.verify_directly_issued_by(chain.root)

    leaf = _issue(BUILTIN["tls-server"], "rsa2048")
    assert leaf.signature_hash_algorithm is not None
    assert leaf.signature_hash_algorithm.name == "sha256"
    points = _extension(leaf, ExtensionOID.CRL_DISTRIBUTION_POINTS).value
    assert isinstance(points, x509.CRLDistributionPoints)
    assert [n.value for n in points[0].full_name or ()] == [HTTP_CRL, LDAP_CRL]
    access = _extension(leaf, ExtensionOID.AUTHORITY_INFORMATION_ACCESS).value
    assert isinstance(access, x509.AuthorityInformationAccess)
    assert {d.access_location.value for d in access} == {*URLS.ocsp, *URLS.ca_issuers}
    assert leaf.subject.rfc4514_string() == "CN=host.example.com"
    san = _extension(leaf, ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    assert not san.critical


def test_smime_leaf_carries_http_urls_only_and_the_entry_identity() -> None:
    leaf = _issue(BUILTIN["smime-user"], "p256")
    points = _extension(leaf, ExtensionOID.CRL_DISTRIBUTION_POINTS).value
    assert isinstance(points, x509.CRLDistributionPoints)
    assert [n.value for n in points[0].full_name or ()] == [HTTP_CRL]
    # The request asked for CN=admin; the entry decides.
    assert leaf.subject.rfc4514_string() == "CN=alice@example.com"
    san = _extension(leaf, ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
    assert isinstance(san, x509.SubjectAlternativeName)
    assert san.get_values_for_type(x509.RFC822Name) == ["alice@example.com", "a.smith@example.com"]
    policies = _extension(leaf, ExtensionOID.CERTIFICATE_POLICIES).value
    assert isinstance(policies, x509.CertificatePolicies)
    assert [p.policy_identifier.dotted_string for p in policies] == ["2.23.140.1.5.1.3"]


def test_smime_needs_an_http_crl_url() -> None:
    with pytest.raises(CAError, match=r"need an http:// CRL distribution point"):
        _issue(BUILTIN["smime-user"], "p256", urls=IssuerURLs(crl=(LDAP_CRL,)))


KEY_USAGE_BY_FAMILY = [
    # (profile, key type, usages the certificate gets)
    ("smime-user", "rsa2048", {"digital_signature", "key_encipherment"}),
    ("smime-user", "p256", {"digital_signature", "key_agreement"}),
    ("smime-user", "ed25519", {"digital_signature"}),
    ("smime-encryption", "rsa2048", {"key_encipherment"}),
    ("smime-encryption", "p384", {"key_agreement"}),
    ("tls-server", "rsa2048", {"digital_signature", "key_encipherment"}),
    ("tls-server", "p256", {"digital_signature"}),
]


@pytest.mark.parametrize(("name", "key_type", "expected"), KEY_USAGE_BY_FAMILY)
def test_key_usage_follows_the_key(name: str, key_type: str, expected: set[str]) -> None:
    usage = _extension(_issue(BUILTIN[name], key_type), ExtensionOID.KEY_USAGE)
    assert usage.critical
    assert isinstance(usage.value, x509.KeyUsage)
    fields = ("digital_signature", "content_commitment", "key_encipherment",
              "data_encipherment", "key_agreement", "key_cert_sign", "crl_sign")
    assert {f for f in fields if getattr(usage.value, f)} == expected


def test_ocsp_signing_has_nocheck() -> None:
    leaf = _issue(BUILTIN["ocsp-signing"], "p256")
    assert _extension(leaf, ExtensionOID.OCSP_NO_CHECK).value == x509.OCSPNoCheck()


def test_validity_is_exactly_the_profile_days() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    leaf = _issue(BUILTIN["tls-server"], "p256", now=now)
    assert leaf.not_valid_before_utc == now - timedelta(minutes=1)
    span = leaf.not_valid_after_utc - leaf.not_valid_before_utc + timedelta(seconds=1)
    assert span == timedelta(days=397)


def test_validity_never_beyond_the_issuer() -> None:
    chain = _chain("p256")
    now = chain.sub.not_valid_after_utc - timedelta(days=10)
    leaf = _issue(BUILTIN["smime-user"], "p256", now=now)
    assert leaf.not_valid_after_utc == chain.sub.not_valid_after_utc


def test_expired_issuer_is_refused() -> None:
    chain = _chain("p256")
    with pytest.raises(CAError, match=r"^the issuing CA certificate expired at "):
        _issue(BUILTIN["tls-client"], "p256", now=chain.sub.not_valid_after_utc + timedelta(1))


def test_profile_not_allowing_the_key_type() -> None:
    with pytest.raises(
        CAError,
        match=r"^profile smime-encryption does not allow ed25519 keys "
        r"\(allowed: p256, p384, rsa2048, rsa3072, rsa4096\)$",
    ):
        build_certificate(
            profile=BUILTIN["smime-encryption"], subject=_name("x"),
            public_key=_key("ed25519", "leaf").public_key(),
            sans=[x509.RFC822Name("alice@example.com")], issuer=_chain("p256").sub,
            issuer_key=_chain("p256").sub_key, urls=URLS, serial=random_serial(),
        )


def test_issuer_key_must_match_the_issuer_certificate() -> None:
    with pytest.raises(CAError, match=r"^the CA key does not match the CA certificate$"):
        _issue(BUILTIN["tls-client"], "p256", issuer_key=_key("p256", "other"))


@pytest.mark.parametrize("name", ["smime-user", "smime-signing", "smime-encryption"])
def test_missing_mail_is_refused(name: str) -> None:
    entry = {"cn": (b"Bob",)}
    csr = _request(_key("p256", "leaf"))
    message = rf"^the entry has no mail attribute; profile {name} needs one$"
    with pytest.raises(CAError, match=message):
        sans_for(BUILTIN[name], csr, entry)
    with pytest.raises(CAError, match=message):
        subject_for(BUILTIN[name], csr.subject, entry)


def test_smime_needs_an_entry() -> None:
    with pytest.raises(CAError, match=r"^profile smime-user needs a directory entry$"):
        subject_for(BUILTIN["smime-user"], _name("x"), None)


def test_attribute_names_are_case_insensitive() -> None:
    subject = subject_for(BUILTIN["smime-user"], _name("x"), {"MAIL": (b"b@example.com",)})
    assert subject.rfc4514_string() == "CN=b@example.com"


def test_tls_needs_requested_dns_names() -> None:
    csr = _request(_key("p256", "leaf"))
    with pytest.raises(CAError, match=r"^profile tls-server needs dNSNames in the request"):
        sans_for(BUILTIN["tls-server"], csr, None)


def test_tls_subject_falls_back_to_the_request_cn() -> None:
    subject = subject_for(BUILTIN["tls-server"], _name("host.example.com"), None)
    assert subject.rfc4514_string() == "CN=host.example.com"
    with pytest.raises(CAError, match="needs a host name"):
        subject_for(BUILTIN["tls-server"], x509.Name([]), None)


def test_sub_ca_takes_the_request_subject() -> None:
    assert subject_for(BUILTIN["sub-ca"], _name("Example Issuing CA"), None) == _name(
        "Example Issuing CA"
    )
    with pytest.raises(CAError, match="takes the request's subject, which is empty"):
        subject_for(BUILTIN["sub-ca"], x509.Name([]), None)


def test_serials() -> None:
    serials = {random_serial() for _ in range(1000)}
    assert len(serials) == 1000
    assert all(0 < s < 2**159 for s in serials)


def test_serial_is_used_as_given() -> None:
    leaf = _issue(BUILTIN["tls-client"], "p256", serial=2**158 + 1)
    assert leaf.serial_number == 2**158 + 1


def test_ed25519_issuer_signs_without_a_hash() -> None:
    leaf = _issue(BUILTIN["tls-client"], "ed25519")
    assert leaf.signature_hash_algorithm is None


def _crl(
    issuer: x509.Certificate, key: keys.PrivateKey, revoked: tuple[int, ...] = ()
) -> x509.CertificateRevocationList:
    now = datetime.now(UTC) - timedelta(minutes=1)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.subject)
        .last_update(now)
        .next_update(now + timedelta(days=7))
        .add_extension(x509.CRLNumber(1), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier(keys.key_id(keys.public_key_of(issuer)), None, None),
            critical=False,
        )
    )
    for serial in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(now).build()
        )
    return builder.sign(key, keys.signature_hash(key))


@pytest.mark.parametrize("revoke", [False, True])
def test_openssl_verify_checks_crls(revoke: bool, tmp_path: Path) -> None:
    chain = _chain("p384")
    leaf = _issue(BUILTIN["smime-signing"], "p384")
    crls = tmp_path / "crls.pem"
    crls.write_bytes(
        _crl(chain.root, _key("p384", "root")).public_bytes(Encoding.PEM)
        + _crl(chain.sub, chain.sub_key, (leaf.serial_number,) if revoke else ()).public_bytes(
            Encoding.PEM
        )
    )
    code, output = openssl_verify(
        _write(tmp_path / "leaf.pem", leaf),
        [_write(tmp_path / "sub.pem", chain.sub), _write(tmp_path / "root.pem", chain.root)],
        crls,
    )
    if revoke:
        assert code == 2
        assert "certificate revoked" in output
    else:
        assert code == 0, output


def test_ip_san_source() -> None:
    p = dataclasses.replace(BUILTIN["tls-server"], san=("dns", "ip"))
    address = x509.IPAddress(ipaddress.ip_address("192.0.2.7"))
    leaf_key = _key("p256", "leaf")
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(_name("host.example.com"))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("host.example.com"), address]
            ),
            critical=False,
        )
        .sign(leaf_key, keys.signature_hash(leaf_key))
    )
    assert sans_for(p, csr, None) == [x509.DNSName("host.example.com"), address]
