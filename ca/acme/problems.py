"""ACME problem documents (RFC 8555 §6.7): the one error validation raises.

- `kind` is the last part of the urn (`"incorrectResponse"` for
  `urn:ietf:params:acme:error:incorrectResponse`).
"""

from __future__ import annotations


class AcmeProblem(Exception):
    """An ACME request or validation refused with an RFC 8555 problem type."""

    def __init__(self, kind: str, detail: str, status: int = 400,
                 subproblems: tuple[AcmeProblem, ...] = ()) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail
        self.status = status
        self.subproblems = subproblems
