"""Who signs the OCSP responses of a CA (`ca.ocsp.signer`, RFC 6960 §2.6, §4.2.2.2).

- `delegated` (the default): a responder certificate for the CA, profile
  ocsp-signing (extendedKeyUsage id-kp-OCSPSigning and
  id-pkix-ocsp-nocheck, RFC 6960 §4.2.2.2 and §4.2.2.2.1), valid
  `ca.ocsp.responder_days`, subject "<CA name> OCSP Responder", issued by
  the CA itself (so clients accept it as authorised by the certificate's
  issuer) through `ca.issue.submit` as an officer's request with no
  holder entry, and recorded in ca_certificates like any certificate.
  The server issues one at start and a new one once the current one is
  within `ca.ocsp.renew_days` of expiry.
- Its key lives in the server's memory only: a fresh key for every
  certificate, never written to disk and never encrypted under the CA
  passphrase. A nocheck responder certificate cannot usefully be revoked
  (clients do not ask about it), so RFC 6960 §4.2.2.2.1 asks for a short
  life; keeping the key off the disk adds that no backup, copy of the
  data directory or stolen disk ever holds it. The price is one
  certificate per start (a key pair and one CA signature).
- The key is of the CA key's type, so clients that verify the CA can
  verify the responder.
- `ca`: the CA key signs responses itself; nothing is issued.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from twisted.internet.defer import Deferred

from ca.authority import Authority, common_name
from ca.config import OCSPConfig
from ca.errors import CAError
from ca.issue import Outcome, submit
from ca.keys import PrivateKey, generate, key_type_of, signature_hash
from ca.ocsp import Signer
from ca.policy import Origin
from ca.pool import Slow
from ca.profiles import Profile, profile
from directory.dsa import DSA

PROFILE = "ocsp-signing"


def _intermediates(authority: Authority) -> tuple[x509.Certificate, ...]:
    """The CA chain a client may lack: everything but the root it trusts."""
    return authority.chain[:-1]


def ca_signer(authority: Authority) -> Signer:
    return Signer(authority.certificate, authority.key, _intermediates(authority))


def delegated(authority: Authority, key: PrivateKey, certificate: x509.Certificate) -> Signer:
    return Signer(certificate, key, (certificate, *_intermediates(authority)))


def needs_renewal(signer: Signer | None, config: OCSPConfig, now: dt.datetime) -> bool:
    return (signer is None
            or signer.certificate.not_valid_after_utc - now < dt.timedelta(days=config.renew_days))


def new_request(authority: Authority) -> tuple[PrivateKey, bytes]:
    """A fresh key and its PKCS#10 request (slow: key generation and a signature)."""
    key = generate(key_type_of(authority.key))
    name = x509.Name([x509.NameAttribute(
        NameOID.COMMON_NAME, f"{common_name(authority.certificate.subject)} OCSP Responder")])
    csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key,
                                                                         signature_hash(key))
    return key, csr.public_bytes(Encoding.DER)


def responder_profile(authority: Authority) -> Profile:
    """ocsp-signing, valid `ca.ocsp.responder_days`."""
    config = authority.config
    return dataclasses.replace(profile(config.profiles, PROFILE),
                               validity_days=config.ocsp.responder_days)


def issued(outcome: Outcome) -> x509.Certificate:
    if outcome.certificate is None:
        raise CAError(f"the policy for {PROFILE} did not issue the responder certificate: "
                      f"{outcome.why}")
    return outcome.certificate


def issue(authority: Authority, dsa: DSA, slow: Slow, csr: bytes) -> Deferred[x509.Certificate]:
    """The responder certificate for `csr`: signed on `slow`, recorded by the writer."""
    return submit(authority, dsa, slow, csr, responder_profile(authority), None,
                  Origin.OFFICER).addCallback(issued)
