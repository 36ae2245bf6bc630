"""Every RFC 4511 protocol data unit as an immutable dataclass: frozen, or
with `Final` fields and its own `__init__` for those made for every request
or entry (mypyc compiles that `__init__`; see DESIGN.md, "mypyc").

- An `LDAPMessage` is a message ID, one protocol operation and its controls
  (RFC 4511 §4.1.1, §4.1.11).
- DNs, attribute descriptions and OIDs are kept as the strings that travel on
  the wire (LDAPDN, AttributeDescription, LDAPOID are UTF-8 strings); they are
  parsed into value objects where the schema is known, in the operations.
- Attribute values are bytes: RFC 4511 §4.1.6 makes every value an OCTET
  STRING whose meaning depends on the attribute's syntax.
- Fields are tuples, never lists, so messages are hashable and immutable.

Encoding and decoding live in `codec.py`; this module only names things.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final, TypeAlias

from directory.protocol.filter import Filter
from directory.protocol.results import ResultCode

Values: TypeAlias = tuple[bytes, ...]
Attributes: TypeAlias = tuple[tuple[str, Values], ...]

NOTICE_OF_DISCONNECTION = "1.3.6.1.4.1.1466.20036"
START_TLS = "1.3.6.1.4.1.1466.20037"
MAX_INT = 2**31 - 1  # RFC 4511 §4.1.1 maxInt


class Scope(enum.IntEnum):
    BASE = 0
    ONE = 1
    SUB = 2
    CHILDREN = 3  # "subordinates", draft-sermersheim-ldap-subordinate-scope


class Deref(enum.IntEnum):
    NEVER = 0
    IN_SEARCHING = 1
    FINDING = 2
    ALWAYS = 3


class ModOp(enum.IntEnum):
    ADD = 0
    DELETE = 1
    REPLACE = 2
    INCREMENT = 3  # RFC 4525


@dataclass(frozen=True, slots=True)
class Control:
    oid: str
    critical: bool = False
    value: bytes | None = None


@dataclass(init=False, unsafe_hash=True, slots=True)
class Result:
    code: Final[ResultCode]
    matched: Final[str]
    message: Final[str]
    referrals: Final[tuple[str, ...]]

    def __init__(
        self,
        code: ResultCode = ResultCode.SUCCESS,
        matched: str = "",
        message: str = "",
        referrals: tuple[str, ...] = (),
    ) -> None:
        self.code = code
        self.matched = matched
        self.message = message
        self.referrals = referrals


SUCCESS = Result()


@dataclass(frozen=True, slots=True)
class BindRequest:
    version: int
    name: str
    password: bytes | None = None  # simple authentication
    mechanism: str | None = None  # SASL
    credentials: bytes | None = None
    # AuthenticationChoice is extensible (RFC 4511 §4.2): the tag of a choice
    # this codec does not know, with its contents in `credentials`.
    other_method: int | None = None


@dataclass(frozen=True, slots=True)
class UnbindRequest:
    pass


@dataclass(init=False, unsafe_hash=True, slots=True)
class SearchRequest:
    base: Final[str]
    scope: Final[Scope]
    deref: Final[Deref]
    size_limit: Final[int]
    time_limit: Final[int]
    types_only: Final[bool]
    filter: Final[Filter]
    attributes: Final[tuple[str, ...]]

    def __init__(
        self,
        base: str,
        scope: Scope,
        deref: Deref,
        size_limit: int,
        time_limit: int,
        types_only: bool,
        filter: Filter,
        attributes: tuple[str, ...] = (),
    ) -> None:
        self.base = base
        self.scope = scope
        self.deref = deref
        self.size_limit = size_limit
        self.time_limit = time_limit
        self.types_only = types_only
        self.filter = filter
        self.attributes = attributes


@dataclass(frozen=True, slots=True)
class Change:
    op: ModOp
    attribute: str
    values: Values = ()


@dataclass(frozen=True, slots=True)
class ModifyRequest:
    dn: str
    changes: tuple[Change, ...]


@dataclass(frozen=True, slots=True)
class AddRequest:
    dn: str
    attributes: Attributes


@dataclass(frozen=True, slots=True)
class DelRequest:
    dn: str


@dataclass(frozen=True, slots=True)
class ModifyDNRequest:
    dn: str
    new_rdn: str
    delete_old_rdn: bool
    new_superior: str | None = None


@dataclass(frozen=True, slots=True)
class CompareRequest:
    dn: str
    attribute: str
    value: bytes


@dataclass(frozen=True, slots=True)
class AbandonRequest:
    message_id: int


@dataclass(frozen=True, slots=True)
class ExtendedRequest:
    name: str
    value: bytes | None = None


@dataclass(frozen=True, slots=True)
class BindResponse:
    result: Result
    credentials: bytes | None = None


@dataclass(init=False, unsafe_hash=True, slots=True)
class SearchResultEntry:
    dn: Final[str]
    attributes: Final[Attributes]

    def __init__(self, dn: str, attributes: Attributes) -> None:
        self.dn = dn
        self.attributes = attributes


@dataclass(init=False, unsafe_hash=True, slots=True)
class EncodedSearchResultEntry:
    """A SearchResultEntry whose BER body (dn + attributes) is already encoded,
    so cached entries are not encoded again for every search."""

    body: Final[bytes]

    def __init__(self, body: bytes) -> None:
        self.body = body


@dataclass(frozen=True, slots=True)
class SearchResultReference:
    uris: tuple[str, ...]


@dataclass(init=False, unsafe_hash=True, slots=True)
class SearchResultDone:
    result: Final[Result]

    def __init__(self, result: Result) -> None:
        self.result = result


@dataclass(frozen=True, slots=True)
class ModifyResponse:
    result: Result


@dataclass(frozen=True, slots=True)
class AddResponse:
    result: Result


@dataclass(frozen=True, slots=True)
class DelResponse:
    result: Result


@dataclass(frozen=True, slots=True)
class ModifyDNResponse:
    result: Result


@dataclass(frozen=True, slots=True)
class CompareResponse:
    result: Result


@dataclass(frozen=True, slots=True)
class ExtendedResponse:
    result: Result
    name: str | None = None
    value: bytes | None = None


@dataclass(frozen=True, slots=True)
class IntermediateResponse:
    name: str | None = None
    value: bytes | None = None


Request: TypeAlias = (
    BindRequest
    | UnbindRequest
    | SearchRequest
    | ModifyRequest
    | AddRequest
    | DelRequest
    | ModifyDNRequest
    | CompareRequest
    | AbandonRequest
    | ExtendedRequest
)

Response: TypeAlias = (
    BindResponse
    | SearchResultEntry
    | EncodedSearchResultEntry
    | SearchResultReference
    | SearchResultDone
    | ModifyResponse
    | AddResponse
    | DelResponse
    | ModifyDNResponse
    | CompareResponse
    | ExtendedResponse
    | IntermediateResponse
)

ProtocolOp: TypeAlias = Request | Response


@dataclass(init=False, unsafe_hash=True, slots=True)
class LDAPMessage:
    message_id: Final[int]
    op: Final[ProtocolOp]
    controls: Final[tuple[Control, ...]]

    def __init__(
        self,
        message_id: int,
        op: ProtocolOp,
        controls: tuple[Control, ...] = (),
    ) -> None:
        self.message_id = message_id
        self.op = op
        self.controls = controls
