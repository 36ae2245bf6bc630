"""The directory schema (RFC 4512 §4.1) and entry checking (RFC 4512 §2.4, §3.5).

- Schema files hold `attributetype ( ... )` and `objectclass ( ... )`
  statements in RFC 4512 §4.1.2/§4.1.1 description syntax, continued on
  lines that start with white space; `#` starts a comment line.
- SUP of an attribute type inherits its syntax and matching rules;
  SUP of an object class inherits MUST and MAY.
- An entry (RFC 4512 §2.4, §3.5) has exactly one chain of structural
  classes, holds every MUST attribute of every class, holds no attribute
  outside MUST and MAY (unless it is an extensibleObject, which allows any
  user attribute, RFC 4512 §4.3), one value of a SINGLE-VALUE type,
  no value twice under the equality rule, values that fit their syntax,
  and the values of its RDN (RFC 4512 §2.3).
- Syntaxes and matching rules are the ones `directory.matching` implements;
  a file that names any other fails to load with an error naming it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from directory.matching import (
    InvalidValue,
    MatchingRule,
    Syntax,
    Validator,
    builtin,
    rule_names,
)
from directory.protocol.dn import DN
from directory.protocol.results import LDAPError, ResultCode

USER_APPLICATIONS = "userApplications"
EXTENSIBLE_OBJECT = "extensibleobject"


class SchemaError(Exception):
    """A schema file that cannot be loaded."""


@dataclass(frozen=True, slots=True, eq=False)
class AttributeType:
    oid: str
    names: tuple[str, ...]
    definition: str
    sup: str | None = None
    equality: str | None = None
    ordering: str | None = None
    substr: str | None = None
    syntax: str | None = None
    single_value: bool = False
    no_user_modification: bool = False
    usage: str = USER_APPLICATIONS
    key: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", self.name.lower())

    @property
    def name(self) -> str:
        return self.names[0] if self.names else self.oid

    @property
    def operational(self) -> bool:
        return self.usage != USER_APPLICATIONS


@dataclass(frozen=True, slots=True, eq=False)
class ObjectClass:
    oid: str
    names: tuple[str, ...]
    definition: str
    sup: tuple[str, ...] = ()
    kind: str = "STRUCTURAL"
    must: frozenset[str] = frozenset()
    may: frozenset[str] = frozenset()
    all_must: frozenset[str] = frozenset()
    all_may: frozenset[str] = frozenset()
    key: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", self.name.lower())

    @property
    def name(self) -> str:
        return self.names[0] if self.names else self.oid


# --- RFC 4512 description syntax ---------------------------------------------

_TOKEN = re.compile(r"\s*(\(|\)|\$|'(?:[^'\\]|\\.)*'|[^\s()$']+)")
_FLAGS = frozenset({"OBSOLETE", "SINGLE-VALUE", "COLLECTIVE", "NO-USER-MODIFICATION",
                    "ABSTRACT", "STRUCTURAL", "AUXILIARY"})


def _tokens(text: str) -> list[str]:
    tokens, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise SchemaError(f"cannot read {text[pos:pos + 20]!r}")
        tokens.append(m.group(1))
        pos = m.end()
    return tokens


def _unquote(token: str) -> str:
    return token[1:-1] if token.startswith("'") else token


def parse_description(text: str) -> tuple[str, dict[str, list[str]]]:
    """Split `( oid KEYWORD value ... )` into the OID and keyword values."""
    tokens = _tokens(text)
    if len(tokens) < 3 or tokens[0] != "(" or tokens[-1] != ")":
        raise SchemaError("a description is `( oid ... )`")
    oid, rest = tokens[1], iter(tokens[2:-1])
    fields: dict[str, list[str]] = {}
    for keyword in rest:
        word = keyword.upper()
        if word in _FLAGS:
            fields[word] = []
            continue
        value = next(rest, None)
        if value is None:
            raise SchemaError(f"{keyword} has no value")
        if value == "(":
            items = []
            for token in rest:
                if token == ")":
                    break
                if token != "$":
                    items.append(_unquote(token))
            fields[word] = items
        else:
            fields[word] = [_unquote(value)]
    return oid, fields


def _one(fields: Mapping[str, list[str]], keyword: str) -> str | None:
    values = fields.get(keyword)
    return values[0] if values else None


def _statements(path: Path) -> Iterator[tuple[int, str, str]]:
    """(line, keyword, description) for each statement in a schema file."""
    try:
        text = path.read_text()
    except UnicodeDecodeError as e:
        raise SchemaError(f"{path}: not UTF-8 (byte {e.start})") from None
    start, lines = 0, list[str]()
    for number, line in enumerate([*text.splitlines(), "END"], 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line[0].isspace():
            if not lines:
                raise SchemaError(f"{path}:{number}: continuation line outside a statement")
            lines.append(line.strip())
            continue
        if lines:
            keyword, _, rest = lines[0].partition(" ")
            yield start, keyword.rstrip(":").lower(), " ".join([rest, *lines[1:]])
        start, lines = number, [line.strip()]


# --- the schema ------------------------------------------------------------

class Schema:
    """An immutable, loaded schema; hashable by identity (caches key on it)."""

    def __init__(self) -> None:
        self._attributes: dict[str, AttributeType] = {}
        self._classes: dict[str, ObjectClass] = {}
        self._subtypes: dict[str, tuple[AttributeType, ...]] = {}
        self._chains: dict[str, tuple[ObjectClass, ...]] = {}
        syntaxes, rules = builtin(self, self._oid_of)
        self.syntaxes: dict[str, Syntax] = syntaxes
        self._rules = rule_names(rules.values())

    @classmethod
    def load(cls, paths: Iterable[Path]) -> Schema:
        schema = cls()
        raw_types: list[tuple[str, AttributeType, dict[str, list[str]]]] = []
        raw_classes: list[tuple[str, str, dict[str, list[str]]]] = []
        for path in paths:
            files = sorted(path.glob("*.schema")) if path.is_dir() else [path]
            for file in files:
                for line, keyword, text in _statements(file):
                    where = f"{file}:{line}"
                    try:
                        oid, fields = parse_description(text)
                    except SchemaError as e:
                        raise SchemaError(f"{where}: {e}") from None
                    definition = " ".join(_tokens(text))
                    if keyword in ("attributetype", "attributetypes"):
                        raw_types.append((where, AttributeType(
                            oid, tuple(fields.get("NAME", ())), definition), fields))
                    elif keyword in ("objectclass", "objectclasses"):
                        raw_classes.append((where, definition, {"OID": [oid], **fields}))
                    else:
                        raise SchemaError(f"{where}: unknown statement {keyword!r}")
        schema._add_types(raw_types)
        schema._add_classes(raw_classes)
        return schema

    def _add_types(self, raw: list[tuple[str, AttributeType, dict[str, list[str]]]]) -> None:
        pending = {id(at): (where, at, fields) for where, at, fields in raw}
        while pending:
            progressed = False
            for ident, (where, at, fields) in list(pending.items()):
                sup_name = _one(fields, "SUP")
                sup = self.find_attribute(sup_name) if sup_name else None
                if sup_name and sup is None:
                    continue
                self._register_type(where, at, fields, sup)
                del pending[ident]
                progressed = True
            if not progressed:
                where, at, fields = next(iter(pending.values()))
                raise SchemaError(f"{where}: {at.name}: unknown SUP {_one(fields, 'SUP')}")

    def _register_type(self, where: str, at: AttributeType, fields: dict[str, list[str]],
                       sup: AttributeType | None) -> None:
        def inherited(keyword: str, parent: str | None) -> str | None:
            value = _one(fields, keyword)
            if value is None:
                return parent
            if value.lower() not in self._rules:
                raise SchemaError(f"{where}: {at.name}: unknown matching rule {value}")
            return self._rules[value.lower()].oid

        syntax = _one(fields, "SYNTAX")
        if syntax is not None:
            syntax = syntax.split("{", 1)[0]
            if syntax not in self.syntaxes:
                raise SchemaError(f"{where}: {at.name}: unknown syntax {syntax}")
        elif sup is None:
            raise SchemaError(f"{where}: {at.name}: neither SYNTAX nor SUP")
        complete = AttributeType(
            at.oid, at.names, at.definition,
            sup=None if sup is None else sup.key,
            equality=inherited("EQUALITY", sup.equality if sup else None),
            ordering=inherited("ORDERING", sup.ordering if sup else None),
            substr=inherited("SUBSTR", sup.substr if sup else None),
            syntax=syntax or (sup.syntax if sup else None),
            single_value="SINGLE-VALUE" in fields,
            no_user_modification="NO-USER-MODIFICATION" in fields,
            usage=_one(fields, "USAGE") or USER_APPLICATIONS,
        )
        for name in (complete.oid, *complete.names):
            if name.lower() in self._attributes:
                raise SchemaError(f"{where}: attribute type {name} defined twice")
            self._attributes[name.lower()] = complete
        self._subtypes[complete.key] = (complete,)
        parent = sup
        while parent is not None:
            self._subtypes[parent.key] += (complete,)
            parent = self._attributes[parent.sup] if parent.sup else None

    def _add_classes(self, raw: list[tuple[str, str, dict[str, list[str]]]]) -> None:
        pending = list(raw)
        while pending:
            waiting = []
            for where, definition, fields in pending:
                sups = [self.find_object_class(s) for s in fields.get("SUP", ())]
                if any(s is None for s in sups):
                    waiting.append((where, definition, fields))
                    continue
                self._register_class(where, definition, fields, [s for s in sups if s])
            if len(waiting) == len(pending):
                where, _, fields = waiting[0]
                raise SchemaError(f"{where}: {fields.get('NAME', fields['OID'])[0]}: "
                                  f"unknown SUP {' '.join(fields.get('SUP', ()))}")
            pending = waiting

    def _register_class(self, where: str, definition: str, fields: dict[str, list[str]],
                        sups: list[ObjectClass]) -> None:
        def keys(keyword: str) -> frozenset[str]:
            found = set()
            for name in fields.get(keyword, ()):
                at = self.find_attribute(name)
                if at is None:
                    raise SchemaError(f"{where}: {keyword} names unknown attribute {name}")
                found.add(at.key)
            return frozenset(found)

        must, may = keys("MUST"), keys("MAY")
        kind = next((k for k in ("ABSTRACT", "AUXILIARY", "STRUCTURAL") if k in fields),
                    "STRUCTURAL")
        oc = ObjectClass(
            fields["OID"][0], tuple(fields.get("NAME", ())), definition,
            sup=tuple(s.key for s in sups), kind=kind, must=must, may=may,
            all_must=must.union(*(s.all_must for s in sups)),
            all_may=may.union(*(s.all_may for s in sups)),
        )
        for name in (oc.oid, *oc.names):
            if name.lower() in self._classes:
                raise SchemaError(f"{where}: object class {name} defined twice")
            self._classes[name.lower()] = oc

    # --- lookups -------------------------------------------------------------

    def _oid_of(self, name: str) -> str | None:
        """The OID of a class or attribute type named `name`."""
        known = self._classes.get(name) or self._attributes.get(name)
        return None if known is None else known.oid

    def find_attribute(self, name: str) -> AttributeType | None:
        return self._attributes.get(name.lower())

    def attribute(self, name: str) -> AttributeType:
        at = self._attributes.get(name.lower())
        if at is None:
            raise LDAPError(ResultCode.UNDEFINED_ATTRIBUTE_TYPE,
                            f"{name}: attribute type undefined")
        return at

    def find_object_class(self, name: str) -> ObjectClass | None:
        return self._classes.get(name.lower())

    def object_class(self, name: str) -> ObjectClass:
        oc = self._classes.get(name.lower())
        if oc is None:
            raise LDAPError(ResultCode.OBJECT_CLASS_VIOLATION, f"unknown object class {name}")
        return oc

    def sup_chain(self, oc: ObjectClass) -> tuple[ObjectClass, ...]:
        """Every superclass of `oc`, nearest first, without `oc`."""
        known = self._chains.get(oc.key)
        if known is not None:
            return known
        chain: list[ObjectClass] = []
        todo = [self._classes[s] for s in oc.sup]
        while todo:
            sup = todo.pop(0)
            if sup not in chain:
                chain.append(sup)
                todo.extend(self._classes[s] for s in sup.sup)
        self._chains[oc.key] = tuple(chain)
        return self._chains[oc.key]

    def subtypes(self, at: AttributeType) -> tuple[AttributeType, ...]:
        """`at` and every type below it."""
        return self._subtypes[at.key]

    def matching_rule(self, name: str) -> MatchingRule | None:
        return self._rules.get(name.lower())

    def equality(self, at: AttributeType) -> MatchingRule | None:
        return None if at.equality is None else self._rules[at.equality]

    def ordering(self, at: AttributeType) -> MatchingRule | None:
        return None if at.ordering is None else self._rules[at.ordering]

    def substrings(self, at: AttributeType) -> MatchingRule | None:
        return None if at.substr is None else self._rules[at.substr]

    def attribute_types(self) -> Iterator[AttributeType]:
        return iter({id(at): at for at in self._attributes.values()}.values())

    def object_classes(self) -> Iterator[ObjectClass]:
        return iter({id(oc): oc for oc in self._classes.values()}.values())

    # --- Normalizer (for DN parsing) -------------------------------------------

    def attribute_name(self, name: str) -> str:
        return self.attribute(name).key

    def normalize_value(self, key: str, value: str) -> str:
        # Short values (nearly all) are looked up; a long one is the client's
        # choice and would only fill the cache.
        if len(value) > MAX_CACHED_VALUE:
            return _normalize.__wrapped__(self, key, value)
        return _normalize(self, key, value)

    # --- entry checks ------------------------------------------------------------

    def check_entry(self, dn: DN, attributes: Mapping[str, tuple[bytes, ...]]) -> str:
        """Check an entry against the schema; return its structural class."""
        values = attributes.get("objectclass")
        if not values:
            raise LDAPError(ResultCode.OBJECT_CLASS_VIOLATION, "no objectClass attribute")
        rule = _content_rule(self, values)
        present = {key.split(";", 1)[0] for key in attributes}
        for oc, must, names in rule.required:
            if present.isdisjoint(names):
                raise LDAPError(ResultCode.OBJECT_CLASS_VIOLATION,
                                f"object class {oc} requires attribute {must}")
        if not rule.extensible:
            for key in present - rule.allowed:
                at = self.attribute(key)
                if not at.operational:
                    raise LDAPError(ResultCode.OBJECT_CLASS_VIOLATION,
                                    f"attribute {at.name} not allowed by the entry's "
                                    "object classes")
        self._check_values(attributes)
        self._check_rdn(dn, attributes)
        return rule.structural

    def content_rule(self, values: tuple[bytes, ...]) -> ContentRule:
        """What the object classes `values` (with their superclasses)
        require and allow; objectClassViolation for unknown classes or a
        structural chain that is missing or forked."""
        classes: list[ObjectClass] = []
        for value in values:
            oc = self.object_class(value.decode(errors="replace"))
            for each in (oc, *self.sup_chain(oc)):
                if each not in classes:
                    classes.append(each)
        structural = [oc for oc in classes if oc.kind == "STRUCTURAL"]
        if not structural:
            raise LDAPError(ResultCode.OBJECT_CLASS_VIOLATION, "no structural object class")
        leaves = [oc for oc in structural
                  if not any(oc in self.sup_chain(other) for other in structural)]
        if len(leaves) > 1:
            raise LDAPError(ResultCode.OBJECT_CLASS_VIOLATION,
                            "more than one structural object class: "
                            + ", ".join(oc.name for oc in leaves))
        required = tuple(
            (oc.name, self._attributes[must].name,
             frozenset(at.key for at in self._subtypes[must]))
            for oc in classes for must in sorted(oc.all_must))
        # A type is allowed when it or a supertype is listed: the subtypes of
        # every listed type.
        allowed = frozenset(at.key for oc in classes for name in oc.all_must | oc.all_may
                            for at in self._subtypes[name])
        return ContentRule(leaves[0].name, required, allowed,
                           any(oc.key == EXTENSIBLE_OBJECT for oc in classes))

    def _check_values(self, attributes: Mapping[str, tuple[bytes, ...]]) -> None:
        counts: dict[str, int] = {}
        for key, values in attributes.items():
            at, validate, rule = _value_check(self, key.split(";", 1)[0])
            counts[at.key] = count = counts.get(at.key, 0) + len(values)
            if at.single_value and count > 1:
                raise LDAPError(ResultCode.CONSTRAINT_VIOLATION,
                                f"attribute {at.name} is single-valued")
            seen = set()
            for i, value in enumerate(values):
                try:
                    if validate is not None:
                        validate(value)
                    k = value if rule is None or len(values) == 1 else rule.value_key(value)
                except InvalidValue as e:
                    raise LDAPError(ResultCode.INVALID_ATTRIBUTE_SYNTAX,
                                    f"{at.name}: value #{i} invalid per syntax: {e}") from None
                if k in seen:
                    raise LDAPError(ResultCode.ATTRIBUTE_OR_VALUE_EXISTS,
                                    f"{at.name}: value #{i} provided more than once")
                seen.add(k)

    def _check_rdn(self, dn: DN, attributes: Mapping[str, tuple[bytes, ...]]) -> None:
        if not dn:
            return
        for ava in dn.rdn.avas:
            values = attributes.get(ava.key, ())
            if not any(self.normalize_value(ava.key, v.decode(errors="replace")) == ava.norm
                       for v in values):
                raise LDAPError(ResultCode.NAMING_VIOLATION,
                                f"naming attribute {ava.attribute}={ava.value} "
                                "is not present in the entry")

    # --- cn=Subschema (RFC 4512 §4.2) ----------------------------------------------

    def subschema(self) -> dict[str, tuple[bytes, ...]]:
        types = list(self.attribute_types())
        uses: dict[str, list[str]] = {}
        for at in types:
            for rule in {at.equality, at.ordering, at.substr} - {None}:
                uses.setdefault(str(rule), []).append(at.name)
        rules = {id(r): r for r in self._rules.values()}.values()
        return {
            "ldapSyntaxes": tuple(
                f"( {s.oid} DESC '{s.description}'"
                f"{' X-NOT-HUMAN-READABLE ' + chr(39) + 'TRUE' + chr(39) if s.binary else ''} )"
                .encode() for s in self.syntaxes.values()),
            "matchingRules": tuple(
                f"( {r.oid} NAME '{r.name}' SYNTAX {r.syntax} )".encode() for r in rules),
            "matchingRuleUse": tuple(
                f"( {r.oid} NAME '{r.name}' APPLIES ( {' $ '.join(uses[r.oid])} ) )".encode()
                for r in rules if r.oid in uses),
            "attributeTypes": tuple(at.definition.encode() for at in types),
            "objectClasses": tuple(oc.definition.encode() for oc in self.object_classes()),
        }


@dataclass(frozen=True, slots=True)
class ContentRule:
    """What a set of object classes asks of an entry."""

    structural: str
    required: tuple[tuple[str, str, frozenset[str]], ...]  # class, MUST type, its subtypes
    allowed: frozenset[str]
    extensible: bool


@lru_cache(maxsize=4096)
def _value_check(schema: Schema, name: str) -> tuple[
        AttributeType, Validator | None, MatchingRule | None]:
    """An attribute type with its syntax validator and equality rule."""
    at = schema.attribute(name)
    return (at, schema.syntaxes[at.syntax].validate if at.syntax else None,
            schema.equality(at))


@lru_cache(maxsize=1024)
def _content_rule(schema: Schema, values: tuple[bytes, ...]) -> ContentRule:
    return schema.content_rule(values)


MAX_CACHED_VALUE = 256


@lru_cache(maxsize=65536)
def _normalize(schema: Schema, key: str, value: str) -> str:
    at = schema.find_attribute(key)
    rule = None if at is None else schema.equality(at)
    if rule is not None:
        try:
            return rule.value_key(value.encode()).decode(errors="backslashreplace")
        except InvalidValue:
            pass
    return " ".join(value.lower().split())
