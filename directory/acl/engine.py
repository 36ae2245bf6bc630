"""The rule engine: the access policy that `access.rules` describe.

- Rules are tried in order; the first whose `to` covers the entry and the
  attribute decides. Within it the first `by` that matches the identity
  gives the rights; none when no `by` matches. After the last rule: none
  (default deny). The root DN never gets here (`View` grants it all).
- Without `access.rules`, `default_rules` reproduce the policy certdir had
  before rules (userPassword usable for binds by anyone, writable by its
  owner; everything else readable by users, and by anonymous when
  `access.anonymous_read`).
- Attribute names in rules are resolved against the schema and cover their
  subtypes (`name` covers cn and sn); options in an asked attribute are
  ignored (`cn;lang-en` is cn). DNs in rules are normalised through the
  schema, so they compare as the entries' DNs do.
- Group membership (`group:`) reads groupOfNames `member` and
  groupOfUniqueNames `uniqueMember` values (the optional `#'…'B` UID is
  ignored), follows nested groups breadth first, each group once, at most
  `MAX_GROUP_DEPTH` levels and `MAX_GROUP_READS` entries deep.
- Proxying (RFC 4370): `who` may act as `target` when an `access.proxy`
  item's `who` matches it and its `as` matches the target; never as the
  root DN.

It runs for every entry and attribute a search returns, so the work is
done up front: rules are indexed by attribute key, scopes are tests on the
normalised DN strings, a rule's filter result is kept on the entry (an
entry never changes: a change makes a new one), and group answers are kept
for the life of the reader (`get`) they were read through — one operation —
never across commits. When the first rule that may cover an attribute covers
every entry and its `by` clauses look at the identity alone, the rights on
that attribute are the same on every entry (`uniform`), and a search asks
once, not once per entry.
"""

from __future__ import annotations

import itertools
import re
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from directory.acl.identity import Identity
from directory.acl.policy import CHILDREN, ENTRY, Reader
from directory.acl.rights import Rights
from directory.acl.rules import Proxy, Rule, RuleError, Who, default_rules
from directory.config import DirectoryConfig
from directory.entry import Entry, resolve
from directory.predicates import Predicate, compile_filter
from directory.protocol.dn import DN
from directory.protocol.messages import Scope
from directory.protocol.results import LDAPError
from directory.resolved_filter import resolve_filter
from directory.schema import Schema

MAX_GROUP_DEPTH = 8
MAX_GROUP_READS = 50_000
# Attribute keys whose candidate rules are kept (the schema has fewer types).
MAX_KEYS = 4096

PSEUDO = frozenset({ENTRY, CHILDREN})
# What `_alike_rule` answers when no rule covers an attribute, and when the
# rights on it depend on the entry.
NO_RULE = -1
DEPENDS = -2
GROUP_MEMBERS: Mapping[str, str] = {"groupofnames": "member",
                                    "groupofuniquenames": "uniquemember"}
_UID = re.compile(r"#'[01]*'B\Z")
_MEMBERS = "acl.members"

Matcher = Callable[[Identity, DN, Reader], bool]


@dataclass(frozen=True, slots=True)
class Decision:
    """The rights, and which rule and `by` clause gave them (None: none matched)."""
    rights: Rights
    rule: int | None = None
    by: int | None = None


def below(dn: str, base: str) -> bool:
    """Whether normalised `dn` is strictly below normalised `base`."""
    if not base:
        return bool(dn)
    cut = len(dn) - len(base) - 1
    if cut < 1 or dn[cut] != "," or not dn.endswith(base):
        return False
    # A comma after an odd number of backslashes is part of a value.
    slashes = 0
    while slashes < cut and dn[cut - 1 - slashes] == "\\":
        slashes += 1
    return slashes % 2 == 0


SCOPE_TESTS: Mapping[Scope, Callable[[DN, str], bool]] = {
    Scope.BASE: lambda dn, base: dn.normalized == base,
    Scope.ONE: lambda dn, base: bool(dn) and dn.parent.normalized == base,
    Scope.SUB: lambda dn, base: dn.normalized == base or below(dn.normalized, base),
    Scope.CHILDREN: lambda dn, base: below(dn.normalized, base),
}


class _Target:
    """A rule's `to`, compiled: which entries and attribute keys it covers."""

    __slots__ = ("base", "keys", "memo", "predicate", "regex", "scope")

    def __init__(self, rule: Rule, schema: Schema, where: str) -> None:
        what = rule.what
        self.base = None if what.dn is None else _normalised(what.dn, schema, f"{where}.dn")
        self.scope = SCOPE_TESTS[what.scope]
        self.regex = what.dn_regex
        self.predicate: Predicate | None = (
            None if what.filter is None
            else compile_filter(schema, resolve_filter(schema, what.filter)))
        self.keys = None if what.attrs is None else frozenset(
            key for i, name in enumerate(what.attrs)
            for key in _keys(name, schema, f"{where}.attrs[{i}]"))
        # The entry's memo keeps the filter's answer under this key.
        self.memo = object()

    @property
    def everywhere(self) -> bool:
        """Whether it covers every entry (no DN, DN pattern or filter)."""
        return self.base is None and self.regex is None and self.predicate is None

    def covers(self, entry: Entry) -> bool:
        dn = entry.dn
        if self.base is not None and not self.scope(dn, self.base):
            return False
        if self.regex is not None and self.regex.search(dn.normalized) is None:
            return False
        if self.predicate is None:
            return True
        found = entry.memo.get(self.memo)
        if found is None:
            found = entry.memo[self.memo] = self.predicate(entry) is True
        return bool(found)


def _normalised(text: str, schema: Schema, where: str) -> str:
    try:
        return DN.parse(text, schema).normalized
    except LDAPError as e:
        raise RuleError(f"{where}: {e.message}") from None


def _keys(name: str, schema: Schema, where: str) -> frozenset[str]:
    if name.lower() in PSEUDO:
        return frozenset({name.lower()})
    try:
        resolved = resolve(schema, name)
    except LDAPError:
        raise RuleError(f"{where}: {name!r}: unknown attribute type") from None
    if resolved.options or resolved.binary:
        raise RuleError(f"{where}: {name!r}: attribute options are not supported here")
    return frozenset(at.key for at in schema.subtypes(resolved.type))


class _Reading:
    """What one reader (`get`, one operation) found out, kept while it lives:
    group answers, and the `by` clauses that match its identity whatever the
    entry (all but `self`), by clause number, None until asked."""

    def __init__(self, schema: Schema, clauses: int) -> None:
        self.schema = schema
        self.clauses = clauses
        self.known: dict[tuple[str, str], bool] = {}
        self.who: Identity | None = None
        self.answers: list[bool | None] = []

    def answers_for(self, who: Identity) -> list[bool | None]:
        if who is not self.who:
            self.who = who
            self.answers = [None] * self.clauses
        return self.answers

    def has(self, group: DN, member: DN, get: Reader) -> bool:
        key = (group.normalized, member.normalized)
        found = self.known.get(key)
        if found is None:
            found = self.known[key] = self._search(group, member.normalized, get)
        return found

    def _search(self, group: DN, member: str, get: Reader) -> bool:
        seen = {group.normalized}
        level = [group]
        reads = 0
        for _ in range(MAX_GROUP_DEPTH):
            deeper: list[DN] = []
            for dn in level:
                reads += 1
                if reads > MAX_GROUP_READS:
                    return False
                entry = get(dn)
                if entry is None:
                    continue
                norms, members = self._members(entry)
                if member in norms:
                    return True
                for m in members:
                    if m.normalized not in seen:
                        seen.add(m.normalized)
                        deeper.append(m)
            if not deeper:
                return False
            level = deeper
        return False

    def _members(self, entry: Entry) -> tuple[frozenset[str], tuple[DN, ...]]:
        found: tuple[frozenset[str], tuple[DN, ...]] | None = entry.memo.get(_MEMBERS)
        if found is None:
            members: list[DN] = []
            for oc, key in GROUP_MEMBERS.items():
                if oc in entry.object_classes:
                    members.extend(self._dns(entry.get(key)))
            found = entry.memo[_MEMBERS] = (frozenset(m.normalized for m in members),
                                            tuple(members))
        return found

    def _dns(self, values: tuple[bytes, ...]) -> list[DN]:
        dns = []
        for value in values:
            try:
                dns.append(DN.parse(_UID.sub("", value.decode()), self.schema))
            except (LDAPError, UnicodeDecodeError):
                continue
        return dns


class RulePolicy:
    """`AccessPolicy` from rules; `source` names them in explanations (`access.rules`).
    `root_only` attributes (the password policy's state, which holds old password
    hashes) are beyond every rule: only the root DN reads them."""

    def __init__(self, rules: tuple[Rule, ...], proxies: tuple[Proxy, ...], schema: Schema,
                 root_dn: DN, source: str = "access.rules",
                 root_only: frozenset[str] = frozenset()) -> None:
        self.rules = rules
        self.root_only = root_only
        self.proxies = proxies
        self.schema = schema
        self.root_dn = root_dn
        self.source = source
        self._targets = tuple(_Target(r, schema, f"{source}[{i}].to")
                              for i, r in enumerate(rules))
        numbers = itertools.count()
        self._by = tuple(
            tuple((next(numbers), self._matcher(b.who, f"{source}[{i}].by[{j}].who"), b.rights,
                   b.who.kind == "self") for j, b in enumerate(r.by))
            for i, r in enumerate(rules))
        self._clauses = next(numbers)
        self._proxy = tuple(
            (self._matcher(p.who, f"access.proxy[{i}].who"),
             self._matcher(p.target, f"access.proxy[{i}].as"))
            for i, p in enumerate(proxies))
        self._candidates: dict[str, tuple[int, ...]] = {}
        # Per attribute key: the rule that decides it alike on every entry (`_alike_rule`).
        self._alike: dict[str, int] = {}
        self._readings: dict[int, _Reading] = {}

    @classmethod
    def configured(cls, config: DirectoryConfig, schema: Schema, root_dn: DN,
                   root_only: frozenset[str] = frozenset()) -> RulePolicy:
        if config.access_rules is None:
            return cls(default_rules(config.anonymous_read), config.access_proxy, schema,
                       root_dn, "default", root_only)
        return cls(config.access_rules, config.access_proxy, schema, root_dn, root_only=root_only)

    # --- AccessPolicy ------------------------------------------------------------

    def rights(self, who: Identity, entry: Entry, attribute: str, get: Reader) -> Rights:
        if attribute in self.root_only:
            return Rights.NONE
        return self._decide(who, entry, attribute, get)[0]

    def uniform(self, who: Identity, attribute: str, get: Reader) -> Rights | None:
        if attribute in self.root_only:
            return Rights.NONE
        rule = self._alike.get(attribute)
        if rule is None:
            rule = self._alike_rule(attribute)
        if rule == DEPENDS:
            return None
        if rule == NO_RULE:
            return Rights.NONE
        # No clause of the deciding rule looks at the entry's DN.
        return self._granted(rule, who, DN.ROOT, get)[0]

    def _alike_rule(self, attribute: str) -> int:
        """The rule deciding `attribute` alike on every entry, NO_RULE when no
        rule covers it, DEPENDS when the decision depends on the entry."""
        candidates = self._candidates.get(attribute)
        if candidates is None:
            candidates = self._rules_for(attribute)
        rule = NO_RULE
        if candidates:
            first = candidates[0]
            alike = self._targets[first].everywhere and not any(
                per_entry for *_, per_entry in self._by[first])
            rule = first if alike else DEPENDS
        if len(self._alike) < MAX_KEYS:
            self._alike[attribute] = rule
        return rule

    def may_proxy(self, who: Identity, target: DN, get: Reader) -> bool:
        if target == self.root_dn:
            return False
        assumed = Identity(target)
        return any(may(who, target, get) and to(assumed, target, get)
                   for may, to in self._proxy)

    # --- explanations ------------------------------------------------------------

    def decide(self, who: Identity, entry: Entry, attribute: str, get: Reader) -> Decision:
        return Decision(*self._decide(who, entry, attribute, get))

    def _decide(self, who: Identity, entry: Entry, attribute: str,
                get: Reader) -> tuple[Rights, int | None, int | None]:
        candidates = self._candidates.get(attribute)
        if candidates is None:
            candidates = self._rules_for(attribute)
        for i in candidates:
            if self._targets[i].covers(entry):
                rights, by = self._granted(i, who, entry.dn, get)
                return rights, i, by
        return Rights.NONE, None, None

    def _granted(self, i: int, who: Identity, dn: DN, get: Reader) -> tuple[Rights, int | None]:
        """The rights rule `i` gives `who` on the entry at `dn`, and the `by` clause
        that gives them (None: none matched)."""
        answers = None
        for j, (number, matches, rights, per_entry) in enumerate(self._by[i]):
            hit: bool | None
            if per_entry:
                hit = matches(who, dn, get)
            else:
                if answers is None:
                    answers = self.reading(get).answers_for(who)
                hit = answers[number]
                if hit is None:
                    hit = answers[number] = matches(who, dn, get)
            if hit:
                return rights, j
        return Rights.NONE, None

    def _rules_for(self, attribute: str) -> tuple[int, ...]:
        key = attribute.split(";", 1)[0].lower()
        found = tuple(i for i, t in enumerate(self._targets) if t.keys is None or key in t.keys)
        if len(self._candidates) < MAX_KEYS:
            self._candidates[attribute] = found
        return found

    # --- who -----------------------------------------------------------------------

    def _matcher(self, who: Who, where: str) -> Matcher:
        return WHO_MATCHERS[who.kind](self, who, where)

    def subject(self, text: str) -> str | None:
        """The normalised form of a client certificate's subject DN, if it parses."""
        if not text:
            return None
        try:
            return DN.parse(text, self.schema).normalized
        except LDAPError:
            return None

    def reading(self, get: Reader) -> _Reading:
        """What was found out through `get`, forgotten when `get` is."""
        key = id(get)
        reading = self._readings.get(key)
        if reading is None:
            reading = _Reading(self.schema, self._clauses)
            try:
                weakref.finalize(get, self._readings.pop, key, None)
            except TypeError:
                return reading
            self._readings[key] = reading
        return reading


_PLAIN: Mapping[str, Matcher] = {
    "anonymous": lambda i, dn, get: i.anonymous,
    "users": lambda i, dn, get: not i.anonymous,
    "self": lambda i, dn, get: not i.anonymous and i.dn == dn,
    "*": lambda i, dn, get: True,
}



def _plain(policy: RulePolicy, who: Who, where: str) -> Matcher:
    return _PLAIN[who.kind]


def _exact(policy: RulePolicy, who: Who, where: str) -> Matcher:
    base = _normalised(who.value, policy.schema, where)
    return lambda i, dn, get: bool(i.dn) and i.dn.normalized == base


def _subtree(policy: RulePolicy, who: Who, where: str) -> Matcher:
    base = _normalised(who.value, policy.schema, where)
    return lambda i, dn, get: bool(i.dn) and (i.dn.normalized == base
                                              or below(i.dn.normalized, base))


def _one(policy: RulePolicy, who: Who, where: str) -> Matcher:
    base = _normalised(who.value, policy.schema, where)
    return lambda i, dn, get: bool(i.dn) and i.dn.parent.normalized == base


def _regex(policy: RulePolicy, who: Who, where: str) -> Matcher:
    assert who.pattern is not None
    search = who.pattern.search
    return lambda i, dn, get: bool(i.dn) and search(i.dn.normalized) is not None


def _group(policy: RulePolicy, who: Who, where: str) -> Matcher:
    group = DN.parse(_normalised(who.value, policy.schema, where), policy.schema)
    return lambda i, dn, get: bool(i.dn) and policy.reading(get).has(group, i.dn, get)


def _tls(policy: RulePolicy, who: Who, where: str) -> Matcher:
    subject = _normalised(who.value, policy.schema, where)
    return lambda i, dn, get: policy.subject(i.tls_subject) == subject


def _sasl(policy: RulePolicy, who: Who, where: str) -> Matcher:
    mechanism = who.value
    return lambda i, dn, get: not i.anonymous and i.mechanism.upper() == mechanism


WHO_MATCHERS: Mapping[str, Callable[[RulePolicy, Who, str], Matcher]] = {
    **{kind: _plain for kind in _PLAIN},
    "dn": _exact, "dn.subtree": _subtree, "dn.one": _one, "dn.regex": _regex,
    "group": _group, "tls": _tls, "sasl": _sasl,
}
