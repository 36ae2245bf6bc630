"""The CA of a data directory: its files, its key, its names and URLs.

- A data directory holds one signing CA: a root (`certdir ca init`) or a
  subordinate (`request-sub` + `install-sub`). Its files live in `ca/`:
  `key.pem` (PKCS#8, encrypted with the CA passphrase, mode 0600),
  `cert.pem`, `chain.pem` (the CA first, the root last) and, between
  request-sub and install-sub, `request.pem`.
- The key is unlocked with the passphrase from the environment variable
  the config names, else the passphrase file, else a prompt on a terminal;
  with none of them the CA refuses to start and says where it looked.
  There is never a default passphrase.
- The CA's directory entry is `cn=<CA common name>,cn=CAs,cn=PKI,<suffix>`.
- Certificates it issues point to it (RFC 5280 §4.2.2.1, §4.2.1.13): AIA
  caIssuers `<base_url>/<slug>.crt` and OCSP `<base_url>/ocsp`; CRL
  distribution points `<base_url>/<slug>.crl` and the LDAP URL (RFC 4516)
  of the CA entry's certificateRevocationList; where the profile asks for
  it, a Freshest CRL pointer (§4.2.1.15) to the delta CRL
  `<base_url>/<slug>-delta.crl`.
"""

from __future__ import annotations

import getpass
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from ca.builder import IssuerURLs
from ca.config import CAConfig
from ca.errors import CAError
from ca.keys import PrivateKey, decrypt_private_key
from directory.protocol.dn import escape


@dataclass(frozen=True, slots=True)
class CAFiles:
    folder: Path

    @classmethod
    def of(cls, data_dir: Path) -> CAFiles:
        return cls(data_dir / "ca")

    @property
    def key(self) -> Path:
        return self.folder / "key.pem"

    @property
    def certificate(self) -> Path:
        return self.folder / "cert.pem"

    @property
    def chain(self) -> Path:
        return self.folder / "chain.pem"

    @property
    def request(self) -> Path:
        return self.folder / "request.pem"


def common_name(name: x509.Name) -> str:
    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(values[0].value) if values else name.rfc4514_string()


def slug(certificate: x509.Certificate | x509.Name) -> str:
    name = certificate if isinstance(certificate, x509.Name) else certificate.subject
    return re.sub(r"[^A-Za-z0-9]+", "-", common_name(name)).strip("-") or "ca"


def entry_dn(certificate: x509.Certificate | x509.Name, suffix: str) -> str:
    name = certificate if isinstance(certificate, x509.Name) else certificate.subject
    return f"cn={escape(common_name(name))},cn=CAs,cn=PKI,{suffix}"


def issuer_urls(config: CAConfig, subject: x509.Name, suffix: str) -> IssuerURLs:
    """Where the CA named `subject` serves its certificate, CRLs and OCSP."""
    name = slug(subject)
    dn = quote(entry_dn(subject, suffix), safe="=,")
    return IssuerURLs(
        ca_issuers=(f"{config.base_url}/{name}.crt",),
        ocsp=(f"{config.base_url}/ocsp",),
        crl=(f"{config.base_url}/{name}.crl",
             f"{config.ldap_url}/{dn}?certificateRevocationList;binary"),
        delta_crl=(f"{config.base_url}/{name}-delta.crl",),
    )


def load_chain(path: Path) -> tuple[x509.Certificate, ...]:
    try:
        return tuple(x509.load_pem_x509_certificates(path.read_bytes()))
    except FileNotFoundError:
        raise CAError(f"{path}: no CA here; run `certdir ca init` or `install-sub`") from None


def passphrase(config: CAConfig) -> bytes:
    from_env = os.environ.get(config.passphrase_env)
    if from_env:
        return from_env.encode()
    try:
        return config.passphrase_file.read_bytes().strip()
    except FileNotFoundError:
        pass
    if sys.stdin.isatty():
        return getpass.getpass("CA key passphrase: ").encode()
    raise CAError(f"the CA key is locked: set ${config.passphrase_env} or put the passphrase "
                  f"in {config.passphrase_file}")


@dataclass(frozen=True, slots=True)
class Authority:
    """An unlocked CA."""
    config: CAConfig
    suffix: str
    chain: tuple[x509.Certificate, ...]
    key: PrivateKey

    @property
    def certificate(self) -> x509.Certificate:
        return self.chain[0]

    @property
    def entry_dn(self) -> str:
        return entry_dn(self.certificate, self.suffix)

    @property
    def urls(self) -> IssuerURLs:
        return issuer_urls(self.config, self.certificate.subject, self.suffix)

    @property
    def slug(self) -> str:
        return slug(self.certificate)


def unlock(config: CAConfig, data_dir: Path, suffix: str) -> Authority:
    files = CAFiles.of(data_dir)
    chain = load_chain(files.chain)
    key = decrypt_private_key(files.key.read_bytes(), passphrase(config), "the CA key")
    public = key.public_key().public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    if public != chain[0].public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo):
        raise CAError(f"{files.key} does not belong to the certificate in {files.chain}")
    return Authority(config, suffix, chain, key)


def has_ca(data_dir: Path) -> bool:
    return CAFiles.of(data_dir).chain.exists()
