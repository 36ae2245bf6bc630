"""The directory's settings, as one typed, immutable object.

The application shell builds it from certdir.yaml; the directory never reads
files or environment variables on its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from directory.acl.rules import Proxy, Rule
from directory.backend.index_keys import EQ, SUB, IndexSpec
from directory.passwords import HashPolicy
from directory.ppolicy.config import PasswordPolicies
from directory.protocol.messages import Scope
from directory.replication.deletes import KEPT

# Equality on what entries are looked up by; equality and substrings on
# the names a mail client's type-ahead searches, whether it asks for initial
# substrings ((|(cn=x*)(mail=x*)(sn=x*)(givenName=x*)), served by the
# equality keys) or any substrings ((cn=*x*)). mail has no grams by default:
# an address is long and its domain is shared by nearly every entry, so its
# grams alone made an import of 100,000 people half as slow again
# (`mail: [eq, sub]` turns them on).
_EQ = frozenset({EQ})
_EQ_SUB = frozenset({EQ, SUB})
DEFAULT_INDEXES = (
    IndexSpec("objectClass", _EQ), IndexSpec("cn", _EQ_SUB), IndexSpec("sn", _EQ_SUB),
    IndexSpec("givenName", _EQ_SUB), IndexSpec("displayName", _EQ_SUB),
    IndexSpec("mail", _EQ), IndexSpec("uid", _EQ), IndexSpec("member", _EQ),
    IndexSpec("uniqueMember", _EQ), IndexSpec("userCertificate", _EQ),
)

# The entry cache's bound, per server process (each worker has its own).
# SQLite's page cache and the operating system's file cache hold the stored
# entries as well, so a miss costs a row read and a decode (a search-mail
# of a cached entry took 90 us of CPU, of one not cached 125 us), while a
# cached entry with what searches memoise on it takes about 6.7 KB, six
# times its stored size: 100,000 cached entries would be 650 MiB per worker.
DEFAULT_CACHE_BYTES = 64 * 1024 * 1024


# How a SASL EXTERNAL client certificate finds its entry, tried in order
# (directory.ops.sasl_external).
CERTIFICATE_MAPS = ("issued", "mail", "subject")


@dataclass(frozen=True)
class SubjectRule:
    """A certificate subject (RFC 4514 string) matching `match` names the entry
    `dn`, a template for `re.Match.expand` (\\1 is the first group)."""
    match: re.Pattern[str]
    dn: str


@dataclass(frozen=True)
class SASLConfig:
    external: bool = True
    maps: tuple[str, ...] = CERTIFICATE_MAPS
    subject_rules: tuple[SubjectRule, ...] = ()


# How the answers of the referral list's peers are used (directory.overlays.chaining).
REFERRAL_MODES = ("first", "merge", "refer")


@dataclass(frozen=True)
class Peer:
    """One directory of the referral list: `url` is `ldap://` or `ldaps://`
    host, port and the base DN it serves; `mapping` pairs a DN on the peer
    with the DN it stands for here (the base as itself when none is given)."""
    url: str
    host: str
    port: int
    base: str
    tls: str = "none"  # "none", "starttls" or "ldaps"
    bind_dn: str = ""
    password_file: Path | None = None
    ca_file: Path | None = None
    timeout_s: float = 2.0
    size_limit: int = 0
    mapping: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ReferralList:
    """`referral`: the peers asked when a search here finds nothing, how
    their answers are used, whether certdir chases its own referrals, and
    how long answers are remembered."""
    mode: str = "first"
    chase: bool = False
    peers: tuple[Peer, ...] = ()
    positive_s: int = 60
    negative_s: int = 10
    outside_suffix: bool = False


# How a consumer follows its provider (RFC 4533 §1.3): a refresh every
# `interval_s`, or one refresh that goes on as a persistent search.
SYNC_TYPES = ("refreshOnly", "refreshAndPersist")


@dataclass(frozen=True)
class Consumer:
    """`replication.consumer`: certdir as a read-only replica of `provider`
    (a `Peer` without base: how to reach and bind to it), replicating the
    `scope` search of `base` for `filter` and `attributes`. After a failure
    the session is opened again after each `retry` step's seconds, that
    many times (None: forever), as slapd's `retry="5 5 300 +"`. A `base`
    below the suffix needs the entries above it here already.
    `multi_provider` (slapd's `multiprovider on`): the provider is a peer
    that consumes from here too, and clients write on both."""
    provider: Peer
    rid: int
    base: str
    filter: str = "(objectClass=*)"
    scope: Scope = Scope.SUB
    attributes: tuple[str, ...] = ("*", "+")
    type: str = "refreshOnly"
    interval_s: int = 86400
    retry: tuple[tuple[int, int | None], ...] = ((60, None),)
    multi_provider: bool = False

    def retry_after(self, failures: int) -> int | None:
        """Seconds before attempt number `failures` + 1; None: give up."""
        for seconds, times in self.retry:
            if times is None or failures <= times:
                return seconds
            failures -= times
        return None


@dataclass(frozen=True)
class QueueLimits:
    """The password queue (directory.verify_queue): its threads, and the most
    jobs that may wait for one client and for all."""
    threads: int = 2
    per_client: int = 4
    total: int = 256


@dataclass(frozen=True)
class DirectoryConfig:
    suffix: str
    root_dn: str
    root_password_hash: str
    database: Path
    # A postgresql:// URL without password; None: the SQLite file `database`.
    storage_url: str | None = None
    anonymous_read: bool = True
    # None: the default rules (`directory.acl.rules.default_rules`).
    access_rules: tuple[Rule, ...] | None = None
    access_proxy: tuple[Proxy, ...] = ()
    confidentiality_required: bool = False
    size_limit: int = 500
    time_limit: int = 3600
    max_pdu_bytes: int = 10 * 1024 * 1024
    max_filter_depth: int = 64
    max_filter_items: int = 1024
    max_elements: int = 100_000
    idle_timeout: int = 0
    # What one connection may hold (slapd's sockbuf_max_incoming and conn_max_pending).
    max_pdu_bytes_anonymous: int = 256 * 1024
    max_outstanding: int = 1000
    max_outstanding_anonymous: int = 100
    # Persist searches (RFC 4533 §3.4) one connection and one process may hold.
    max_persist_searches: int = 8
    max_persist_searches_total: int = 256
    pdu_seconds: int = 30
    max_dn_bytes: int = 8192
    max_rdns: int = 256
    default_referrals: tuple[str, ...] = ()
    referral_list: ReferralList = ReferralList()
    indexes: tuple[IndexSpec, ...] = DEFAULT_INDEXES
    cache_entries: int = 200_000
    cache_bytes: int = DEFAULT_CACHE_BYTES
    schema_paths: tuple[Path, ...] = field(default_factory=tuple)
    access_log: bool = True
    # The first server id of this node's CSNs (`replication.server_id`).
    server_id: int = 0
    sasl: SASLConfig = SASLConfig()
    password_policy: PasswordPolicies = field(default_factory=PasswordPolicies)
    hashing: HashPolicy = field(default_factory=HashPolicy)
    verify_queue: QueueLimits = field(default_factory=QueueLimits)
    consumer: Consumer | None = None
    # How many deletes the syncrepl provider's delete log keeps.
    delete_log: int = KEPT
