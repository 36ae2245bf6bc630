"""revokeCert (RFC 8555 §7.6).

- The payload names the certificate (base64url DER) and optionally a
  CRLReason code (RFC 5280 §5.3.1). Subscribers may give unspecified (0),
  keyCompromise (1), affiliationChanged (3), superseded (4),
  cessationOfOperation (5) and privilegeWithdrawn (9); anything else
  (caCompromise, certificateHold: an officer's; removeFromCRL: no
  reason) is badRevocationReason.
- The certificate must be one this CA issued, byte for byte; else 404.
- Signed with a kid, by the account whose order issued it; signed with a
  jwk, by the certificate's own key (the JWK is its public key). Anyone
  else is unauthorized.
- A certificate revoked or on hold already is alreadyRevoked.
- It is revoked as `certdir ca revoke` revokes (`ca.revoke`): in one
  transaction with its removal from its holder's entry, recorded in the
  audit log as the account (`acme:<id>`) or the key (`acme-key`); OCSP
  answers revoked at once (it reads the status row), and new CRLs are
  made after the commit (`ca.crl.renew`); should they fail, the revocation
  stands and the next CRL lists it.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ca import crl
from ca import revoke as ca_revoke
from ca.acme.calls import Call, Reply
from ca.acme.jws import b64decode
from ca.acme.ops.order import certificate_order
from ca.acme.problems import AcmeProblem
from ca.errors import CAError
from ca.store import Store, serial_text
from directory.backend import Transaction
from directory.publisher import DirectoryWriter

log = logging.getLogger("certdir.acme")

REASONS: Mapping[int, x509.ReasonFlags] = {
    0: x509.ReasonFlags.unspecified,
    1: x509.ReasonFlags.key_compromise,
    3: x509.ReasonFlags.affiliation_changed,
    4: x509.ReasonFlags.superseded,
    5: x509.ReasonFlags.cessation_of_operation,
    9: x509.ReasonFlags.privilege_withdrawn,
}


def _spki(key: object) -> bytes:
    return key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)  # type: ignore[attr-defined,no-any-return]


def _always(store: Store, now: dt.datetime) -> bool:
    return True


async def revoke_certificate(call: Call) -> Reply:
    web = call.acme.web
    payload = call.signed().object()
    der = b64decode(payload.get("certificate"), "certificate")
    code = payload.get("reason", 0)
    why = REASONS.get(code) if isinstance(code, int) and not isinstance(code, bool) else None
    if why is None:
        raise AcmeProblem("badRevocationReason", f"reason {code!r} is not one a subscriber "
                          f"gives ({', '.join(map(str, REASONS))})")
    try:
        certificate = x509.load_der_x509_certificate(der)
    except ValueError:
        raise AcmeProblem("malformed", "certificate is not a DER certificate") from None
    serial = certificate.serial_number
    with web.dsa.backend.reading() as records:
        try:
            record = Store(records).certificate(serial)
        except CAError:
            record = None
        if record is None or record.der != der:
            raise AcmeProblem("malformed", "this certificate was not issued here", 404)
        if call.account is not None:
            certificate_order(call, records, serial)
        elif call.key is None or _spki(call.key.key) != _spki(certificate.public_key()):
            raise AcmeProblem("unauthorized", "signed neither by the ordering account nor by "
                              "the certificate's key", 403)
    if record.status != "valid":
        raise AcmeProblem("alreadyRevoked", f"the certificate is {record.status} already")
    actor = "acme-key" if call.account is None else f"acme:{call.account.id}"
    authority = web.authority

    def change(txn: Transaction) -> None:
        writer = DirectoryWriter(web.dsa, txn, web.dsa.parse_dn(authority.entry_dn))
        try:
            revoked = ca_revoke.revoke(authority, writer, serial, why, call.now)
        except CAError as e:
            raise AcmeProblem("alreadyRevoked", str(e)) from None
        web.audit(txn.records, actor, "ca.revoked", revoked.entry or revoked.subject,
                  {"serial": serial_text(serial), "reason": why.value}, call.now)

    await call.acme.write(change)
    log.info("ACME revoked %s (%s) for %s", serial_text(serial), why.value, actor)
    try:
        made = await crl.renew(authority, web.dsa, web.slow, _always)
    except CAError as e:
        log.error("revoked %s; the new CRLs could not be made now: %s", serial_text(serial), e)
    else:
        if made is not None:
            web.crls_published(made)
    return Reply(200)
