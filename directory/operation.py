"""What an operation handler receives and returns.

- A handler takes an `Operation` and returns its replies: a list, or a
  Deferred of a list when the work goes to the writer thread, or an
  iterator that produces them as it goes (a search). The last reply is the
  final response; handlers never build failure responses, they raise
  `LDAPError` and the server answers.
- An iterator yields `TICK` between replies after a slice of work (a few
  hundred entries looked at): the server continues it on a later reactor
  turn, so one operation never holds the reactor, matches or not.
- An iterator with nothing to send until something happens (a persist
  search between commits) yields a `Wait`: the server sets it aside until
  its Deferred fires or its seconds pass. Abandon and Cancel end a wait at
  once (`Operation.interrupt`).
- `Session` is the per-connection state handlers may read or change
  (bind identity, TLS, paged-search cursors).
- Overlays wrap handlers (`Overlay`): they may answer, refuse, set policy on
  the operation (its `access` view), or pass it on.
- What the request names is parsed once, by the dispatcher, before any
  overlay runs (`directory.dispatch`): the target DN (`target`), and for a
  search the filter resolved against the schema, the attribute
  selection and the matched values control's items compiled. A DN that
  does not parse is answered with invalidDNSyntax where the DN is first
  needed (`target`), so every check that came before still comes first.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, TypeAlias

from directory.protocol.dn import DN
from directory.protocol.messages import Control, Request, Response
from directory.protocol.results import LDAPError

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred

    from directory.acl.view import View
    from directory.dsa import DSA
    from directory.predicates import Predicate
    from directory.resolved_filter import ResolvedFilter
    from directory.selection import Selection


@dataclass(init=False, unsafe_hash=True, slots=True)
class Reply:
    op: Final[Response]
    controls: Final[tuple[Control, ...]]

    def __init__(self, op: Response, controls: tuple[Control, ...] = ()) -> None:
        self.op = op
        self.controls = controls


class Tick:
    """Not a reply: the iterator has done a slice of work and lets others run."""

    __slots__ = ()


TICK = Tick()


class Wait(Tick):
    """Not a reply: nothing to send until `ready` fires or `seconds` pass."""

    __slots__ = ("ready", "seconds")

    def __init__(self, ready: Deferred[None], seconds: float) -> None:
        self.ready = ready
        self.seconds = seconds


@dataclass
class Session:
    conn_id: int
    peer: str = ""
    bound: DN = DN.ROOT
    is_root: bool = False
    tls: bool = False
    tls_client_cert: bytes | None = None
    tls_subject: str = ""
    mechanism: str = ""
    start_tls: Callable[[], None] | None = None
    paged: dict[bytes, Any] = field(default_factory=dict)
    outstanding: dict[int, Operation] = field(default_factory=dict)

    @property
    def anonymous(self) -> bool:
        return not self.bound and not self.is_root


@dataclass(eq=False)
class Operation:
    dsa: DSA
    session: Session
    message_id: int
    request: Request
    controls: dict[str, Any]
    critical: frozenset[str] = frozenset()
    started: float = field(default_factory=time.monotonic)
    abandoned: bool = False
    # Set by a Cancel (RFC 3909): fired once this operation has ended.
    canceled: Deferred[None] | None = None
    # Set by the server while the operation waits (`Wait`): continues it now.
    interrupt: Callable[[], None] | None = None
    # Set by the proxied authorization control once allowed (RFC 4370).
    authz: DN | None = None
    # Set by the access overlay: the policy's answers for this operation's identity.
    access: View | None = None
    entries: int = 0
    detail: str = ""
    after: Callable[[], None] | None = None
    # Set by the dispatcher: the request's DN parsed, or why it does not parse.
    parsed: DN | LDAPError | None = None
    # Set by the dispatcher for a search.
    filter: ResolvedFilter | None = None
    selection: Selection | None = None
    values_return: tuple[Predicate, ...] | None = None

    @property
    def target(self) -> DN:
        """The DN the request names: a search's base, the entry an update or
        a compare is about, a simple bind's name."""
        parsed = self.parsed
        if isinstance(parsed, LDAPError):
            raise parsed
        assert parsed is not None, "the dispatcher parses the DN the request names"
        return parsed


Replies: TypeAlias = Iterable[Reply | Tick]
Outcome: TypeAlias = "Replies | Deferred[Replies]"
Handler: TypeAlias = Callable[[Operation], Outcome]
Overlay: TypeAlias = Callable[[Handler], Handler]
