"""certdir.yaml: a bad key is named, a good file gives typed settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from certdir.config import ConfigError, from_mapping, load

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


BAD = [
    ("missing suffix", {"root": {"password_hash": HASH}}, "suffix: required key is missing"),
    ("clear password", {"suffix": "o=x", "root": {"password_hash": "secret"}},
     "root.password_hash: must be an {ARGON2} hash"),
    ("unknown top key", minimal(sufix="x"), "sufix: unknown key"),
    ("unknown nested key", minimal(limits={"sise": 3}), "limits.sise: unknown key"),
    ("wrong type", minimal(limits={"size": "many"}), "limits.size: expected an integer"),
    ("bool is not an int", minimal(limits={"size": True}), "limits.size: expected an integer"),
    ("negative", minimal(limits={"time": -1}), "limits.time: -1 is not allowed"),
    ("bad listen scheme", minimal(listen=["http://x:1"]), "listen[0]"),
    ("ldaps without tls", minimal(listen=["ldaps://127.0.0.1:636"]), "needs a tls section"),
    ("bad referral", minimal(referral={"default": ["http://x"]}), "referral.default[0]"),
    ("index not a string", minimal(storage={"indexes": ["cn", 3]}), "storage.indexes[1]"),
    ("section not a mapping", minimal(access=["x"]), "access: expected a mapping"),
]


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
