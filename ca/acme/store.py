"""The ACME server's records, in tables of the directory's database (DESIGN.md, "Storage").

- Accounts, orders, authorizations, challenges, spent nonces and the nonce
  secret live beside the CA's tables (`ca.store`), declared in `TABLES`
  and created when the storage is opened; every statement is in the
  portable dialect of `directory.backend.Records`, so SQLite and
  PostgreSQL both hold them.
- Object ids are 128 random bits (base64url): unguessable in URLs, and no
  two front ends on one database pick the same one.
- An account's key is unique (its RFC 7638 thumbprint, `UNIQUE`): a second
  newAccount with it finds the first, a keyChange to a key in use is
  refused.
- Status changes name the statuses they move from (`ca.acme.states`) in
  the UPDATE itself; the row count says whether this writer won.
- The finalize that issues sets the order valid with the certificate's
  serial in the transaction that records the certificate (`ca.issue.commit`):
  both or neither.
- Deactivating an account ends its pending and ready orders; an order
  waiting for an officer (processing) stays, the officer decides it.
- Rate limits count rows of a window (`orders_since`, `names_since`,
  `accounts_since`), so every front end counts the same.
- External account binding keys (`acme_eab_keys`) hold their HMAC key
  sealed (`ca.acme.eab.Seal`), never in clear; a key binds one account:
  `bind` sets its account only while it has none and is not revoked, in
  the transaction that adds the account. The key's `entry`, if any, is
  the directory entry the account's certificates are issued for.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from dataclasses import dataclass
from typing import Any

from ca.acme import states
from ca.store import serial_text
from directory.backend import Param, Records, Tables

TABLES: Tables = (
    """CREATE TABLE IF NOT EXISTS acme_accounts (
        id TEXT PRIMARY KEY,
        thumbprint TEXT NOT NULL UNIQUE,
        jwk TEXT NOT NULL,
        contact TEXT NOT NULL,
        status TEXT NOT NULL,
        created TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS acme_orders (
        id TEXT PRIMARY KEY,
        account TEXT NOT NULL,
        status TEXT NOT NULL,
        created TEXT NOT NULL,
        expires TEXT NOT NULL,
        identifiers TEXT NOT NULL,
        error TEXT,
        request INTEGER,
        serial TEXT)""",
    "CREATE INDEX IF NOT EXISTS acme_orders_account ON acme_orders (account, created)",
    "CREATE INDEX IF NOT EXISTS acme_orders_serial ON acme_orders (serial)",
    """CREATE TABLE IF NOT EXISTS acme_authorizations (
        id TEXT PRIMARY KEY,
        order_id TEXT NOT NULL,
        type TEXT NOT NULL,
        value TEXT NOT NULL,
        wildcard INTEGER NOT NULL,
        status TEXT NOT NULL,
        created TEXT NOT NULL,
        expires TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS acme_authorizations_order ON acme_authorizations (order_id)",
    """CREATE INDEX IF NOT EXISTS acme_authorizations_value
        ON acme_authorizations (value, created)""",
    """CREATE TABLE IF NOT EXISTS acme_challenges (
        id TEXT PRIMARY KEY,
        authorization_id TEXT NOT NULL,
        type TEXT NOT NULL,
        token TEXT NOT NULL,
        status TEXT NOT NULL,
        validated TEXT,
        error TEXT)""",
    """CREATE INDEX IF NOT EXISTS acme_challenges_authorization
        ON acme_challenges (authorization_id)""",
    """CREATE TABLE IF NOT EXISTS acme_nonces (
        nonce TEXT PRIMARY KEY,
        expires INTEGER NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS acme_nonces_expires ON acme_nonces (expires)",
    """CREATE TABLE IF NOT EXISTS acme_secrets (
        name TEXT PRIMARY KEY,
        value BLOB NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS acme_eab_keys (
        id TEXT PRIMARY KEY,
        sealed BLOB NOT NULL,
        entry TEXT,
        created TEXT NOT NULL,
        account TEXT UNIQUE,
        revoked TEXT)""",
    """CREATE TABLE IF NOT EXISTS acme_new_accounts (
        address TEXT NOT NULL,
        created TEXT NOT NULL)""",
    """CREATE INDEX IF NOT EXISTS acme_new_accounts_address
        ON acme_new_accounts (address, created)""",
)


def new_id() -> str:
    """128 random bits in hex: safe in URLs and on a command line (never a leading "-")."""
    return secrets.token_hex(16)


def _time(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(text: object) -> dt.datetime:
    return dt.datetime.fromisoformat(str(text))


def _error(text: object) -> dict[str, Any] | None:
    return None if text is None else dict(json.loads(str(text)))


@dataclass(frozen=True, slots=True)
class Account:
    id: str
    thumbprint: str
    jwk: str
    contact: tuple[str, ...]
    status: str
    created: dt.datetime


@dataclass(frozen=True, slots=True)
class EabKey:
    id: str
    sealed: bytes
    entry: str | None
    created: dt.datetime
    account: str | None
    revoked: dt.datetime | None


@dataclass(frozen=True, slots=True)
class Order:
    id: str
    account: str
    status: str
    created: dt.datetime
    expires: dt.datetime
    identifiers: tuple[tuple[str, str], ...]  # (type, value), as ordered
    error: dict[str, Any] | None
    request: int | None
    serial: int | None


@dataclass(frozen=True, slots=True)
class Authorization:
    id: str
    order: str
    type: str
    value: str
    wildcard: bool
    status: str
    created: dt.datetime
    expires: dt.datetime


@dataclass(frozen=True, slots=True)
class Challenge:
    id: str
    authorization: str
    type: str
    token: str
    status: str
    validated: dt.datetime | None
    error: dict[str, Any] | None


_ACCOUNT = "id, thumbprint, jwk, contact, status, created"
_ORDER = "id, account, status, created, expires, identifiers, error, request, serial"
_AUTHORIZATION = "id, order_id, type, value, wildcard, status, created, expires"
_CHALLENGE = "id, authorization_id, type, token, status, validated, error"
_EAB = "id, sealed, entry, created, account, revoked"


def _account(row: tuple[object, ...]) -> Account:
    ident, thumbprint, jwk, contact, status, created = row
    return Account(str(ident), str(thumbprint), str(jwk), tuple(json.loads(str(contact))),
                   str(status), _parse_time(created))


def _order(row: tuple[object, ...]) -> Order:
    ident, account, status, created, expires, identifiers, error, request, serial = row
    return Order(str(ident), str(account), str(status), _parse_time(created),
                 _parse_time(expires),
                 tuple((str(t), str(v)) for t, v in json.loads(str(identifiers))),
                 _error(error), None if request is None else int(str(request)),
                 None if serial is None else int(str(serial), 16))


def _authorization(row: tuple[object, ...]) -> Authorization:
    ident, order, kind, value, wildcard, status, created, expires = row
    return Authorization(str(ident), str(order), str(kind), str(value),
                         bool(wildcard), str(status), _parse_time(created),
                         _parse_time(expires))


def _challenge(row: tuple[object, ...]) -> Challenge:
    ident, authorization, kind, token, status, validated, error = row
    return Challenge(str(ident), str(authorization), str(kind), str(token), str(status),
                     None if validated is None else _parse_time(validated), _error(error))


def _eab(row: tuple[object, ...]) -> EabKey:
    ident, sealed, entry, created, account, revoked = row
    assert isinstance(sealed, bytes)
    return EabKey(str(ident), sealed,
                  None if entry is None else str(entry), _parse_time(created),
                  None if account is None else str(account),
                  None if revoked is None else _parse_time(revoked))


def _moving(machine: Any, status: str) -> tuple[str, tuple[str, ...]]:
    """The `status IN (...)` clause of a move to `status`, and its parameters."""
    olds = states.before(machine, status)
    return f"status IN ({', '.join('?' * len(olds))})", olds


class AcmeStore:
    """The ACME records, in the caller's transaction or read snapshot."""

    def __init__(self, records: Records) -> None:
        self.records = records

    # --- nonces ---------------------------------------------------------------------------

    def secret(self, name: str) -> bytes | None:
        row = self.records.row("SELECT value FROM acme_secrets WHERE name=?", (name,))
        return None if row is None else bytes(row[0])

    def keep_secret(self, name: str, value: bytes) -> bytes:
        """The secret `name`: `value` unless another front end stored one first."""
        self.records.run("INSERT INTO acme_secrets (name, value) VALUES (?, ?)"
                         " ON CONFLICT (name) DO NOTHING", (name, value))
        kept = self.secret(name)
        assert kept is not None
        return kept

    def spend_nonce(self, nonce: str, expires: int, now: float) -> bool:
        """False when the nonce was spent before."""
        self.records.run("DELETE FROM acme_nonces WHERE expires<?", (int(now),))
        return self.records.run("INSERT INTO acme_nonces (nonce, expires) VALUES (?, ?)"
                                " ON CONFLICT (nonce) DO NOTHING", (nonce, expires)) == 1

    # --- accounts -------------------------------------------------------------------------

    def add_account(self, account: Account) -> bool:
        """False when an account holds the key already (another front end's, just now)."""
        return self.records.run(
            f"INSERT INTO acme_accounts ({_ACCOUNT}) VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (thumbprint) DO NOTHING",
            (account.id, account.thumbprint, account.jwk, json.dumps(list(account.contact)),
             account.status, _time(account.created))) == 1

    def account(self, ident: str) -> Account | None:
        row = self.records.row(f"SELECT {_ACCOUNT} FROM acme_accounts WHERE id=?", (ident,))
        return None if row is None else _account(row)

    def account_by_key(self, thumbprint: str) -> Account | None:
        row = self.records.row(f"SELECT {_ACCOUNT} FROM acme_accounts WHERE thumbprint=?",
                               (thumbprint,))
        return None if row is None else _account(row)

    def accounts(self) -> list[Account]:
        return [_account(row) for row in self.records.rows(
            f"SELECT {_ACCOUNT} FROM acme_accounts ORDER BY created, id")]

    def set_contact(self, ident: str, contact: tuple[str, ...]) -> None:
        self.records.run("UPDATE acme_accounts SET contact=? WHERE id=? AND status='valid'",
                         (json.dumps(list(contact)), ident))

    def deactivate_account(self, ident: str) -> bool:
        """The account deactivated and its pending and ready orders ended
        (RFC 8555 §7.3.6); False when it was not valid."""
        clause, olds = _moving(states.ACCOUNT, "deactivated")
        if self.records.run(f"UPDATE acme_accounts SET status='deactivated' WHERE id=?"
                            f" AND {clause}", (ident, *olds)) != 1:
            return False
        self.records.run("UPDATE acme_orders SET status='invalid', error=? WHERE account=?"
                         " AND status IN ('pending', 'ready')",
                         (json.dumps({"type": "urn:ietf:params:acme:error:unauthorized",
                                      "detail": "the account was deactivated"}), ident))
        return True

    def note_new_account(self, address: str, now: dt.datetime, since: dt.datetime) -> None:
        """A new account from `address`; notes older than `since` are pruned."""
        self.records.run("DELETE FROM acme_new_accounts WHERE created<?", (_time(since),))
        self.records.run("INSERT INTO acme_new_accounts (address, created) VALUES (?, ?)",
                         (address, _time(now)))

    def accounts_since(self, address: str, since: dt.datetime) -> int:
        row = self.records.row("SELECT count(*) FROM acme_new_accounts WHERE address=?"
                               " AND created>=?", (address, _time(since)))
        return 0 if row is None else int(row[0])

    def change_key(self, ident: str, thumbprint: str, jwk: str) -> bool:
        """False when another account holds the new key."""
        if self.account_by_key(thumbprint) is not None:
            return False
        return self.records.run("UPDATE acme_accounts SET thumbprint=?, jwk=? WHERE id=?"
                                " AND status='valid'", (thumbprint, jwk, ident)) == 1

    # --- external account binding ---------------------------------------------------------

    def add_eab_key(self, key: EabKey) -> None:
        self.records.run(f"INSERT INTO acme_eab_keys ({_EAB}) VALUES (?, ?, ?, ?, ?, ?)",
                         (key.id, key.sealed, key.entry, _time(key.created), None, None))

    def eab_key(self, ident: str) -> EabKey | None:
        row = self.records.row(f"SELECT {_EAB} FROM acme_eab_keys WHERE id=?", (ident,))
        return None if row is None else _eab(row)

    def eab_keys(self) -> list[EabKey]:
        return [_eab(row) for row in self.records.rows(
            f"SELECT {_EAB} FROM acme_eab_keys ORDER BY created, id")]

    def bind(self, ident: str, account: str) -> bool:
        """False when the key is unknown, revoked or bound already."""
        return self.records.run("UPDATE acme_eab_keys SET account=? WHERE id=?"
                                " AND account IS NULL AND revoked IS NULL",
                                (account, ident)) == 1

    def revoke_eab_key(self, ident: str, now: dt.datetime) -> bool:
        """False when the key is unknown or revoked already."""
        return self.records.run("UPDATE acme_eab_keys SET revoked=? WHERE id=?"
                                " AND revoked IS NULL", (_time(now), ident)) == 1

    def account_entry(self, account: str) -> str | None:
        """The directory entry the account is bound to, through its binding key."""
        row = self.records.row("SELECT entry FROM acme_eab_keys WHERE account=?", (account,))
        return None if row is None or row[0] is None else str(row[0])

    # --- orders ---------------------------------------------------------------------------

    def add_order(self, order: Order, authorizations: tuple[Authorization, ...],
                  challenges: tuple[Challenge, ...]) -> None:
        self.records.run(
            f"INSERT INTO acme_orders ({_ORDER}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (order.id, order.account, order.status, _time(order.created), _time(order.expires),
             json.dumps([list(i) for i in order.identifiers]), None, None, None))
        for a in authorizations:
            self.records.run(
                f"INSERT INTO acme_authorizations ({_AUTHORIZATION})"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (a.id, a.order, a.type, a.value, int(a.wildcard), a.status, _time(a.created),
                 _time(a.expires)))
        for c in challenges:
            self.records.run(f"INSERT INTO acme_challenges ({_CHALLENGE})"
                             " VALUES (?, ?, ?, ?, ?, ?, ?)",
                             (c.id, c.authorization, c.type, c.token, c.status, None, None))

    def order(self, ident: str) -> Order | None:
        row = self.records.row(f"SELECT {_ORDER} FROM acme_orders WHERE id=?", (ident,))
        return None if row is None else _order(row)

    def orders(self, account: str) -> list[Order]:
        return [_order(row) for row in self.records.rows(
            f"SELECT {_ORDER} FROM acme_orders WHERE account=? ORDER BY created, id",
            (account,))]

    def listed_orders(self, account: str, offset: int, limit: int) -> list[str]:
        """The ids of the account's orders that are not invalid, from the `offset`th on,
        at most `limit` of them."""
        return [str(row[0]) for row in self.records.rows(
            "SELECT id FROM acme_orders WHERE account=? AND status<>'invalid'"
            " ORDER BY created, id LIMIT ? OFFSET ?", (account, limit, offset))]

    def order_of_serial(self, serial: int) -> Order | None:
        row = self.records.row(f"SELECT {_ORDER} FROM acme_orders WHERE serial=?",
                               (serial_text(serial),))
        return None if row is None else _order(row)

    def set_order_status(self, ident: str, status: str,
                         error: dict[str, Any] | None = None) -> bool:
        clause, olds = _moving(states.ORDER, status)
        return self.records.run(
            f"UPDATE acme_orders SET status=?, error=? WHERE id=? AND {clause}",
            (status, None if error is None else json.dumps(error), ident, *olds)) == 1

    def finalize(self, ident: str, request: int, serial: int | None) -> bool:
        """A ready order valid with its certificate (or processing while its request
        waits for an officer); False when it is no longer ready."""
        status = "processing" if serial is None else "valid"
        return self.records.run(
            "UPDATE acme_orders SET status=?, request=?, serial=? WHERE id=? AND status='ready'",
            (status, request, None if serial is None else serial_text(serial), ident)) == 1

    # --- authorizations and challenges ------------------------------------------------------

    def authorization(self, ident: str) -> Authorization | None:
        row = self.records.row(
            f"SELECT {_AUTHORIZATION} FROM acme_authorizations WHERE id=?", (ident,))
        return None if row is None else _authorization(row)

    def authorizations(self, order: str) -> list[Authorization]:
        return [_authorization(row) for row in self.records.rows(
            f"SELECT {_AUTHORIZATION} FROM acme_authorizations WHERE order_id=? ORDER BY id",
            (order,))]

    def set_authorization_status(self, ident: str, status: str) -> bool:
        clause, olds = _moving(states.AUTHORIZATION, status)
        return self.records.run(
            f"UPDATE acme_authorizations SET status=? WHERE id=? AND {clause}",
            (status, ident, *olds)) == 1

    def challenge(self, ident: str) -> Challenge | None:
        row = self.records.row(f"SELECT {_CHALLENGE} FROM acme_challenges WHERE id=?",
                               (ident,))
        return None if row is None else _challenge(row)

    def challenges(self, authorization: str) -> list[Challenge]:
        return [_challenge(row) for row in self.records.rows(
            f"SELECT {_CHALLENGE} FROM acme_challenges WHERE authorization_id=? ORDER BY type",
            (authorization,))]

    def processing(self) -> list[tuple[Challenge, Authorization, str]]:
        """Every challenge being validated, with its authorization and the thumbprint of
        its account's key."""
        found = []
        for challenge, authorization, thumbprint in self.records.rows(
                "SELECT c.id, a.id, k.thumbprint FROM acme_challenges c"
                " JOIN acme_authorizations a ON a.id=c.authorization_id"
                " JOIN acme_orders o ON o.id=a.order_id JOIN acme_accounts k ON k.id=o.account"
                " WHERE c.status='processing' ORDER BY c.id"):
            made, parent = self.challenge(str(challenge)), self.authorization(str(authorization))
            assert made is not None and parent is not None
            found.append((made, parent, str(thumbprint)))
        return found

    def set_challenge_status(self, ident: str, status: str, when: dt.datetime | None = None,
                             error: dict[str, Any] | None = None) -> bool:
        clause, olds = _moving(states.CHALLENGE, status)
        return self.records.run(
            f"UPDATE acme_challenges SET status=?, validated=?, error=? WHERE id=? AND {clause}",
            (status, None if when is None else _time(when),
             None if error is None else json.dumps(error), ident, *olds)) == 1

    # --- rate limits ----------------------------------------------------------------------

    def orders_since(self, account: str, since: dt.datetime) -> int:
        row = self.records.row("SELECT count(*) FROM acme_orders WHERE account=? AND created>=?",
                               (account, _time(since)))
        return 0 if row is None else int(row[0])

    def names_since(self, values: tuple[str, ...], since: dt.datetime) -> dict[str, int]:
        """How many authorizations each identifier value got since `since`."""
        counts: dict[str, int] = {}
        for value in values:
            params: tuple[Param, ...] = (value, _time(since))
            row = self.records.row("SELECT count(*) FROM acme_authorizations"
                                   " WHERE value=? AND created>=?", params)
            counts[value] = 0 if row is None else int(row[0])
        return counts
