"""Issuance and CRLs in two steps (issue 9, part 5), on a real data
directory (`certdir init`), in real database transactions.

- The commit step of an issue gets the certificate already signed: it
  signs nothing (`tests.crypto_guard`).
- The holder entry deleted, or its mail changed, between prepare and
  commit: the issue is refused and nothing is recorded (no request, no
  certificate, nothing published).
- A CRL number taken by another CRL while ours was being signed: ours is
  read and signed again with the next number; numbers strictly increase
  and the CA entry holds the newest CRL. The same through the server's
  path (`ca.crl.renew`: signed on a thread pool, committed by the single
  writer).
- The server's path for a request (`ca.issue.submit`: read on the reactor,
  signed on a pool, committed by the writer) queues a requester's request
  for an officer; `ca.issue.issue_request` issues and publishes it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import pytest_twisted
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from twisted.internet import reactor as installed_reactor

from ca import crl
from ca.errors import CAError
from ca.issue import Prepared, commit, holder_entry, issue_request, prepare, submit
from ca.policy import Decision, Origin
from ca.pool import on_pool
from ca.profiles import profile
from ca.store import Store
from certdir.directory_open import open_directory
from directory.dsa import DSA
from directory.publisher import DirectoryWriter
from tests.crypto_guard import no_slow_crypto
from tests.pki import test_revocation
from tests.pki.test_revocation import ALICE, CA, NOW

# The asyncio reactor pytest-twisted installed; its interfaces are not declared.
reactor: Any = installed_reactor
# The same fixture: a data directory from `certdir init` with alice in it.
ca = test_revocation.ca


def _request() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    return x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).sign(
        key, hashes.SHA256()).public_bytes(Encoding.DER)


def _prepared(ca: CA) -> Prepared:
    chosen = profile(ca.authority.config.profiles, "smime-user")
    return prepare(ca.authority, _request(), chosen, holder_entry(ca.dsa, ALICE),
                   Origin.OFFICER, NOW)


@contextmanager
def _served(ca: CA) -> Iterator[DSA]:
    """The directory as the server has it: a single writer on the test's reactor."""
    dsa = open_directory(ca.config, reactor)
    try:
        yield dsa
    finally:
        assert dsa.writer is not None
        dsa.writer.stop()
        dsa.backend.close()


def _records(ca: CA) -> tuple[int, int]:
    with ca.dsa.backend.reading() as records:
        (certificates,) = records.rows("SELECT count(*) FROM ca_certificates")[0]
        (requests,) = records.rows("SELECT count(*) FROM ca_requests")[0]
    return certificates, requests


def test_commit_gets_the_certificate_signed(ca: CA, monkeypatch: pytest.MonkeyPatch) -> None:
    prepared = _prepared(ca)
    with no_slow_crypto(monkeypatch):
        outcome = ca.run(lambda w: commit(w, prepared, NOW))
    assert outcome.certificate is prepared.certificate  # type: ignore[attr-defined]
    assert ca.entry_certificates() == {
        prepared.certificate.public_bytes(Encoding.DER)}


def _delete(writer: DirectoryWriter) -> None:
    writer.txn.delete(writer.dn(ALICE))


def _new_mail(writer: DirectoryWriter) -> None:
    writer.replace_values(writer.dn(ALICE), {"mail": [b"alice@elsewhere.example"]})


@pytest.mark.parametrize("change, message", [
    (_delete, "was deleted or renamed while its certificate was being prepared"),
    (_new_mail, "changed while its certificate was being prepared"),
])
def test_holder_changed_between_prepare_and_commit_issues_nothing(
        ca: CA, change: object, message: str) -> None:
    prepared = _prepared(ca)
    before = _records(ca)
    ca.run(change)
    with pytest.raises(CAError, match=message):
        ca.run(lambda w: commit(w, prepared, NOW))
    assert _records(ca) == before


def _next_crl_number(ca: CA) -> int:
    with ca.dsa.backend.reading() as records:
        return Store(records).next_crl_number()


def _race_crl_numbers(ca: CA, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """While the first CRL is being signed, another process (a `certdir ca crl`)
    makes its CRLs and takes the number; the numbers signed are listed."""
    signed: list[int] = []
    real_sign = crl.sign

    def racing(authority: object, basis: crl.Basis) -> crl.CRLs:
        signed.append(basis.number)
        if len(signed) == 1:
            crl.generate(ca.authority, ca.dsa, NOW)
        return real_sign(authority, basis)  # type: ignore[arg-type]

    monkeypatch.setattr(crl, "sign", racing)
    return signed


def test_crl_number_taken_while_signing_is_signed_again(
        ca: CA, monkeypatch: pytest.MonkeyPatch) -> None:
    first = _next_crl_number(ca)
    signed = _race_crl_numbers(ca, monkeypatch)
    made = crl.generate(ca.authority, ca.dsa, NOW + dt.timedelta(minutes=1))
    assert signed == [first, first, first + 2]
    assert made.full.extensions.get_extension_for_class(
        x509.CRLNumber).value.crl_number == first + 2
    with ca.dsa.backend.reading() as records:
        numbers = [number for (number,) in records.rows(
            "SELECT number FROM ca_crls WHERE number >= ? ORDER BY this_update, number",
            (first,))]
    assert numbers == [first, first + 1, first + 2, first + 3]
    ca.dsa.refresh()
    entry = ca.dsa.backend.get(ca.dsa.parse_dn(ca.authority.entry_dn))
    assert entry is not None
    assert entry.get("certificaterevocationlist") == (made.full.public_bytes(Encoding.DER),)


@pytest_twisted.ensureDeferred
async def test_server_crl_renewal_signs_again_when_the_number_is_taken(
        ca: CA, monkeypatch: pytest.MonkeyPatch) -> None:
    first = _next_crl_number(ca)
    signed = _race_crl_numbers(ca, monkeypatch)
    with _served(ca) as served:
        made = await crl.renew(ca.authority, served, on_pool(reactor, reactor.getThreadPool()),
                               lambda store, now: True)
    assert made is not None
    assert (signed, made.number) == ([first, first, first + 2], first + 2)


@pytest_twisted.ensureDeferred
async def test_server_queues_a_request_and_an_officer_issues_it(ca: CA) -> None:
    chosen = profile(ca.authority.config.profiles, "smime-user")  # policy: officer
    with _served(ca) as served:
        slow = on_pool(reactor, reactor.getThreadPool())
        queued = await submit(ca.authority, served, slow, _request(), chosen, ALICE,
                              Origin.REQUESTER)
        assert (queued.decision, queued.certificate) == (Decision.PENDING, None)
        certificate = await issue_request(ca.authority, served, slow, queued.request,
                                          "officer")
    assert ca.entry_certificates() == {certificate.public_bytes(Encoding.DER)}
