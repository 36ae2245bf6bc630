"""Installing the CRL of a CA above this one (`certdir ca install-crl`).

A subordinate's data directory cannot make its (possibly offline)
parent's CRLs, yet relying parties check every certificate of the path
(RFC 5280 §6.3), so the parent's CRLs are carried over and installed here.
No key is needed: nothing is signed.

- The CRL (PEM or DER) must be issued by a CA of this chain other than the
  signing CA (which makes its own, `certdir ca crl`) and its signature must
  verify with that CA's key (§6.3.3 (f)).
- It must carry a CRL number (§5.2.3) greater than that of the installed
  CRL of the same kind, full or delta (§5.2.4, deltaCRLIndicator), so an
  old CRL never replaces a newer one.
- It is recorded in `ca_issuer_crls` and published into that CA's entry:
  a full CRL as `certificateRevocationList;binary` and
  `authorityRevocationList;binary`, a delta as `deltaRevocationList;binary`.
  The web service then serves it at that CA's `<slug>.crl`
  (`<slug>-delta.crl`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ca.errors import CAError
from ca.publish import publish_issuer_crl
from ca.store import CRLRecord, Store
from directory.publisher import DirectoryWriter


@dataclass(frozen=True, slots=True)
class Installed:
    issuer: x509.Certificate
    crl: x509.CertificateRevocationList
    number: int
    delta: bool


def load_crl(data: bytes) -> x509.CertificateRevocationList:
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_crl(data)
        return x509.load_der_x509_crl(data)
    except ValueError:
        raise CAError("not a CRL (PEM or DER)") from None


def _issuer(chain: Sequence[x509.Certificate],
            crl: x509.CertificateRevocationList) -> x509.Certificate:
    if crl.issuer == chain[0].subject:
        raise CAError("this is the signing CA's own CRL; it makes its own (`certdir ca crl`)")
    issuer = next((c for c in chain[1:] if c.subject == crl.issuer), None)
    if issuer is None:
        raise CAError(f"the CRL is issued by {crl.issuer.rfc4514_string()}, "
                      "not by a CA above this one")
    if not crl.is_signature_valid(issuer.public_key()):  # type: ignore[arg-type]
        raise CAError(f"the CRL's signature does not verify with the key of "
                      f"{issuer.subject.rfc4514_string()}")
    return issuer


def _extension(crl: x509.CertificateRevocationList,
               kind: type[x509.CRLNumber] | type[x509.DeltaCRLIndicator]) -> object | None:
    try:
        return crl.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def install(chain: Sequence[x509.Certificate], suffix: str, writer: DirectoryWriter,
            data: bytes) -> Installed:
    """Check, record and publish a CRL of a CA above the signing CA (`chain[0]`)."""
    crl = load_crl(data)
    issuer = _issuer(chain, crl)
    number = _extension(crl, x509.CRLNumber)
    if not isinstance(number, x509.CRLNumber):
        raise CAError("the CRL has no CRL number (RFC 5280 §5.2.3)")
    if crl.next_update_utc is None:
        raise CAError("the CRL has no nextUpdate (RFC 5280 §5.1.2.5)")
    delta = _extension(crl, x509.DeltaCRLIndicator) is not None
    name = issuer.subject.rfc4514_string()
    store = Store(writer.records)
    newest = store.newest_issuer_crl(name, delta)
    if newest is not None and number.crl_number <= newest:
        raise CAError(f"CRL number {number.crl_number} is not newer than the installed "
                      f"{'delta ' if delta else ''}CRL number {newest}")
    der = crl.public_bytes(Encoding.DER)
    store.record_issuer_crl(name, CRLRecord(number.crl_number, crl.last_update_utc,
                                            crl.next_update_utc, der), delta)
    publish_issuer_crl(writer, issuer, suffix, der, delta)
    return Installed(issuer, crl, number.crl_number, delta)
