"""Certificate requests over LDAP: an extended operation (RFC 4511 §4.12).

requestName is CERTIFICATE_REQUEST, an OID of the UUID arc (ITU-T X.667,
`2.25.<uuid>`), which needs no registration. Values, BER:

    CertificateRequestValue ::= SEQUENCE {
        profile   OCTET STRING,          -- e.g. "smime-user"
        csr       OCTET STRING,          -- PKCS#10, DER or PEM
        entry [0] LDAPDN OPTIONAL }      -- the holder; only the root DN names another
    CertificateResponseValue ::= SEQUENCE {
        status      ENUMERATED { issued(0), pending(1), denied(2) },
        request     INTEGER,             -- the request's number in the queue
        certificate [0] OCTET STRING OPTIONAL }  -- DER, when issued

- Anonymous clients are refused (insufficientAccessRights). A user asks for
  their own entry, as a requester: the profile's policy module decides
  (issue now, queue for an officer, refuse). The root DN acts as an officer.
- A request the CA refuses before recording it (bad or weakly signed CSR,
  unknown profile, subject not in the directory...) gets unwillingToPerform
  with the CA's message; a malformed value gets protocolError.
- The certificate is signed on a thread pool first; the request, the
  decision and the published certificate then commit in one transaction
  through the directory's single writer (`ca.issue`).
"""

from __future__ import annotations

from cryptography.hazmat.primitives.serialization import Encoding
from twisted.python.failure import Failure

from ca.authority import Authority
from ca.errors import CAError
from ca.issue import Outcome, submit
from ca.policy import Decision, Origin
from ca.pool import Slow
from ca.profiles import profile
from directory.operation import Operation, Reply
from directory.operation import Outcome as Replies
from directory.ops.extended import ExtendedHandler
from directory.protocol import ber
from directory.protocol.messages import SUCCESS, ExtendedResponse
from directory.protocol.results import LDAPError, ProtocolError, ResultCode

CERTIFICATE_REQUEST = "2.25.26955905094695202683368976401722688228"
STATUS = {Decision.ISSUE: 0, Decision.PENDING: 1, Decision.DENY: 2}


def _fields(value: bytes | None) -> tuple[str, bytes, str | None]:
    if value is None:
        raise LDAPError(ResultCode.PROTOCOL_ERROR, "a certificate request needs a value")
    try:
        start, end = ber.expect(value, 0, len(value), ber.SEQUENCE, "CertificateRequestValue")
        parts = [(tag, value[s:e]) for tag, s, e in ber.children(value, start, end)]
    except ProtocolError as e:
        raise LDAPError(ResultCode.PROTOCOL_ERROR, f"bad certificate request: {e}") from None
    if len(parts) not in (2, 3) or parts[0][0] != ber.OCTET_STRING \
            or parts[1][0] != ber.OCTET_STRING or (len(parts) == 3 and parts[2][0] != 0x80):
        raise LDAPError(ResultCode.PROTOCOL_ERROR,
                        "bad certificate request: expected profile, csr and optional [0] entry")
    entry = parts[2][1].decode(errors="replace") if len(parts) == 3 else None
    return parts[0][1].decode(errors="replace"), parts[1][1], entry


def _response(outcome: Outcome) -> bytes:
    parts = [ber.encode_int(STATUS[outcome.decision], ber.ENUMERATED),
             ber.encode_int(outcome.request)]
    if outcome.certificate is not None:
        parts.append(ber.octets(outcome.certificate.public_bytes(Encoding.DER), 0x80))
    return ber.sequence(parts)


def handler(authority: Authority, slow: Slow) -> ExtendedHandler:
    def certificate_request(op: Operation, value: bytes | None) -> Replies:
        session = op.session
        if session.anonymous:
            raise LDAPError(ResultCode.INSUFFICIENT_ACCESS_RIGHTS,
                            "bind before requesting a certificate")
        profile_name, csr, entry = _fields(value)
        if entry is not None and not session.is_root:
            raise LDAPError(ResultCode.INSUFFICIENT_ACCESS_RIGHTS,
                            "you may request certificates only for your own entry")
        holder = entry if session.is_root else str(session.bound)
        origin = Origin.OFFICER if session.is_root else Origin.REQUESTER
        dsa = op.dsa
        op.detail = f'profile={profile_name} entry="{holder}"'

        def refused(failure: Failure) -> list[Reply]:
            failure.trap(CAError)
            raise LDAPError(ResultCode.UNWILLING_TO_PERFORM, str(failure.value))

        try:
            chosen = profile(authority.config.profiles, profile_name)
        except CAError as e:
            raise LDAPError(ResultCode.UNWILLING_TO_PERFORM, str(e)) from None
        return submit(authority, dsa, slow, csr, chosen, holder, origin).addCallbacks(
            lambda outcome: [Reply(ExtendedResponse(SUCCESS, CERTIFICATE_REQUEST,
                                                    _response(outcome)))], refused)

    return certificate_request
