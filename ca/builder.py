"""Building and signing certificates (RFC 5280 §4.1, §4.2) from a profile.

- Serials are 159-bit random positive integers from `secrets`, never 0
  (RFC 5280 §4.1.2.2 at most 20 octets; CA/Browser Forum BR §7.1 at least 64
  random bits).
- The subject is built from the profile's template and the directory entry,
  never copied blindly from the request:
  "mailbox"    CN = the entry's first `mail` (S/MIME BR §7.1.4.2.2,
               mailbox-validated strict: the mailbox is all the directory vouches for);
  "individual" CN = the entry's `cn`, plus givenName and surname when the
               entry has them (individual-validated strict);
  "dns"        CN = the request's first dNSName, else its CN (TLS);
  "request"    the request's subject as is (sub-CA, OCSP responder).
- SANs: "mail" gives an rfc822Name per `mail` value, "dns" and "ip" copy the
  request's dNSNames and iPAddresses; the SAN is critical when the subject
  is empty (RFC 5280 §4.2.1.6).
- Extensions: basicConstraints (critical, with pathLen on CA profiles that
  give one, §4.2.1.9), keyUsage (critical, §4.2.1.3) limited to what the
  subject key can do, extKeyUsage, SAN, subjectKeyIdentifier (RFC 7093
  method 1), authorityKeyIdentifier (the issuer's SKI, §4.2.1.1),
  authorityInfoAccess and cRLDistributionPoints (not on a self-signed root;
  on S/MIME certificates http:// URLs only, S/MIME BR §7.1.2.3 b and c),
  freshestCRL naming the delta CRL (RFC 5280 §4.2.1.15, non-critical) when
  the profile's `freshest_crl` asks for it and the issuer has a delta URL,
  certificatePolicies from the profile, id-pkix-ocsp-nocheck on OCSP signing
  certificates (RFC 6960 §4.2.2.2.1).
- notBefore is a minute before now (clock skew); notAfter makes the validity
  exactly the profile's days and never later than the issuer's notAfter.
- The subject key type must be one the profile allows; the issuer key must
  match the issuer certificate; signatures use `keys.signature_hash`.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID

from ca import keys
from ca.csr import requested_dns_names, requested_ip_addresses
from ca.errors import CAError
from ca.profiles import EXTENDED_KEY_USAGES, Profile

Entry = Mapping[str, tuple[bytes, ...]]
Attribute = x509.NameAttribute[str | bytes]

SERIAL_BITS = 159
CLOCK_SKEW = timedelta(minutes=1)

# Usages a key of each family can perform: RSA encrypts keys, ECDSA agrees
# on them (RFC 5480 §3), Ed25519 only signs (RFC 8410 §5).
_POSSIBLE_USAGES: Mapping[str, frozenset[str]] = {
    "rsa": frozenset(
        {"digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
         "key_cert_sign", "crl_sign"}
    ),
    "ec": frozenset(
        {"digital_signature", "content_commitment", "key_agreement", "key_cert_sign", "crl_sign"}
    ),
    "ed25519": frozenset({"digital_signature", "content_commitment", "key_cert_sign", "crl_sign"}),
}
_KEY_USAGE_FIELDS = (
    "digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
    "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only",
)

_ROOT = Profile(
    name="root",
    key_usage=frozenset({"digital_signature", "key_cert_sign", "crl_sign"}),
    extended_key_usage=(),
    san=(),
    validity_days=1,
    key_types=frozenset(keys.KEY_TYPES),
    ca=True,
)


@dataclass(frozen=True, slots=True)
class IssuerURLs:
    ca_issuers: tuple[str, ...] = ()
    ocsp: tuple[str, ...] = ()
    crl: tuple[str, ...] = ()
    delta_crl: tuple[str, ...] = ()


def random_serial() -> int:
    while True:
        serial = secrets.randbits(SERIAL_BITS)
        if serial:
            return serial


def _values(entry: Entry | None, attribute: str, profile: Profile) -> tuple[str, ...]:
    if entry is None:
        raise CAError(f"profile {profile.name} needs a directory entry")
    wanted = attribute.lower()
    found = next((v for k, v in entry.items() if k.lower() == wanted), ())
    return tuple(value.decode("utf-8") for value in found)


def _mails(entry: Entry | None, profile: Profile) -> tuple[str, ...]:
    mails = _values(entry, "mail", profile)
    if not mails:
        raise CAError(f"the entry has no mail attribute; profile {profile.name} needs one")
    return mails


def _mailbox_subject(
    profile: Profile, request: x509.Name, entry: Entry | None, dns_names: Sequence[str]
) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, _mails(entry, profile)[0])])


_PERSON_ATTRIBUTES = (
    ("givenName", NameOID.GIVEN_NAME),
    ("sn", NameOID.SURNAME),
)


def _individual_subject(
    profile: Profile, request: x509.Name, entry: Entry | None, dns_names: Sequence[str]
) -> x509.Name:
    names = _values(entry, "cn", profile)
    if not names:
        raise CAError(f"the entry has no cn attribute; profile {profile.name} needs one")
    attributes: list[Attribute] = [x509.NameAttribute(NameOID.COMMON_NAME, names[0])]
    for attribute, oid in _PERSON_ATTRIBUTES:
        attributes += [x509.NameAttribute(oid, v) for v in _values(entry, attribute, profile)[:1]]
    return x509.Name(attributes)


def _dns_subject(
    profile: Profile, request: x509.Name, entry: Entry | None, dns_names: Sequence[str]
) -> x509.Name:
    common_names = [str(a.value) for a in request.get_attributes_for_oid(NameOID.COMMON_NAME)]
    host = next(iter(dns_names), None) or next(iter(common_names), None)
    if host is None:
        raise CAError(f"profile {profile.name} needs a host name (a dNSName or CN in the request)")
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])


def _request_subject(
    profile: Profile, request: x509.Name, entry: Entry | None, dns_names: Sequence[str]
) -> x509.Name:
    if not list(request):
        raise CAError(f"profile {profile.name} takes the request's subject, which is empty")
    return request


SUBJECT_TEMPLATES: Mapping[
    str, Callable[[Profile, x509.Name, Entry | None, Sequence[str]], x509.Name]
] = {
    "mailbox": _mailbox_subject,
    "individual": _individual_subject,
    "dns": _dns_subject,
    "request": _request_subject,
}


def subject_for(
    profile: Profile, request: x509.Name, entry: Entry | None, *, dns_names: Sequence[str] = ()
) -> x509.Name:
    """The certificate subject; `dns_names` are the request's dNSNames for the "dns" template."""
    return SUBJECT_TEMPLATES[profile.subject](profile, request, entry, dns_names)


def _mail_sans(
    profile: Profile, csr: x509.CertificateSigningRequest, entry: Entry | None
) -> list[x509.GeneralName]:
    return [x509.RFC822Name(mail) for mail in _mails(entry, profile)]


def _dns_sans(
    profile: Profile, csr: x509.CertificateSigningRequest, entry: Entry | None
) -> list[x509.GeneralName]:
    names = requested_dns_names(csr)
    if not names:
        raise CAError(f"profile {profile.name} needs dNSNames in the request's subjectAltName")
    return [x509.DNSName(name) for name in names]


def _ip_sans(
    profile: Profile, csr: x509.CertificateSigningRequest, entry: Entry | None
) -> list[x509.GeneralName]:
    return [x509.IPAddress(address) for address in requested_ip_addresses(csr)]


SAN_SOURCES: Mapping[
    str,
    Callable[[Profile, x509.CertificateSigningRequest, Entry | None], list[x509.GeneralName]],
] = {"mail": _mail_sans, "dns": _dns_sans, "ip": _ip_sans}


def sans_for(
    profile: Profile, csr: x509.CertificateSigningRequest, entry: Entry | None
) -> list[x509.GeneralName]:
    return [name for source in profile.san for name in SAN_SOURCES[source](profile, csr, entry)]


def _key_usage(profile: Profile, public_key: keys.PublicKey) -> x509.KeyUsage:
    usages = profile.key_usage & _POSSIBLE_USAGES[keys.family_of(public_key)]
    if not usages:
        raise CAError(
            f"profile {profile.name} gives a {keys.key_type_of(public_key)} key no usable "
            f"key usage (profile: {', '.join(sorted(profile.key_usage))})"
        )
    return x509.KeyUsage(**{name: name in usages for name in _KEY_USAGE_FIELDS})


def _issuer_key_id(issuer: x509.Certificate) -> bytes:
    try:
        return issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        return keys.key_id(keys.public_key_of(issuer))


def _access_descriptions(urls: IssuerURLs) -> list[x509.AccessDescription]:
    methods = (
        (AuthorityInformationAccessOID.OCSP, urls.ocsp),
        (AuthorityInformationAccessOID.CA_ISSUERS, urls.ca_issuers),
    )
    return [
        x509.AccessDescription(method, x509.UniformResourceIdentifier(url))
        for method, found in methods
        for url in found
    ]


def _http_only(urls: IssuerURLs) -> IssuerURLs:
    http = dataclasses.replace(
        urls, **{f: tuple(u for u in getattr(urls, f) if u.startswith("http://"))
                 for f in ("ca_issuers", "ocsp", "crl", "delta_crl")}
    )
    if not http.crl:
        raise CAError(
            "S/MIME certificates need an http:// CRL distribution point (S/MIME BR §7.1.2.3)"
        )
    return http


def _validity(
    profile: Profile, issuer: x509.Certificate | None, now: datetime | None
) -> tuple[datetime, datetime]:
    start = (now or datetime.now(UTC)).replace(microsecond=0) - CLOCK_SKEW
    # RFC 5280 §4.1.2.5 counts both ends, hence the second off.
    end = start + timedelta(days=profile.validity_days) - timedelta(seconds=1)
    if issuer is not None:
        end = min(end, issuer.not_valid_after_utc)
        if end <= start:
            raise CAError(
                f"the issuing CA certificate expired at {issuer.not_valid_after_utc:%Y-%m-%d %H:%M}"
            )
    return start, end


def check_key_type(profile: Profile, public_key: object) -> None:
    key_type = keys.key_type_of(public_key)
    if key_type not in profile.key_types:
        raise CAError(
            f"profile {profile.name} does not allow {key_type} keys "
            f"(allowed: {', '.join(sorted(profile.key_types))})"
        )


def build_certificate(
    *,
    profile: Profile,
    subject: x509.Name,
    public_key: keys.PublicKey,
    sans: Sequence[x509.GeneralName],
    issuer: x509.Certificate | None,
    issuer_key: keys.PrivateKey,
    urls: IssuerURLs,
    serial: int,
    now: datetime | None = None,
) -> x509.Certificate:
    check_key_type(profile, public_key)
    keys.key_type_of(issuer_key)
    if issuer is None:
        issuer_name, authority_key_id = subject, keys.key_id(public_key)
    else:
        if issuer.public_key() != issuer_key.public_key():
            raise CAError("the CA key does not match the CA certificate")
        issuer_name, authority_key_id = issuer.subject, _issuer_key_id(issuer)
    not_before, not_after = _validity(profile, issuer, now)

    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(public_key)
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(
            x509.BasicConstraints(
                ca=profile.ca, path_length=profile.path_length if profile.ca else None
            ),
            critical=True,
        )
        .add_extension(_key_usage(profile, public_key), critical=True)
        .add_extension(x509.SubjectKeyIdentifier(keys.key_id(public_key)), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier(authority_key_id, None, None), critical=False
        )
    )
    if profile.extended_key_usage:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([EXTENDED_KEY_USAGES[n] for n in profile.extended_key_usage]),
            critical=False,
        )
    if sans:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(sans), critical=not list(subject)
        )
    if profile.policies:
        builder = builder.add_extension(
            x509.CertificatePolicies(
                [
                    x509.PolicyInformation(x509.ObjectIdentifier(oid), None)
                    for oid in profile.policies
                ]
            ),
            critical=False,
        )
    if "OCSPSigning" in profile.extended_key_usage:
        builder = builder.add_extension(x509.OCSPNoCheck(), critical=False)
    if profile.smime:
        urls = _http_only(urls)
    if issuer is not None:
        access = _access_descriptions(urls)
        if access:
            builder = builder.add_extension(
                x509.AuthorityInformationAccess(access), critical=False
            )
    # A root names its own CRL too: relying parties that check every
    # certificate of the path (openssl -crl_check_all) then find the root's
    # CRL in scope for the root itself (RFC 5280 §5.2.5, §6.3.3 (b)).
    if urls.crl:
            point = x509.DistributionPoint(
                [x509.UniformResourceIdentifier(url) for url in urls.crl], None, None, None
            )
            builder = builder.add_extension(x509.CRLDistributionPoints([point]), critical=False)
    if profile.freshest_crl and urls.delta_crl:
        delta = x509.DistributionPoint(
            [x509.UniformResourceIdentifier(url) for url in urls.delta_crl], None, None, None
        )
        builder = builder.add_extension(x509.FreshestCRL([delta]), critical=False)
    return builder.sign(issuer_key, keys.signature_hash(issuer_key))


def root_certificate(
    name: x509.Name, key: keys.PrivateKey, validity_days: int, urls: IssuerURLs
) -> x509.Certificate:
    """A self-signed CA; it carries no AIA, and a CRL DP when `urls.crl` names its CRLs."""
    return build_certificate(
        profile=dataclasses.replace(_ROOT, validity_days=validity_days),
        subject=name,
        public_key=key.public_key(),
        sans=(),
        issuer=None,
        issuer_key=key,
        urls=urls,
        serial=random_serial(),
    )
