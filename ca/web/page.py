"""The page framework: one twisted.web resource class every HTML page extends.

- A page answers GET (and HEAD) with `get` and POST with `post`; a method
  it does not define is 405 with Allow (RFC 9110 §15.5.6).
- Every POST is checked first: its CSRF token must match the session's
  (`ca.web.session`), else 403 and the page's `post` never runs. A POST
  with a query string is 400: form data (tokens, passwords) travels in
  the body only, never in a URL that ends up in logs.
- `login` pages need a logged-in person: without a live session a GET is
  sent to the login page (303, the page's path as `next`, nothing secret);
  `officer` pages also need the person to be a CA officer (`ca.officers`),
  else 403.
- A page that shows a form (`forms`) gives the visitor a session first, so
  the form carries a CSRF token even before login.
- `Refused` from a page becomes its status with the short text inside the
  layout; any other failure is logged and answered with a generic 500
  page. No traceback ever reaches the client.
- `as_ca(job)` runs a change in the directory's single writer, acting as
  the CA; a `CAError` or `LDAPError` from it rolls it back and is 400.
- Pages are leaves: a page that takes sub-paths (`/requests/7`) says so
  with `subpaths`; any other page answers 404 to one.
- Answers are `Cache-Control: no-store` (RFC 9111 §5.2.2.5): pages show a
  person's requests and carry their CSRF token.

Another package's page (the KMS's token redemption) looks like this::

    TEMPLATES = Templates(Path(__file__).parent / "templates")  # extends "base.html"

    class Redeem(Page):
        forms = True

        def get(self, request, visit):
            return self.show(request, visit, "redeem.html")   # the form has csrf

        def post(self, request, visit):                        # CSRF already checked
            token = field(request, b"token")
            ...                                                # raise Refused(400, why)

    children = {b"redeem": Redeem(web, TEMPLATES)}
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.http import RESPONSES
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from ca.errors import CAError
from ca.web.context import Web
from ca.web.refusal import Refused
from ca.web.render import STATIC, Templates
from ca.web.session import Session
from directory.backend import Transaction
from directory.protocol.results import LDAPError
from directory.publisher import DirectoryWriter

LOGIN_PATH = "/login"
HTML = b"text/html; charset=utf-8"

log = Logger()

Answer = bytes | Deferred[bytes]
T = TypeVar("T")


def refusing(work: Deferred[T]) -> Deferred[T]:
    """A `CAError` or `LDAPError` from `work` becomes 400 naming the problem."""
    def refused(failure: Failure) -> T:
        failure.trap(CAError, LDAPError)
        error = failure.value
        raise Refused(400, error.message if isinstance(error, LDAPError) else str(error))

    return work.addErrback(refused)


@dataclass(frozen=True, slots=True)
class Visit:
    """Who is asking: their session (if any), the person logged in, officer or not."""
    session: Session | None
    person: str | None
    officer: bool


class Page(Resource):
    isLeaf = True
    forms = False
    login = False
    officer = False
    subpaths = False

    def __init__(self, web: Web, templates: Templates) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # unannotated in Twisted
        self.web = web
        self.templates = templates
        self._officers = frozenset(web.dsa.parse_dn(dn).normalized
                                   for dn in web.authority.config.officers)

    # --- what a page defines --------------------------------------------------------

    def get(self, request: Request, visit: Visit) -> Answer:
        raise self._not_allowed()

    def post(self, request: Request, visit: Visit) -> Answer:
        raise self._not_allowed()

    # --- what a page uses -----------------------------------------------------------

    def show(self, request: Request, visit: Visit, template: str, /, status: int = 200,
             **values: Any) -> bytes:
        """`template` inside the layout, with the visitor's CSRF token and notice."""
        session = visit.session
        request.setResponseCode(status)
        request.setHeader(b"Content-Type", HTML)
        notice = None if session is None else self.web.sessions.take_notice(session)
        return self.templates.render(
            template, csrf=None if session is None else session.csrf, person=visit.person,
            officer=visit.officer, notice=notice, **values)

    def see_other(self, request: Request, visit: Visit, path: str,
                  notice: str | None = None) -> bytes:
        """303 to `path` on this site (after a POST: reloading does not post again)."""
        if notice is not None and visit.session is not None:
            self.web.sessions.notify(visit.session, notice)
        request.setResponseCode(303)
        request.setHeader(b"Location", path.encode())
        request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
        return f"see {path}\n".encode()

    def as_ca(self, job: Callable[[DirectoryWriter], T]) -> Deferred[T]:
        """`job` in the directory's writer, acting as the CA. A `CAError` or
        `LDAPError` from it rolls the job back and becomes 400 naming the problem."""
        dsa, authority = self.web.dsa, self.web.authority

        def run(txn: Transaction) -> T:
            return job(DirectoryWriter(dsa, txn, dsa.parse_dn(authority.entry_dn)))

        return refusing(dsa.write(run))

    def is_officer(self, person: str | None) -> bool:
        return person is not None and self.web.dsa.parse_dn(person).normalized in self._officers

    # --- the framework --------------------------------------------------------------

    def render_GET(self, request: Request) -> int:
        return self._run(request, self.get, posted=False)

    def render_POST(self, request: Request) -> int:
        return self._run(request, self.post, posted=True)

    def _allowed(self) -> bytes:
        kind = type(self)
        methods = [name for name, defined in ((b"GET, HEAD", kind.get is not Page.get),
                                              (b"POST", kind.post is not Page.post)) if defined]
        return b", ".join(methods)

    def _not_allowed(self) -> Refused:
        return Refused(405, "This page does not answer that method.",
                       {b"Allow": self._allowed()})

    def _visit(self, request: Request, posted: bool) -> Visit | None:
        if rest(request) and not self.subpaths:
            raise Refused(404, "There is no such page.")
        sessions = self.web.sessions
        if posted and b"?" in (request.uri or b""):
            raise Refused(400, "Form data belongs in the request body, not in the URL.")
        if posted:
            session: Session | None = sessions.verified(request)
        elif self.forms or self.login:
            session = sessions.open(request)
        else:
            session = sessions.current(request)
        person = None if session is None else session.person
        if self.login and person is None:
            return None
        officer = self.is_officer(person)
        if self.officer and not officer:
            raise Refused(403, "This page is for CA officers only.")
        return Visit(session, person, officer)

    def _run(self, request: Request, handler: Callable[[Request, Visit], Answer],
             posted: bool) -> int:
        request.setHeader(b"Cache-Control", b"no-store")

        def start() -> Deferred[bytes]:
            visit = self._visit(request, posted)
            if visit is None:
                path = bytes(request.path).decode("ascii", "replace").rstrip("/")
                return succeed(self.see_other(request, Visit(None, None, False),
                                              f"{LOGIN_PATH}?next={quote(path)}"))
            answer = handler(request, visit)
            return answer if isinstance(answer, Deferred) else succeed(answer)

        answer: Deferred[bytes] = maybeDeferred(start)
        answer.addErrback(self._failed, request)
        answer.addCallback(self._write, request)
        return NOT_DONE_YET

    def _failed(self, failure: Failure, request: Request) -> bytes:
        if failure.check(Refused):
            refused: Refused = failure.value  # type: ignore[assignment]
            status, text = refused.status, refused.text
            for name, value in refused.headers.items():
                request.setHeader(name, value)
        else:
            log.failure("web page {path} failed", failure, path=request.path)
            status, text = 500, "Something went wrong on the server; it has been logged."
        session = self.web.sessions.current(request)
        person = None if session is None else session.person
        visit = Visit(session, person, self.is_officer(person))
        return self.show(request, visit, "error.html", status=status,
                         reason=RESPONSES.get(status, b"Error").decode(), text=text)

    @staticmethod
    def _write(body: bytes, request: Request) -> None:
        if getattr(request, "_disconnected", False):
            return
        request.write(body)
        request.finish()


def rest(request: Request) -> list[bytes]:
    """The path below the page, without empty segments (`/requests/7/` is [b"7"])."""
    return [segment for segment in request.postpath or () if segment]


def field(request: Request, name: bytes) -> str:
    """A form field (or query parameter of a GET) as text, stripped; "" when absent."""
    values = (request.args or {}).get(name) or [b""]
    try:
        return str(values[0].decode()).strip()
    except UnicodeDecodeError:
        raise Refused(400, f"The field {name.decode()} is not UTF-8 text.") from None


class StyleSheet(Resource):
    """/static/style.css: the one style sheet."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # unannotated in Twisted
        self._body = (STATIC / "style.css").read_bytes()

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"Content-Type", b"text/css; charset=utf-8")
        request.setHeader(b"Cache-Control", b"max-age=3600")
        return self._body


def static_folder() -> Resource:
    folder = Resource()
    folder.putChild(b"style.css", StyleSheet())
    return folder
