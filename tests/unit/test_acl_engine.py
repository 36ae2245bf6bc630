"""The rule engine's decisions: identity x entry x attribute -> rights, first
matching rule and first matching `by`, default deny, groups, proxying."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from directory.acl.engine import MAX_GROUP_DEPTH, Decision, RulePolicy, below
from directory.acl.identity import ANONYMOUS, Identity
from directory.acl.rights import LEVELS, WRITE, Rights
from directory.acl.rules import default_rules, parse_proxies, parse_rules
from directory.acl.view import View
from directory.entry import Entry
from directory.protocol.dn import DN
from directory.schema import Schema

SCHEMA = Schema.load([Path(__file__).resolve().parents[2] / "schema"])
SUFFIX = "dc=example,dc=com"
PEOPLE = f"ou=people,{SUFFIX}"
GROUPS = f"ou=groups,{SUFFIX}"
ROOT = DN.parse(f"cn=admin,{SUFFIX}", SCHEMA)
NONE, READ, WRITE_ALL = LEVELS["none"], LEVELS["read"], LEVELS["write"]


def dn(text: str) -> DN:
    return DN.parse(text, SCHEMA)


def entry(text: str, *classes: str, **values: list[str]) -> Entry:
    attributes = {"objectclass": tuple(c.encode() for c in classes)}
    attributes.update({k: tuple(v.encode() for v in vs) for k, vs in values.items()})
    return Entry(dn(text), attributes)


def person(uid: str, **values: list[str]) -> Entry:
    return entry(f"uid={uid},{PEOPLE}", "inetOrgPerson", uid=[uid], cn=[uid.title()],
                 sn=["X"], **values)


ENTRIES = [
    entry(SUFFIX, "domain", dc=["example"]),
    entry(PEOPLE, "organizationalUnit", ou=["people"]),
    person("alice", telephonenumber=["1"]),
    person("bob"),
    person("carol", employeetype=["contractor"]),
    entry(f"uid=dave,ou=staff,{PEOPLE}", "inetOrgPerson", uid=["dave"], cn=["Dave"], sn=["X"]),
    # Its RDN value holds ",ou=people": an entry of the suffix, not of ou=people.
    entry(f"cn=x\\,ou=people,{SUFFIX}", "organizationalRole", cn=["x,ou=people"]),
    entry(f"cn=helpdesk,{GROUPS}", "groupOfNames", member=[f"cn=tier2,{GROUPS}"]),
    entry(f"cn=tier2,{GROUPS}", "groupOfUniqueNames",
          uniquemember=[f"uid=bob,{PEOPLE}#'0101'B", f"cn=helpdesk,{GROUPS}"]),
]
DB = {e.dn: e for e in ENTRIES}
GET: Callable[[DN], Entry | None] = DB.get


def by_uid(uid: str) -> Entry:
    return DB[dn(f"uid={uid},{PEOPLE}")]


def user(uid: str, **kw: Any) -> Identity:
    return Identity(dn(f"uid={uid},{PEOPLE}"), **kw)


ALICE, BOB, CAROL = user("alice"), user("bob"), user("carol")
DAVE = Identity(dn(f"uid=dave,ou=staff,{PEOPLE}"))
CERT = Identity(dn(f"uid=alice,{PEOPLE}"), mechanism="EXTERNAL",
                tls_subject="CN=Alice,O=Example,C=DE")


def policy(rules: list[dict[str, Any]], proxy: list[dict[str, Any]] | None = None) -> RulePolicy:
    return RulePolicy(parse_rules(rules), parse_proxies(proxy or []), SCHEMA, ROOT)


# --- the defaults reproduce the policy before rules ------------------------------

OWN = Rights.AUTH | WRITE
AUTH = LEVELS["auth"]
DEFAULTS = [
    # anonymous_read, who, entry, attribute, rights
    (True, ANONYMOUS, "alice", "userpassword", AUTH),
    (True, ANONYMOUS, "alice", "cn", READ),
    (True, ANONYMOUS, "alice", "entry", READ),
    (True, ALICE, "alice", "userpassword", OWN),
    (True, BOB, "alice", "userpassword", AUTH),
    (True, ALICE, "alice", "cn", READ),
    (True, BOB, "alice", "children", READ),
    (False, ANONYMOUS, "alice", "userpassword", AUTH),
    (False, ANONYMOUS, "alice", "cn", NONE),
    (False, ANONYMOUS, "alice", "entry", NONE),
    (False, ALICE, "alice", "userpassword", OWN),
    (False, BOB, "alice", "mail", READ),
    (False, BOB, "alice", "entry", READ),
]


@pytest.mark.parametrize("anonymous_read, who, uid, attribute, rights", DEFAULTS)
def test_defaults(anonymous_read: bool, who: Identity, uid: str, attribute: str,
                  rights: Rights) -> None:
    defaults = RulePolicy(default_rules(anonymous_read), (), SCHEMA, ROOT, "default")
    assert defaults.rights(who, by_uid(uid), attribute, GET) == rights


# --- a help desk and self-service ---------------------------------------------------

HELPDESK = f"group:cn=helpdesk,{GROUPS}"
RULES = [
    {"to": {"attrs": ["userPassword"]},
     "by": [{"who": "self", "level": "=xw"}, {"who": HELPDESK, "level": "=xw"},
            {"who": "*", "level": "auth"}]},
    {"to": {"dn": PEOPLE, "attrs": ["telephoneNumber"]},
     "by": [{"who": "self", "level": "write"}, {"who": HELPDESK, "level": "write"},
            {"who": "users", "level": "read"}]},
    {"to": {"dn": PEOPLE, "filter": "(employeeType=contractor)", "attrs": ["name"]},
     "by": [{"who": "users", "level": "search"}]},
    {"to": {"dn": PEOPLE, "scope": "base", "attrs": ["children"]},
     "by": [{"who": HELPDESK, "level": "write"}]},
    {"to": {"dn": PEOPLE, "scope": "children"},
     "by": [{"who": HELPDESK, "level": "write"}, {"who": f"dn.one:{PEOPLE}", "level": "read"},
            {"who": "dn.regex:^uid=[^,]+,ou=staff,", "level": "compare"}]},
    {"to": {"dn_regex": "^cn=[^,]+,ou=groups,"},
     "by": [{"who": "tls:cn=alice,o=example,c=de", "level": "read"},
            {"who": "sasl:EXTERNAL", "level": "search"}, {"who": "users", "level": "none"},
            {"who": "*", "level": "read"}]},
]

DECISIONS = [
    # who, entry DN, attribute, rights, rule, by
    (ALICE, f"uid=alice,{PEOPLE}", "telephonenumber", WRITE_ALL, 1, 0),
    (CAROL, f"uid=alice,{PEOPLE}", "telephonenumber", READ, 1, 2),
    (ANONYMOUS, f"uid=alice,{PEOPLE}", "telephonenumber", NONE, 1, None),
    (BOB, f"uid=alice,{PEOPLE}", "telephonenumber", WRITE_ALL, 1, 1),  # nested member
    (BOB, f"uid=alice,{PEOPLE}", "userpassword", OWN, 0, 1),
    (CAROL, f"uid=alice,{PEOPLE}", "userpassword", AUTH, 0, 2),
    (BOB, f"uid=alice,{PEOPLE}", "cn", WRITE_ALL, 4, 0),
    (BOB, PEOPLE, "children", WRITE_ALL, 3, 0),
    (ALICE, PEOPLE, "children", NONE, 3, None),
    (BOB, PEOPLE, "entry", NONE, None, None),       # ou=people is not its own child
    (ALICE, f"uid=bob,{PEOPLE}", "entry", READ, 4, 1),
    (DAVE, f"uid=bob,{PEOPLE}", "entry", LEVELS["compare"], 4, 2),
    (DAVE, f"uid=dave,ou=staff,{PEOPLE}", "mail", LEVELS["compare"], 4, 2),
    # the filter: name covers cn and sn, for contractors only
    (ALICE, f"uid=carol,{PEOPLE}", "cn", LEVELS["search"], 2, 0),
    (ALICE, f"uid=carol,{PEOPLE}", "sn", LEVELS["search"], 2, 0),
    (ALICE, f"uid=carol,{PEOPLE}", "cn;lang-en", LEVELS["search"], 2, 0),
    (ALICE, f"uid=carol,{PEOPLE}", "mail", READ, 4, 1),
    (ALICE, f"uid=bob,{PEOPLE}", "cn", READ, 4, 1),
    (ANONYMOUS, f"uid=carol,{PEOPLE}", "cn", NONE, 2, None),
    # an escaped comma does not put an entry below ou=people
    (BOB, f"cn=x\\,ou=people,{SUFFIX}", "cn", NONE, None, None),
    # TLS subject, SASL mechanism, then users get none before * could match
    (CERT, f"cn=tier2,{GROUPS}", "uniquemember", READ, 5, 0),
    (Identity(BOB.dn, mechanism="EXTERNAL"), f"cn=tier2,{GROUPS}", "cn", LEVELS["search"], 5, 1),
    (BOB, f"cn=helpdesk,{GROUPS}", "member", NONE, 5, 2),
    (ANONYMOUS, f"cn=helpdesk,{GROUPS}", "member", READ, 5, 3),
    (Identity(DN.ROOT, tls_subject="CN=Alice, O=Example, C=DE"), f"cn=tier2,{GROUPS}", "cn",
     READ, 5, 0),
    (BOB, SUFFIX, "entry", NONE, None, None),
]


@pytest.mark.parametrize("who, target, attribute, rights, rule, by", DECISIONS)
def test_decisions(who: Identity, target: str, attribute: str, rights: Rights,
                   rule: int | None, by: int | None) -> None:
    assert policy(RULES).decide(who, DB[dn(target)], attribute, GET) == Decision(rights, rule, by)


def test_view_asks_the_policy_and_root_is_above_it() -> None:
    rules = policy(RULES)
    alice = by_uid("alice")
    assert View(rules, BOB, GET).rights(alice, "telephonenumber") == WRITE_ALL
    assert View(rules, ANONYMOUS, GET).rights(alice, "cn") == NONE
    assert View(rules, Identity(ROOT, is_root=True), GET).rights(alice, "cn") == WRITE_ALL


WHO_FORMS = [
    # who clause, identity, matches
    (f"dn:uid=alice,{PEOPLE}", ALICE, True),
    ("dn:UID=Alice,OU=People,DC=Example,DC=Com", ALICE, True),
    (f"dn:uid=alice,{PEOPLE}", BOB, False),
    (f"dn.subtree:{PEOPLE}", DAVE, True),
    (f"dn.subtree:{PEOPLE}", Identity(dn(PEOPLE)), True),
    (f"dn.subtree:{PEOPLE}", Identity(dn(SUFFIX)), False),
    (f"dn.one:{PEOPLE}", DAVE, False),
    (f"dn.one:{PEOPLE}", ALICE, True),
    ("dn.regex:^uid=(alice|bob),", BOB, True),
    ("dn.regex:.*", ANONYMOUS, False),
    ("users", ANONYMOUS, False),
    ("anonymous", ALICE, False),
    ("self", ALICE, True),
    ("self", BOB, False),
    ("sasl:EXTERNAL", Identity(ALICE.dn, mechanism="simple"), False),
    ("sasl:EXTERNAL", Identity(DN.ROOT, mechanism="EXTERNAL"), False),
    ("tls:cn=alice,o=example,c=de", ALICE, False),
    ("tls:cn=alice,o=example,c=de", Identity(ALICE.dn, tls_subject="not a DN"), False),
    (f"group:cn=tier2,{GROUPS}", BOB, True),
    (f"group:cn=tier2,{GROUPS}", ALICE, False),
    (f"group:uid=carol,{PEOPLE}", CAROL, False),   # not a group
    (f"group:cn=missing,{GROUPS}", BOB, False),
]


@pytest.mark.parametrize("clause, who, matches", WHO_FORMS)
def test_who_forms(clause: str, who: Identity, matches: bool) -> None:
    rules = policy([{"to": {}, "by": [{"who": clause, "level": "read"}]}])
    assert rules.rights(who, by_uid("alice"), "cn", GET) == (READ if matches else NONE)


def test_first_rule_wins_even_without_a_matching_by() -> None:
    rules = policy([{"to": {"attrs": ["cn"]}, "by": [{"who": "self", "level": "write"}]},
                    {"to": {}, "by": [{"who": "*", "level": "read"}]}])
    assert rules.decide(BOB, by_uid("alice"), "cn", GET) == Decision(NONE, 0)
    assert rules.decide(BOB, by_uid("alice"), "sn", GET) == Decision(READ, 1, 0)


def test_no_rules_deny_everything() -> None:
    assert policy([]).decide(ALICE, by_uid("alice"), "cn", GET) == Decision(NONE)


SCOPES = [
    ("base", [PEOPLE]),
    ("one", [f"uid=alice,{PEOPLE}", f"uid=bob,{PEOPLE}", f"uid=carol,{PEOPLE}"]),
    ("subtree", [PEOPLE, f"uid=alice,{PEOPLE}", f"uid=bob,{PEOPLE}", f"uid=carol,{PEOPLE}",
                 f"uid=dave,ou=staff,{PEOPLE}"]),
    ("children", [f"uid=alice,{PEOPLE}", f"uid=bob,{PEOPLE}", f"uid=carol,{PEOPLE}",
                  f"uid=dave,ou=staff,{PEOPLE}"]),
]


@pytest.mark.parametrize("scope, covered", SCOPES)
def test_scopes(scope: str, covered: list[str]) -> None:
    rules = policy([{"to": {"dn": "OU=People,DC=Example,DC=Com", "scope": scope},
                     "by": [{"who": "*", "level": "read"}]}])
    assert sorted(str(e.dn) for e in ENTRIES if rules.rights(ALICE, e, "entry", GET)) == (
        sorted(covered))


BELOW = [
    ("uid=a,dc=x", "dc=x", True),
    ("dc=x", "dc=x", False),
    ("uid=a,dc=xx", "dc=x", False),
    ("uid=a,ddc=x", "dc=x", False),
    ("cn=a\\,dc=x", "dc=x", False),
    ("cn=a\\\\,dc=x", "dc=x", True),
    ("cn=a+uid=b,dc=x", "dc=x", True),
    ("dc=x", "", True),
    ("", "", False),
]


@pytest.mark.parametrize("dn_text, base, result", BELOW)
def test_below(dn_text: str, base: str, result: bool) -> None:
    assert below(dn_text, base) is result


def _chain(depth: int) -> dict[DN, Entry]:
    """cn=g0 holds cn=g1 ... holds cn=g<depth>, which holds alice."""
    groups = {}
    for i in range(depth + 1):
        member = f"cn=g{i + 1},{GROUPS}" if i < depth else f"uid=alice,{PEOPLE}"
        e = entry(f"cn=g{i},{GROUPS}", "groupOfNames", member=[member])
        groups[e.dn] = e
    return groups


def test_nested_groups_are_bounded() -> None:
    rules = policy([{"to": {}, "by": [{"who": f"group:cn=g0,{GROUPS}", "level": "read"}]}])
    alice = by_uid("alice")
    assert rules.rights(ALICE, alice, "cn", _chain(MAX_GROUP_DEPTH - 1).get) == READ
    assert rules.rights(ALICE, alice, "cn", _chain(MAX_GROUP_DEPTH).get) == NONE


def test_group_cycles_end() -> None:
    rules = policy([{"to": {}, "by": [{"who": f"group:cn=helpdesk,{GROUPS}", "level": "read"}]}])
    assert rules.rights(CAROL, by_uid("alice"), "cn", GET) == NONE


def test_group_answers_last_as_long_as_the_reader() -> None:
    rules = policy([{"to": {}, "by": [{"who": f"group:cn=staff,{GROUPS}", "level": "read"}]}])
    alice = by_uid("alice")
    db = dict(DB)
    db[dn(f"cn=staff,{GROUPS}")] = entry(f"cn=staff,{GROUPS}", "groupOfNames",
                                         member=[str(BOB.dn)])
    first = db.get
    assert rules.rights(BOB, alice, "cn", first) == READ
    # A commit removes bob: the same reader still answers from before,
    # a new one (the next operation) reads the change.
    db[dn(f"cn=staff,{GROUPS}")] = entry(f"cn=staff,{GROUPS}", "groupOfNames",
                                         member=[str(CAROL.dn)])
    assert rules.rights(BOB, alice, "sn", first) == READ
    assert rules.rights(BOB, alice, "cn", db.get) == NONE
    assert rules.rights(CAROL, alice, "cn", db.get) == READ


PROXY = [
    {"who": "dn:cn=webmail,ou=services,dc=example,dc=com", "as": f"dn.subtree:{PEOPLE}"},
    {"who": "sasl:EXTERNAL", "as": f"group:cn=tier2,{GROUPS}"},
]
WEBMAIL = Identity(dn("cn=webmail,ou=services,dc=example,dc=com"))
PROXYING = [
    (WEBMAIL, f"uid=alice,{PEOPLE}", True),
    (WEBMAIL, f"uid=dave,ou=staff,{PEOPLE}", True),
    (WEBMAIL, f"cn=tier2,{GROUPS}", False),
    (WEBMAIL, str(ROOT), False),
    (ALICE, f"uid=bob,{PEOPLE}", False),
    (Identity(ALICE.dn, mechanism="EXTERNAL"), f"uid=bob,{PEOPLE}", True),
    (Identity(ALICE.dn, mechanism="EXTERNAL"), f"uid=carol,{PEOPLE}", False),
]


@pytest.mark.parametrize("who, target, allowed", PROXYING)
def test_proxy(who: Identity, target: str, allowed: bool) -> None:
    assert policy([], PROXY).may_proxy(who, dn(target), GET) is allowed


def test_no_proxy_rules_no_proxying() -> None:
    assert policy(RULES).may_proxy(WEBMAIL, ALICE.dn, GET) is False
    assert policy([], [{"who": "users", "as": "*"}]).may_proxy(WEBMAIL, ROOT, GET) is False


# --- rights alike on every entry ---------------------------------------------------

UNIFORM = [
    # rules, who, attribute, rights on every entry (None: they depend on the entry)
    (default_rules(True), ANONYMOUS, "cn", READ),
    (default_rules(False), ANONYMOUS, "entry", NONE),
    (default_rules(False), BOB, "mail", READ),
    (default_rules(False), BOB, "userpassword", None),        # self
    (default_rules(False), BOB, "contextcsn", NONE),
    (parse_rules(RULES), BOB, "userpassword", None),           # self
    (parse_rules(RULES), ALICE, "mail", None),                 # a rule for a subtree
    (parse_rules([{"to": {"dn_regex": "^uid="}, "by": [{"who": "*", "level": "read"}]}]),
     ALICE, "cn", None),                                       # a DN pattern
    (parse_rules([{"to": {"filter": "(cn=Bob)"}, "by": [{"who": "*", "level": "read"}]}]),
     BOB, "cn", None),                                         # a filter
    (parse_rules([{"to": {"attrs": ["cn"]}, "by": [{"who": HELPDESK, "level": "write"}]},
                  {"to": {}, "by": [{"who": "*", "level": "read"}]}]),
     BOB, "cn", WRITE_ALL),                                    # a group, asked once
    (parse_rules([{"to": {"attrs": ["cn"]}, "by": [{"who": "users", "level": "read"}]}]),
     BOB, "sn", NONE),                                         # no rule: default deny
]


@pytest.mark.parametrize("rules, who, attribute, rights", UNIFORM)
def test_uniform_rights_are_those_of_every_entry(rules: Any, who: Identity, attribute: str,
                                                 rights: Rights | None) -> None:
    engine = RulePolicy(rules, (), SCHEMA, ROOT)
    assert engine.uniform(who, attribute, GET) == rights
    if rights is not None:
        assert {engine.rights(who, e, attribute, GET) for e in ENTRIES} == {rights}


def test_uniform_rights_leave_root_only_attributes_to_the_root() -> None:
    engine = RulePolicy(default_rules(True), (), SCHEMA, ROOT,
                        root_only=frozenset({"pwdhistory"}))
    assert engine.uniform(BOB, "pwdhistory", GET) == NONE


class Counting:
    """The default policy, counting the questions asked of it."""

    def __init__(self) -> None:
        self.engine = RulePolicy(default_rules(False), (), SCHEMA, ROOT)
        self.asked = 0

    def rights(self, who: Identity, entry: Entry, attribute: str, get: Any) -> Rights:
        self.asked += 1
        return self.engine.rights(who, entry, attribute, get)

    def uniform(self, who: Identity, attribute: str, get: Any) -> Rights | None:
        self.asked += 1
        return self.engine.uniform(who, attribute, get)

    def may_proxy(self, who: Identity, target: DN, get: Any) -> bool:
        return False


def test_a_view_asks_once_for_rights_alike_on_every_entry() -> None:
    counting = Counting()
    view = View(counting, BOB, GET)
    assert [view.rights(e, "cn") for e in ENTRIES] == [READ] * len(ENTRIES)
    assert counting.asked == 1
    assert view.rights(by_uid("alice"), "userpassword") == AUTH
    assert view.rights(by_uid("bob"), "userpassword") == OWN
    assert counting.asked == 4
