"""The TLS client certificate a session holds (RFC 8446 §4.4.2, RFC 5246 §7.4.6).

- The TLS layer asks for a certificate and lets any through; here, after
  the handshake, a certificate counts only when one of the trusted CA
  certificates (`DSA.client_cas`: the built-in CA's chain and
  `tls.ca_certificate`) signed it directly. The session then holds its DER
  (`Session.tls_client_cert`) and its subject as RFC 4514 writes it
  (`Session.tls_subject`). A certificate of any other CA, or a self-signed
  one, or one that does not parse, is ignored as if none had been sent:
  its subject is whatever its maker wrote, so no rule or bind may see it.
- Validity period, revocation and the entry a certificate belongs to are
  asked at every SASL EXTERNAL bind (`directory.ops.sasl_external`), never
  remembered from the handshake.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature


def _is_ca(certificate: x509.Certificate) -> bool:
    try:
        return certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def issued_by(certificate: x509.Certificate, cas: Iterable[x509.Certificate]) -> bool:
    """Whether one of the CA certificates `cas` signed `certificate`."""
    for ca in cas:
        if ca.subject != certificate.issuer or not _is_ca(ca):
            continue
        try:
            certificate.verify_directly_issued_by(ca)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return True
    return False


def peer_certificate(transport: Any, cas: Iterable[x509.Certificate]) -> x509.Certificate | None:
    """The client's certificate on a TLS transport, when one of `cas` issued it."""
    presented = transport.getPeerCertificate()
    if presented is None:
        return None
    try:
        certificate: x509.Certificate = presented.to_cryptography()
        return certificate if issued_by(certificate, cas) else None
    except ValueError:
        # Names or extensions cryptography cannot parse: no trusted CA issues those.
        return None
