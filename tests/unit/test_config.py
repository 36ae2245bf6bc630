"""certdir.yaml: a bad key is named, a good file gives typed settings."""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from certdir.config import ConfigError, from_mapping, load
from certdir.storage_url import connect_url, split_password, write_password

HASH = "{ARGON2}$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2g"


def minimal(**extra: Any) -> dict[str, Any]:
    return {"suffix": "dc=example,dc=com", "root": {"password_hash": HASH}, **extra}


def test_minimal_defaults(tmp_path: Path) -> None:
    config = from_mapping(minimal(), tmp_path)
    d = config.directory
    assert d.root_dn == "cn=admin,dc=example,dc=com"
    assert d.anonymous_read is True
    assert d.size_limit == 500
    assert d.database == tmp_path / "certdir.db"
    assert [str(u) for u in config.listen] == ["ldap://127.0.0.1:3389"]


def test_a_multi_provider_node_indexes_entry_uuid_and_may_hold_the_ca(tmp_path: Path) -> None:
    config = from_mapping(minimal(ca={"name": "cn=CA"}, replication={
        "server_id": 7, "consumer": {"provider": "ldap://h:389", "rid": 1,
                                     "multi_provider": True}}), tmp_path)
    d = config.directory
    assert d.server_id == 7
    assert d.consumer is not None and d.consumer.multi_provider
    assert [s.attribute for s in d.indexes if s.attribute == "entryUUID"] == ["entryUUID"]
    assert config.ca is not None


def test_connection_limit_defaults(tmp_path: Path) -> None:
    d = from_mapping(minimal(), tmp_path).directory
    assert (d.max_pdu_bytes_anonymous, d.max_outstanding, d.max_outstanding_anonymous,
            d.pdu_seconds) == (262144, 1000, 100, 30)


BAD = [
    ("missing suffix", {"root": {"password_hash": HASH}}, "suffix: required key is missing"),
    ("clear password", {"suffix": "o=x", "root": {"password_hash": "secret"}},
     "root.password_hash: must be an {ARGON2} hash"),
    ("unknown top key", minimal(sufix="x"), "sufix: unknown key"),
    ("unknown nested key", minimal(limits={"sise": 3}), "limits.sise: unknown key"),
    ("wrong type", minimal(limits={"size": "many"}), "limits.size: expected an integer"),
    ("bool is not an int", minimal(limits={"size": True}), "limits.size: expected an integer"),
    ("negative", minimal(limits={"time": -1}), "limits.time: -1 is not allowed"),
    ("no time for a PDU", minimal(limits={"pdu_seconds": 0}),
     "limits.pdu_seconds: 0 is not allowed"),
    ("no outstanding operation", minimal(limits={"max_outstanding_anonymous": 0}),
     "limits.max_outstanding_anonymous: 0 is not allowed"),
    ("bad listen scheme", minimal(listen=["http://x:1"]), "listen[0]"),
    ("ldaps without tls", minimal(listen=["ldaps://127.0.0.1:636"]), "needs a tls section"),
    ("bad referral", minimal(referral={"default": ["http://x"]}), "referral.default[0]"),
    ("unknown referral mode", minimal(referral={"mode": "all"}),
     "referral.mode: 'all' is not allowed (one of first, merge, refer)"),
    ("peer URL of another scheme", minimal(referral={"list": [{"url": "http://h/dc=x"}]}),
     "referral.list[0].url: 'http://h/dc=x': must be ldap://host:port/DN"),
    ("peer URL whose DN does not parse", minimal(referral={"list": [{"url": "ldap://h/x"}]}),
     "referral.list[0].url: 'x' is not a DN"),
    ("peer without a URL", minimal(referral={"list": [{"timeout_s": 1}]}),
     "referral.list[0].url: required key is missing"),
    ("peer bind DN without a password file",
     minimal(referral={"list": [{"url": "ldap://h/dc=x", "bind_dn": "cn=a"}]}),
     "referral.list[0].bind_dn: bind_dn and password_file go together"),
    ("peer password file that is not there",
     minimal(referral={"list": [{"url": "ldap://h/dc=x", "bind_dn": "cn=a",
                                 "password_file": "nope"}]}),
     "referral.list[0].password_file: "),
    ("peer StartTLS on ldaps",
     minimal(referral={"list": [{"url": "ldaps://h/dc=x", "starttls": True}]}),
     "referral.list[0].starttls: not with an ldaps:// URL"),
    ("peer timeout of nothing", minimal(referral={"list": [{"url": "ldap://h/dc=x",
                                                            "timeout_s": 0}]}),
     "referral.list[0].timeout_s: 0 is not allowed"),
    ("peer map to a non-DN", minimal(referral={"list": [{"url": "ldap://h/dc=x",
                                                         "map": {"dc=x": "nope"}}]}),
     "referral.list[0].map.dc=x: 'nope' is not a DN"),
    ("unknown peer key", minimal(referral={"list": [{"url": "ldap://h/dc=x", "bind": "x"}]}),
     "referral.list[0].bind: unknown key"),
    ("negative cache time", minimal(referral={"cache": {"negative_s": -1}}),
     "referral.cache.negative_s: -1 is not allowed"),
    ("index not a string", minimal(storage={"indexes": ["cn", 3]}), "storage.indexes[1]"),
    ("section not a mapping", minimal(access=["x"]), "access: expected a mapping"),
    ("multi-provider without a server id", minimal(replication={"consumer": {
        "provider": "ldap://h:389", "rid": 1, "multi_provider": True}}),
     "replication.server_id: a multi-provider node (replication.consumer.multi_provider)"
     " needs a server id from 1 to 4095"),
    ("server id past three hex digits", minimal(replication={"server_id": 4096}),
     "replication.server_id: 4096 is not allowed (from 0 to 4095)"),
    ("ca without name", minimal(ca={}), "ca.name: required key is missing"),
    ("bad CA name", minimal(ca={"name": "not a dn"}), "ca.name: 'not a dn' is not a"),
    ("unknown CA key type", minimal(ca={"name": "cn=CA", "key_type": "dsa"}),
     "ca.key_type: 'dsa' is not allowed"),
    ("policy for no profile", minimal(ca={"name": "cn=CA", "policies": {"nope": "auto"}}),
     "ca.policies.nope: no such profile"),
    ("unknown policy", minimal(ca={"name": "cn=CA", "policies": {"sub-ca": "always"}}),
     "ca.policies.sub-ca: 'always' is not allowed"),
    ("bad profile field", minimal(ca={"name": "cn=CA",
                                      "profiles": {"smime-user": {"validity_days": "x"}}}),
     "ca.profiles.smime-user.validity_days"),
    ("bad CRL interval", minimal(ca={"name": "cn=CA", "crl": {"interval_minutes": 0}}),
     "ca.crl.interval_minutes: 0 is not allowed"),
    ("http base URL", minimal(ca={"name": "cn=CA", "base_url": "ftp://x"}), "ca.base_url"),
    ("auto-enroll without SMTP", minimal(kms={"auto_enroll": True}),
     "kms.auto_enroll: needs kms.smtp"),
    ("more approvals than officers", minimal(kms={"officers": ["cn=a"], "recovery_approvals": 2}),
     "kms.recovery_approvals: 2 approvals but only 1 officers"),
    ("KMS key type", minimal(kms={"encryption_key_type": "dsa"}), "kms.encryption_key_type"),
    ("web listen URL", minimal(http={"listen": ["ftp://x"]}), "http.listen[0]"),
    ("unknown certificate mapping", minimal(sasl={"map": ["issued", "cn"]}),
     "sasl.map[1]: unknown mapping 'cn'"),
    ("subject rule that is no regex", minimal(sasl={"subject": [{"match": "(", "dn": "x"}]}),
     "sasl.subject[0].match: not a regular expression"),
    ("subject rule without a DN", minimal(sasl={"subject": [{"match": "x"}]}),
     "sasl.subject[0].dn: required key is missing"),
    ("filter depth beyond the stack", minimal(limits={"max_filter_depth": 257}),
     "limits.max_filter_depth: 257 is not allowed (from 1 to 256)"),
    ("no DN at all", minimal(limits={"max_dn_bytes": 0}), "limits.max_dn_bytes: 0 is not"),
    ("DN without RDNs", minimal(limits={"max_rdns": 0}), "limits.max_rdns: 0 is not"),
    ("cache bytes", minimal(storage={"cache_bytes": -1}), "storage.cache_bytes: -1 is not"),
    ("storage URL of another scheme", minimal(storage={"url": "mysql://a@b/c"}),
     "storage.url: mysql scheme: must be postgresql://"),
    ("storage URL holding a password", minimal(storage={"url": "postgresql://u:pw@h/db"}),
     "storage.url: postgresql://u:***@h/db: holds a password"),
    ("storage URL libpq refuses", minimal(storage={"url": "postgresql://h/db?nosuch=1"}),
     'storage.url: postgresql://h/db?nosuch=1: invalid URI query parameter: "nosuch"'),
    ("storage URL and path", minimal(storage={"url": "postgresql://h/db", "path": "x.db"}),
     "storage.url: not with storage.path"),
]


def test_referral_list_settings(tmp_path: Path) -> None:
    (tmp_path / "peer-password").write_text("pw\n")
    listed = from_mapping(minimal(referral={"mode": "merge", "list": [
        {"url": "ldaps://dir2.example.com/dc=example,dc=com", "timeout_s": 0.5},
        {"url": "ldap://h:1389/o=partner", "starttls": True, "bind_dn": "cn=certdir,o=partner",
         "password_file": "peer-password", "size_limit": 50,
         "map": {"o=partner": "ou=partner,dc=example,dc=com"}}]}), tmp_path)
    one, two = listed.directory.referral_list.peers
    assert (listed.directory.referral_list.mode, one.host, one.port, one.tls, one.base,
            one.timeout_s, one.mapping) == (
        "merge", "dir2.example.com", 636, "ldaps", "dc=example,dc=com", 0.5,
        (("dc=example,dc=com", "dc=example,dc=com"),))
    assert (two.port, two.tls, two.password_file, two.size_limit, two.mapping) == (
        1389, "starttls", tmp_path / "peer-password", 50,
        (("o=partner", "ou=partner,dc=example,dc=com"),))


def test_storage_url_is_kept_as_given(tmp_path: Path) -> None:
    d = from_mapping(minimal(storage={"url": "postgresql://certdir@db:5432/certdir"}),
                     tmp_path).directory
    assert d.storage_url == "postgresql://certdir@db:5432/certdir"


def test_a_storage_password_goes_to_a_libpq_password_file(tmp_path: Path) -> None:
    url, password = split_password("postgresql://certdir:p%3Aw%5C@db:5432/certdir?sslmode=require")
    assert (url, password) == ("postgresql://certdir@db:5432/certdir?sslmode=require", "p:w\\")
    assert password is not None
    (tmp_path / "secrets").mkdir()
    write_password(tmp_path, password)
    passfile = tmp_path / "secrets" / "storage-password"
    assert passfile.read_text() == "*:*:*:*:p\\:w\\\\\n"
    assert passfile.stat().st_mode & 0o777 == 0o600
    assert connect_url(url, tmp_path) == f"{url}&passfile={passfile}"


def test_request_cost_defaults(tmp_path: Path) -> None:
    d = from_mapping(minimal(), tmp_path).directory
    assert (d.max_dn_bytes, d.max_rdns, d.cache_bytes) == (8192, 256, 64 * 1024 * 1024)


@pytest.mark.parametrize("why, data, message", BAD)
def test_bad_config_names_the_key(why: str, data: dict[str, Any], message: str,
                                  tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=None) as error:
        from_mapping(data, tmp_path)
    assert message in str(error.value)


def test_load_reports_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="certdir init"):
        load(tmp_path)
    (tmp_path / "certdir.yaml").write_text("suffix: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load(tmp_path)


def test_example_config_loads(tmp_path: Path) -> None:
    """config.example.yaml documents every key with a value that is accepted."""
    example = Path(__file__).parents[2] / "config.example.yaml"
    config = from_mapping(yaml.safe_load(example.read_text()), tmp_path)
    assert config.ca is not None
    assert config.ca.profiles["partner-smime"].validity_days == 730
    assert config.ca.passphrase_file == tmp_path / "secrets" / "ca-passphrase"
    assert config.ca.acme is not None
    assert config.ca.acme.limits.orders_per_identifier == 50
    assert config.ca.acme.caa_identities == ("pki.example.com",)
    assert config.ca.acme.limits.accounts_per_address == 100
    assert (config.ca.acme.external_account_required, config.ca.acme.orders_per_page) == (
        False, 100)


# --- every key of config.example.yaml, given values of the wrong type ------------------

EXAMPLE = Path(__file__).parents[2] / "config.example.yaml"
# Wrong values by the type of the example's value; a mapping may be empty (null).
WRONG: dict[type | str, tuple[object, ...]] = {
    # Durations ("15m") also take a number of seconds.
    "duration": ("soon", "5x", 1.5, True, [], {"a": 1}, -5, None),
    bool: ("yes", 3, [], {"a": 1}),
    int: ("many", 1.5, True, [], {"a": 1}, -5, None),
    # Seconds (ca.acme's timeouts) take fractions too.
    float: ("many", True, [], {"a": 1}, -5.0, None),
    str: (5, 1.5, True, [], {"a": 1}, None),
    list: ("x", 5, {"a": 1}, [5], [[]], [{}], [None], None),
    dict: ("x", 5, [1], {"no-such-key": 1}),
}


def _leaves(node: object, path: tuple[str | int, ...]) -> Iterator[tuple[tuple[str | int, ...],
                                                                         object]]:
    if path:
        yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, (*path, key))


def _key(path: tuple[str | int, ...]) -> str:
    return ".".join(str(part) for part in path)


@functools.cache
def _example() -> dict[str, Any]:
    example: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    return example


def _kind(value: object) -> type | str:
    if isinstance(value, str) and re.fullmatch(r"\d+[smhd]", value):
        return "duration"
    return next(k for k in WRONG if isinstance(k, type) and isinstance(value, k))


def _wrong_cases() -> list[tuple[str, tuple[str | int, ...], object]]:
    return [(_key(path), path, bad) for path, value in _leaves(_example(), ())
            for kind in (_kind(value),)
            for bad in WRONG[kind]]


def _with(path: tuple[str | int, ...], value: object) -> dict[str, Any]:
    settings: dict[str, Any] = copy.deepcopy(_example())
    node: Any = settings
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return settings


def _loading(tmp_path: Path, settings: dict[str, Any]) -> str:
    """What `certdir serve` would say: the ConfigError that `load` raises once the
    YAML is parsed (it prefixes the file's name, see above), the one line serve prints."""
    with pytest.raises(ConfigError) as error:
        from_mapping(settings, tmp_path)
    return str(error.value)


@pytest.mark.parametrize("key, path, bad", _wrong_cases(),
                         ids=lambda case: case if isinstance(case, str) else repr(case)[:20])
def test_a_wrong_value_for_any_example_key_names_it(tmp_path: Path, key: str,
                                                    path: tuple[str | int, ...],
                                                    bad: object) -> None:
    message = _loading(tmp_path, _with(path, bad))
    assert message.startswith(key), message


# Values of the right type the loader must still refuse: beyond what a count of
# processes, a calendar or a TCP port can hold (a traceback at start before).
OUT_OF_RANGE = [
    (("workers",), 100_000, "workers: 100000 is not allowed (from 1 to 256 processes)"),
    (("ca", "tls_renew_days"), 2**31 - 1,
     "ca.tls_renew_days: 2147483647 is not allowed (from 1 to 36500 days)"),
    (("ca", "validity_days"), 10**40, "ca.validity_days: "),
    (("ca", "crl", "validity_hours"), 10**9,
     "ca.crl.validity_hours: 1000000000 is not allowed (from 1 to 876000 hours)"),
    (("ca", "crl", "interval_minutes"), 10**12, "ca.crl.interval_minutes: "),
    (("ca", "ocsp", "responder_days"), 10**6, "ca.ocsp.responder_days: "),
    (("kms", "token_lifetime_hours"), 10**8, "kms.token_lifetime_hours: "),
    (("kms", "expiry_warning_days"), 10**7, "kms.expiry_warning_days: "),
    (("http", "request_seconds"), 10**10, "http.request_seconds: "),
    (("http", "session_minutes"), 10**10, "http.session_minutes: "),
    (("kms", "smtp", "port"), 70_000, "kms.smtp.port: 70000 is not allowed (a TCP port)"),
    (("ca", "acme", "profile"), "no-such", "ca.acme.profile: no such profile 'no-such'"),
    (("ca", "acme", "rate_limits", "orders_per_account"), 0,
     "ca.acme.rate_limits.orders_per_account: 0 is not allowed (must be > 0)"),
    (("ca", "acme", "orders_per_page"), 0,
     "ca.acme.orders_per_page: 0 is not allowed (must be > 0)"),
    (("ca", "acme", "terms_of_service"), "ftp://x",
     "ca.acme.terms_of_service: 'ftp://x' is not allowed"),
    (("ca", "profiles", "partner-smime", "validity_days"), 10**9,
     "ca.profiles.partner-smime.validity_days: "),
    (("ca", "profiles", "tls-client"), {"validity_days": 10**6},
     "ca.profiles.tls-client.validity_days: at most 36500 days, got 1000000"),
]


@pytest.mark.parametrize("path, value, message", OUT_OF_RANGE,
                         ids=[_key(path) for path, _, _ in OUT_OF_RANGE])
def test_a_value_out_of_range_names_the_key(tmp_path: Path, path: tuple[str, ...],
                                            value: object, message: str) -> None:
    assert _loading(tmp_path, _with(path, value)).startswith(message)
