"""Access rules as certdir.yaml writes them (`access.rules`, `access.proxy`).

- A rule is `to` (what it covers) and `by` (who gets which level), in the
  spirit of slapd's `access to <what> by <who> <level>` (slapd.access(5)).
- `to` may name `dn` with a `scope` (base, one, subtree or children;
  subtree when omitted) or `dn_regex` (searched in the entry's normalised
  DN), a `filter` (RFC 4515) the entry must match, and `attrs`: attribute
  names and the `entry` and `children` pseudo-attributes. An empty `to`
  covers every entry and attribute.
- `who` is `anonymous`, `users` (any authenticated identity), `self` (the
  entry itself), `*` (anyone), `dn:<DN>` (exactly), `dn.subtree:<DN>`,
  `dn.one:<DN>` (directly below), `dn.regex:<re>` (searched in the
  normalised DN), `group:<DN>` (a member of that groupOfNames or
  groupOfUniqueNames, also through nested groups), `tls:<DN>` (the client
  certificate's subject) or `sasl:<MECHANISM>` (bound with that SASL
  mechanism). The `dn`, `group` and `regex` forms never match anonymous.
- `level` is a level name or an exact `=letters` set (`directory.acl.rights`).
- `access.proxy` lists who may use the proxied authorization control
  (RFC 4370) `as` which identities: `who` takes the forms above except
  `self` and `anonymous`, `as` all except `self`, `tls:` and `sasl:`.
- Values are checked here, without the schema (DN syntax, patterns,
  filters, levels); `directory.acl.engine` resolves attribute names and
  normalises DNs against it. Every error names the key:
  `access.rules[2].by[0].level: 'reed': unknown level ...`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from directory.acl.rights import Rights, parse_level
from directory.protocol.dn import DN
from directory.protocol.filter import Filter, FilterSyntaxError
from directory.protocol.filter import format as format_filter
from directory.protocol.filter import parse as parse_filter
from directory.protocol.messages import Scope
from directory.protocol.results import LDAPError


class RuleError(ValueError):
    """A rule that cannot be used; the message starts with the key it is about."""


SCOPES: Mapping[str, Scope] = {
    "base": Scope.BASE, "one": Scope.ONE, "subtree": Scope.SUB, "children": Scope.CHILDREN,
}
SCOPE_NAMES: Mapping[Scope, str] = {scope: name for name, scope in SCOPES.items()}

# Who forms without a value, and those written `kind:value`.
PLAIN_WHO = ("anonymous", "users", "self", "*")
VALUED_WHO = ("dn", "dn.subtree", "dn.one", "dn.regex", "group", "tls", "sasl")
DN_VALUED = frozenset({"dn", "dn.subtree", "dn.one", "group", "tls"})
# Anonymous never proxies; the identity assumed is a DN, not a TLS or SASL one.
PROXY_WHO = tuple(f for f in PLAIN_WHO + VALUED_WHO if f not in ("self", "anonymous"))
PROXY_AS = tuple(f for f in PLAIN_WHO + VALUED_WHO if f not in ("self", "tls", "sasl"))

_MECHANISM = re.compile(r"[A-Z0-9_-]{1,20}\Z")


@dataclass(frozen=True, slots=True)
class What:
    dn: str | None = None
    scope: Scope = Scope.SUB
    dn_regex: re.Pattern[str] | None = None
    filter: Filter | None = None
    attrs: tuple[str, ...] | None = None

    def __str__(self) -> str:
        parts = []
        if self.dn is not None:
            parts.append(f'dn.{SCOPE_NAMES[self.scope]}="{self.dn}"')
        if self.dn_regex is not None:
            parts.append(f'dn.regex="{self.dn_regex.pattern}"')
        if self.filter is not None:
            parts.append(f"filter={format_filter(self.filter)}")
        if self.attrs is not None:
            parts.append("attrs=" + ",".join(self.attrs))
        return " ".join(parts) or "*"


@dataclass(frozen=True, slots=True)
class Who:
    kind: str
    value: str = ""
    pattern: re.Pattern[str] | None = None

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}" if self.kind in VALUED_WHO else self.kind


@dataclass(frozen=True, slots=True)
class By:
    who: Who
    rights: Rights
    level: str


@dataclass(frozen=True, slots=True)
class Rule:
    what: What
    by: tuple[By, ...]


@dataclass(frozen=True, slots=True)
class Proxy:
    who: Who
    target: Who


def _check(cond: bool, where: str, message: str) -> None:
    if not cond:
        raise RuleError(f"{where}: {message}")


def _mapping(data: Any, where: str, keys: tuple[str, ...]) -> Mapping[str, Any]:
    _check(isinstance(data, dict), where, f"expected a mapping, got {data!r}")
    for key in data:
        _check(key in keys, f"{where}.{key}", "unknown key (one of " + ", ".join(keys) + ")")
    return dict(data)


def _string(data: Mapping[str, Any], key: str, where: str) -> str:
    value = data[key]
    _check(isinstance(value, str), f"{where}.{key}", f"expected a string, got {value!r}")
    return str(value)


def _list(data: Any, where: str) -> list[Any]:
    _check(isinstance(data, list) and bool(data), where, f"expected a non-empty list, got "
           f"{data!r}")
    return list(data)


def _dn(text: str, where: str) -> str:
    try:
        DN.parse(text)
    except LDAPError as e:
        raise RuleError(f"{where}: {e.message}") from None
    return text


def _regex(text: str, where: str) -> re.Pattern[str]:
    try:
        return re.compile(text)
    except re.error as e:
        raise RuleError(f"{where}: {text!r}: bad regular expression: {e}") from None


def parse_what(data: Any, where: str) -> What:
    to = _mapping(data, where, ("dn", "scope", "dn_regex", "filter", "attrs"))
    dn = _dn(_string(to, "dn", where), f"{where}.dn") if "dn" in to else None
    scope = Scope.SUB
    if "scope" in to:
        name = _string(to, "scope", where)
        _check(name in SCOPES, f"{where}.scope", f"{name!r}: unknown scope (one of "
               + ", ".join(SCOPES) + ")")
        _check(dn is not None, f"{where}.scope", "needs dn")
        scope = SCOPES[name]
    dn_regex = None
    if "dn_regex" in to:
        _check(dn is None, f"{where}.dn_regex", "give dn or dn_regex, not both")
        dn_regex = _regex(_string(to, "dn_regex", where), f"{where}.dn_regex")
    search = None
    if "filter" in to:
        text = _string(to, "filter", where)
        try:
            search = parse_filter(text)
        except FilterSyntaxError as e:
            raise RuleError(f"{where}.filter: {text!r}: {e}") from None
    attrs = None
    if "attrs" in to:
        names = _list(to["attrs"], f"{where}.attrs")
        for i, name in enumerate(names):
            _check(isinstance(name, str) and bool(name), f"{where}.attrs[{i}]",
                   f"expected an attribute name, got {name!r}")
        attrs = tuple(names)
    return What(dn, scope, dn_regex, search, attrs)


def parse_who(text: Any, where: str, forms: tuple[str, ...] = PLAIN_WHO + VALUED_WHO) -> Who:
    _check(isinstance(text, str), where, f"expected a string, got {text!r}")
    kind, colon, value = str(text).partition(":")
    plain = [f for f in forms if f in PLAIN_WHO]
    valued = [f + ":" for f in forms if f in VALUED_WHO]
    known = f"(one of {', '.join(plain + valued)})"
    if not colon:
        _check(kind in plain, where, f"{text!r}: unknown identity {known}")
        return Who(kind)
    _check(kind + ":" in valued, where, f"{text!r}: unknown identity {known}")
    _check(bool(value.strip()), where, f"{text!r}: nothing after {kind}:")
    if kind in DN_VALUED:
        return Who(kind, _dn(value, where))
    if kind == "sasl":
        _check(bool(_MECHANISM.match(value.upper())), where,
               f"{text!r}: not a SASL mechanism name")
        return Who(kind, value.upper())
    return Who(kind, value, _regex(value, where))


def parse_by(data: Any, where: str) -> By:
    by = _mapping(data, where, ("who", "level"))
    for key in ("who", "level"):
        _check(key in by, f"{where}.{key}", "required key is missing")
    who = parse_who(by["who"], f"{where}.who")
    level = _string(by, "level", where)
    try:
        rights = parse_level(level)
    except ValueError as e:
        raise RuleError(f"{where}.level: {e}") from None
    return By(who, rights, level)


def parse_rule(data: Any, where: str) -> Rule:
    rule = _mapping(data, where, ("to", "by"))
    for key in ("to", "by"):
        _check(key in rule, f"{where}.{key}", "required key is missing")
    what = parse_what(rule["to"] if rule["to"] is not None else {}, f"{where}.to")
    clauses = _list(rule["by"], f"{where}.by")
    return Rule(what, tuple(parse_by(b, f"{where}.by[{i}]") for i, b in enumerate(clauses)))


def parse_proxy(data: Any, where: str) -> Proxy:
    proxy = _mapping(data, where, ("who", "as"))
    for key in ("who", "as"):
        _check(key in proxy, f"{where}.{key}", "required key is missing")
    who = parse_who(proxy["who"], f"{where}.who", PROXY_WHO)
    return Proxy(who, parse_who(proxy["as"], f"{where}.as", PROXY_AS))


def _items(data: Any, where: str, parse: Callable[[Any, str], Any]) -> tuple[Any, ...]:
    _check(isinstance(data, list), where, f"expected a list, got {data!r}")
    return tuple(parse(item, f"{where}[{i}]") for i, item in enumerate(data))


def parse_rules(data: Any, where: str = "access.rules") -> tuple[Rule, ...]:
    rules: tuple[Rule, ...] = _items(data, where, parse_rule)
    return rules


def parse_proxies(data: Any, where: str = "access.proxy") -> tuple[Proxy, ...]:
    proxies: tuple[Proxy, ...] = _items(data, where, parse_proxy)
    return proxies


def default_rules(anonymous_read: bool) -> tuple[Rule, ...]:
    """The rules without `access.rules`: userPassword usable for binds by anyone
    and writable by its owner, contextCSN (syncrepl's) for the root DN alone,
    everything else readable by users (and by anonymous when `anonymous_read`)."""
    readers = [{"who": "users", "level": "read"}]
    if anonymous_read:
        readers.append({"who": "anonymous", "level": "read"})
    return parse_rules([
        {"to": {"attrs": ["userPassword"]},
         "by": [{"who": "self", "level": "=xw"}, {"who": "*", "level": "auth"}]},
        {"to": {"attrs": ["contextCSN"]}, "by": [{"who": "*", "level": "none"}]},
        {"to": {}, "by": readers},
    ], "default")
