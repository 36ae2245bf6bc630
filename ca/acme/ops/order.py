"""Orders: newOrder, the order URL, finalize, the certificate (RFC 8555 §7.4, §7.4.2).

- newOrder takes 1 to `MAX_IDENTIFIERS` identifiers of type dns or ip
  (RFC 8738); another type is unsupportedIdentifier, a value the
  identifier rules refuse (`ca.acme.identifiers`) rejectedIdentifier, and
  so is one the policy (`ca.acme.allowed`) does not allow or no offered
  challenge validates, with one subproblem per identifier refused
  (§6.7.1). `notBefore`/`notAfter` are not supported (malformed):
  validity comes from the profile. Duplicates count once.
- Each identifier gets one authorization with the challenges validation
  offers for it (`ca.acme.validation.offered`: http-01 and tls-alpn-01,
  dns-01 when a resolver is configured; RFC 8738 §7: none for ip; a
  wildcard dns-01 only, so without a resolver it is rejectedIdentifier).
  The order is 201 with its Location.
- Rate limits, counted in the transaction that adds the order so front ends
  agree: at most `orders_per_account` orders per account and
  `orders_per_identifier` authorizations per identifier value within the
  window; over is rateLimited (429, Retry-After).
- Only the account that made an order reads it, finalizes it or downloads
  its certificate; another is unauthorized.
- finalize (§7.4): the order must be ready (every authorization valid),
  else orderNotReady (403). The CSR (base64url DER) must name exactly the
  order's identifiers: its dNSName and iPAddress SANs are that set, and a
  commonName, if any, is one of them; else badCSR. It then goes through the
  CA's request path (`ca.issue.prepare` on the pool, profile
  `ca.acme.profile`, origin ACME, its policy module deciding), and
  `ca.issue.commit` records it in the transaction that sets the order
  valid with the certificate's serial: both or neither. An account bound
  to a directory entry (its external account binding key named one,
  `ca.acme.eab`) has its certificates issued for that entry as `certdir ca
  submit --entry` issues them: recorded as the entry's, published into it
  as the profile's `publish` says, in that same transaction; an entry gone
  is unauthorized. An unbound account's certificates belong to no entry
  and are published nowhere. A refused CSR
  (weak key, bad signature) is badCSR and records nothing. A request the
  policy keeps pending leaves the order processing: once an officer issues
  it the order reads valid, once denied invalid.
- The certificate (§7.4.2) is `application/pem-certificate-chain`: the
  certificate, then the CA chain up to the root.
- An order or authorization past its expiry reads invalid (expired).
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from ca.acme import states
from ca.acme.calls import Call, Reply
from ca.acme.identifiers import Identifier
from ca.acme.jws import b64decode, b64encode
from ca.acme.order_status import effective
from ca.acme.problems import AcmeProblem
from ca.acme.store import AcmeStore, Authorization, Challenge, Order, new_id
from ca.acme.validation import offered
from ca.errors import CAError
from ca.issue import Outcome, Prepared, commit, holder_entry, prepare
from ca.policy import Decision, Origin
from ca.profiles import profile
from ca.store import Store, serial_text
from directory.backend import Records, Transaction
from directory.publisher import DirectoryWriter

log = logging.getLogger("certdir.acme")

MAX_IDENTIFIERS = 100
TOKEN_BYTES = 32
PEM_CHAIN = b"application/pem-certificate-chain"


def _identifiers(payload: dict[str, Any]) -> tuple[Identifier, ...]:
    given = payload.get("identifiers")
    if not isinstance(given, list) or not 0 < len(given) <= MAX_IDENTIFIERS:
        raise AcmeProblem("malformed", f"identifiers is a list of 1 to {MAX_IDENTIFIERS}")
    found: dict[Identifier, None] = {}
    for item in given:
        if not isinstance(item, dict) or set(item) != {"type", "value"}:
            raise AcmeProblem("malformed", "an identifier is {type, value}")
        found[Identifier(item["type"], item["value"])] = None
    return tuple(found)


def _refusal(call: Call, identifier: Identifier) -> str | None:
    """Why `identifier` cannot be ordered, or None."""
    policy = call.acme.config.policy
    if not policy.allows(identifier):
        return f"{identifier.value} is not an identifier this CA issues for"
    if not offered(policy, identifier):
        return f"{identifier.value}: no challenge this server offers validates it"
    return None


def _refused(call: Call, identifiers: tuple[Identifier, ...]) -> None:
    refused = [AcmeProblem("rejectedIdentifier", why,
                           identifier={"type": i.type, "value": i.value})
               for i in identifiers if (why := _refusal(call, i)) is not None]
    if refused:
        raise AcmeProblem("rejectedIdentifier",
                          "; ".join(p.detail for p in refused), subproblems=tuple(refused))


def _check_limits(call: Call, store: AcmeStore, identifiers: tuple[Identifier, ...]) -> None:
    limits = call.acme.config.limits
    window = limits.window_minutes * 60
    since = call.now - dt.timedelta(seconds=window)
    retry = {b"Retry-After": str(window).encode()}
    if store.orders_since(call.by().id, since) >= limits.orders_per_account:
        raise AcmeProblem("rateLimited", f"at most {limits.orders_per_account} orders per "
                          f"account in {limits.window_minutes} minutes", 429, headers=retry)
    counts = store.names_since(tuple(i.name for i in identifiers), since)
    over = sorted(name for name, count in counts.items()
                  if count >= limits.orders_per_identifier)
    if over:
        raise AcmeProblem("rateLimited", f"at most {limits.orders_per_identifier} orders for "
                          f"{', '.join(over)} in {limits.window_minutes} minutes", 429,
                          headers=retry)


def _new(call: Call, identifiers: tuple[Identifier, ...]) -> tuple[
        Order, tuple[Authorization, ...], tuple[Challenge, ...]]:
    expires = call.now + dt.timedelta(days=call.acme.config.order_days)
    order = Order(new_id(), call.by().id, "pending", call.now, expires,
                  tuple((i.type, i.value) for i in identifiers), None, None, None)
    authorizations, challenges = [], []
    for identifier in identifiers:
        authorization = Authorization(new_id(), order.id, identifier.type, identifier.name,
                                      identifier.wildcard, "pending", call.now,
                                      expires)
        authorizations.append(authorization)
        challenges += [Challenge(new_id(), authorization.id, kind,
                                 b64encode(secrets.token_bytes(TOKEN_BYTES)), "pending", None,
                                 None)
                       for kind in offered(call.acme.config.policy, identifier)]
    return order, tuple(authorizations), tuple(challenges)


async def new_order(call: Call) -> Reply:
    payload = call.signed().object()
    if "notBefore" in payload or "notAfter" in payload:
        raise AcmeProblem("malformed", "notBefore and notAfter are not supported: the "
                          "profile sets the validity")
    identifiers = _identifiers(payload)
    _refused(call, identifiers)
    order, authorizations, challenges = _new(call, identifiers)

    def add(txn: Transaction) -> None:
        store = AcmeStore(txn.records)
        _check_limits(call, store, identifiers)
        store.add_order(order, authorizations, challenges)

    await call.acme.write(add)
    return Reply(201, order_object(call, order, authorizations, order.status, order.serial),
                 location=call.urls.order(order.id))


def order_object(call: Call, order: Order, authorizations: tuple[Authorization, ...] | list[
        Authorization], status: str, serial: int | None,
                 error: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "status": status,
        "expires": order.expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "identifiers": [{"type": t, "value": v} for t, v in order.identifiers],
        "authorizations": [call.urls.authorization(a.id) for a in authorizations],
        "finalize": call.urls.finalize(order.id),
    }
    if serial is not None:
        body["certificate"] = call.urls.certificate(serial)
    if error is not None:
        body["error"] = error
    return body


def owned_order(call: Call, records: Records, ident: str) -> Order:
    order = AcmeStore(records).order(ident)
    if order is None:
        raise AcmeProblem("malformed", "no such order", 404)
    if order.account != call.by().id:
        raise AcmeProblem("unauthorized", "this order is another account's", 403)
    return order


def _answer(call: Call, records: Records, order: Order) -> Reply:
    status, serial, error = effective(records, order, call.now)
    authorizations = AcmeStore(records).authorizations(order.id)
    return Reply(200, order_object(call, order, authorizations, status, serial, error),
                 location=call.urls.order(order.id),
                 retry_after=1 if status == "processing" else None)


async def read_order(call: Call) -> Reply:
    with call.acme.web.dsa.backend.reading() as records:
        return _answer(call, records, owned_order(call, records, call.id()))


def _csr_names(csr: x509.CertificateSigningRequest) -> tuple[set[tuple[str, str]], set[str]]:
    """The (type, value) pairs of the CSR's SANs, and its commonNames."""
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        san = x509.SubjectAlternativeName([])
    names = {("dns", v.lower()) for v in san.get_values_for_type(x509.DNSName)}
    names |= {("ip", str(v)) for v in san.get_values_for_type(x509.IPAddress)}
    common = {str(a.value).lower() for a in csr.subject.get_attributes_for_oid(
        NameOID.COMMON_NAME)}
    return names, common


def _check_csr(order: Order, der: bytes) -> None:
    try:
        csr = x509.load_der_x509_csr(der)
    except ValueError:
        raise AcmeProblem("badCSR", "the csr is not a DER PKCS#10 request") from None
    names, common = _csr_names(csr)
    wanted = {(t, v.lower()) for t, v in order.identifiers}
    if names != wanted:
        extra = sorted(v for _, v in names - wanted)
        missing = sorted(v for _, v in wanted - names)
        raise AcmeProblem("badCSR", "the CSR's names differ from the order's identifiers"
                          + (f"; not ordered: {', '.join(extra)}" if extra else "")
                          + (f"; missing: {', '.join(missing)}" if missing else ""))
    stray = common - {v for _, v in wanted}
    if stray:
        raise AcmeProblem("badCSR", f"the CSR's commonName {sorted(stray)[0]} was not ordered")


async def finalize(call: Call) -> Reply:
    acme, web = call.acme, call.acme.web
    with web.dsa.backend.reading() as records:
        order = owned_order(call, records, call.id())
        status, _, _ = effective(records, order, call.now)
        holder = AcmeStore(records).account_entry(call.by().id)
    if status != "ready":
        raise AcmeProblem("orderNotReady", f"the order is {status}, not ready", 403)
    csr = b64decode(call.signed().object().get("csr"), "csr")
    _check_csr(order, csr)
    authority = web.authority
    web.dsa.refresh()
    try:
        entry = holder_entry(web.dsa, holder)
    except CAError as e:
        raise AcmeProblem("unauthorized", f"the account is bound to {holder}: {e}", 403) \
            from None
    try:
        chosen = profile(authority.config.profiles, acme.config.policy.profile)
        prepared: Prepared = await web.slow(prepare, authority, csr, chosen, entry,
                                            Origin.ACME, call.now)
    except CAError as e:
        raise AcmeProblem("badCSR", str(e)) from None
    actor = f"acme:{call.by().id}"

    def record(txn: Transaction) -> Outcome:
        writer = DirectoryWriter(web.dsa, txn, web.dsa.parse_dn(authority.entry_dn))
        outcome = commit(writer, prepared, call.now)
        store = AcmeStore(txn.records)
        serial = None if outcome.certificate is None else outcome.certificate.serial_number
        if outcome.decision is Decision.DENY:
            moved = store.set_order_status(order.id, "invalid", AcmeProblem(
                "unauthorized", f"the CA's policy refused it: {outcome.why}", 403).document())
        else:
            moved = store.finalize(order.id, outcome.request, serial)
        if not moved:
            raise AcmeProblem("orderNotReady", "the order was finalized meanwhile", 403)
        web.audit(txn.records, actor, f"ca.{outcome.decision.value}",
                  order.identifiers[0][1], {"request": outcome.request, "profile": chosen.name,
                                            "serial": None if serial is None
                                            else serial_text(serial)}, call.now)
        return outcome

    try:
        outcome = await acme.write(record)
    except CAError as e:
        raise AcmeProblem("badCSR", str(e)) from None
    log.info("ACME order %s finalized: request %d %s", order.id, outcome.request,
             outcome.decision.value)
    with web.dsa.backend.reading() as records:
        return _answer(call, records, owned_order(call, records, order.id))


def certificate_order(call: Call, records: Records, serial: int) -> Order:
    """The account's order that issued `serial` (directly, or by an officer's approval)."""
    store = AcmeStore(records)
    order = store.order_of_serial(serial)
    if order is None:
        order = next((o for o in store.orders(call.by().id) if o.status == "processing"
                      and effective(records, o, call.now)[1] == serial), None)
    if order is None:
        raise AcmeProblem("malformed", "no certificate of an ACME order has this serial", 404)
    if order.account != call.by().id:
        raise AcmeProblem("unauthorized", "this certificate is another account's", 403)
    return order


async def certificate(call: Call) -> Reply:
    web = call.acme.web
    try:
        serial = int(call.id(), 16)
    except ValueError:
        raise AcmeProblem("malformed", "no such certificate", 404) from None
    with web.dsa.backend.reading() as records:
        certificate_order(call, records, serial)
        der = Store(records).certificate(serial).der
    leaf = x509.load_der_x509_certificate(der)
    chain = b"".join(c.public_bytes(Encoding.PEM) for c in (leaf, *web.authority.chain))
    return Reply(200, chain, PEM_CHAIN)


def advance(store: AcmeStore, order: str) -> None:
    """A pending order's status after one of its authorizations changed."""
    status = states.order_from(a.status for a in store.authorizations(order))
    if status != "pending":
        store.set_order_status(order, status)
