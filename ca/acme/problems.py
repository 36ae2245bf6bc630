"""ACME problem documents (RFC 8555 §6.7, RFC 7807).

- Every refusal is one `AcmeProblem(kind, detail, status, subproblems)`;
  `kind` is the last part of the urn (`"badNonce"` for
  `urn:ietf:params:acme:error:badNonce`), and only the kinds of RFC 8555
  §6.7 (and RFC 8737's, which adds none) are accepted, so a typo fails where
  it is raised, not at a client.
- The web face turns it into an `application/problem+json` response, once
  (`document`, `body`); no resource writes an error body by hand.
- `subproblems` (§6.7.1) name the identifier each refers to; a subproblem
  has no status of its own (the top-level one is the response's).
- `fields` adds members a problem type defines (`algorithms` of
  badSignatureAlgorithm, §6.2); `headers` adds response headers
  (Retry-After of rateLimited, Location of an existing account's conflict).
- `detail` is for humans and is shown as is; it never holds a traceback.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

URN_PREFIX = "urn:ietf:params:acme:error:"

# RFC 8555 §6.7: every kind, with its description in the RFC.
KINDS: Mapping[str, str] = {
    "accountDoesNotExist": "The request specified an account that does not exist",
    "alreadyRevoked": "The request specified a certificate to be revoked that has "
                      "already been revoked",
    "badCSR": "The CSR is unacceptable (e.g., due to a short key)",
    "badNonce": "The client sent an unacceptable anti-replay nonce",
    "badPublicKey": "The JWS was signed by a public key the server does not support",
    "badRevocationReason": "The revocation reason provided is not allowed by the server",
    "badSignatureAlgorithm": "The JWS was signed with an algorithm the server does "
                             "not support",
    "caa": "Certification Authority Authorization (CAA) records forbid the CA from "
           "issuing a certificate",
    "compound": "Specific error conditions are indicated in the \"subproblems\" array",
    "connection": "The server could not connect to validation target",
    "dns": "There was a problem with a DNS query during identifier validation",
    "externalAccountRequired": "The request must include a value for the "
                               "\"externalAccountBinding\" field",
    "incorrectResponse": "Response received didn't match the challenge's requirements",
    "invalidContact": "A contact URL for an account was invalid",
    "malformed": "The request message was malformed",
    "orderNotReady": "The request attempted to finalize an order that is not ready "
                     "to be finalized",
    "rateLimited": "The request exceeds a rate limit",
    "rejectedIdentifier": "The server will not issue certificates for the identifier",
    "serverInternal": "The server experienced an internal error",
    "tls": "The server received a TLS error during validation",
    "unauthorized": "The client lacks sufficient authorization",
    "unsupportedContact": "A contact URL for an account used an unsupported protocol "
                          "scheme",
    "unsupportedIdentifier": "An identifier is of an unsupported type",
    "userActionRequired": "Visit the \"instance\" URL and take actions specified there",
}

CONTENT_TYPE = b"application/problem+json"


class AcmeProblem(Exception):
    """An ACME request refused with an RFC 8555 problem document."""

    def __init__(self, kind: str, detail: str, status: int = 400,
                 subproblems: tuple[AcmeProblem, ...] = (),
                 identifier: Mapping[str, str] | None = None,
                 headers: Mapping[bytes, bytes] | None = None,
                 fields: Mapping[str, Any] | None = None) -> None:
        if kind not in KINDS:
            raise ValueError(f"no ACME problem type {kind!r} (RFC 8555 §6.7)")
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail
        self.status = status
        self.subproblems = subproblems
        self.identifier = identifier
        self.headers: Mapping[bytes, bytes] = headers or {}
        self.fields: Mapping[str, Any] = fields or {}

    @property
    def type(self) -> str:
        return URN_PREFIX + self.kind

    def document(self) -> dict[str, Any]:
        """The problem document as a JSON object (RFC 7807 §3.1)."""
        doc: dict[str, Any] = {**self.fields, "type": self.type, "detail": self.detail}
        if self.identifier is not None:
            doc["identifier"] = dict(self.identifier)
        else:
            doc["status"] = self.status
        if self.subproblems:
            doc["subproblems"] = [sub.document() for sub in self.subproblems]
        return doc

    def body(self) -> bytes:
        return json.dumps(self.document()).encode()
