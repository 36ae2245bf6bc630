"""The officer pages: the pending queue, approve and deny, revoke, hold and release.

- Only for the DNs of `ca.officers`, logged in with their own entry's
  password (`ca.web.login`); anyone else is 403, before anything is read.
- `/officer` shows the pending requests, forms to revoke (by serial, or
  every valid certificate of a person given by entry DN or mail address)
  with an RFC 5280 §5.3.1 reason, to put a certificate on hold
  (certificateHold) and to release it, and the last `RECENT`
  certificates issued.
- Each action is a POST to `/officer/<action>` (approve, deny, revoke,
  hold, release) with the CSRF token, runs in the directory's writer
  through `ca.issue` / `ca.revoke`, is recorded in the audit log with the
  officer's DN in the same transaction, and answers 303 back to
  `/officer` with what was done. An approval's certificate is signed on
  the pool before that transaction (`ca.issue.prepare_approval`). A
  refused action (a request not pending, an unknown serial, a certificate
  already revoked, a deny without a reason) is 400 naming the problem;
  nothing changes.
- Revoke, hold and release are followed by a new full and delta CRL, as
  `certdir ca revoke` does: read after the change committed, signed on the
  pool, recorded by the writer (`ca.crl.renew`); the public folder's CRL
  files are written after that (the `crls_published` hook). Should the CRLs
  fail, the change stands and the officer is told so (`certdir ca crl`
  makes them at once, the server's CRL schedule when they are due).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from cryptography import x509
from twisted.internet.defer import Deferred
from twisted.web.server import Request

from ca import crl, revoke
from ca.errors import CAError
from ca.issue import commit, deny_request, pending_request, prepare_approval
from ca.store import IssuedRecord, Store, parse_serial, serial_text
from ca.web.address_book import by_mail
from ca.web.page import Answer, Page, Visit, field, refusing, rest
from ca.web.refusal import Refused
from directory.publisher import DirectoryWriter

RECENT = 20
# The reasons an officer may give for a final revocation (hold has its own form).
REVOKE_REASONS = tuple(flag.value for flag in revoke.REASONS.values()
                       if flag is not x509.ReasonFlags.certificate_hold)


@dataclass(frozen=True, slots=True)
class Done:
    """An action's answer: what to tell the officer, and new CRLs to publish."""
    notice: str
    crls: crl.CRLs | None = None


Action = Callable[["Officer", Request, str, dt.datetime], Deferred[Done]]


def _number(request: Request) -> int:
    text = field(request, b"request")
    if not text.isdigit() or len(text) > 18:
        raise Refused(400, "Give the number of a request.")
    return int(text)


def _serial(request: Request) -> int:
    text = field(request, b"serial")
    if not text:
        raise Refused(400, "Give the serial number of a certificate.")
    try:
        return parse_serial(text)
    except CAError as e:
        raise Refused(400, str(e)) from None




def _approve(page: Officer, request: Request, officer: str,
             now: dt.datetime) -> Deferred[Done]:
    number = _number(request)
    web = page.web

    async def steps() -> Done:
        web.dsa.refresh()
        record, entry = pending_request(web.dsa, number)
        prepared = await web.slow(prepare_approval, web.authority, record, entry, officer, now)

        def job(writer: DirectoryWriter) -> Done:
            certificate = commit(writer, prepared, now).certificate
            assert certificate is not None
            serial = serial_text(certificate.serial_number)
            web.audit(writer.records, officer, "ca.approved", str(number), {"serial": serial}, now)
            return Done(f"Request {number} approved: certificate {serial} issued.")

        return await page.as_ca(job)

    return refusing(Deferred.fromCoroutine(steps()))


def _deny(page: Officer, request: Request, officer: str,
          now: dt.datetime) -> Deferred[Done]:
    number = _number(request)
    why = field(request, b"why")
    if not why:
        raise Refused(400, "Say why the request is denied; the requester sees it.")

    def job(writer: DirectoryWriter) -> Done:
        deny_request(writer, number, officer, why, now)
        page.web.audit(writer.records, officer, "ca.denied", str(number), {"why": why}, now)
        return Done(f"Request {number} denied.")

    return page.as_ca(job)


def _holder(page: Officer, text: str) -> str:
    """An entry DN as given, or the one entry holding a mail address."""
    if "=" in text:
        return text
    found = by_mail(page.web.dsa, text, 2)
    if len(found) != 1:
        raise Refused(400, f"{len(found)} entries have the mail address {text}; give the DN.")
    return str(found[0].dn)


def _revoke(page: Officer, request: Request, officer: str,
            now: dt.datetime) -> Deferred[Done]:
    try:
        why = revoke.reason(field(request, b"reason"))
    except CAError as e:
        raise Refused(400, str(e)) from None
    if why is x509.ReasonFlags.certificate_hold:
        raise Refused(400, "Use the hold form to put a certificate on hold.")
    holder_text = field(request, b"holder")
    if bool(holder_text) == bool(field(request, b"serial")):
        raise Refused(400, "Give a serial number or a person (one of them).")
    serial = None if holder_text else _serial(request)
    holder = _holder(page, holder_text) if holder_text else None
    return _revoking(page, officer, now, why, serial, holder, "Revoked")


def _hold(page: Officer, request: Request, officer: str,
          now: dt.datetime) -> Deferred[Done]:
    return _revoking(page, officer, now, x509.ReasonFlags.certificate_hold, _serial(request),
                     None, "Put on hold")


def _always(store: Store, now: dt.datetime) -> bool:
    return True


def _with_new_crls(page: Officer, verb: str,
                   change: Callable[[DirectoryWriter], list[IssuedRecord]]) -> Deferred[Done]:
    """`change` through the writer, then new CRLs that list it."""
    web = page.web

    async def steps() -> Done:
        records = await page.as_ca(change)
        serials = ", ".join(serial_text(r.serial) for r in records)
        try:
            made = await crl.renew(web.authority, web.dsa, web.slow, _always)
        except CAError as e:
            # The change has committed: say so, and how to get the CRLs.
            return Done(f"{verb} {serials}; the new CRLs could not be made now ({e}); "
                        "run `certdir ca crl`.")
        return Done(f"{verb} {serials}; new CRLs published.", made)

    return refusing(Deferred.fromCoroutine(steps()))


def _revoking(page: Officer, officer: str, now: dt.datetime, why: x509.ReasonFlags,
              serial: int | None, holder: str | None, verb: str) -> Deferred[Done]:
    authority = page.web.authority

    def change(writer: DirectoryWriter) -> list[IssuedRecord]:
        records = ([revoke.revoke(authority, writer, serial, why, now)] if serial is not None
                   else revoke.revoke_holder(authority, writer, str(holder), why, now))
        for record in records:
            page.web.audit(writer.records, officer, "ca.revoked", record.entry or record.subject,
                           {"serial": serial_text(record.serial), "reason": why.value}, now)
        return records

    return _with_new_crls(page, verb, change)


def _release(page: Officer, request: Request, officer: str,
             now: dt.datetime) -> Deferred[Done]:
    serial = _serial(request)
    authority = page.web.authority

    def change(writer: DirectoryWriter) -> list[IssuedRecord]:
        record = revoke.release(authority, writer, serial, now)
        page.web.audit(writer.records, officer, "ca.released", record.entry or record.subject,
                       {"serial": serial_text(record.serial)}, now)
        return [record]

    return _with_new_crls(page, "Released from hold", change)


ACTIONS: Mapping[bytes, Action] = {
    b"approve": _approve,
    b"deny": _deny,
    b"revoke": _revoke,
    b"hold": _hold,
    b"release": _release,
}


class Officer(Page):
    login = True
    officer = True
    forms = True
    subpaths = True

    def get(self, request: Request, visit: Visit) -> Answer:
        if rest(request):
            raise Refused(404, "There is no such page.")
        self.web.dsa.refresh()
        with self.web.dsa.backend.reading() as records:
            store = Store(records)
            pending, recent = store.requests("pending"), store.recent(RECENT)
        return self.show(request, visit, "officer.html", pending=pending, recent=recent,
                         reasons=REVOKE_REASONS)

    def post(self, request: Request, visit: Visit) -> Answer:
        officer = visit.person
        assert officer is not None
        path = rest(request)
        action = ACTIONS.get(path[0] if len(path) == 1 else b"")
        if action is None:
            raise Refused(404, "There is no such action.")

        def done(outcome: Done) -> bytes:
            if outcome.crls is not None:
                self.web.crls_published(outcome.crls)
            return self.see_other(request, visit, "/officer", outcome.notice)

        return action(self, request, officer, dt.datetime.now(dt.UTC)).addCallback(done)
