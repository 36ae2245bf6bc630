"""Accounts: newAccount, the account URL, its orders, keyChange (RFC 8555 §7.3).

- newAccount is signed with a `jwk`. A key that already has an account
  gets that account, 200 with its Location (§7.3.1); with
  `onlyReturnExisting` and no account, accountDoesNotExist. Otherwise a
  new account, 201 with Location, status valid.
- With terms of service configured, a new account must set
  `termsOfServiceAgreed` true, else malformed (§7.3.3).
- An `externalAccountBinding` (§7.3.4, `ca.acme.eab`) binds the new account
  to the binding key it names: the key must exist, be unrevoked and bind
  no account yet, and its MAC verify, else unauthorized; the binding is
  recorded in the transaction that adds the account (of two accounts racing
  for one key, one gets it). With `external_account_required` a new account
  without one is externalAccountRequired. An existing account is returned
  whatever binding comes with the request.
- At most `accounts_per_address` new accounts per client address within
  the rate limits' window, counted in the transaction that adds the
  account: over is rateLimited (429, Retry-After).
- Contacts are `mailto:` URLs of one address without header fields
  (§7.3: servers need only support mailto); another scheme is
  unsupportedContact, a bad address invalidContact.
- POST to the account URL, signed by that account (a kid naming another
  account is unauthorized): an empty payload reads it (POST-as-GET), a
  `contact` replaces the contacts, `status: deactivated` deactivates it
  for good and ends its pending and ready orders (§7.3.6); later requests
  with its kid are unauthorized.
- The orders URL lists the account's orders that are not invalid (§7.1.2.1),
  `orders_per_page` of them, oldest first (to the second, then by id: one
  order of pages however many come); when more follow, a
  `Link: rel="next"` names the next page (`?cursor=N`, N the page's number
  from 0). A cursor that is not a whole number is malformed.
- keyChange (§7.3.5): the outer JWS is signed by the account (kid); its
  payload is a JWS signed by the new key (jwk), with the same `url` and no
  nonce, whose payload names the account (`account` = the kid) and the old
  key (`oldKey`, equal to the account's key). A new key that an account
  holds is 409 with that account's Location: another account's, or this
  one's when the new key is its key already (nothing changes).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ca.acme import eab
from ca.acme import jws as jws_module
from ca.acme.calls import Call, Reply
from ca.acme.problems import AcmeProblem
from ca.acme.store import Account, AcmeStore, new_id
from directory.backend import Transaction

MAILBOX = re.compile(r"[^@\s,?<>]+@[^@\s,?<>]+")
MAX_CONTACTS = 10


def _contacts(payload: dict[str, Any]) -> tuple[str, ...]:
    contact = payload.get("contact", [])
    if not isinstance(contact, list) or len(contact) > MAX_CONTACTS:
        raise AcmeProblem("malformed", f"contact is a list of at most {MAX_CONTACTS} URLs")
    for url in contact:
        if not isinstance(url, str) or not url.startswith("mailto:"):
            raise AcmeProblem("unsupportedContact", f"{url!r}: contacts are mailto: URLs")
        if not MAILBOX.fullmatch(url.removeprefix("mailto:")):
            raise AcmeProblem("invalidContact", f"{url!r} is not one mail address")
    return tuple(contact)


def account_object(call: Call, account: Account) -> dict[str, Any]:
    return {"status": account.status, "contact": list(account.contact),
            "orders": call.urls.orders(account.id)}


async def new_account(call: Call) -> Reply:
    jws, key = call.signed(), call.key
    assert key is not None
    payload = jws.object()
    with call.acme.reading() as store:
        existing = store.account_by_key(key.thumbprint)
    if existing is not None:
        return Reply(200, account_object(call, existing),
                     location=call.urls.account(existing.id))
    if payload.get("onlyReturnExisting") is True:
        raise AcmeProblem("accountDoesNotExist", "no account has this key")
    if call.acme.config.terms_of_service and payload.get("termsOfServiceAgreed") is not True:
        raise AcmeProblem("malformed", "agree to the terms of service "
                          f"({call.acme.config.terms_of_service}) with termsOfServiceAgreed")
    binding = _binding(call, payload.get("externalAccountBinding"))
    account = Account(new_id(), key.thumbprint, key.canonical, _contacts(payload), "valid",
                      call.now)
    limits = call.acme.config.limits
    window = dt.timedelta(minutes=limits.window_minutes)
    retry = {b"Retry-After": str(int(window.total_seconds())).encode()}

    def add(txn: Transaction) -> Account:
        store = AcmeStore(txn.records)
        if store.accounts_since(call.address, call.now - window) >= limits.accounts_per_address:
            raise AcmeProblem("rateLimited", f"at most {limits.accounts_per_address} new "
                              f"accounts per client address in {limits.window_minutes} minutes",
                              429, headers=retry)
        if not store.add_account(account):
            found = store.account_by_key(account.thumbprint)
            assert found is not None
            return found
        if binding is not None and not store.bind(binding, account.id):
            raise AcmeProblem("unauthorized", "the external account binding's key binds "
                              "another account", 403)
        store.note_new_account(call.address, call.now, call.now - window)
        return account

    made = await call.acme.write(add)
    return Reply(201 if made is account else 200, account_object(call, made),
                 location=call.urls.account(made.id))


def _binding(call: Call, value: object) -> str | None:
    """The id of the binding key `value` proves, checked as far as a read can; None
    without one (when none is required)."""
    if value is None:
        if call.acme.config.external_account_required:
            raise AcmeProblem("externalAccountRequired", "this server requires an external "
                              "account binding (certdir ca acme-eab create)")
        return None
    assert call.key is not None
    binding = eab.parse(value, call.url, call.key)
    with call.acme.reading() as store:
        found = store.eab_key(binding.kid)
    if found is None or found.revoked is not None or found.account is not None:
        raise AcmeProblem("unauthorized", "the external account binding's key is unknown, "
                          "revoked or bound already", 403)
    binding.verify(call.acme.seal.open(found.id, found.sealed))
    return found.id


def _own(call: Call) -> Account:
    account = call.by()
    if account.id != call.ident:
        raise AcmeProblem("unauthorized", "a request for an account is signed by it", 403)
    return account


async def update_account(call: Call) -> Reply:
    account = _own(call)
    payload = call.signed().json()
    if payload is None:
        return Reply(200, account_object(call, account), location=call.urls.account(account.id))
    if not isinstance(payload, dict):
        raise AcmeProblem("malformed", "the payload is not a JSON object")
    status = payload.get("status")
    if status not in (None, "deactivated"):
        raise AcmeProblem("malformed", "an account's status can only become deactivated")
    contact = _contacts(payload) if "contact" in payload else None

    def change(txn: Transaction) -> Account | None:
        store = AcmeStore(txn.records)
        if contact is not None:
            store.set_contact(account.id, contact)
        if status == "deactivated":
            store.deactivate_account(account.id)
        return store.account(account.id)

    changed = await call.acme.write(change)
    assert changed is not None
    return Reply(200, account_object(call, changed), location=call.urls.account(account.id))


def _cursor(url: str) -> int:
    given = parse_qs(urlsplit(url).query).get("cursor", ["0"])
    if len(given) != 1 or not (given[0].isascii() and given[0].isdigit()):
        raise AcmeProblem("malformed", "cursor is the number of a page of orders")
    return int(given[0])


async def orders(call: Call) -> Reply:
    account = _own(call)
    cursor, size = _cursor(call.url), call.acme.config.orders_per_page
    with call.acme.reading() as store:
        found = store.listed_orders(account.id, cursor * size, size + 1)
    links = (((call.urls.orders(account.id, cursor + 1), "next"),) if len(found) > size
             else ())
    return Reply(200, {"orders": [call.urls.order(ident) for ident in found[:size]]},
                 links=links)


async def key_change(call: Call) -> Reply:
    account, outer = call.by(), call.signed()
    inner = jws_module.parse(outer.object(), inner=True)
    if inner.jwk is None:
        raise AcmeProblem("malformed", "the inner JWS of keyChange is signed with a jwk")
    inner.verify(inner.jwk)
    if inner.url != outer.url:
        raise AcmeProblem("malformed", "the inner JWS's url differs from the outer's")
    payload = inner.object()
    if payload.get("account") != outer.kid:
        raise AcmeProblem("malformed", "the inner payload's account is not the signer's")
    try:
        old = jws_module.Jwk.parse(payload.get("oldKey"))
    except AcmeProblem:
        raise AcmeProblem("malformed", "oldKey is not a usable JWK") from None
    if old.thumbprint != account.thumbprint:
        raise AcmeProblem("malformed", "oldKey is not the account's key")
    new = inner.jwk
    if new.thumbprint == account.thumbprint:
        raise AcmeProblem("malformed", "the new key is this account's key already", 409,
                          headers={b"Location": call.urls.account(account.id).encode()})

    def change(txn: Transaction) -> Account | None:
        store = AcmeStore(txn.records)
        if store.change_key(account.id, new.thumbprint, new.canonical):
            return None
        return store.account_by_key(new.thumbprint)

    holder = await call.acme.write(change)
    if holder is not None:
        raise AcmeProblem("malformed", "another account holds the new key", 409,
                          headers={b"Location": call.urls.account(holder.id).encode()})
    with call.acme.reading() as store:
        changed = store.account(account.id)
    assert changed is not None
    return Reply(200, account_object(call, changed), location=call.urls.account(account.id))
