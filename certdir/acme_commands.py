"""`certdir ca acme list|show|deactivate`: the ACME server's accounts and orders;
`certdir ca acme-eab create|list|revoke`: its external account binding keys.

- Offline, on the data directory's database, while the server runs or not:
  reads are one snapshot, a deactivation one transaction (the server sees
  it at the account's next request: accounts are read at every request).
- `list` shows every account (id, status, contacts, orders) and every order
  (id, account, status as a client reads it now, identifiers, serial).
- `show ID` shows one account or one order (its authorizations and their
  challenges), whichever the id names.
- `deactivate ID` deactivates an account for good (RFC 8555 §7.3.6: it can
  sign nothing more, its pending and ready orders end) or makes an order
  invalid; it is an officer action,
  in the audit log.
- `acme-eab create [--entry DN]` makes a binding key (RFC 8555 §7.3.4,
  `ca.acme.eab`): it unlocks the CA key to seal the HMAC key, records it,
  and returns the key id and HMAC key, which are shown this once and
  never logged or stored in clear. With `--entry` (an entry that exists)
  the account it binds gets its certificates issued for that entry.
- `acme-eab list` shows each key's id, entry, account and state, never
  the key; `acme-eab revoke ID` stops a key from binding an account (an
  account it bound already stays: `acme deactivate` ends that). Both
  changes are officer actions, in the audit log.
"""

from __future__ import annotations

import datetime as dt

from rich.table import Table

from ca.acme import eab
from ca.acme.order_status import effective
from ca.acme.store import AcmeStore, EabKey
from ca.authority import Authority
from ca.errors import CAError
from ca.store import serial_text
from certdir.ca_writing import utc_now, writing
from certdir.config import Config
from certdir.directory_open import offline_directory
from directory.backend import Records
from directory.protocol.results import LDAPError
from kms import audit


def _when(value: dt.datetime) -> str:
    return f"{value:%Y-%m-%d %H:%M}Z"


def _status(records: Records, ident: str) -> tuple[str, int | None]:
    order = AcmeStore(records).order(ident)
    assert order is not None
    status, serial, _ = effective(records, order, utc_now())
    return status, serial


def list_all(config: Config) -> list[Table]:
    with offline_directory(config) as dsa, dsa.backend.reading() as records:
        store = AcmeStore(records)
        accounts = Table("account", "status", "contact", "created", "orders", title="accounts")
        orders = Table("order", "account", "status", "identifiers", "created", "serial",
                       title="orders")
        for account in store.accounts():
            made = store.orders(account.id)
            accounts.add_row(account.id, account.status, " ".join(account.contact),
                             _when(account.created), str(len(made)))
            for order in made:
                status, serial = _status(records, order.id)
                orders.add_row(order.id, order.account, status,
                               " ".join(v for _, v in order.identifiers), _when(order.created),
                               "" if serial is None else serial_text(serial))
    return [accounts, orders]


def show(config: Config, ident: str) -> Table:
    table = Table(show_header=False)
    with offline_directory(config) as dsa, dsa.backend.reading() as records:
        store = AcmeStore(records)
        account, order = store.account(ident), store.order(ident)
        if account is not None:
            for label, value in (("account", account.id), ("status", account.status),
                                 ("contact", " ".join(account.contact)),
                                 ("key thumbprint", account.thumbprint),
                                 ("created", _when(account.created)),
                                 ("orders", str(len(store.orders(account.id))))):
                table.add_row(label, value)
            return table
        if order is None:
            raise CAError(f"no ACME account or order {ident}")
        status, serial = _status(records, order.id)
        for label, value in (("order", order.id), ("account", order.account),
                             ("status", status),
                             ("identifiers", " ".join(f"{t}:{v}" for t, v in order.identifiers)),
                             ("created", _when(order.created)), ("expires", _when(order.expires)),
                             ("request", "" if order.request is None else str(order.request)),
                             ("serial", "" if serial is None else serial_text(serial))):
            table.add_row(label, value)
        for authorization in store.authorizations(order.id):
            challenges = ", ".join(f"{c.type} {c.status}"
                                   for c in store.challenges(authorization.id))
            table.add_row(f"authorization {authorization.id}",
                          f"{authorization.type}:{authorization.value} {authorization.status}"
                          f" ({challenges})")
        if order.error is not None:
            table.add_row("error", str(order.error.get("detail", "")))
    return table


def deactivate(config: Config, ident: str, actor: str) -> str:
    with offline_directory(config) as dsa, writing(dsa, None) as writer:
        store = AcmeStore(writer.records)
        if store.account(ident) is not None:
            if not store.deactivate_account(ident):
                raise CAError(f"ACME account {ident} is not valid")
            what = f"ACME account {ident} deactivated"
        elif store.order(ident) is not None:
            if not store.set_order_status(ident, "invalid", {
                    "type": "urn:ietf:params:acme:error:unauthorized",
                    "detail": "a CA officer ended this order"}):
                raise CAError(f"ACME order {ident} is valid or invalid already")
            what = f"ACME order {ident} made invalid"
        else:
            raise CAError(f"no ACME account or order {ident}")
        audit.record(writer.records, actor, "ca.acme-deactivate", ident, {}, utc_now())
    return what



def eab_create(config: Config, authority: Authority, entry: str | None,
               actor: str) -> tuple[str, bytes]:
    """A new binding key: its id and HMAC key (shown once by the caller)."""
    kid, key = eab.new_key()
    sealed = eab.Seal.of(authority.key).seal(kid, key)
    now = utc_now()
    with offline_directory(config) as dsa, writing(dsa, None) as writer:
        holder = None
        if entry is not None:
            try:
                holder = str(writer.require(writer.dn(entry)).dn)
            except LDAPError as e:
                raise CAError(f"--entry {entry}: {e.message}") from None
        AcmeStore(writer.records).add_eab_key(EabKey(kid, sealed, holder, now, None, None))
        audit.record(writer.records, actor, "ca.acme-eab-create", kid, {"entry": holder}, now)
    return kid, key


def eab_list(config: Config) -> Table:
    table = Table("key id", "entry", "account", "created", "state", title="ACME binding keys")
    with offline_directory(config) as dsa, dsa.backend.reading() as records:
        for key in AcmeStore(records).eab_keys():
            state = ("revoked " + _when(key.revoked) if key.revoked is not None
                     else "bound" if key.account is not None else "unused")
            table.add_row(key.id, key.entry or "", key.account or "", _when(key.created), state)
    return table


def eab_revoke(config: Config, kid: str, actor: str) -> str:
    now = utc_now()
    with offline_directory(config) as dsa, writing(dsa, None) as writer:
        if not AcmeStore(writer.records).revoke_eab_key(kid, now):
            raise CAError(f"no ACME binding key {kid}, or it is revoked already")
        audit.record(writer.records, actor, "ca.acme-eab-revoke", kid, {}, now)
    return f"ACME binding key {kid} revoked"
