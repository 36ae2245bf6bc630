"""The directory's settings, as one typed, immutable object.

The application shell builds it from certdir.yaml; the directory never reads
files or environment variables on its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from directory.passwords import HashPolicy
from directory.verify_queue import QueueLimits

DEFAULT_INDEXES = ("objectClass", "cn", "sn", "givenName", "mail", "uid", "member",
                   "uniqueMember", "userCertificate")


@dataclass(frozen=True)
class DirectoryConfig:
    suffix: str
    root_dn: str
    root_password_hash: str
    database: Path
    anonymous_read: bool = True
    confidentiality_required: bool = False
    size_limit: int = 500
    time_limit: int = 3600
    max_pdu_bytes: int = 10 * 1024 * 1024
    max_filter_depth: int = 64
    max_filter_items: int = 1024
    max_elements: int = 100_000
    idle_timeout: int = 0
    default_referrals: tuple[str, ...] = ()
    indexes: tuple[str, ...] = DEFAULT_INDEXES
    cache_entries: int = 200_000
    schema_paths: tuple[Path, ...] = field(default_factory=tuple)
    access_log: bool = True
    server_id: int = 0
    hashing: HashPolicy = field(default_factory=HashPolicy)
    verify_queue: QueueLimits = field(default_factory=QueueLimits)
