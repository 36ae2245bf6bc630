"""The CA's records, in tables of the directory's own database (DESIGN.md).

- Certificates issued (serial, issuer, subject, holder entry, profile,
  validity, DER, status), requests and their decisions, CRLs issued and
  the CRL number all live next to the entries, so recording a certificate
  and publishing it into the holder's entry commit in one transaction.
- Serials are stored as lower-case hex without leading zeros; callers
  accept any case and an optional `0x` (`parse_serial`).
- A revoked certificate keeps its row: status `revoked` (or `hold` for
  certificateHold, RFC 5280 §5.3.1), when and why.
- CRL numbers increase by one for every CRL, full or delta (RFC 5280
  §5.2.3 requires them to increase monotonically for one CA).
- `ca_crls` holds the signing CA's own CRLs; `ca_issuer_crls` holds the
  CRLs of the CAs above it (a possibly offline parent cannot publish
  here), installed with `certdir ca install-crl`: one row per CRL, keyed
  by the issuer's name (RFC 4514 string, as `ca_certificates.issuer`)
  and its CRL number, `delta` 1 for a delta CRL (§5.2.4). The newest row
  of each kind is what the web service serves.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from ca.errors import CAError
from directory.backend import Param, Records, Tables

TABLES: Tables = (
    """CREATE TABLE IF NOT EXISTS ca_certificates (
        id INTEGER PRIMARY KEY,
        serial TEXT NOT NULL UNIQUE,
        issuer TEXT NOT NULL,
        subject TEXT NOT NULL,
        entry TEXT,
        profile TEXT NOT NULL,
        not_before TEXT NOT NULL,
        not_after TEXT NOT NULL,
        der BLOB NOT NULL,
        status TEXT NOT NULL DEFAULT 'valid',
        revoked_at TEXT,
        reason TEXT,
        request INTEGER)""",
    "CREATE INDEX IF NOT EXISTS ca_certificates_entry ON ca_certificates (entry)",
    """CREATE INDEX IF NOT EXISTS ca_certificates_revoked ON ca_certificates (revoked_at)
        WHERE revoked_at IS NOT NULL""",
    """CREATE TABLE IF NOT EXISTS ca_requests (
        id INTEGER PRIMARY KEY,
        created TEXT NOT NULL,
        csr BLOB NOT NULL,
        profile TEXT NOT NULL,
        entry TEXT,
        status TEXT NOT NULL,
        policy TEXT NOT NULL,
        decided_by TEXT,
        decided_at TEXT,
        note TEXT,
        serial TEXT)""",
    """CREATE TABLE IF NOT EXISTS ca_releases (
        serial TEXT NOT NULL,
        released_at TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS ca_crls (
        number INTEGER PRIMARY KEY,
        base INTEGER,
        this_update TEXT NOT NULL,
        next_update TEXT NOT NULL,
        der BLOB NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS ca_issuer_crls (
        issuer TEXT NOT NULL,
        number INTEGER NOT NULL,
        delta INTEGER NOT NULL,
        this_update TEXT NOT NULL,
        next_update TEXT NOT NULL,
        der BLOB NOT NULL,
        PRIMARY KEY (issuer, number))""",
)

# Full CRLs have no base; delta CRLs name theirs (RFC 5280 §5.2.4).
_KIND: Mapping[bool, str] = {False: "base IS NULL", True: "base IS NOT NULL"}


def parse_serial(text: str) -> int:
    digits = text.strip().lower().removeprefix("0x").replace(":", "")
    try:
        return int(digits, 16)
    except ValueError:
        raise CAError(f"{text!r} is not a serial number (hexadecimal)") from None


def serial_text(serial: int) -> str:
    return format(serial, "x")


def _time(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(text: str) -> dt.datetime:
    # fromisoformat reads the "Z" of _time's format (3.11+) some fifty times faster than
    # strptime, which dominated a 100k-entry CRL.
    return dt.datetime.fromisoformat(text)


@dataclass(frozen=True, slots=True)
class IssuedRecord:
    serial: int
    issuer: str
    subject: str
    entry: str | None
    profile: str
    not_before: dt.datetime
    not_after: dt.datetime
    der: bytes
    status: str
    revoked_at: dt.datetime | None
    reason: str | None


@dataclass(frozen=True, slots=True)
class StatusRecord:
    """A certificate's status columns alone (no DER)."""
    issuer: str
    status: str
    revoked_at: dt.datetime | None
    reason: str | None


@dataclass(frozen=True, slots=True)
class RequestRecord:
    id: int
    created: dt.datetime
    csr: bytes
    profile: str
    entry: str | None
    status: str
    policy: str
    decided_by: str | None
    note: str | None
    serial: int | None


@dataclass(frozen=True, slots=True)
class CRLRecord:
    number: int
    this_update: dt.datetime
    next_update: dt.datetime
    der: bytes


@dataclass(frozen=True, slots=True)
class Revocation:
    serial: int
    revoked_at: dt.datetime
    reason: str


_CERT_COLUMNS = ("serial, issuer, subject, entry, profile, not_before, not_after, der, "
                 "status, revoked_at, reason")
_REQUEST_COLUMNS = "id, created, csr, profile, entry, status, policy, decided_by, note, serial"


def _issued(row: tuple[object, ...]) -> IssuedRecord:
    (serial, issuer, subject, entry, profile, not_before, not_after, der, status, revoked_at,
     reason) = row
    return IssuedRecord(int(str(serial), 16), str(issuer), str(subject),
                        None if entry is None else str(entry), str(profile),
                        _parse_time(str(not_before)), _parse_time(str(not_after)),
                        bytes(der), str(status),  # type: ignore[call-overload]
                        None if revoked_at is None else _parse_time(str(revoked_at)),
                        None if reason is None else str(reason))


def _request(row: tuple[object, ...]) -> RequestRecord:
    (ident, created, csr, profile, entry, status, policy, decided_by, note, serial) = row
    return RequestRecord(int(str(ident)), _parse_time(str(created)),
                         bytes(csr),  # type: ignore[call-overload]
                         str(profile), None if entry is None else str(entry), str(status),
                         str(policy), None if decided_by is None else str(decided_by),
                         None if note is None else str(note),
                         None if serial is None else int(str(serial), 16))


class Store:
    """The CA's records, in the caller's transaction or read snapshot."""

    def __init__(self, records: Records) -> None:
        self.records = records

    # --- certificates ---------------------------------------------------------------

    def record(self, *, serial: int, issuer: str, subject: str, entry: str | None,
               profile: str, not_before: dt.datetime, not_after: dt.datetime, der: bytes,
               request: int | None = None) -> None:
        self.records.run(
            "INSERT INTO ca_certificates (serial, issuer, subject, entry, profile, not_before,"
            " not_after, der, request) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (serial_text(serial), issuer, subject, entry, profile, _time(not_before),
             _time(not_after), der, request))

    def certificate(self, serial: int) -> IssuedRecord:
        row = self.records.row(f"SELECT {_CERT_COLUMNS} FROM ca_certificates WHERE serial=?",
                               (serial_text(serial),))
        if row is None:
            raise CAError(f"no certificate with serial {serial_text(serial)} was issued here")
        return _issued(row)

    def status(self, serial: int) -> StatusRecord | None:
        """A primary-key look-up of the status columns (the OCSP responder's, on every
        request); None when the serial was not issued here."""
        row = self.records.row("SELECT issuer, status, revoked_at, reason FROM ca_certificates"
                               " WHERE serial=?", (serial_text(serial),))
        if row is None:
            return None
        issuer, status, revoked_at, reason = row
        return StatusRecord(str(issuer), str(status),
                            None if revoked_at is None else _parse_time(str(revoked_at)),
                            None if reason is None else str(reason))

    def certificates(self, *, status: str | None = None,
                     entry: str | None = None) -> list[IssuedRecord]:
        where: list[str] = []
        params: list[Param] = []
        if status is not None:
            where.append("status=?")
            params.append(status)
        if entry is not None:
            where.append("lower(entry)=lower(?)")
            params.append(entry)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        return [_issued(row) for row in self.records.rows(
            f"SELECT {_CERT_COLUMNS} FROM ca_certificates{clause} ORDER BY not_before, id",
            params)]

    def recent(self, limit: int) -> list[IssuedRecord]:
        """The last `limit` certificates issued, newest first."""
        return [_issued(row) for row in self.records.rows(
            f"SELECT {_CERT_COLUMNS} FROM ca_certificates ORDER BY not_before DESC, id DESC"
            " LIMIT ?", (limit,))]

    def set_status(self, serial: int, status: str, when: dt.datetime | None,
                   reason: str | None) -> None:
        self.records.run(
            "UPDATE ca_certificates SET status=?, revoked_at=?, reason=? WHERE serial=?",
            (status, None if when is None else _time(when), reason, serial_text(serial)))

    def revocations(self, since: dt.datetime | None = None) -> list[Revocation]:
        """Revoked and held certificates (not expired ones, RFC 5280 §3.3
        allows dropping those), optionally only those revoked after `since`."""
        query = ("SELECT serial, revoked_at, reason FROM ca_certificates "
                 "WHERE revoked_at IS NOT NULL")
        params: list[Param] = []
        if since is not None:
            query += " AND revoked_at>=?"
            params.append(_time(since))
        return [Revocation(int(serial, 16), _parse_time(when), reason)
                for serial, when, reason in self.records.rows(query, params)]

    def record_release(self, serial: int, when: dt.datetime) -> None:
        self.records.run("INSERT INTO ca_releases (serial, released_at) VALUES (?, ?)",
                         (serial_text(serial), _time(when)))

    def releases(self, since: dt.datetime) -> list[tuple[int, dt.datetime]]:
        """Certificates taken off hold since `since` (removeFromCRL)."""
        return [(int(serial, 16), _parse_time(when)) for serial, when in self.records.rows(
            "SELECT serial, released_at FROM ca_releases WHERE released_at>=?",
            (_time(since),))]

    # --- requests ---------------------------------------------------------------------

    def add_request(self, *, csr: bytes, profile: str, entry: str | None, policy: str,
                    now: dt.datetime) -> int:
        row = self.records.row(
            "INSERT INTO ca_requests (created, csr, profile, entry, status, policy)"
            " VALUES (?, ?, ?, ?, 'pending', ?) RETURNING id",
            (_time(now), csr, profile, entry, policy))
        assert row is not None
        return int(row[0])

    def decide(self, ident: int, status: str, by: str, now: dt.datetime,
               note: str | None = None, serial: int | None = None) -> None:
        self.records.run(
            "UPDATE ca_requests SET status=?, decided_by=?, decided_at=?, note=?, serial=?"
            " WHERE id=?", (status, by, _time(now), note,
                            None if serial is None else serial_text(serial), ident))

    def request(self, ident: int) -> RequestRecord:
        row = self.records.row(f"SELECT {_REQUEST_COLUMNS} FROM ca_requests WHERE id=?",
                               (ident,))
        if row is None:
            raise CAError(f"no request {ident}")
        return _request(row)

    def requests(self, status: str) -> list[RequestRecord]:
        return [_request(row) for row in self.records.rows(
            f"SELECT {_REQUEST_COLUMNS} FROM ca_requests WHERE status=? ORDER BY id",
            (status,))]

    def requests_of(self, entry: str) -> list[RequestRecord]:
        """The requests made for one holder entry, newest first."""
        return [_request(row) for row in self.records.rows(
            f"SELECT {_REQUEST_COLUMNS} FROM ca_requests WHERE lower(entry)=lower(?)"
            " ORDER BY id DESC", (entry,))]

    # --- CRLs ---------------------------------------------------------------------------

    def next_crl_number(self) -> int:
        row = self.records.row("SELECT max(number) FROM ca_crls")
        return 1 if row is None or row[0] is None else int(row[0]) + 1

    def record_crl(self, number: int, base: int | None, this_update: dt.datetime,
                   next_update: dt.datetime, der: bytes) -> None:
        self.records.run("INSERT INTO ca_crls (number, base, this_update, next_update, der)"
                         " VALUES (?, ?, ?, ?, ?)",
                         (number, base, _time(this_update), _time(next_update), der))

    def last_full_crl(self) -> tuple[int, dt.datetime] | None:
        row = self.records.row("SELECT number, this_update FROM ca_crls WHERE base IS NULL"
                               " ORDER BY number DESC LIMIT 1")
        return None if row is None else (int(row[0]), _parse_time(row[1]))

    def next_update(self, delta: bool) -> dt.datetime | None:
        """When the newest full (or delta) CRL says the next one comes."""
        row = self.records.row(
            f"SELECT next_update FROM ca_crls WHERE {_KIND[delta]} ORDER BY number DESC LIMIT 1")
        return None if row is None else _parse_time(row[0])

    def last_crl(self) -> tuple[int, dt.datetime, dt.datetime] | None:
        row = self.records.row("SELECT number, this_update, next_update FROM ca_crls"
                               " ORDER BY number DESC LIMIT 1")
        return None if row is None else (int(row[0]), _parse_time(row[1]),
                                         _parse_time(row[2]))

    def newest_crl(self, delta: bool) -> int | None:
        """The number of this CA's newest full (or delta) CRL."""
        row = self.records.row(f"SELECT max(number) FROM ca_crls WHERE {_KIND[delta]}")
        return None if row is None or row[0] is None else int(row[0])

    def crl(self, number: int) -> CRLRecord:
        row = self.records.row("SELECT number, this_update, next_update, der FROM ca_crls"
                               " WHERE number=?", (number,))
        if row is None:
            raise CAError(f"no CRL number {number}")
        return _crl(row)

    # --- CRLs of the CAs above this one ---------------------------------------------------

    def record_issuer_crl(self, issuer: str, record: CRLRecord, delta: bool) -> None:
        self.records.run("INSERT INTO ca_issuer_crls (issuer, number, delta, this_update,"
                         " next_update, der) VALUES (?, ?, ?, ?, ?, ?)",
                         (issuer, record.number, int(delta), _time(record.this_update),
                          _time(record.next_update), record.der))

    def newest_issuer_crl(self, issuer: str, delta: bool) -> int | None:
        row = self.records.row("SELECT max(number) FROM ca_issuer_crls WHERE issuer=?"
                               " AND delta=?", (issuer, int(delta)))
        return None if row is None or row[0] is None else int(row[0])

    def issuer_crl(self, issuer: str, number: int) -> CRLRecord:
        row = self.records.row("SELECT number, this_update, next_update, der"
                               " FROM ca_issuer_crls WHERE issuer=? AND number=?",
                               (issuer, number))
        if row is None:
            raise CAError(f"no CRL number {number} of {issuer} is installed")
        return _crl(row)


def _crl(row: tuple[object, ...]) -> CRLRecord:
    number, this_update, next_update, der = row
    return CRLRecord(int(str(number)), _parse_time(str(this_update)),
                     _parse_time(str(next_update)), bytes(der))  # type: ignore[call-overload]
