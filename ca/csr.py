"""PKCS#10 certification requests (RFC 2986) as the CA accepts them.

- A request arrives PEM or DER encoded; anything else is refused.
- Its key must be one of `keys.KEY_TYPES` and its signature must use SHA-256
  or stronger (or Ed25519), and must verify with the request's own key
  (RFC 2986 §3: proof of possession of the private key).
- Only the dNSNames and iPAddresses of a requested subjectAltName (RFC 2985 §5.4.2
  extensionRequest) are read from the request; the CA builds the rest of the
  subject and SANs from the profile and the directory entry.
"""

from __future__ import annotations

import ipaddress

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm

from ca import keys
from ca.errors import CAError

_PEM_LABEL = b"-----BEGIN CERTIFICATE REQUEST-----"


def load_csr(data: bytes) -> x509.CertificateSigningRequest:
    loader = x509.load_pem_x509_csr if _PEM_LABEL in data else x509.load_der_x509_csr
    try:
        request = loader(data)
        public_key = request.public_key()
    except (ValueError, UnsupportedAlgorithm):
        raise CAError("not a PKCS#10 request (PEM or DER)") from None
    keys.key_type_of(public_key)
    try:
        algorithm = request.signature_hash_algorithm
    except UnsupportedAlgorithm:
        raise CAError("the request's signature algorithm is not supported") from None
    keys.check_hash(algorithm, "the request")
    if not request.is_signature_valid:
        raise CAError("the request's signature does not verify")
    return request


def _requested_san(csr: x509.CertificateSigningRequest) -> x509.SubjectAlternativeName | None:
    try:
        return csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    except ValueError as error:
        raise CAError(f"the request's extensions cannot be read: {error}") from None


def requested_dns_names(csr: x509.CertificateSigningRequest) -> tuple[str, ...]:
    san = _requested_san(csr)
    return () if san is None else tuple(san.get_values_for_type(x509.DNSName))


def requested_ip_addresses(
    csr: x509.CertificateSigningRequest,
) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, ...]:
    """Single addresses only; a network in a SAN is meaningless for an end entity."""
    san = _requested_san(csr)
    found = () if san is None else san.get_values_for_type(x509.IPAddress)
    return tuple(a for a in found if isinstance(a, ipaddress.IPv4Address | ipaddress.IPv6Address))
