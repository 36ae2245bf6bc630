"""The directory's own TLS certificate, issued by its CA (tls-server profile).

- `certdir init` issues it right after creating the root CA; `certdir
  serve` issues a new one at start when the current one expires within
  `ca.tls_renew_days`, is not from this CA, or does not exist.
- The key is a fresh ECDSA P-256 key, written with mode 0600; the
  certificate file holds the certificate and then the CA chain, so
  clients that trust public/ca.pem (the root) can verify it.
- Names: every LDAP and HTTP listen host (IP addresses as iPAddress,
  names as dNSName) and localhost.
- The key is generated and the certificate signed before the transaction
  that records it; the files are written after that transaction commits.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from ca.authority import Authority
from ca.issue import Prepared, commit, prepare
from ca.keys import PrivateKey, generate, signature_hash
from ca.policy import Origin
from ca.profiles import profile
from certdir.ca_writing import utc_now, writing
from certdir.config import Config
from certdir.directory_open import offline_directory
from directory.files import write_private


def _names(config: Config) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    hosts = [u.host for u in config.listen] + [u.host for u in config.http]
    for host in dict.fromkeys(hosts):
        if host in ("0.0.0.0", "::"):
            continue
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def needs_renewal(config: Config, authority: Authority, now: dt.datetime) -> bool:
    assert config.tls is not None and config.ca is not None
    try:
        current = x509.load_pem_x509_certificate(config.tls.certificate.read_bytes())
    except (FileNotFoundError, ValueError):
        return True
    return (current.issuer != authority.certificate.subject
            or current.not_valid_after_utc - now < dt.timedelta(days=config.ca.tls_renew_days))


def prepare_server_certificate(config: Config, authority: Authority,
                               now: dt.datetime) -> tuple[PrivateKey, Prepared]:
    """A fresh key and its certificate, signed; `ca.issue.commit` records it
    (in the caller's transaction), `install` writes the files after."""
    key = generate("p256")
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([]))
           .add_extension(x509.SubjectAlternativeName(_names(config)), critical=False)
           .sign(key, signature_hash(key)))
    return key, prepare(authority, csr.public_bytes(Encoding.DER),
                        profile(authority.config.profiles, "tls-server"), None,
                        Origin.OFFICER, now)


def install(config: Config, authority: Authority, key: PrivateKey,
            certificate: x509.Certificate) -> None:
    assert config.tls is not None
    write_private(config.tls.key, key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8,
                                                    NoEncryption()))
    _replace(config.tls.certificate, b"".join(
        c.public_bytes(Encoding.PEM) for c in (certificate, *authority.chain)))


def _replace(path: Path, data: bytes) -> None:
    aside = path.with_name(path.name + ".new")
    aside.write_bytes(data)
    aside.replace(path)


def renew_server_certificate(config: Config, authority: Authority) -> None:
    """Issue and install a new server certificate now (outside the server's writer)."""
    issued = utc_now()
    key, prepared = prepare_server_certificate(config, authority, issued)
    with offline_directory(config) as dsa, writing(dsa, authority) as writer:
        outcome = commit(writer, prepared, issued)
    assert outcome.certificate is not None
    install(config, authority, key, outcome.certificate)
