"""Test helpers: pkilint and `openssl verify` over certificates the CA builds.

- `lint(cert, "rfc5280")` runs pkilint's RFC 5280 certificate linter;
  `lint(cert, "smime")` runs the CA/Browser Forum S/MIME BR linter with the
  certificate type detected from its reserved policy OID (mailbox-validated
  strict for the built-in S/MIME profiles), refusing a certificate whose type
  cannot be detected.
- Findings at severity ERROR or FATAL are returned as "validator: finding"
  strings; `warnings` gives the WARNING ones separately.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from pkilint import loader  # type: ignore[import-untyped]
from pkilint.cabf import smime  # type: ignore[import-untyped]
from pkilint.pkix import certificate, extension, name  # type: ignore[import-untyped]
from pkilint.validation import ValidationFindingSeverity  # type: ignore[import-untyped]


def _rfc5280_validator() -> Any:
    return certificate.create_pkix_certificate_validator_container(
        certificate.create_decoding_validators(
            name.ATTRIBUTE_TYPE_MAPPINGS, extension.EXTENSION_MAPPINGS
        ),
        [
            certificate.create_issuer_validator_container([]),
            certificate.create_validity_validator_container(),
            certificate.create_subject_validator_container([]),
            certificate.create_extensions_validator_container([]),
            certificate.create_spki_validator_container([]),
        ],
    )


def _smime_validator(document: Any) -> Any:
    detected = smime.determine_validation_level_and_generation(document)
    if detected is None:
        raise AssertionError("no CA/B Forum S/MIME policy OID: cannot tell the certificate type")
    level, generation = detected
    return certificate.create_pkix_certificate_validator_container(
        smime.create_decoding_validators(),
        smime.create_subscriber_validators(level, generation),
    )


def _findings(cert: x509.Certificate, kind: str) -> Iterable[tuple[ValidationFindingSeverity, str]]:
    document = loader.RFC5280CertificateDocumentLoader().load_der_document(
        cert.public_bytes(Encoding.DER), "certificate"
    )
    validator = _rfc5280_validator() if kind == "rfc5280" else _smime_validator(document)
    for result in validator.validate(document.root):
        for description in result.finding_descriptions:
            yield description.finding.severity, f"{result.validator}: {description}"


def lint(cert: x509.Certificate, kind: str) -> list[str]:
    """pkilint findings at ERROR or worse; kind is "rfc5280" or "smime"."""
    assert kind in {"rfc5280", "smime"}, kind
    return [text for severity, text in _findings(cert, kind)
            if severity <= ValidationFindingSeverity.ERROR]


def warnings(cert: x509.Certificate, kind: str) -> list[str]:
    return [text for severity, text in _findings(cert, kind)
            if severity == ValidationFindingSeverity.WARNING]


def openssl_verify(
    leaf_pem_path: Path, chain: Sequence[Path], crl: Path | None = None
) -> tuple[int, str]:
    """`openssl verify -x509_strict` of a leaf; chain is (issuing CAs..., root).

    The root is the one trust anchor (-CAfile); the CAs below it are
    untrusted intermediates, so their signatures are checked too.
    """
    *intermediates, root = chain
    command = ["openssl", "verify", "-x509_strict", "-CAfile", str(root)]
    for path in intermediates:
        command += ["-untrusted", str(path)]
    if crl is not None:
        command += ["-crl_check_all", "-CRLfile", str(crl)]
    done = subprocess.run(
        [*command, str(leaf_pem_path)], capture_output=True, text=True, check=False
    )
    return done.returncode, done.stdout + done.stderr
