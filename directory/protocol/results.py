"""LDAP result codes and the two error types (RFC 4511 §4.1.9, Appendix A).

- `ResultCode` lists every code RFC 4511 Appendix A assigns, plus the codes of
  the extensions certdir implements (RFC 3909 Cancel, RFC 4528 assertion,
  RFC 4370 proxied authorization).
- `LDAPError` is the one error an operation raises; the server translates it
  into the operation's response (code, matchedDN, diagnosticMessage).
- `ProtocolError` is raised by the codec for undecodable input; the server
  answers it with a Notice of Disconnection (RFC 4511 §4.4.1) and closes.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from directory.protocol.messages import Control


class ResultCode(enum.IntEnum):
    SUCCESS = 0
    OPERATIONS_ERROR = 1
    PROTOCOL_ERROR = 2
    TIME_LIMIT_EXCEEDED = 3
    SIZE_LIMIT_EXCEEDED = 4
    COMPARE_FALSE = 5
    COMPARE_TRUE = 6
    AUTH_METHOD_NOT_SUPPORTED = 7
    STRONGER_AUTH_REQUIRED = 8
    REFERRAL = 10
    ADMIN_LIMIT_EXCEEDED = 11
    UNAVAILABLE_CRITICAL_EXTENSION = 12
    CONFIDENTIALITY_REQUIRED = 13
    SASL_BIND_IN_PROGRESS = 14
    NO_SUCH_ATTRIBUTE = 16
    UNDEFINED_ATTRIBUTE_TYPE = 17
    INAPPROPRIATE_MATCHING = 18
    CONSTRAINT_VIOLATION = 19
    ATTRIBUTE_OR_VALUE_EXISTS = 20
    INVALID_ATTRIBUTE_SYNTAX = 21
    NO_SUCH_OBJECT = 32
    ALIAS_PROBLEM = 33
    INVALID_DN_SYNTAX = 34
    ALIAS_DEREFERENCING_PROBLEM = 36
    INAPPROPRIATE_AUTHENTICATION = 48
    INVALID_CREDENTIALS = 49
    INSUFFICIENT_ACCESS_RIGHTS = 50
    BUSY = 51
    UNAVAILABLE = 52
    UNWILLING_TO_PERFORM = 53
    LOOP_DETECT = 54
    NAMING_VIOLATION = 64
    OBJECT_CLASS_VIOLATION = 65
    NOT_ALLOWED_ON_NON_LEAF = 66
    NOT_ALLOWED_ON_RDN = 67
    ENTRY_ALREADY_EXISTS = 68
    OBJECT_CLASS_MODS_PROHIBITED = 69
    AFFECTS_MULTIPLE_DSAS = 71
    OTHER = 80
    CANCELED = 118
    NO_SUCH_OPERATION = 119
    TOO_LATE = 120
    CANNOT_CANCEL = 121
    ASSERTION_FAILED = 122
    AUTHORIZATION_DENIED = 123
    E_SYNC_REFRESH_REQUIRED = 4096  # RFC 4533 §2.6


class LDAPError(Exception):
    """An operation failed with `code`; `matched` is the matchedDN string; `controls`
    go on the failure response (the password policy's, RFC draft-behera)."""

    def __init__(
        self,
        code: ResultCode,
        message: str = "",
        matched: str = "",
        referrals: tuple[str, ...] = (),
        controls: tuple[Control, ...] = (),
    ) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message
        self.matched = matched
        self.referrals = referrals
        self.controls = controls

    def __str__(self) -> str:
        return f"{self.code.name.lower()} ({int(self.code)}): {self.message}"


class ProtocolError(Exception):
    """The peer sent bytes that are not a valid LDAPMessage."""

    def __init__(self, message: str, code: ResultCode = ResultCode.PROTOCOL_ERROR) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
