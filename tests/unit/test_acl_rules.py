"""Access rules read from certdir.yaml: good rules become value objects, a bad
one is one message naming its key (through `certdir.config`, and against the
schema when the directory opens)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from certdir.config import ConfigError, from_mapping
from directory.acl.engine import RulePolicy
from directory.acl.rights import LEVELS, WRITE, Rights
from directory.acl.rules import (
    By,
    Proxy,
    Rule,
    RuleError,
    What,
    Who,
    default_rules,
    parse_proxies,
    parse_rules,
)
from directory.protocol.dn import DN
from directory.protocol.filter import Equality
from directory.protocol.messages import Scope
from directory.schema import Schema

HASH = "{ARGON2}$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2g"
SCHEMA = Schema.load([Path(__file__).resolve().parents[2] / "schema"])
PEOPLE = "ou=people,dc=example,dc=com"


def config(access: dict[str, Any], tmp_path: Path) -> Any:
    return from_mapping({"suffix": "dc=example,dc=com", "root": {"password_hash": HASH},
                         "access": access}, tmp_path)


def rule(to: Any = None, *by: tuple[str | None, str]) -> dict[str, Any]:
    return {"to": to if to is not None else {},
            "by": [{"who": w, "level": level} for w, level in by or (("*", "read"),)]}


GOOD = [
    ("everything", rule(), What()),
    ("dn, default subtree", rule({"dn": PEOPLE}), What(dn=PEOPLE)),
    ("dn and scope", rule({"dn": PEOPLE, "scope": "one"}), What(dn=PEOPLE, scope=Scope.ONE)),
    ("children scope", rule({"dn": PEOPLE, "scope": "children"}),
     What(dn=PEOPLE, scope=Scope.CHILDREN)),
    ("regex", rule({"dn_regex": "^uid=[^,]+,ou=people"}),
     What(dn_regex=re.compile("^uid=[^,]+,ou=people"))),
    ("filter", rule({"filter": "(objectClass=inetOrgPerson)"}),
     What(filter=Equality("objectClass", b"inetOrgPerson"))),
    ("attrs with pseudo-attributes", rule({"attrs": ["telephoneNumber", "entry", "children"]}),
     What(attrs=("telephoneNumber", "entry", "children"))),
    ("to may be empty in YAML", {"to": None, "by": [{"who": "*", "level": "read"}]}, What()),
]


@pytest.mark.parametrize("why, data, what", GOOD, ids=[g[0] for g in GOOD])
def test_what(why: str, data: dict[str, Any], what: What) -> None:
    assert parse_rules([data]) == (Rule(what, (By(Who("*"), LEVELS["read"], "read"),)),)


WHO = [
    ("anonymous", Who("anonymous")),
    ("users", Who("users")),
    ("self", Who("self")),
    ("*", Who("*")),
    (f"dn:uid=a,{PEOPLE}", Who("dn", f"uid=a,{PEOPLE}")),
    (f"dn.subtree:{PEOPLE}", Who("dn.subtree", PEOPLE)),
    (f"dn.one:{PEOPLE}", Who("dn.one", PEOPLE)),
    ("dn.regex:^uid=a", Who("dn.regex", "^uid=a", re.compile("^uid=a"))),
    ("group:cn=helpdesk,ou=groups,dc=example,dc=com",
     Who("group", "cn=helpdesk,ou=groups,dc=example,dc=com")),
    ("tls:CN=alice,O=Example", Who("tls", "CN=alice,O=Example")),
    ("sasl:external", Who("sasl", "EXTERNAL")),
]


@pytest.mark.parametrize("text, who", WHO, ids=[w[0] for w in WHO])
def test_who(text: str, who: Who) -> None:
    (parsed,) = parse_rules([rule({}, (text, "=xw"))])
    assert parsed.by == (By(who, Rights.AUTH | WRITE, "=xw"),)
    assert str(parsed.by[0].who) == (text if who.kind != "sasl" else "sasl:EXTERNAL")


def test_proxy() -> None:
    assert parse_proxies([{"who": "dn:cn=webmail,dc=example,dc=com",
                           "as": f"dn.subtree:{PEOPLE}"}]) == (
        Proxy(Who("dn", "cn=webmail,dc=example,dc=com"), Who("dn.subtree", PEOPLE)),)


def test_config_carries_rules(tmp_path: Path) -> None:
    d = config({"rules": [rule({"dn": PEOPLE}, ("self", "write"))],
                "proxy": [{"who": "users", "as": "*"}]}, tmp_path).directory
    assert d.access_rules == (Rule(What(dn=PEOPLE), (By(Who("self"), LEVELS["write"],
                                                           "write"),)),)
    assert d.access_proxy == (Proxy(Who("users"), Who("*")),)


def test_no_rules_means_defaults(tmp_path: Path) -> None:
    d = config({"anonymous_read": False}, tmp_path).directory
    assert d.access_rules is None
    assert d.access_proxy == ()
    assert default_rules(False)[-1].by == (By(Who("users"), LEVELS["read"], "read"),)
    assert [b.who.kind for b in default_rules(True)[-1].by] == ["users", "anonymous"]
    assert default_rules(True)[1] == Rule(What(attrs=("contextCSN",)),
                                          (By(Who("*"), LEVELS["none"], "none"),))


BAD = [
    ("rules not a list", {"rules": {"to": {}}}, "access.rules: expected a list"),
    ("rule not a mapping", {"rules": ["to all"]}, "access.rules[0]: expected a mapping"),
    ("unknown rule key", {"rules": [{**rule(), "from": 1}]}, "access.rules[0].from: unknown key"),
    ("no by", {"rules": [{"to": {}}]}, "access.rules[0].by: required key is missing"),
    ("empty by", {"rules": [{"to": {}, "by": []}]},
     "access.rules[0].by: expected a non-empty list"),
    ("unknown to key", {"rules": [rule({"base": PEOPLE})]},
     "access.rules[0].to.base: unknown key"),
    ("bad dn", {"rules": [rule({"dn": "people"})]}, "access.rules[0].to.dn: invalid DN"),
    ("dn not a string", {"rules": [rule({"dn": 3})]},
     "access.rules[0].to.dn: expected a string, got 3"),
    ("unknown scope", {"rules": [rule({"dn": PEOPLE, "scope": "sub"})]},
     "access.rules[0].to.scope: 'sub': unknown scope"),
    ("scope without dn", {"rules": [rule({"scope": "one"})]},
     "access.rules[0].to.scope: needs dn"),
    ("dn and regex", {"rules": [rule({"dn": PEOPLE, "dn_regex": "x"})]},
     "access.rules[0].to.dn_regex: give dn or dn_regex, not both"),
    ("bad regex", {"rules": [rule({"dn_regex": "(uid"})]},
     "access.rules[0].to.dn_regex: '(uid': bad regular expression"),
    ("bad filter", {"rules": [rule({"filter": "(cn=a"})]}, "access.rules[0].to.filter: '(cn=a'"),
    ("attrs not a list", {"rules": [rule({"attrs": "cn"})]},
     "access.rules[0].to.attrs: expected a non-empty list"),
    ("attr not a string", {"rules": [rule({"attrs": ["cn", 7]})]},
     "access.rules[0].to.attrs[1]: expected an attribute name, got 7"),
    ("by without level", {"rules": [{"to": {}, "by": [{"who": "*"}]}]},
     "access.rules[0].by[0].level: required key is missing"),
    ("unknown by key", {"rules": [{"to": {}, "by": [{"who": "*", "level": "read", "x": 1}]}]},
     "access.rules[0].by[0].x: unknown key"),
    ("unknown level", {"rules": [rule(), rule({}, ("*", "read"), ("users", "reed"))]},
     "access.rules[1].by[1].level: 'reed': unknown level"),
    ("unknown privilege", {"rules": [rule({}, ("*", "=rq"))]},
     "access.rules[0].by[0].level: '=rq': unknown privilege 'q'"),
    ("unknown who", {"rules": [rule({}, ("everyone", "read"))]},
     "access.rules[0].by[0].who: 'everyone': unknown identity"),
    ("unknown who kind", {"rules": [rule({}, ("uid:alice", "read"))]},
     "access.rules[0].by[0].who: 'uid:alice': unknown identity"),
    ("who not a string", {"rules": [rule({}, (None, "read"))]},
     "access.rules[0].by[0].who: expected a string, got None"),
    ("empty who DN", {"rules": [rule({}, ("dn:", "read"))]},
     "access.rules[0].by[0].who: 'dn:': nothing after dn:"),
    ("bad who DN", {"rules": [rule({}, ("group:helpdesk", "read"))]},
     "access.rules[0].by[0].who: invalid DN 'helpdesk'"),
    ("bad who regex", {"rules": [rule({}, ("dn.regex:[", "read"))]},
     "access.rules[0].by[0].who: '[': bad regular expression"),
    ("bad SASL name", {"rules": [rule({}, ("sasl:EXTERNAL PLAIN", "read"))]},
     "access.rules[0].by[0].who: 'sasl:EXTERNAL PLAIN': not a SASL mechanism name"),
    ("proxy not a list", {"proxy": "users"}, "access.proxy: expected a list"),
    ("proxy without as", {"proxy": [{"who": "users"}]}, "access.proxy[0].as: required key"),
    ("anonymous proxies", {"proxy": [{"who": "anonymous", "as": "*"}]},
     "access.proxy[0].who: 'anonymous': unknown identity"),
    ("proxy as self", {"proxy": [{"who": "users", "as": "self"}]},
     "access.proxy[0].as: 'self': unknown identity"),
    ("proxy as a TLS subject", {"proxy": [{"who": "users", "as": "tls:cn=a"}]},
     "access.proxy[0].as: 'tls:cn=a': unknown identity"),
]


@pytest.mark.parametrize("why, access, message", BAD, ids=[b[0] for b in BAD])
def test_bad(why: str, access: dict[str, Any], message: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as failed:
        config(access, tmp_path)
    assert str(failed.value).startswith(message), str(failed.value)


SCHEMA_BAD = [
    ("unknown attribute", [rule({"attrs": ["cn", "telephonNumber"]})],
     "access.rules[0].to.attrs[1]: 'telephonNumber': unknown attribute type"),
    ("attribute option", [rule({"attrs": ["cn;lang-de"]})],
     "access.rules[0].to.attrs[0]: 'cn;lang-de': attribute options are not supported"),
    ("unknown type in a DN", [rule({"dn": "xx=people,dc=example,dc=com"})],
     "access.rules[0].to.dn: invalid DN 'xx=people,dc=example,dc=com': unknown attribute "
     "type xx"),
    ("unknown type in a group DN", [rule(), rule({}, ("group:xx=a", "read"))],
     "access.rules[1].by[0].who: invalid DN 'xx=a'"),
]


@pytest.mark.parametrize("why, rules, message", SCHEMA_BAD, ids=[b[0] for b in SCHEMA_BAD])
def test_bad_against_the_schema(why: str, rules: list[Any], message: str) -> None:
    with pytest.raises(RuleError) as failed:
        RulePolicy(parse_rules(rules), (), SCHEMA, DN.parse("cn=admin", SCHEMA))
    assert str(failed.value).startswith(message), str(failed.value)


def test_bad_proxy_against_the_schema() -> None:
    proxies = parse_proxies([{"who": "users", "as": "dn.subtree:xx=a"}])
    with pytest.raises(RuleError, match=r"^access.proxy\[0\].as: invalid DN 'xx=a'"):
        RulePolicy((), proxies, SCHEMA, DN.parse("cn=admin", SCHEMA))


def test_text_forms() -> None:
    (r,) = parse_rules([rule({"dn": PEOPLE, "scope": "one", "filter": "(objectClass=person)",
                              "attrs": ["cn", "entry"]})])
    assert str(r.what) == f'dn.one="{PEOPLE}" filter=(objectClass=person) attrs=cn,entry'
    (r,) = parse_rules([rule({"dn_regex": "^uid="})])
    assert str(r.what) == 'dn.regex="^uid="'
    assert str(What()) == "*"


def test_example_rules_compile(tmp_path: Path) -> None:
    """config.example.yaml's help desk and proxy rules hold against the schema."""
    import yaml

    example = yaml.safe_load((Path(__file__).parents[2] / "config.example.yaml").read_text())
    d = from_mapping(example, tmp_path).directory
    assert d.access_rules is not None
    policy = RulePolicy(d.access_rules, d.access_proxy, SCHEMA, DN.parse(d.root_dn, SCHEMA))
    assert [str(r.what) for r in policy.rules] == [
        "attrs=userPassword", f'dn.subtree="{PEOPLE}" attrs=telephoneNumber',
        f'dn.subtree="{PEOPLE}"', "*"]
