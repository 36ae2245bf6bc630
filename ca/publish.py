"""Publishing into the directory, inside the caller's transaction.

- An issued user certificate goes to the holder entry's
  `userCertificate;binary` (RFC 4523 §2.1, transferred with ;binary) and,
  when the profile says so, to `userSMIMECertificate` (RFC 2798 §2.8: a
  PKCS#7 SignedData holding the certificate, as Outlook reads it); the
  entry gets the auxiliary class `pkiUser`.
- Only values this CA put there are ever removed: certificates from other
  CAs on the same entry are left alone.
- Every CA of the chain has an entry `cn=<name>,cn=CAs,cn=PKI,<suffix>`
  (structural cRLDistributionPoint + auxiliary pkiCA) with its
  `cACertificate;binary`; the signing CA's entry also holds its CRLs:
  `certificateRevocationList;binary`, `authorityRevocationList;binary`
  (the same full CRL: it covers CA certificates too) and
  `deltaRevocationList;binary`. A CA above it gets the CRLs installed
  with `certdir ca install-crl` in the same attributes.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7

from ca.authority import Authority, common_name, entry_dn
from ca.profiles import Profile
from directory.publisher import DirectoryWriter

USER_CERTIFICATE = "userCertificate;binary"
SMIME_CERTIFICATE = "userSMIMECertificate"
PKI_CONTAINERS = (("cn=PKI", "PKI"), ("cn=CAs,cn=PKI", "CAs"))


def der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.DER)


def _values(profile_publish: tuple[str, ...], certificate: x509.Certificate) -> dict[
        str, list[bytes]]:
    forms = {USER_CERTIFICATE: lambda: der(certificate),
             SMIME_CERTIFICATE: lambda: pkcs7.serialize_certificates(
                 [certificate], serialization.Encoding.DER)}
    return {name: [forms[name]()] for name in profile_publish if name in forms}


def publish_certificate(writer: DirectoryWriter, holder: str, profile: Profile,
                        certificate: x509.Certificate) -> None:
    values = _values(profile.publish, certificate)
    if not values:
        return
    writer.add_values(writer.dn(holder), {"objectClass": [b"pkiUser"], **values})


def unpublish_certificate(writer: DirectoryWriter, holder: str,
                          certificate: x509.Certificate) -> None:
    writer.delete_values(writer.dn(holder),
                         _values((USER_CERTIFICATE, SMIME_CERTIFICATE), certificate))


def publish_authority(writer: DirectoryWriter, authority: Authority) -> None:
    suffix = authority.suffix
    for rdn, cn in PKI_CONTAINERS:
        writer.ensure(writer.dn(f"{rdn},{suffix}"),
                      {"objectClass": [b"applicationProcess"], "cn": [cn.encode()]})
    for certificate in authority.chain:
        dn = writer.dn(entry_dn(certificate, suffix))
        writer.ensure(dn, {"objectClass": [b"cRLDistributionPoint", b"pkiCA"],
                           "cn": [common_name(certificate.subject).encode()]})
        writer.replace_values(dn, {"cACertificate;binary": [der(certificate)]})


def publish_crls(writer: DirectoryWriter, authority: Authority, full: bytes,
                 delta: bytes) -> None:
    writer.replace_values(writer.dn(authority.entry_dn), {
        "certificateRevocationList;binary": [full],
        "authorityRevocationList;binary": [full],
        "deltaRevocationList;binary": [delta],
    })


def publish_issuer_crl(writer: DirectoryWriter, issuer: x509.Certificate, suffix: str,
                       crl: bytes, delta: bool) -> None:
    """A CRL of a CA above the signing CA, into that CA's entry."""
    names = (("deltaRevocationList;binary",) if delta else
             ("certificateRevocationList;binary", "authorityRevocationList;binary"))
    writer.replace_values(writer.dn(entry_dn(issuer, suffix)), {name: [crl] for name in names})
