"""The public folder (`<data dir>/public/`), like Certificate Server's shared folder.

- Every CA certificate of the chain as `<slug>.crt` (DER, what AIA
  caIssuers URLs serve, RFC 5280 §4.2.2.1) and `<slug>.pem`; `chain.pem`
  (the signing CA first, the root last); `ca.pem`, the root, which TLS
  clients of the directory trust.
- The signing CA's CRLs as `<slug>.crl` and `<slug>-delta.crl` (DER, what
  the CRL distribution point URLs serve) and the same in PEM
  (`.crl.pem`), which `openssl verify -CRLfile` reads; the CRLs of CAs
  above it under their own slugs once installed (`ca install-crl`).
- Files are replaced atomically (written aside, then renamed), so a reader
  never sees half a certificate.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ca.authority import slug


def _write(path: Path, data: bytes) -> None:
    aside = path.with_name(path.name + ".new")
    aside.write_bytes(data)
    os.replace(aside, path)


def write_chain(folder: Path, chain: Sequence[x509.Certificate]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for certificate in chain:
        _write(folder / f"{slug(certificate)}.crt", certificate.public_bytes(Encoding.DER))
        _write(folder / f"{slug(certificate)}.pem", certificate.public_bytes(Encoding.PEM))
    _write(folder / "chain.pem", b"".join(c.public_bytes(Encoding.PEM) for c in chain))
    _write(folder / "ca.pem", chain[-1].public_bytes(Encoding.PEM))


def write_crl(folder: Path, stem: str, crl: x509.CertificateRevocationList) -> None:
    _write(folder / f"{stem}.crl", crl.public_bytes(Encoding.DER))
    _write(folder / f"{stem}.crl.pem", crl.public_bytes(Encoding.PEM))


def write_crls(folder: Path, issuer: x509.Certificate, full: x509.CertificateRevocationList,
               delta: x509.CertificateRevocationList) -> None:
    name = slug(issuer)
    for stem, crl in ((name, full), (f"{name}-delta", delta)):
        write_crl(folder, stem, crl)
