"""The request pages: a logged-in person asks for a certificate and picks it up.

- `/request` offers the profiles of `ca.web_profiles`. The PKCS#10 request
  (RFC 2986) is pasted (PEM) or uploaded (a multipart/form-data file,
  RFC 7578; PEM or DER) and submitted for the logged-in person's own
  entry with origin requester: checked (and signed, when the policy issues
  at once) on the pool by `ca.issue.prepare`, recorded by the directory's
  writer with `ca.issue.commit`: the profile's policy module decides, as
  for `certdir ca submit`. A refused request (bad signature, weak hash,
  wrong key type, a profile not offered on the web) is 400 naming the
  problem, and nothing is recorded.
- The answer is the request's number (303 to `/requests/<n>`); every
  submission goes to the audit log with the person's DN.
- `/requests` lists the person's own requests (pending, issued, denied
  with why); `/requests/<n>` shows one, and `/requests/<n>/certificate.crt`
  (DER) or `.pem` downloads what was issued. Another person's request,
  or one that does not exist, is 404: the number tells nothing.
"""

from __future__ import annotations

import datetime as dt

from twisted.internet.defer import Deferred
from twisted.web.server import Request

from ca.errors import CAError
from ca.issue import Outcome, commit, holder_entry, prepare
from ca.policy import Origin
from ca.profiles import profile
from ca.store import IssuedRecord, RequestRecord, Store, serial_text
from ca.web.page import Answer, Page, Visit, field, refusing, rest
from ca.web.public_pages import certificate_file
from ca.web.refusal import Refused
from directory.publisher import DirectoryWriter

DOWNLOADS = {b"certificate.crt": "crt", b"certificate.pem": "pem"}


def _csr(request: Request) -> bytes:
    args: dict[bytes, list[bytes]] = request.args or {}
    uploaded = (args.get(b"csr_file") or [b""])[0]
    pasted = (args.get(b"csr") or [b""])[0]
    # A DER upload is taken byte for byte: stripping could cut its last octets.
    csr = uploaded if uploaded.strip() else pasted.strip()
    if not csr:
        raise Refused(400, "Paste a certificate request (PEM) or choose a file holding one.")
    return csr


class RequestForm(Page):
    login = True
    forms = True

    def get(self, request: Request, visit: Visit) -> Answer:
        return self.show(request, visit, "request.html",
                         profiles=self.web.authority.config.web_profiles)

    def post(self, request: Request, visit: Visit) -> Answer:
        person = visit.person
        assert person is not None
        authority = self.web.authority
        name = field(request, b"profile")
        if name not in authority.config.web_profiles:
            raise Refused(400, f"Profile {name!r} is not offered on these pages.")
        chosen = profile(authority.config.profiles, name)
        csr = _csr(request)
        now = dt.datetime.now(dt.UTC)

        web = self.web

        async def steps() -> Outcome:
            web.dsa.refresh()
            entry = holder_entry(web.dsa, person)
            prepared = await web.slow(prepare, authority, csr, chosen, entry, Origin.REQUESTER,
                                      now)

            def job(writer: DirectoryWriter) -> Outcome:
                outcome = commit(writer, prepared, now)
                web.audit(writer.records, person, f"ca.{outcome.decision.value}", person,
                          {"request": outcome.request, "profile": chosen.name,
                           "serial": None if outcome.certificate is None
                           else serial_text(outcome.certificate.serial_number)}, now)
                return outcome

            return await self.as_ca(job)

        def submitted(outcome: Outcome) -> bytes:
            return self.see_other(request, visit, f"/requests/{outcome.request}",
                                  f"Request {outcome.request}: {outcome.why}.")

        return refusing(Deferred.fromCoroutine(steps())).addCallback(submitted)


class Requests(Page):
    login = True
    subpaths = True

    def get(self, request: Request, visit: Visit) -> Answer:
        person = visit.person
        assert person is not None
        self.web.dsa.refresh()
        path = rest(request)
        with self.web.dsa.backend.reading() as records:
            store = Store(records)
            if not path:
                mine = store.requests_of(person)
                return self.show(request, visit, "requests.html", requests=mine)
            record = self._own(store, person, path[0])
            issued = self._issued(store, record)
        if len(path) == 1:
            return self.show(request, visit, "request_detail.html", record=record,
                             certificate=issued)
        form = DOWNLOADS.get(path[1]) if len(path) == 2 else None
        if form is None or issued is None:
            raise Refused(404, "There is no such page.")
        return certificate_file(request, issued.der, form, f"request-{record.id}")

    @staticmethod
    def _own(store: Store, person: str, number: bytes) -> RequestRecord:
        try:
            record = store.request(int(number.decode("ascii")[:18]))
        except (ValueError, UnicodeDecodeError, CAError):
            raise Refused(404, "There is no such request.") from None
        if record.entry is None or record.entry.lower() != person.lower():
            raise Refused(404, "There is no such request.")
        return record

    @staticmethod
    def _issued(store: Store, record: RequestRecord) -> IssuedRecord | None:
        return None if record.serial is None else store.certificate(record.serial)
