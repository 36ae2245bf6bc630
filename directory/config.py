"""The directory's settings, as one typed, immutable object.

The application shell builds it from certdir.yaml; the directory never reads
files or environment variables on its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from directory.acl.rules import Proxy, Rule
from directory.passwords import HashPolicy
from directory.ppolicy.config import PasswordPolicies
from directory.verify_queue import QueueLimits

DEFAULT_INDEXES = ("objectClass", "cn", "sn", "givenName", "mail", "uid", "member",
                   "uniqueMember", "userCertificate")


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
    pdu_seconds: int = 30
    max_dn_bytes: int = 8192
    max_rdns: int = 256
    default_referrals: tuple[str, ...] = ()
    indexes: tuple[str, ...] = DEFAULT_INDEXES
    cache_entries: int = 200_000
    cache_bytes: int = 512 * 1024 * 1024
    schema_paths: tuple[Path, ...] = field(default_factory=tuple)
    access_log: bool = True
    server_id: int = 0
    sasl: SASLConfig = SASLConfig()
    password_policy: PasswordPolicies = field(default_factory=PasswordPolicies)
    hashing: HashPolicy = field(default_factory=HashPolicy)
    verify_queue: QueueLimits = field(default_factory=QueueLimits)
