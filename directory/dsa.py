"""The directory service agent: everything operations share.

- DNs from clients are parsed here, once, against the schema and the
  configured DN limits (invalidDNSyntax on failure, RFC 4511 §4.1.3).
- `write()` hands a job to the single writer; the job runs inside a
  transaction and its result arrives after commit. After each job the
  transaction records this server id's contextCSN (`stamped`).
- `matched()` finds the longest existing ancestor for noSuchObject's
  matchedDN (RFC 4511 §4.1.9), within the naming context.
- Referral objects (RFC 3296) are found through the objectClass index and
  kept until the next commit.
- `commits` hears of every commit `refresh` finds, and of this process's
  own as they are acknowledged while a persist search waits for them.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from cryptography import x509

from directory.acl.engine import RulePolicy
from directory.acl.policy import AccessPolicy
from directory.backend import Backend, Transaction
from directory.config import DirectoryConfig
from directory.csn import CSNGenerator
from directory.entry import Entry
from directory.passwords import Hashing
from directory.ppolicy.policies import Policies
from directory.ppolicy.state import ATTRIBUTES as ROOT_ONLY
from directory.protocol.codec import Limits
from directory.protocol.dn import DN, DNLimits
from directory.protocol.filter import Equality, FilterLimits
from directory.protocol.messages import Scope
from directory.protocol.results import LDAPError, ResultCode
from directory.replication import context
from directory.replication.commits import Commits
from directory.replication.persisting import PersistSearches
from directory.resolved_filter import resolve_filter
from directory.schema import Schema
from directory.search_plan import plan

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred

    from directory.backend.writer import Writer
    from directory.chaining.peers import Peers
    from directory.ops.extended import ExtendedHandler
    from directory.verify_queue import VerifyQueue

T = TypeVar("T")
AfterCommit = Callable[[], object]
# Runs inside the add's transaction; may return what to do once it committed.
AddHook = Callable[[Transaction, Entry], AfterCommit | None]
# The entry a client certificate (DER) was issued to, from the CA's records; None
# when the CA did not issue it; LDAPError when it did and the certificate is not
# good (revoked, on hold, unknown to its records).
CertificateIdentity = Callable[[bytes], DN | None]

SUBSCHEMA_DN = "cn=Subschema"


class DSA:
    def __init__(self, config: DirectoryConfig, schema: Schema, backend: Backend,
                 writer: Writer | None, worker: int = 0) -> None:
        self.config = config
        self.schema = schema
        self.backend = backend
        self.writer = writer
        # Every process and front end on the database stamps changes with its own CSN id.
        self.csn = CSNGenerator(backend.node(config.server_id + worker))
        self.suffix = DN.parse(config.suffix, schema)
        self.root_dn = DN.parse(config.root_dn, schema)
        self.subschema_dn = DN.parse(SUBSCHEMA_DN, schema)
        self.limits = Limits(
            max_pdu=config.max_pdu_bytes,
            max_elements=config.max_elements,
            filter=FilterLimits(config.max_filter_depth, config.max_filter_items),
        )
        self.dn_limits = DNLimits(config.max_dn_bytes, config.max_rdns)
        self._referrals: dict[DN, Entry] | None = None
        # Extended operations the application adds (the CA's certificate request).
        self.extensions: dict[str, ExtendedHandler] = {}
        self.password_policy = Policies(config.password_policy, schema, self.now)
        self.add_hooks: list[AddHook] = [self.password_policy.on_add]
        self.acl: AccessPolicy = RulePolicy.configured(config, schema, self.root_dn,
                                                         ROOT_ONLY)
        # CA certificates whose client certificates a TLS session may hold, and
        # the built-in CA's answer for them (set by the application's wiring).
        self.client_cas: tuple[x509.Certificate, ...] = ()
        self.certificate_identity: CertificateIdentity | None = None
        self.hashing = Hashing(config.hashing)
        # The referral list's peers and the servers referrals name (when serving).
        self.peers: Peers | None = None
        # Persist searches (RFC 4533) wait on it for commits.
        self.commits = Commits()
        self.persist_searches = PersistSearches(config.max_persist_searches,
                                                config.max_persist_searches_total)

    def parse_dn(self, text: str) -> DN:
        return DN.parse(text, self.schema, self.dn_limits)

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    @functools.cached_property
    def passwords(self) -> VerifyQueue:
        """Password hashing and verification: never on the reactor or the
        writer. Made on first use, and Twisted with it: the CLI's offline
        commands never verify through it."""
        from directory.verify_queue import VerifyQueue
        return VerifyQueue(self.config.verify_queue)

    def write(self, job: Callable[[Transaction], T]) -> Deferred[T]:
        assert self.writer is not None, "read-only DSA"
        self._referrals = None

        def stamping(txn: Transaction) -> T:
            result = job(txn)
            self.stamped(txn)
            return result

        d = self.writer.submit(stamping)

        def forget(result: T) -> T:
            self._referrals = None
            if self.commits.waiting:
                self.refresh()
            return result

        d.addBoth(forget)
        return d

    def stamped(self, txn: Transaction) -> None:
        """In a transaction that may have stamped changes: record the newest
        CSN this process issued as its server id's contextCSN."""
        if self.csn.last:
            context.record(txn.records, self.csn.last)

    def refresh(self) -> None:
        """Start of an operation: forget what other processes changed."""
        if self.backend.refresh():
            self._referrals = None
            self.commits.changed()

    def in_naming_context(self, dn: DN) -> bool:
        return dn.is_descendant_of(self.suffix)

    def matched(self, dn: DN) -> str:
        """The longest existing ancestor of `dn`, found from the suffix down:
        every entry's parent exists, so the first missing ancestor ends the
        walk, which costs the depth of the tree, not of `dn`."""
        if not dn.is_descendant_of(self.suffix, strict=True):
            return ""
        found = ""
        for depth in range(len(self.suffix), len(dn)):
            ancestor = DN(dn.rdns[len(dn) - depth:])
            if self.backend.get(ancestor) is None:
                break
            found = str(ancestor)
        return found

    def no_such_object(self, dn: DN) -> LDAPError:
        return LDAPError(ResultCode.NO_SUCH_OBJECT, f"no entry {dn}", matched=self.matched(dn))

    def referral_objects(self) -> dict[DN, Entry]:
        if self._referrals is None:
            query = plan(self.backend.indexed,
                         resolve_filter(self.schema, Equality("objectClass", b"referral")))
            found = self.backend.search(DN.ROOT, Scope.SUB, query)
            self._referrals = {e.dn: e for e in found if "referral" in e.object_classes}
        return self._referrals

