"""TLS for the directory: the bootstrap certificate and server contexts.

- `certdir init` makes a throwaway bootstrap CA (ECDSA P-256, SHA-256),
  signs the server certificate with it and keeps only the CA certificate
  (public/ca.pem) — its key is never written, so there is nothing to steal.
  The certificate authority of the next milestone replaces both.
- The server key is written with mode 0600.
- Server contexts accept TLS 1.2 and 1.3 only (RFC 8996 deprecates older
  versions); TLS 1.2 offers only ECDHE key exchange with AEAD ciphers
  (AES-GCM, ChaCha20-Poly1305; RFC 9325 §4.2), never CBC with SHA-1 MACs.
  TLS 1.3's suites are all AEAD.
- LDAP contexts ask the client for a certificate, naming the trusted CAs
  (RFC 8446 §4.3.2 certificate_authorities), and never require one. The
  handshake accepts whatever certificate comes: which ones count is decided
  after it (`directory.client_certificate`), so an S/MIME certificate
  (emailProtection only, which OpenSSL's TLS-client purpose check refuses)
  or an expired one reaches the SASL EXTERNAL bind, which says why it fails.
  The https site is never asked for one: browsers would offer a picker.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from directory.files import write_private

AEAD_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "certdir"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def bootstrap(cert_path: Path, key_path: Path, ca_path: Path, hosts: list[str]) -> None:
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("certdir bootstrap CA")
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                       critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for host in dict.fromkeys(["localhost", *hosts]):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(hosts[0] if hosts else "localhost")).issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=397))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False,
                                     False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    write_private(key_path, key.private_bytes(serialization.Encoding.PEM,
                                              serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM)
                          + ca_cert.public_bytes(serialization.Encoding.PEM))
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))


def server_context(cert_path: Path, key_path: Path,
                   client_cas: Sequence[x509.Certificate] = ()) -> Any:
    """Twisted TLS options for the server, TLS 1.2 or newer; with `client_cas`,
    asking clients for a certificate issued by one of them."""
    from OpenSSL import SSL, crypto
    from twisted.internet import ssl

    blocks = _pem_blocks(cert_path.read_bytes())
    leaf = ssl.PrivateCertificate.loadPEM(blocks[0] + b"\n" + key_path.read_bytes())
    options = ssl.CertificateOptions(
        privateKey=leaf.privateKey.original,
        certificate=leaf.original,
        extraCertChain=[ssl.Certificate.loadPEM(b).original for b in blocks[1:]],
        raiseMinimumTo=ssl.TLSVersion.TLSv1_2,
        acceptableCiphers=ssl.AcceptableCiphers.fromOpenSSLCipherString(AEAD_CIPHERS),
    )
    if client_cas:
        # Twisted builds every connection from this one cached context.
        context = options.getContext()
        context.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_CLIENT_ONCE, _accept_any)
        for ca in client_cas:
            context.add_client_ca(crypto.X509.from_cryptography(ca))
    return options


def _accept_any(connection: Any, certificate: Any, error: int, depth: int, ok: int) -> bool:
    return True


def _pem_blocks(pem: bytes) -> list[bytes]:
    marker = b"-----END CERTIFICATE-----"
    return [block.strip() + b"\n" + marker for block in pem.split(marker) if b"BEGIN" in block]
