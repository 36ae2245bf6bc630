"""certdir.yaml: one typed configuration object, validated on load.

- Every key is known: an unknown key, a value of the wrong type or out of
  range is a `ConfigError` naming the key (`limits.size: expected an
  integer, got 'many'`), never a traceback.
- Relative paths are relative to the data directory.
- Listen URLs are `ldap://host:port` (StartTLS available when a
  certificate is configured) or `ldaps://host:port` (TLS from the first
  byte); `ldapi` is not supported.
- The web service listens on `http.listen`: `http://` and `https://` URLs
  (https needs the `tls` section). Without an `http` section it listens on
  `DEFAULT_HTTP_LISTEN` (the https one only with `tls`); an empty list
  turns it off. `ca.base_url` defaults
  to the first http:// URL, `kms.enroll_url` to the first https:// one, so
  the URLs in certificates and token mails answer on this machine.
- No secret is stored in the file in clear: the root DN's password is an
  Argon2id hash (`root.password_hash`), and `storage.url` holds no
  password (certdir/storage_url.py).
- Storage is the SQLite file `storage.path` (default certdir.db) or the
  PostgreSQL database `storage.url`, never both.
- The referral list's peers (`referral.list`) are `ldap://host:port/DN`
  (with `starttls`) or `ldaps://host:port/DN` URLs; `bind_dn` comes with a
  `password_file` (both, or neither: anonymous), and the files they name
  must exist.
- `replication.consumer` makes certdir a read-only replica: its `provider`
  is `ldap://host:port` (with `starttls`) or `ldaps://host:port`, its
  `base` lies within the suffix, its `retry` is slapd's "5 5 300 +"; a
  replica has no `ca` or `kms` section (they sign on the provider).
- `replication.delete_log` is how many deletes the syncrepl provider keeps
  for consumers' refreshes from a cookie (> 0).
- `replication.consumer.multi_provider: true` (slapd's `multiprovider on`)
  makes the node a provider that also consumes from its peer, both taking
  writes; it needs `replication.server_id` (slapd's `serverID`), 1 to
  4095. The node stamps CSNs with server ids from it up, one per worker
  (and, on PostgreSQL, one per command open beside the server): the peers'
  ids must lie further apart than that (1 and 2001, say), as two changes
  with one server id and one time would tie. entryUUID gets an equality
  index (the peer names entries by it). A multi-provider node may hold the
  `ca` and `kms` sections, and at most one node of the pair should: their
  records (issued certificates, revocations, tokens, keys) are tables of
  the node's own database, which syncrepl does not carry, so the other
  node's CRLs and OCSP answers would not know them; only the entries they
  publish replicate. Serials are 159-bit random numbers, so two signing
  nodes could not collide, but would split one CA's records in two.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar, Self
from urllib.parse import unquote, urlsplit

import yaml

from ca.acme.config import AcmeConfig, RateLimits
from ca.acme.policy import policy_from
from ca.config import CAConfig, CRLConfig, OCSPConfig
from ca.errors import CAError
from ca.keys import KEY_TYPES
from ca.names import ca_subject
from ca.policy import DEFAULT_POLICIES, POLICIES
from ca.profiles import Profile, load_profiles
from ca.web.config import WebConfig
from certdir.storage_url import StorageURLError, checked
from directory.acl.rules import Proxy, Rule, RuleError, parse_proxies, parse_rules
from directory.backend import MAX_NODE
from directory.backend.index_keys import EQ, KINDS, IndexSpec, spec_of
from directory.config import (
    CERTIFICATE_MAPS,
    DEFAULT_CACHE_BYTES,
    DEFAULT_INDEXES,
    REFERRAL_MODES,
    SYNC_TYPES,
    Consumer,
    DirectoryConfig,
    Peer,
    QueueLimits,
    ReferralList,
    SASLConfig,
    SubjectRule,
)
from directory.passwords import Hashing, HashPolicy
from directory.ppolicy.config import PasswordPolicies, Policy, RootBackoff
from directory.protocol.dn import DN
from directory.protocol.filter import MAX_DEPTH as MAX_FILTER_DEPTH
from directory.protocol.filter import FilterSyntaxError
from directory.protocol.filter import parse as parse_filter
from directory.protocol.messages import Scope
from directory.protocol.results import LDAPError
from directory.replication import deletes
from kms.config import KMSConfig, SMTPConfig

CONFIG_FILE = "certdir.yaml"
DEFAULT_HTTP_LISTEN = ("http://127.0.0.1:8080", "https://127.0.0.1:8443")
OCSP_SIGNERS = ("delegated", "ca")
MAX_WORKERS = 256  # `serve` forks this many processes at once
# The longest span a duration key may name, 100 years: added to now or to a
# certificate's dates it stays within the calendar (datetime, X.509 to 9999).
SPAN = {"seconds": 100 * 365 * 86_400, "minutes": 100 * 365 * 1_440,
        "hours": 100 * 365 * 24, "days": 100 * 365}


_WEB = WebConfig()
_OCSP = OCSPConfig()
_RATE_LIMITS = RateLimits()


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class ServiceURL:
    """`scheme://host:port` of one of `SCHEMES` (the default port when none is given)."""
    scheme: str
    host: str
    port: int

    SCHEMES: ClassVar[Mapping[str, int]] = {}

    @classmethod
    def parse(cls, text: str, where: str) -> Self:
        try:
            parts = urlsplit(text)
        except ValueError as e:
            raise ConfigError(f"{where}: {text!r}: {e}") from None
        if parts.scheme not in cls.SCHEMES or parts.path not in ("", "/"):
            raise ConfigError(f"{where}: {text!r}: must be "
                              + " or ".join(f"{s}://host:port" for s in cls.SCHEMES))
        try:
            port = parts.port or cls.SCHEMES[parts.scheme]
        except ValueError:
            raise ConfigError(f"{where}: {text!r}: bad port") from None
        return cls(parts.scheme, parts.hostname or "0.0.0.0", port)

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"


class ListenURL(ServiceURL):
    SCHEMES = {"ldap": 389, "ldaps": 636}


class HTTPURL(ServiceURL):
    SCHEMES = {"http": 80, "https": 443}


@dataclass(frozen=True)
class TLSConfig:
    certificate: Path
    key: Path
    ca_certificate: Path


@dataclass(frozen=True)
class Config:
    data_dir: Path
    listen: tuple[ListenURL, ...]
    tls: TLSConfig | None
    directory: DirectoryConfig
    workers: int = 1
    ca: CAConfig | None = None
    kms: KMSConfig | None = None
    http: tuple[HTTPURL, ...] = ()
    web: WebConfig = _WEB


def _type_name(kind: type | tuple[type, ...]) -> str:
    names = {bool: "true or false", int: "an integer", str: "a string", list: "a list",
             dict: "a mapping"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)


class _Section:
    """Reads one mapping of the YAML, recording which keys were used."""

    def __init__(self, data: Any, path: str) -> None:
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(f"{path or 'certdir.yaml'}: expected a mapping")
        self.data: dict[str, Any] = data
        self.path = path
        self.used: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def error(self, name: str, why: str) -> ConfigError:
        """The error naming key `name` (an item as `name[i]`) of this section, and why."""
        return ConfigError(f"{self.key(name)}: {why}")

    def get(self, name: str, kind: type | tuple[type, ...], default: Any = None,
            check: Callable[[Any], bool] | None = None, hint: str = "") -> Any:
        self.used.add(name)
        if name not in self.data:
            if default is None:
                raise ConfigError(f"{self.key(name)}: required key is missing")
            return default
        value = self.data[name]
        if (isinstance(value, bool) and kind is int) or not isinstance(value, kind):
            raise ConfigError(f"{self.key(name)}: expected {_type_name(kind)}, got {value!r}")
        if check is not None and not check(value):
            raise ConfigError(f"{self.key(name)}: {value!r} is not allowed ({hint})")
        return value

    def strings(self, name: str, default: tuple[str, ...]) -> tuple[str, ...]:
        values = self.get(name, list, list(default))
        for i, value in enumerate(values):
            if not isinstance(value, str):
                raise ConfigError(f"{self.key(name)}[{i}]: expected a string, got {value!r}")
        return tuple(values)

    def duration(self, name: str, default: int, unit: str) -> int:
        """A positive number of `unit`s, at most `SPAN` of them."""
        most = SPAN[unit]
        value: int = self.get(name, int, default, lambda n: 0 < n <= most,
                              f"from 1 to {most} {unit}")
        return value

    def section(self, name: str) -> _Section:
        self.used.add(name)
        return _Section(self.data.get(name), self.key(name))

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise ConfigError(f"{self.key(unknown[0])}: unknown key")


def _positive(value: int) -> bool:
    return value > 0


def _not_negative(value: int) -> bool:
    return value >= 0


def _indexes(storage: _Section) -> tuple[IndexSpec, ...]:
    """`storage.indexes`: a list of attribute names (equality indexes), or a
    mapping of names to lists of kinds, as slapd's `index cn eq,sub`."""
    if "indexes" not in storage.data:
        return DEFAULT_INDEXES
    where = storage.key("indexes")
    if isinstance(storage.get("indexes", (list, dict)), list):
        return tuple(spec_of(name) for name in storage.strings("indexes", ()))
    specs = []
    for name, kinds in storage.data["indexes"].items():
        if not isinstance(kinds, list) or not kinds:
            raise ConfigError(f"{where}.{name}: expected a list of index kinds "
                              f"({', '.join(KINDS)}), got {kinds!r}")
        for i, kind in enumerate(kinds):
            if kind not in KINDS:
                raise ConfigError(f"{where}.{name}[{i}]: unknown index kind {kind!r} "
                                  f"(one of {', '.join(KINDS)})")
        specs.append(IndexSpec(str(name), frozenset(kinds)))
    return tuple(specs)


def _passwords(section: _Section) -> tuple[HashPolicy, QueueLimits]:
    """`passwords`: Argon2id parameters for new hashes, the most a stored hash
    may cost, and the bounds of the password queue."""
    hashing, queue = HashPolicy(), QueueLimits()
    values = {name: section.get(name, int, getattr(hashing, name), _positive, "must be > 0")
              for name in vars(hashing)}
    limits = {name: section.get(f"queue_{name}", int, getattr(queue, name), _positive,
                                "must be > 0") for name in vars(queue)}
    section.finish()
    policy = HashPolicy(**values)
    for name in ("time_cost", "memory_kib", "parallelism"):
        if getattr(policy, name) > getattr(policy, f"max_{name}"):
            raise ConfigError(f"{section.key(name)}: above {section.key('max_' + name)}")
    if policy.memory_kib < 8 * policy.parallelism:
        raise ConfigError(f"{section.key('memory_kib')}: Argon2 needs 8 KiB per lane "
                          f"(parallelism)")
    return policy, QueueLimits(**limits)


def from_mapping(data: Mapping[str, Any], data_dir: Path) -> Config:
    top = _Section(dict(data), "")
    suffix = top.get("suffix", str)
    listen_urls = top.strings("listen", ("ldap://127.0.0.1:3389",))
    listen = tuple(ListenURL.parse(u, f"listen[{i}]") for i, u in enumerate(listen_urls))
    workers = top.get("workers", int, 1, lambda n: 1 <= n <= MAX_WORKERS,
                      f"from 1 to {MAX_WORKERS} processes")

    root = top.section("root")
    root_dn = root.get("dn", str, f"cn=admin,{suffix}")
    password_hash = root.get("password_hash", str)
    if not password_hash.startswith("{ARGON2}"):
        raise ConfigError("root.password_hash: must be an {ARGON2} hash, never a clear password")
    root.finish()

    tls_section = top.section("tls")
    tls = None
    if tls_section.data:
        tls = TLSConfig(
            certificate=data_dir / tls_section.get("certificate", str),
            key=data_dir / tls_section.get("key", str),
            ca_certificate=data_dir / tls_section.get("ca_certificate", str),
        )
    tls_section.finish()
    if tls is None and any(u.scheme == "ldaps" for u in listen):
        raise ConfigError("listen: ldaps:// needs a tls section with certificate and key")

    storage = top.section("storage")
    storage_url = None
    if "url" in storage.data:
        if "path" in storage.data:
            raise ConfigError("storage.url: not with storage.path (a PostgreSQL database "
                              "or an SQLite file, not both)")
        try:
            storage_url = checked(storage.get("url", str))
        except StorageURLError as e:
            raise ConfigError(f"storage.url: {e}") from None
    database = data_dir / storage.get("path", str, "certdir.db")
    indexes = _indexes(storage)
    cache_entries = storage.get("cache_entries", int, 200_000, _not_negative, "must be >= 0")
    cache_bytes = storage.get("cache_bytes", int, DEFAULT_CACHE_BYTES, _not_negative,
                              "must be >= 0")
    storage.finish()

    access = top.section("access")
    anonymous_read = access.get("anonymous_read", bool, True)
    confidentiality = access.get("confidentiality_required", bool, False)
    access_rules, access_proxy = _access_rules(access)
    access.finish()

    limits = top.section("limits")
    size = limits.get("size", int, 500, _not_negative, "0 means no limit")
    time = limits.get("time", int, 3600, _not_negative, "0 means no limit")
    max_pdu = limits.get("max_pdu_bytes", int, 10 * 1024 * 1024, _positive, "must be > 0")
    depth = limits.get("max_filter_depth", int, 64, lambda v: 0 < v <= MAX_FILTER_DEPTH,
                       f"from 1 to {MAX_FILTER_DEPTH}")
    items = limits.get("max_filter_items", int, 1024, _positive, "must be > 0")
    elements = limits.get("max_elements", int, 100_000, _positive, "must be > 0")
    idle = limits.get("idle_timeout", int, 0, _not_negative, "seconds, 0 means none")

    max_pdu_anonymous = limits.get("max_pdu_bytes_anonymous", int, 256 * 1024, _positive,
                                   "must be > 0")
    outstanding = limits.get("max_outstanding", int, 1000, _positive, "must be > 0")
    outstanding_anonymous = limits.get("max_outstanding_anonymous", int, 100, _positive,
                                       "must be > 0")
    pdu_seconds = limits.get("pdu_seconds", int, 30, _positive, "must be > 0")
    persist = limits.get("max_persist_searches", int, 8, _positive, "must be > 0")
    persist_total = limits.get("max_persist_searches_total", int, 256, _positive,
                               "must be > 0")
    # What one request may cost: DNs (slapd's 8192-byte DN limit).
    max_dn_bytes = limits.get("max_dn_bytes", int, 8192, _positive, "must be > 0")
    max_rdns = limits.get("max_rdns", int, 256, _positive, "must be > 0")
    limits.finish()

    referral = top.section("referral")
    default_referrals = referral.strings("default", ())
    for i, url in enumerate(default_referrals):
        if not url.startswith(("ldap://", "ldaps://")):
            raise ConfigError(f"referral.default[{i}]: {url!r} is not an LDAP URL")
    referral_list = _referral_list(referral, data_dir)
    referral.finish()

    log = top.section("log")
    access_log = log.get("access", bool, True)
    log.finish()

    hashing, verify_queue = _passwords(top.section("passwords"))
    if not Hashing(hashing).acceptable(password_hash.encode()):
        raise ConfigError("root.password_hash: outside the passwords section's limits")

    schema = top.section("schema")
    extra_schema = tuple(data_dir / p for p in schema.strings("paths", ()))
    schema.finish()
    sasl = _sasl(top.section("sasl"))
    password_policy = _password_policy(top)
    http, web = _http(top.section("http"), tls is not None)
    ca = _ca(top.section("ca"), data_dir, listen, http) if "ca" in top.data else None
    kms = _kms(top.section("kms"), data_dir, http) if "kms" in top.data else None
    replication = top.section("replication")
    delete_log = replication.get("delete_log", int, deletes.KEPT, _positive, "must be > 0")
    server_id = replication.get("server_id", int, 0, lambda v: 0 <= v <= MAX_NODE,
                                f"from 0 to {MAX_NODE}")
    consumer = (_consumer(replication.section("consumer"), data_dir, suffix)
                if "consumer" in replication.data else None)
    replication.finish()
    if consumer is not None and consumer.multi_provider:
        if server_id == 0:
            raise ConfigError("replication.server_id: a multi-provider node "
                              "(replication.consumer.multi_provider) needs a server id "
                              f"from 1 to {MAX_NODE}, distinct from its peer's")
        indexes = _with_uuid_index(indexes)
    elif consumer is not None:
        for name, section in (("ca", ca), ("kms", kms)):
            if section is not None:
                raise ConfigError(f"{name}: a replica (replication.consumer) does not sign: "
                                  f"the {name.upper()} runs on the provider")
    top.finish()

    return Config(
        data_dir=data_dir,
        listen=listen,
        tls=tls,
        workers=workers,
        ca=ca,
        kms=kms,
        http=http,
        web=web,
        directory=DirectoryConfig(
            suffix=suffix,
            root_dn=root_dn,
            root_password_hash=password_hash,
            database=database,
            storage_url=storage_url,
            anonymous_read=anonymous_read,
            access_rules=access_rules,
            access_proxy=access_proxy,
            confidentiality_required=confidentiality,
            size_limit=size,
            time_limit=time,
            max_pdu_bytes=max_pdu,
            max_filter_depth=depth,
            max_filter_items=items,
            max_elements=elements,
            idle_timeout=idle,
            max_pdu_bytes_anonymous=max_pdu_anonymous,
            max_outstanding=outstanding,
            max_outstanding_anonymous=outstanding_anonymous,
            max_persist_searches=persist,
            max_persist_searches_total=persist_total,
            pdu_seconds=pdu_seconds,
            max_dn_bytes=max_dn_bytes,
            max_rdns=max_rdns,
            default_referrals=default_referrals,
            referral_list=referral_list,
            indexes=indexes,
            cache_entries=cache_entries,
            cache_bytes=cache_bytes,
            schema_paths=extra_schema,
            access_log=access_log,
            server_id=server_id,
            sasl=sasl,
            password_policy=password_policy,
            hashing=hashing,
            verify_queue=verify_queue,
            consumer=consumer,
            delete_log=delete_log,
        ),
    )


_REFERRAL_LIST = ReferralList()
_PEER_SCHEMES = {"ldap": 389, "ldaps": 636}
# The longest a peer may take: a chained search waits for it.
MAX_PEER_TIMEOUT_S = 300


def _referral_list(section: _Section, data_dir: Path) -> ReferralList:
    """`referral.mode`, `chase`, `outside_suffix`, `cache` and the `list` of peers."""
    mode = section.get("mode", str, _REFERRAL_LIST.mode, lambda v: v in REFERRAL_MODES,
                       "one of " + ", ".join(REFERRAL_MODES))
    chase = section.get("chase", bool, _REFERRAL_LIST.chase)
    outside = section.get("outside_suffix", bool, _REFERRAL_LIST.outside_suffix)
    cache = section.section("cache")
    positive = cache.get("positive_s", int, _REFERRAL_LIST.positive_s, _not_negative,
                         "seconds, 0 keeps nothing")
    negative = cache.get("negative_s", int, _REFERRAL_LIST.negative_s, _not_negative,
                         "seconds, 0 keeps nothing")
    cache.finish()
    peers = tuple(_peer(_Section(item, f"{section.key('list')}[{i}]"), data_dir)
                  for i, item in enumerate(section.get("list", list, [])))
    return ReferralList(mode, chase, peers, positive, negative, outside)


def _dn_text(section: _Section, name: str, text: str) -> str:
    try:
        DN.parse(text)
    except LDAPError:
        raise ConfigError(f"{section.key(name)}: {text!r} is not a DN") from None
    return text


def _file(section: _Section, name: str, data_dir: Path) -> Path | None:
    text: str = section.get(name, str, "")
    if not text:
        return None
    path = data_dir / text
    if not path.is_file():
        raise ConfigError(f"{section.key(name)}: {path}: no such file")
    return path


def _link(section: _Section, key: str, data_dir: Path, form: str, timeout_s: float,
          path_allowed: bool) -> tuple[Peer, str]:
    """How to reach another server, from the LDAP URL under `key` (shaped as
    `form` says), `starttls`, `bind_dn` with `password_file` (or neither),
    `ca_file` and `timeout_s`; with the URL's path, the DN it names."""
    url = section.get(key, str)
    try:
        parts = urlsplit(url)
        port = parts.port or _PEER_SCHEMES.get(parts.scheme, 0)
    except ValueError as e:
        raise ConfigError(f"{section.key(key)}: {url!r}: {e}") from None
    if (parts.scheme not in _PEER_SCHEMES or not parts.hostname or parts.query
            or not (path_allowed or parts.path in ("", "/"))):
        raise ConfigError(f"{section.key(key)}: {url!r}: must be {form}")
    starttls = section.get("starttls", bool, False)
    if starttls and parts.scheme == "ldaps":
        raise ConfigError(f"{section.key('starttls')}: not with an ldaps:// URL")
    tls = "ldaps" if parts.scheme == "ldaps" else "starttls" if starttls else "none"
    bind_dn = _dn_text(section, "bind_dn", section.get("bind_dn", str, ""))
    password_file = _file(section, "password_file", data_dir)
    if bool(bind_dn) != (password_file is not None):
        raise ConfigError(f"{section.key('bind_dn')}: bind_dn and password_file go "
                          "together (neither: anonymous)")
    timeout = section.get("timeout_s", (int, float), timeout_s,
                          lambda v: not isinstance(v, bool) and 0 < v <= MAX_PEER_TIMEOUT_S,
                          f"seconds, above 0 and at most {MAX_PEER_TIMEOUT_S}")
    peer = Peer(url=url, host=parts.hostname, port=port, base="", tls=tls, bind_dn=bind_dn,
                password_file=password_file, ca_file=_file(section, "ca_file", data_dir),
                timeout_s=float(timeout))
    return peer, unquote(parts.path.removeprefix("/"))


def _peer(section: _Section, data_dir: Path) -> Peer:
    link, path = _link(section, "url", data_dir,
                       "ldap://host:port/DN or ldaps://host:port/DN", 2, True)
    base = _dn_text(section, "url", path)
    mapping = section.section("map")
    pairs = tuple((_dn_text(mapping, theirs, theirs),
                   _dn_text(mapping, theirs, mapping.get(theirs, str)))
                  for theirs in list(mapping.data))
    mapping.finish()
    peer = replace(link, base=base,
                   size_limit=section.get("size_limit", int, 0, _not_negative,
                                          "0 means no limit"),
                   mapping=pairs or ((base, base),))
    section.finish()
    return peer


_CONSUMER = Consumer(Peer("", "", 0, ""), 0, "")
SCOPES = {"base": Scope.BASE, "one": Scope.ONE, "sub": Scope.SUB, "children": Scope.CHILDREN}
_RETRY = re.compile(r"\d+ (\d+|\+)( \d+ (\d+|\+))*")
MAX_RID = 999  # slapd's rid is three decimal digits


def _provider(section: _Section, data_dir: Path) -> Peer:
    """`provider`: `ldap://host:port` (with `starttls`) or `ldaps://host:port`,
    `bind_dn` with `password_file` (or neither), `ca_file`, `timeout_s`."""
    link, _ = _link(section, "provider", data_dir,
                    "ldap://host:port or ldaps://host:port", 10, False)
    return replace(link, url=f"{urlsplit(link.url).scheme}://{link.host}:{link.port}")



def _retry(section: _Section) -> tuple[tuple[int, int | None], ...]:
    """`retry`: slapd's "seconds times [seconds times ...]", `+` for ever."""
    text = section.get("retry", str, "60 +")
    if not _RETRY.fullmatch(text):
        raise ConfigError(f"{section.key('retry')}: {text!r}: must be pairs of seconds and "
                          "times (+: for ever), as \"5 5 300 +\"")
    words = text.split()
    steps = tuple((int(seconds), None if times == "+" else int(times))
                  for seconds, times in zip(words[::2], words[1::2], strict=True))
    if any(seconds == 0 for seconds, _ in steps) or any(t == 0 for _, t in steps):
        raise ConfigError(f"{section.key('retry')}: {text!r}: seconds and times are above 0")
    if any(times is None for _, times in steps[:-1]):
        raise ConfigError(f"{section.key('retry')}: {text!r}: only the last step is + (for ever)")
    return steps


def _with_uuid_index(indexes: tuple[IndexSpec, ...]) -> tuple[IndexSpec, ...]:
    """A multi-provider node finds the entries its peer names by entryUUID."""
    if any(spec.attribute.lower() == "entryuuid" and EQ in spec.kinds for spec in indexes):
        return indexes
    return (*indexes, IndexSpec("entryUUID", frozenset({EQ})))


def _consumer(section: _Section, data_dir: Path, suffix: str) -> Consumer:
    """`replication.consumer`: the provider, the search replicated, the type."""
    provider = _provider(section, data_dir)
    rid = section.get("rid", int, None, lambda v: 0 <= v <= MAX_RID, f"from 0 to {MAX_RID}")
    base = _dn_text(section, "base", section.get("base", str, suffix))
    if not DN.parse(base).is_descendant_of(DN.parse(suffix)):
        raise ConfigError(f"{section.key('base')}: {base!r} is not within the suffix {suffix!r}")
    filter_text = section.get("filter", str, _CONSUMER.filter)
    try:
        parse_filter(filter_text)
    except FilterSyntaxError as e:
        raise ConfigError(f"{section.key('filter')}: {filter_text!r}: {e}") from None
    consumer = Consumer(
        provider=provider, rid=rid, base=base, filter=filter_text,
        scope=SCOPES[section.get("scope", str, "sub", lambda v: v in SCOPES,
                                 "one of " + ", ".join(SCOPES))],
        attributes=section.strings("attributes", _CONSUMER.attributes),
        type=section.get("type", str, _CONSUMER.type, lambda v: v in SYNC_TYPES,
                         "one of " + ", ".join(SYNC_TYPES)),
        interval_s=section.duration("interval_s", _CONSUMER.interval_s, "seconds"),
        retry=_retry(section),
        multi_provider=section.get("multi_provider", bool, False))
    section.finish()
    return consumer


def _access_rules(section: _Section) -> tuple[tuple[Rule, ...] | None, tuple[Proxy, ...]]:
    """`access.rules` (None: the default rules) and `access.proxy`, as
    `directory.acl.rules` reads them; the schema checks come when the
    directory opens (`certdir.directory_open.open_directory`)."""
    section.used.update(("rules", "proxy"))
    try:
        rules = (parse_rules(section.data["rules"], section.key("rules"))
                 if "rules" in section.data else None)
        proxies = parse_proxies(section.data.get("proxy", []), section.key("proxy"))
    except RuleError as e:
        raise ConfigError(str(e)) from None
    return rules, proxies


def _sasl(section: _Section) -> SASLConfig:
    """`sasl`: SASL EXTERNAL on or off, how a certificate maps to its entry
    (`map`, tried in order) and the `subject` rules (regex -> DN template)."""
    external = section.get("external", bool, True)
    maps = section.strings("map", CERTIFICATE_MAPS)
    for i, name in enumerate(maps):
        if name not in CERTIFICATE_MAPS:
            raise ConfigError(f"{section.key('map')}[{i}]: unknown mapping {name!r} "
                              f"(known: {', '.join(CERTIFICATE_MAPS)})")
    rules = []
    for i, item in enumerate(section.get("subject", list, [])):
        rule = _Section(item, f"{section.key('subject')}[{i}]")
        pattern = rule.get("match", str)
        try:
            compiled = re.compile(pattern, re.IGNORECASE)
        except re.error as e:
            raise ConfigError(f"{rule.key('match')}: not a regular expression: {e}") from None
        rules.append(SubjectRule(compiled, rule.get("dn", str)))
        rule.finish()
    section.finish()
    return SASLConfig(external, maps, tuple(rules))


DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_ROOT_BACKOFF = RootBackoff()


def _duration(section: _Section, name: str, default: str) -> int:
    """Seconds, from an integer or a string like "90d", "15m", "2s"."""
    value = section.get(name, (int, str), default)
    if isinstance(value, bool):
        raise ConfigError(f"{section.key(name)}: expected a duration, got {value!r}")
    if isinstance(value, int):
        seconds = value
    else:
        number, unit = value[:-1].strip(), value[-1:]
        if unit not in DURATION_UNITS or not number.isdigit():
            raise ConfigError(f"{section.key(name)}: {value!r} is not a duration "
                              "(seconds, or a number with s, m, h or d)")
        seconds = int(number) * DURATION_UNITS[unit]
    if seconds < 0:
        raise ConfigError(f"{section.key(name)}: {value!r} is not allowed (must be >= 0)")
    return seconds


def _count(section: _Section, name: str) -> int:
    value: int = section.get(name, int, 0, _not_negative, "must be >= 0")
    return value


def _password_policy(top: _Section) -> PasswordPolicies:
    """`password_policy`: a list of policies by subtree; `root_backoff`."""
    items = top.get("password_policy", list, [])
    policies = []
    for i, item in enumerate(items):
        section = _Section(item, f"password_policy[{i}]")
        subtree = section.get("subtree", str)
        try:
            DN.parse(subtree)
        except LDAPError:
            raise ConfigError(f"{section.key('subtree')}: {subtree!r} is not a DN") from None
        lockout = section.section("lockout")
        policy = Policy(
            subtree=subtree,
            min_length=_count(section, "min_length"),
            min_classes=section.get("min_classes", int, 0, lambda v: 0 <= v <= 4,
                                    "0 to 4: lower, upper, digits, other"),
            history=_count(section, "history"),
            max_age=_duration(section, "max_age", "0s"),
            expire_warning=_duration(section, "expire_warning", "0s"),
            grace_logins=_count(section, "grace_logins"),
            lockout_failures=_count(lockout, "failures"),
            lockout_duration=_duration(lockout, "duration", "0s"))
        lockout.finish()
        section.finish()
        policies.append(policy)
    backoff = top.section("root_backoff")
    root_backoff = RootBackoff(
        failures=backoff.get("failures", int, _ROOT_BACKOFF.failures, _not_negative,
                             "must be >= 0, 0 turns it off"),
        delay=_duration(backoff, "delay", f"{int(_ROOT_BACKOFF.delay)}s"),
        max_delay=_duration(backoff, "max_delay", f"{int(_ROOT_BACKOFF.max_delay)}s"))
    backoff.finish()
    return PasswordPolicies(tuple(policies), root_backoff)


def _http(section: _Section, has_tls: bool) -> tuple[tuple[HTTPURL, ...], WebConfig]:
    default = DEFAULT_HTTP_LISTEN if has_tls else DEFAULT_HTTP_LISTEN[:1]
    urls = section.strings("listen", default)
    http = tuple(HTTPURL.parse(u, f"{section.key('listen')}[{i}]") for i, u in enumerate(urls))
    if not has_tls and any(u.scheme == "https" for u in http):
        raise ConfigError(f"{section.key('listen')}: https:// needs a tls section with "
                          "certificate and key")
    web = WebConfig(
        max_body_bytes=section.get("max_body_bytes", int, _WEB.max_body_bytes, _positive,
                                   "must be > 0"),
        request_seconds=section.duration("request_seconds", _WEB.request_seconds, "seconds"),
        session_minutes=section.duration("session_minutes", _WEB.session_minutes, "minutes"),
        https_url=next((str(u) for u in http if u.scheme == "https"), None))
    section.finish()
    return http, web


def _first(urls: tuple[HTTPURL, ...], scheme: str) -> str | None:
    return next((str(u) for u in urls if u.scheme == scheme), None)


def _dns(section: _Section, name: str) -> tuple[str, ...]:
    values = section.strings(name, ())
    for i, value in enumerate(values):
        try:
            ca_subject(value)
        except CAError:
            raise ConfigError(f"{section.key(name)}[{i}]: {value!r} is not a DN") from None
    return values


def _ca(section: _Section, data_dir: Path, listen: tuple[ListenURL, ...],
        http: tuple[HTTPURL, ...]) -> CAConfig:
    plain = next((u for u in listen if u.scheme == "ldap"), listen[0] if listen else None)
    ldap_default = f"{plain.scheme}://{plain.host}:{plain.port}" if plain else "ldap://localhost"
    name = section.get("name", str)
    try:
        ca_subject(name)
    except CAError as e:
        raise ConfigError(str(e)) from None
    key_type = section.get("key_type", str, "p256", lambda v: v in KEY_TYPES,
                           "one of " + ", ".join(KEY_TYPES))
    validity = section.duration("validity_days", 3650, "days")
    passphrase_file = data_dir / section.get("passphrase_file", str, "secrets/ca-passphrase")
    passphrase_env = section.get("passphrase_env", str, "CERTDIR_CA_PASSPHRASE")
    base_url = section.get("base_url", str, _first(http, "http") or "http://pki.example.com",
                           lambda v: v.startswith(("http://", "https://")), "an http:// URL")
    ldap_url = section.get("ldap_url", str, ldap_default,
                           lambda v: v.startswith(("ldap://", "ldaps://")), "an ldap:// URL")
    renew = section.duration("tls_renew_days", 30, "days")
    try:
        profiles = load_profiles(section.data.get("profiles"), section.key("profiles"))
    except CAError as e:
        raise ConfigError(str(e)) from None
    section.used.add("profiles")
    policy_section = section.section("policies")
    policies = dict(DEFAULT_POLICIES)
    for profile_name in list(policy_section.data):
        if profile_name not in profiles:
            raise ConfigError(f"{policy_section.key(profile_name)}: no such profile")
        policies[profile_name] = policy_section.get(
            profile_name, str, None, lambda v: v in POLICIES, "one of " + ", ".join(POLICIES))
    crl_section = section.section("crl")
    crl = CRLConfig(
        validity_hours=crl_section.duration("validity_hours", 168, "hours"),
        delta_hours=crl_section.duration("delta_hours", 24, "hours"),
        interval_minutes=crl_section.duration("interval_minutes", 60, "minutes"))
    crl_section.finish()
    web_profiles = section.strings("web_profiles", ("smime-user",))
    for i, profile_name in enumerate(web_profiles):
        if profile_name not in profiles:
            raise ConfigError(f"{section.key('web_profiles')}[{i}]: no such profile "
                              f"{profile_name!r}")
    officers = _dns(section, "officers")
    ocsp_section = section.section("ocsp")
    ocsp = OCSPConfig(
        signer=ocsp_section.get("signer", str, _OCSP.signer, lambda v: v in OCSP_SIGNERS,
                                "one of " + ", ".join(OCSP_SIGNERS)),
        response_hours=ocsp_section.duration("response_hours", _OCSP.response_hours,
                                             "hours"),
        responder_days=ocsp_section.duration("responder_days", _OCSP.responder_days,
                                             "days"),
        renew_days=ocsp_section.duration("renew_days", _OCSP.renew_days, "days"))
    ocsp_section.finish()
    if ocsp.renew_days >= ocsp.responder_days:
        raise ConfigError(f"{ocsp_section.key('renew_days')}: must be less than responder_days")
    acme = _acme(section.section("acme"), profiles) if "acme" in section.data else None
    section.finish()
    return CAConfig(name=name, key_type=key_type, validity_days=validity,
                    passphrase_file=passphrase_file, passphrase_env=passphrase_env,
                    base_url=base_url.rstrip("/"), ldap_url=ldap_url.rstrip("/"),
                    profiles=profiles, policies=policies, crl=crl, tls_renew_days=renew,
                    web_profiles=web_profiles, officers=officers, ocsp=ocsp, acme=acme)


def _acme(section: _Section, profiles: Mapping[str, Profile]) -> AcmeConfig:
    """`ca.acme`: the directory's meta, rate limits and lifetimes read here; the
    identifier policy's keys by `policy_from`, which finishes the section."""
    def url(name: str) -> str | None:
        value: str = section.get(name, str, "", lambda v: v.startswith(("http://", "https://")),
                                 "an http:// or https:// URL")
        return value or None

    limits_section = section.section("rate_limits")
    limits = RateLimits(**{name: limits_section.get(name, int, default, _positive, "must be > 0")
                           for name, default in (
                               ("window_minutes", _RATE_LIMITS.window_minutes),
                               ("orders_per_account", _RATE_LIMITS.orders_per_account),
                               ("orders_per_identifier", _RATE_LIMITS.orders_per_identifier),
                               ("accounts_per_address", _RATE_LIMITS.accounts_per_address))})
    limits_section.finish()
    terms, website = url("terms_of_service"), url("website")
    caa = section.strings("caa_identities", ())
    nonce_minutes = section.duration("nonce_minutes", 60, "minutes")
    order_days = section.duration("order_days", 7, "days")
    required = section.get("external_account_required", bool, False)
    per_page = section.get("orders_per_page", int, 100, _positive, "must be > 0")
    policy = policy_from(section)
    if policy.profile not in profiles:
        raise ConfigError(f"{section.key('profile')}: no such profile {policy.profile!r}")
    return AcmeConfig(policy=policy, terms_of_service=terms, website=website,
                      caa_identities=caa, limits=limits, nonce_minutes=nonce_minutes,
                      order_days=order_days, external_account_required=required,
                      orders_per_page=per_page)


def _kms(section: _Section, data_dir: Path, http: tuple[HTTPURL, ...]) -> KMSConfig:
    smtp_section = section.section("smtp")
    smtp = None
    if smtp_section.data:
        password_file = smtp_section.get("password_file", str, "")
        ca_file = smtp_section.get("ca_file", str, "")
        smtp = SMTPConfig(
            host=smtp_section.get("host", str),
            port=smtp_section.get("port", int, 587, lambda n: 0 < n < 65536, "a TCP port"),
            starttls=smtp_section.get("starttls", bool, True),
            username=smtp_section.get("username", str, "") or None,
            password_file=data_dir / password_file if password_file else None,
            sender=smtp_section.get("sender", str, "certdir@localhost"),
            ca_file=data_dir / ca_file if ca_file else None)
    smtp_section.finish()
    https = _first(http, "https")
    enroll_default = f"{https}/kms/enroll" if https else "https://127.0.0.1:8443/kms/enroll"
    config = KMSConfig(
        passphrase_env=section.get("passphrase_env", str, "CERTDIR_KMS_PASSPHRASE"),
        passphrase_file=data_dir / section.get("passphrase_file", str,
                                               "secrets/kms-passphrase"),
        token_lifetime_hours=section.duration("token_lifetime_hours", 168, "hours"),
        encryption_key_type=section.get("encryption_key_type", str, "rsa2048",
                                        lambda v: v in KEY_TYPES,
                                        "one of " + ", ".join(KEY_TYPES)),
        officers=section.strings("officers", ()),
        recovery_approvals=section.get("recovery_approvals", int, 1, _positive,
                                       "must be >= 1"),
        auto_enroll=section.get("auto_enroll", bool, False),
        smtp=smtp,
        enroll_url=section.get("enroll_url", str, enroll_default),
        expiry_warning_days=section.duration("expiry_warning_days", 30, "days"),
    )
    if config.auto_enroll and config.smtp is None:
        raise ConfigError(f"{section.key('auto_enroll')}: needs kms.smtp to mail the tokens")
    if config.recovery_approvals > max(len(config.officers), 1):
        raise ConfigError(f"{section.key('recovery_approvals')}: {config.recovery_approvals} "
                          f"approvals but only {len(config.officers)} officers")
    section.finish()
    return config


def load(data_dir: Path) -> Config:
    path = data_dir / CONFIG_FILE
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no configuration; run `certdir init --data-dir "
                          f"{data_dir}` first") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings")
    try:
        return from_mapping(data, data_dir)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
