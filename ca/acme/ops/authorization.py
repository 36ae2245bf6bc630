"""Authorizations and challenges (RFC 8555 §7.5, §7.5.1, §8).

- Only the account whose order holds an authorization reads it or answers
  its challenges; another is unauthorized.
- POST-as-GET reads; `{"status": "deactivated"}` to an authorization
  deactivates it (§7.5.2), which makes its order invalid.
- Any JSON object (`{}`) posted to a pending challenge of a pending
  authorization starts its validation: the challenge moves to processing
  in one write (so two front ends never both start it), and validation
  runs in the background (`ca.acme.validation.validate`, with the key
  authorization token || '.' || the account key's thumbprint, §8.1). The
  answer is the challenge, processing, with `Link: rel="up"` to its
  authorization (§7.5.1). Posting again changes nothing.
- When validation ends: valid makes the challenge valid (with `validated`)
  and the authorization valid, and the order ready once every one of its
  authorizations is; failure makes the challenge invalid with the problem
  validation raised as its `error`, and the authorization and the order
  invalid (§7.1.6: one failed challenge ends the authorization). Only the
  validation that moves the challenge out of processing records anything.
- A challenge left processing by a server that stopped (killed, crashed)
  while validating it is validated again when the https service starts
  (`resume`), so it never stays processing until it expires. On several
  front ends of one database one starting may validate again a challenge
  another is validating: the first to finish decides, the other records
  nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from twisted.internet.defer import Deferred

from ca.acme.calls import Call, Reply
from ca.acme.context import Acme
from ca.acme.identifiers import WILDCARD, Identifier
from ca.acme.ops.order import advance, owned_order
from ca.acme.problems import AcmeProblem
from ca.acme.store import AcmeStore, Authorization, Challenge
from ca.acme.validation import validate
from directory.backend import Records, Transaction

log = logging.getLogger("certdir.acme")


def _when(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def challenge_object(call: Call, challenge: Challenge) -> dict[str, Any]:
    body: dict[str, Any] = {"type": challenge.type, "url": call.urls.challenge(challenge.id),
                            "status": challenge.status, "token": challenge.token}
    if challenge.validated is not None:
        body["validated"] = _when(challenge.validated)
    if challenge.error is not None:
        body["error"] = challenge.error
    return body


def _status(authorization: Authorization, now: dt.datetime) -> str:
    if authorization.status in ("pending", "valid") and authorization.expires <= now:
        return "expired"
    return authorization.status


def authorization_object(call: Call, records: Records,
                         authorization: Authorization) -> dict[str, Any]:
    body: dict[str, Any] = {
        "identifier": {"type": authorization.type, "value": authorization.value},
        "status": _status(authorization, call.now),
        "expires": _when(authorization.expires),
        "challenges": [challenge_object(call, c)
                       for c in AcmeStore(records).challenges(authorization.id)],
    }
    if authorization.wildcard:
        body["wildcard"] = True
    return body


def _owned(call: Call, records: Records, ident: str) -> Authorization:
    authorization = AcmeStore(records).authorization(ident)
    if authorization is None:
        raise AcmeProblem("malformed", "no such authorization", 404)
    owned_order(call, records, authorization.order)
    return authorization


async def authorization(call: Call) -> Reply:
    acme = call.acme
    payload = call.signed().json()
    with acme.web.dsa.backend.reading() as records:
        found = _owned(call, records, call.id())
    if payload is not None:
        if payload != {"status": "deactivated"}:
            raise AcmeProblem("malformed", "an authorization can only become deactivated")

        def deactivate(txn: Transaction) -> None:
            store = AcmeStore(txn.records)
            if store.set_authorization_status(found.id, "deactivated"):
                advance(store, found.order)

        await acme.write(deactivate)
    with acme.web.dsa.backend.reading() as records:
        again = AcmeStore(records).authorization(found.id)
        assert again is not None
        return Reply(200, authorization_object(call, records, again))


async def challenge(call: Call) -> Reply:
    acme = call.acme
    payload = call.signed().json()
    if payload is not None and not isinstance(payload, dict):
        raise AcmeProblem("malformed", "a challenge is answered with a JSON object")
    with acme.web.dsa.backend.reading() as records:
        store = AcmeStore(records)
        found = store.challenge(call.id())
        if found is None:
            raise AcmeProblem("malformed", "no such challenge", 404)
        parent = _owned(call, records, found.authorization)
    if (payload is not None and found.status == "pending"
            and _status(parent, call.now) == "pending"):
        started = await acme.write(lambda txn: AcmeStore(txn.records).set_challenge_status(
            found.id, "processing"))
        if started:
            key_authorization = f"{found.token}.{call.by().thumbprint}"
            _validating(acme, found, parent, key_authorization)
    with acme.web.dsa.backend.reading() as records:
        now = AcmeStore(records).challenge(found.id)
    assert now is not None
    return Reply(200, challenge_object(call, now),
                 links=((call.urls.authorization(parent.id), "up"),))


def resume(acme: Acme) -> Deferred[None]:
    """Validate again every challenge left processing."""
    async def steps() -> None:
        with acme.reading() as store:
            left = store.processing()
        for found, parent, thumbprint in left:
            log.info("ACME challenge %s (%s of %s) was left processing: validating it again",
                     found.id, found.type, parent.value)
            _validating(acme, found, parent, f"{found.token}.{thumbprint}")

    return Deferred.fromCoroutine(steps())


def _validating(acme: Acme, found: Challenge, parent: Authorization,
                key_authorization: str) -> Deferred[None]:
    async def steps() -> None:
        error: dict[str, Any] | None = None
        try:
            await validate(acme.config.policy, found.type,
                           Identifier(parent.type, WILDCARD * parent.wildcard + parent.value),
                           found.token,
                           key_authorization)
        except AcmeProblem as problem:
            error = problem.document()
        except Exception:
            log.exception("validating challenge %s", found.id)
            error = AcmeProblem("serverInternal", "validation failed here", 500).document()
        when = acme.now

        def record(txn: Transaction) -> None:
            store = AcmeStore(txn.records)
            if error is None:
                moved = store.set_challenge_status(found.id, "valid", when)
            else:
                moved = store.set_challenge_status(found.id, "invalid", None, error)
            if moved:
                store.set_authorization_status(parent.id, "invalid" if error else "valid")
                advance(store, parent.order)

        await acme.write(record)
        log.info("ACME challenge %s (%s of %s): %s", found.id, found.type, parent.value,
                 "valid" if error is None else f"invalid, {error.get('detail')}")

    running = Deferred.fromCoroutine(steps())
    running.addErrback(lambda failure: log.error("recording challenge %s: %s", found.id,
                                                 failure.getErrorMessage()))
    return running
