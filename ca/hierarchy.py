"""A CA's place in the hierarchy: root, or subordinate at any depth.

- `create_root` makes a self-signed root with the configured name, key
  type and validity (RFC 5280 §4.2.1.9: a CA, no path length limit).
- `request_sub` makes the key of a subordinate CA and a PKCS#10 request
  for it (signed with SHA-256 or stronger); the key waits, encrypted, in
  `ca/key.pem` for the answer. Nothing is signed yet.
- `sign_sub` is the parent's side (any certdir CA, even one that never
  runs a server): the sub-ca profile, with the path length asked for,
  signed before the transaction that records it (`ca.issue`). It refuses,
  before anything is signed or recorded, when a pathLenConstraint of this
  CA or of any CA above it leaves no room for a subordinate, or less room
  than the path length asked for (RFC 5280 §4.2.1.9; see ca.path_length).
- `install_sub` takes the parent's answer (the new CA certificate, then
  the parent's chain, PEM) and installs it after checking that it certifies
  the waiting key, that every certificate is signed by the next and that
  the chain ends in a self-signed root.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ca.authority import Authority, CAFiles, issuer_urls
from ca.builder import root_certificate
from ca.config import CAConfig
from ca.errors import CAError
from ca.issue import Prepared, prepare
from ca.keys import decrypt_private_key, encrypt_private_key, generate, signature_hash
from ca.names import ca_subject
from ca.path_length import room
from ca.policy import Origin
from ca.profiles import profile
from directory.files import write_private


def _pem(certificates: Sequence[x509.Certificate]) -> bytes:
    return b"".join(c.public_bytes(Encoding.PEM) for c in certificates)


def create_root(config: CAConfig, data_dir: Path, suffix: str, passphrase: bytes) -> Authority:
    """A new root CA's key (written encrypted) and self-signed certificate,
    unlocked: the key in hand is not derived again from its file."""
    files = CAFiles.of(data_dir)
    if files.chain.exists() or files.key.exists():
        raise CAError(f"{files.folder} already holds a CA; not replacing it")
    key = generate(config.key_type)
    name = ca_subject(config.name)
    certificate = root_certificate(name, key, config.validity_days,
                                   issuer_urls(config, name, suffix))
    write_private(files.key, encrypt_private_key(key, passphrase))
    files.certificate.write_bytes(_pem([certificate]))
    files.chain.write_bytes(_pem([certificate]))
    return Authority(config, suffix, (certificate,), key)


def request_sub(config: CAConfig, data_dir: Path, passphrase: bytes) -> bytes:
    files = CAFiles.of(data_dir)
    if files.chain.exists() or files.key.exists():
        raise CAError(f"{files.folder} already holds a CA or a pending request")
    key = generate(config.key_type)
    csr = (x509.CertificateSigningRequestBuilder().subject_name(ca_subject(config.name))
           .sign(key, signature_hash(key)))
    write_private(files.key, encrypt_private_key(key, passphrase))
    pem = csr.public_bytes(Encoding.PEM)
    files.request.write_bytes(pem)
    return pem


def sign_sub(authority: Authority, csr: bytes, path_length: int | None,
             now: dt.datetime) -> Prepared:
    """The subordinate's certificate, signed (the sub-ca profile, as an
    officer); `ca.issue.commit` records it, `answer` makes the reply."""
    chosen = profile(authority.config.profiles, "sub-ca")
    if path_length is not None:
        chosen = dataclasses.replace(chosen, path_length=path_length)
    source = "--path-length" if path_length is not None else "the sub-ca profile's path_length"
    _check_room(authority, chosen.path_length, source)
    return prepare(authority, csr, chosen, None, Origin.OFFICER, now)


def answer(authority: Authority, certificate: x509.Certificate) -> bytes:
    """The answer for the subordinate: its certificate, then this CA's chain."""
    return _pem([certificate, *authority.chain])


def _check_room(authority: Authority, wanted: int | None, source: str) -> None:
    allowed = room(authority.chain)
    if allowed.limit is None or allowed.bound_by is None:
        return
    this = authority.certificate.subject.rfc4514_string()
    binding = allowed.bound_by.subject.rfc4514_string()
    if allowed.limit < 0:
        where = (", so no CA may be signed below it" if allowed.bound_by is authority.certificate
                 else f", which leaves no room for a CA below {this}")
        raise CAError(f"cannot sign a subordinate CA: {binding} has pathLenConstraint "
                      f"{allowed.constraint}{where} (RFC 5280 §4.2.1.9)")
    if wanted is not None and wanted > allowed.limit:
        raise CAError(f"cannot sign a subordinate CA with path length {wanted} ({source}): "
                      f"pathLenConstraint {allowed.constraint} of {binding} allows at most "
                      f"{allowed.limit} here (RFC 5280 §4.2.1.9)")


def install_sub(config: CAConfig, data_dir: Path, suffix: str, answer: bytes,
                passphrase: bytes) -> Authority:
    """Install the parent's answer to this CA's pending request, once it
    certifies the pending key and its chain verifies; the CA, unlocked."""
    files = CAFiles.of(data_dir)
    if not files.request.exists():
        raise CAError(f"no pending CA request in {files.folder}; run `certdir ca request-sub`")
    try:
        chain = x509.load_pem_x509_certificates(answer)
    except ValueError:
        raise CAError("the answer is not a PEM certificate chain") from None
    key = decrypt_private_key(files.key.read_bytes(), passphrase, "the CA key")
    if _spki(chain[0].public_key()) != _spki(key.public_key()):
        raise CAError("the answer does not certify this CA's key (wrong answer file?)")
    for child, parent in itertools.pairwise(chain):
        _check_signed(child, parent)
    _check_signed(chain[-1], chain[-1])
    files.certificate.write_bytes(_pem(chain[:1]))
    files.chain.write_bytes(_pem(chain))
    files.request.unlink()
    return Authority(config, suffix, tuple(chain), key)


def _spki(key: object) -> bytes:
    return key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)  # type: ignore[attr-defined, no-any-return]


def _check_signed(child: x509.Certificate, parent: x509.Certificate) -> None:
    try:
        child.verify_directly_issued_by(parent)
    except (ValueError, TypeError, InvalidSignature):
        what = "is not self-signed" if child is parent else (
            f"is not signed by {parent.subject.rfc4514_string()}")
        raise CAError(f"{child.subject.rfc4514_string()} {what}; the chain is broken") \
            from None
