"""The directory service agent: everything operations share.

- DNs from clients are parsed here, once, against the schema
  (invalidDNSyntax on failure, RFC 4511 §4.1.3).
- `write()` hands a job to the single writer; the job runs inside a
  transaction and its result arrives after commit.
- `matched()` finds the longest existing ancestor for noSuchObject's
  matchedDN (RFC 4511 §4.1.9).
- Referral objects (RFC 3296) are found through the objectClass index and
  kept until the next commit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from twisted.internet.defer import Deferred

from directory.acl.policy import AccessPolicy, CurrentPolicy
from directory.backend.sqlite import SQLiteBackend, SQLiteTransaction
from directory.backend.writer import Writer
from directory.config import DirectoryConfig
from directory.csn import CSNGenerator
from directory.entry import Entry
from directory.passwords import Hashing
from directory.protocol.codec import Limits
from directory.protocol.dn import DN
from directory.protocol.filter import Equality, FilterLimits
from directory.protocol.messages import Scope
from directory.protocol.results import LDAPError, ResultCode
from directory.schema import Schema
from directory.search_plan import plan
from directory.verify_queue import VerifyQueue

if TYPE_CHECKING:
    from directory.ops.extended import ExtendedHandler

T = TypeVar("T")
AfterCommit = Callable[[], object]
# Runs inside the add's transaction; may return what to do once it committed.
AddHook = Callable[[SQLiteTransaction, Entry], AfterCommit | None]

SUBSCHEMA_DN = "cn=Subschema"


class DSA:
    def __init__(self, config: DirectoryConfig, schema: Schema, backend: SQLiteBackend,
                 writer: Writer | None, worker: int = 0) -> None:
        self.config = config
        self.schema = schema
        self.backend = backend
        self.writer = writer
        # Worker processes of one server stamp changes with distinct CSN ids.
        self.csn = CSNGenerator(config.server_id + worker)
        self.suffix = DN.parse(config.suffix, schema)
        self.root_dn = DN.parse(config.root_dn, schema)
        self.subschema_dn = DN.parse(SUBSCHEMA_DN, schema)
        self.limits = Limits(
            max_pdu=config.max_pdu_bytes,
            max_elements=config.max_elements,
            filter=FilterLimits(config.max_filter_depth, config.max_filter_items),
        )
        self._referrals: dict[DN, Entry] | None = None
        # Extended operations the application adds (the CA's certificate request).
        self.extensions: dict[str, ExtendedHandler] = {}
        self.add_hooks: list[AddHook] = []
        self.acl: AccessPolicy = CurrentPolicy(config.anonymous_read)
        self.hashing = Hashing(config.hashing)
        # Password hashing and verification: never on the reactor or the writer.
        self.passwords = VerifyQueue(config.verify_queue)

    def parse_dn(self, text: str) -> DN:
        return DN.parse(text, self.schema)

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def write(self, job: Callable[[SQLiteTransaction], T]) -> Deferred[T]:
        assert self.writer is not None, "read-only DSA"
        self._referrals = None
        d = self.writer.submit(job)

        def forget(result: T) -> T:
            self._referrals = None
            return result

        d.addBoth(forget)
        return d

    def refresh(self) -> None:
        """Start of an operation: forget what other processes changed."""
        if self.backend.refresh():
            self._referrals = None

    def in_naming_context(self, dn: DN) -> bool:
        return dn.is_descendant_of(self.suffix)

    def matched(self, dn: DN) -> str:
        parent = dn.parent
        while parent:
            if self.backend.get(parent) is not None:
                return str(parent)
            parent = parent.parent
        return ""

    def no_such_object(self, dn: DN) -> LDAPError:
        return LDAPError(ResultCode.NO_SUCH_OBJECT, f"no entry {dn}", matched=self.matched(dn))

    def referral_objects(self) -> dict[DN, Entry]:
        if self._referrals is None:
            query = plan(self.schema, self.backend.indexed,
                         Equality("objectClass", b"referral"))
            found = self.backend.search(DN.ROOT, Scope.SUB, query)
            self._referrals = {e.dn: e for e in found if "referral" in e.object_classes}
        return self._referrals

