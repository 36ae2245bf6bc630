"""A guard for the rule that the writer's transaction does no cryptography
(DESIGN.md, "Concurrency"; issue 9, part 5): while it is on, signing a
certificate, CSR or CRL, generating a key or sealing a PKCS#12 raises
`SlowWorkInTransaction`. Tests turn it on around a commit step only."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from ca import keys


class SlowWorkInTransaction(AssertionError):
    pass


def _refuse(what: str) -> object:
    def refused(*args: object, **kwargs: object) -> None:
        raise SlowWorkInTransaction(f"{what} inside the write transaction")

    return refused


GUARDED: tuple[tuple[object, str, str], ...] = (
    (x509.CertificateBuilder, "sign", "signing a certificate"),
    (x509.CertificateRevocationListBuilder, "sign", "signing a CRL"),
    (x509.CertificateSigningRequestBuilder, "sign", "signing a CSR"),
    (pkcs12, "serialize_key_and_certificates", "sealing a PKCS#12"),
    (keys, "generate", "generating a key"),
    (rsa, "generate_private_key", "generating an RSA key"),
    (ec, "generate_private_key", "generating an EC key"),
)


@contextmanager
def no_slow_crypto(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with monkeypatch.context() as patched:
        for owner, name, what in GUARDED:
            patched.setattr(owner, name, _refuse(what))
        yield
