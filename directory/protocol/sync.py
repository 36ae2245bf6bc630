"""The LDAP Content Synchronization wire forms (RFC 4533 §2.2-§2.5), sans-IO.

In a module with IMPLICIT TAGS; BOOLEANs equal to their DEFAULT are left
out when encoding (DER) and read either way when decoding:

    syncRequestValue ::= SEQUENCE {
        mode ENUMERATED { refreshOnly (1), refreshAndPersist (3) },
        cookie     syncCookie OPTIONAL,
        reloadHint BOOLEAN DEFAULT FALSE }
    syncStateValue ::= SEQUENCE {
        state ENUMERATED { present (0), add (1), modify (2), delete (3) },
        entryUUID syncUUID,                -- OCTET STRING (SIZE(16))
        cookie    syncCookie OPTIONAL }
    syncDoneValue ::= SEQUENCE {
        cookie          syncCookie OPTIONAL,
        refreshDeletes  BOOLEAN DEFAULT FALSE }
    syncInfoValue ::= CHOICE {
        newcookie      [0] syncCookie,
        refreshDelete  [1] SEQUENCE { cookie OPTIONAL, refreshDone BOOLEAN DEFAULT TRUE },
        refreshPresent [2] SEQUENCE { cookie OPTIONAL, refreshDone BOOLEAN DEFAULT TRUE },
        syncIdSet      [3] SEQUENCE { cookie OPTIONAL,
                                      refreshDeletes BOOLEAN DEFAULT FALSE,
                                      syncUUIDs SET OF syncUUID } }

- A mode or state outside its enumeration, an entryUUID that is not 16
  octets, a field out of order, or data after a value is a ProtocolError.
- The Sync Info message is an intermediate response named `SYNC_INFO`.
- A cookie is opaque to RFC 4533; `Cookie` reads and writes the form
  OpenLDAP uses, `rid=NNN,sid=XXX,csn=CSN;CSN,delcsn=CSN`: rid is decimal
  0..999, sid hexadecimal 0..0xfff, each part optional, unknown keywords
  skipped (as OpenLDAP's parser does), the CSNs one per server id and
  written in the order of their server id.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import TypeAlias

from directory.protocol import ber
from directory.protocol.ber import (
    children,
    decode_bool,
    decode_int,
    encode_bool,
    encode_int,
    octets,
    tlv,
)
from directory.protocol.messages import Control, IntermediateResponse
from directory.protocol.results import ProtocolError

SYNC_REQUEST = "1.3.6.1.4.1.4203.1.9.1.1"
SYNC_STATE = "1.3.6.1.4.1.4203.1.9.1.2"
SYNC_DONE = "1.3.6.1.4.1.4203.1.9.1.3"
SYNC_INFO = "1.3.6.1.4.1.4203.1.9.1.4"

UUID_SIZE = 16
NEW_COOKIE = ber.CONTEXT | 0
REFRESH_DELETE = ber.CONTEXT | ber.CONSTRUCTED | 1
REFRESH_PRESENT = ber.CONTEXT | ber.CONSTRUCTED | 2
SYNC_ID_SET = ber.CONTEXT | ber.CONSTRUCTED | 3


class Mode(enum.IntEnum):
    REFRESH_ONLY = 1
    REFRESH_AND_PERSIST = 3


class State(enum.IntEnum):
    PRESENT = 0
    ADD = 1
    MODIFY = 2
    DELETE = 3


def _uuid(value: bytes) -> bytes:
    if len(value) != UUID_SIZE:
        raise ProtocolError(f"a syncUUID is {UUID_SIZE} octets, not {len(value)}")
    return value


def _optional_cookie(cookie: bytes | None) -> bytes:
    return b"" if cookie is None else octets(cookie)


def _flag(value: bool, default: bool) -> bytes:
    return b"" if value == default else encode_bool(value)


class _Fields:
    """A cursor over the fields of one SEQUENCE, for OPTIONAL/DEFAULT fields in order."""

    def __init__(self, data: bytes, start: int, end: int, what: str) -> None:
        self._data = data
        self._items = list(children(data, start, end))
        self._what = what

    def take(self, tag: int) -> tuple[int, int] | None:
        if self._items and self._items[0][0] == tag:
            _, s, e = self._items.pop(0)
            return s, e
        return None

    def cookie(self) -> bytes | None:
        span = self.take(ber.OCTET_STRING)
        return None if span is None else self._data[span[0]:span[1]]

    def flag(self, default: bool) -> bool:
        span = self.take(ber.BOOLEAN)
        return default if span is None else decode_bool(self._data, *span)

    def done(self) -> None:
        if self._items:
            raise ProtocolError(f"{self._what}: unexpected field 0x{self._items[0][0]:02x}")


def _whole(value: bytes | None, what: str) -> tuple[bytes, int, int]:
    if value is None:
        raise ProtocolError(f"{what} needs a value")
    start, end = ber.expect(value, 0, len(value), ber.SEQUENCE, what)
    if end != len(value):
        raise ProtocolError(f"data after the {what}")
    return value, start, end


def _enumerated(data: bytes, fields: _Fields, kind: type[enum.IntEnum], what: str) -> int:
    span = fields.take(ber.ENUMERATED)
    if span is None:
        raise ProtocolError(f"{what} is missing")
    number = decode_int(data, *span)
    try:
        return kind(number)
    except ValueError:
        raise ProtocolError(f"unknown {what} {number}") from None


@dataclass(frozen=True, slots=True)
class SyncRequest:
    mode: Mode
    cookie: bytes | None = None
    reload_hint: bool = False

    def encode(self) -> bytes:
        body = (encode_int(self.mode, ber.ENUMERATED) + _optional_cookie(self.cookie)
                + _flag(self.reload_hint, False))
        return tlv(ber.SEQUENCE, body)

    def to_control(self, critical: bool = True) -> Control:
        return Control(SYNC_REQUEST, critical, self.encode())

    @classmethod
    def decode(cls, value: bytes | None) -> SyncRequest:
        data, start, end = _whole(value, "sync request")
        fields = _Fields(data, start, end, "sync request")
        mode = Mode(_enumerated(data, fields, Mode, "sync mode"))
        cookie = fields.cookie()
        reload_hint = fields.flag(False)
        fields.done()
        return cls(mode, cookie, reload_hint)


@dataclass(frozen=True, slots=True)
class SyncState:
    state: State
    entry_uuid: bytes
    cookie: bytes | None = None

    def __post_init__(self) -> None:
        _uuid(self.entry_uuid)

    def encode(self) -> bytes:
        body = (encode_int(self.state, ber.ENUMERATED) + octets(self.entry_uuid)
                + _optional_cookie(self.cookie))
        return tlv(ber.SEQUENCE, body)

    def to_control(self) -> Control:
        return Control(SYNC_STATE, False, self.encode())

    @classmethod
    def decode(cls, value: bytes | None) -> SyncState:
        data, start, end = _whole(value, "sync state")
        fields = _Fields(data, start, end, "sync state")
        state = State(_enumerated(data, fields, State, "sync state"))
        span = fields.take(ber.OCTET_STRING)
        if span is None:
            raise ProtocolError("sync state without entryUUID")
        entry_uuid = _uuid(data[span[0]:span[1]])
        cookie = fields.cookie()
        fields.done()
        return cls(state, entry_uuid, cookie)


@dataclass(frozen=True, slots=True)
class SyncDone:
    cookie: bytes | None = None
    refresh_deletes: bool = False

    def encode(self) -> bytes:
        return tlv(ber.SEQUENCE, _optional_cookie(self.cookie)
                   + _flag(self.refresh_deletes, False))

    def to_control(self) -> Control:
        return Control(SYNC_DONE, False, self.encode())

    @classmethod
    def decode(cls, value: bytes | None) -> SyncDone:
        data, start, end = _whole(value, "sync done")
        fields = _Fields(data, start, end, "sync done")
        cookie = fields.cookie()
        refresh_deletes = fields.flag(False)
        fields.done()
        return cls(cookie, refresh_deletes)


@dataclass(frozen=True, slots=True)
class NewCookie:
    cookie: bytes

    def encode(self) -> bytes:
        return tlv(NEW_COOKIE, self.cookie)


@dataclass(frozen=True, slots=True)
class RefreshDelete:
    cookie: bytes | None = None
    refresh_done: bool = True

    def encode(self) -> bytes:
        return tlv(REFRESH_DELETE, _optional_cookie(self.cookie)
                   + _flag(self.refresh_done, True))


@dataclass(frozen=True, slots=True)
class RefreshPresent:
    cookie: bytes | None = None
    refresh_done: bool = True

    def encode(self) -> bytes:
        return tlv(REFRESH_PRESENT, _optional_cookie(self.cookie)
                   + _flag(self.refresh_done, True))


@dataclass(frozen=True, slots=True)
class SyncIdSet:
    uuids: tuple[bytes, ...]
    cookie: bytes | None = None
    refresh_deletes: bool = False

    def __post_init__(self) -> None:
        for uuid in self.uuids:
            _uuid(uuid)

    def encode(self) -> bytes:
        uuids = tlv(ber.SET, b"".join(octets(u) for u in self.uuids))
        return tlv(SYNC_ID_SET, _optional_cookie(self.cookie)
                   + _flag(self.refresh_deletes, False) + uuids)


SyncInfo: TypeAlias = NewCookie | RefreshDelete | RefreshPresent | SyncIdSet


def info_message(info: SyncInfo) -> IntermediateResponse:
    """The Sync Info Message (RFC 4533 §2.5) carrying `info`."""
    return IntermediateResponse(SYNC_INFO, info.encode())


def _refresh_phase(data: bytes, start: int, end: int, what: str) -> tuple[bytes | None, bool]:
    fields = _Fields(data, start, end, what)
    cookie = fields.cookie()
    done = fields.flag(True)
    fields.done()
    return cookie, done


def decode_info(value: bytes | None) -> SyncInfo:
    if value is None:
        raise ProtocolError("sync info message needs a value")
    tag, start, end = ber.read_tlv(value, 0, len(value))
    if end != len(value):
        raise ProtocolError("data after the sync info value")
    if tag == NEW_COOKIE:
        return NewCookie(value[start:end])
    if tag == REFRESH_DELETE:
        return RefreshDelete(*_refresh_phase(value, start, end, "refreshDelete"))
    if tag == REFRESH_PRESENT:
        return RefreshPresent(*_refresh_phase(value, start, end, "refreshPresent"))
    if tag == SYNC_ID_SET:
        fields = _Fields(value, start, end, "syncIdSet")
        cookie = fields.cookie()
        refresh_deletes = fields.flag(False)
        span = fields.take(ber.SET)
        if span is None:
            raise ProtocolError("syncIdSet without syncUUIDs")
        fields.done()
        uuids = []
        for utag, s, e in children(value, *span):
            if utag != ber.OCTET_STRING:
                raise ProtocolError("a syncUUID is an OCTET STRING")
            uuids.append(_uuid(value[s:e]))
        return SyncIdSet(tuple(uuids), cookie, refresh_deletes)
    raise ProtocolError(f"unknown sync info choice 0x{tag:02x}")


MAX_RID = 999
MAX_SID = 0xFFF
_CSN = re.compile(r"\d{14}\.\d{6}Z#[0-9a-f]{6}#[0-9a-f]{3}#[0-9a-f]{6}")


def csn_sid(csn: str) -> int:
    """The server id a CSN was made by (its third `#` field)."""
    return int(csn.split("#")[2], 16)


def _csn(text: str) -> str:
    if not _CSN.fullmatch(text):
        raise ProtocolError(f"not a CSN: {text!r}")
    return text


@dataclass(frozen=True, slots=True)
class Cookie:
    """An OpenLDAP syncrepl cookie: the newest CSN seen from each server id."""
    rid: int | None = None
    sid: int | None = None
    csns: tuple[str, ...] = ()
    delcsn: str | None = None

    def __post_init__(self) -> None:
        if self.rid is not None and not 0 <= self.rid <= MAX_RID:
            raise ProtocolError(f"a cookie rid is 0..{MAX_RID}, not {self.rid}")
        if self.sid is not None and not 0 <= self.sid <= MAX_SID:
            raise ProtocolError(f"a cookie sid is 0..{MAX_SID:#x}, not {self.sid:#x}")
        for csn in self.csns:
            _csn(csn)
        sids = [csn_sid(c) for c in self.csns]
        if sids != sorted(set(sids)):
            raise ProtocolError("a cookie holds one CSN per server id, in server id order")
        if self.delcsn is not None:
            _csn(self.delcsn)

    @classmethod
    def of(cls, csns: tuple[str, ...] | list[str], rid: int | None = None,
           sid: int | None = None) -> Cookie:
        """A cookie keeping, of `csns`, the newest per server id."""
        newest: dict[int, str] = {}
        for csn in csns:
            key = csn_sid(csn)
            if csn > newest.get(key, ""):
                newest[key] = csn
        return cls(rid, sid, tuple(newest[k] for k in sorted(newest)))

    @classmethod
    def parse(cls, value: bytes) -> Cookie:
        try:
            text = value.decode("ascii")
        except UnicodeDecodeError:
            raise ProtocolError("a cookie is ASCII text") from None
        rid = sid = None
        csns: tuple[str, ...] = ()
        delcsn = None
        for part in text.split(",") if text else ():
            key, sep, rest = part.partition("=")
            try:
                if key == "rid" and sep:
                    rid = int(rest, 10)
                elif key == "sid" and sep:
                    sid = int(rest, 16)
                elif key == "csn" and sep:
                    csns = tuple(rest.split(";")) if rest else ()
                elif key == "delcsn" and sep:
                    delcsn = rest
            except ValueError:
                raise ProtocolError(f"bad cookie field {part!r}") from None
        return cls(rid, sid, csns, delcsn)

    def csn_for(self, sid: int) -> str | None:
        for csn in self.csns:
            if csn_sid(csn) == sid:
                return csn
        return None

    def __str__(self) -> str:
        parts = []
        if self.rid is not None:
            parts.append(f"rid={self.rid:03d}")
        if self.sid is not None:
            parts.append(f"sid={self.sid:03x}")
        if self.csns:
            parts.append("csn=" + ";".join(self.csns))
        if self.delcsn is not None:
            parts.append(f"delcsn={self.delcsn}")
        return ",".join(parts)

    def encode(self) -> bytes:
        return str(self).encode("ascii")
