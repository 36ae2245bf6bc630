"""The directory schema (RFC 4512 §4.1) and entry checking (RFC 4512 §2.4, §3.5).

- Schema files are read as slapd reads them (`directory.schema_files`):
  attribute types, object classes, OID macros and substitute syntaxes.
- A definition repeated with the same meaning (the same OID, names, SUP,
  rules, syntax, flags and usage; for a class the same SUP, kind, MUST
  and MAY) is accepted and the first kept; one that shares an OID or a
  name with another definition but means something else is refused,
  naming both places and what differs.
- `ldapsyntax ( oid ... X-SUBST 'oid' )` defines a syntax that validates
  as its substitute does; a syntax without a substitute certdir knows,
  or one certdir already has, is refused.
- SUP of an attribute type inherits its syntax and matching rules;
  SUP of an object class inherits MUST and MAY.
- An entry (RFC 4512 §2.4, §3.5) has exactly one chain of structural
  classes, holds every MUST attribute of every class, holds no attribute
  outside MUST and MAY (unless it is an extensibleObject, which allows any
  user attribute, RFC 4512 §4.3), one value of a SINGLE-VALUE type,
  no value twice under the equality rule, values that fit their syntax,
  and the values of its RDN (RFC 4512 §2.3).
- A DIT content rule (RFC 4512 §4.1.6, as slapd's schema_check.c applies
  it) is named by the OID of a structural class; its AUX classes must be
  auxiliary, its MUST, MAY and NOT types known and each in one list only;
  a second rule for the class is refused unless it means the same. An
  entry whose structural class has a rule: an OBSOLETE rule refuses it;
  every auxiliary class listed in its objectClass must be in AUX; it
  holds every MUST type of the rule, none of its NOT types, and may hold
  the rule's MAY types besides its classes' (these lists name the exact
  type, not its subtypes, as in slapd). Every refusal is
  objectClassViolation (65). Without a rule, any auxiliary class is
  allowed. cn=Subschema publishes the rules as dITContentRules.
- Syntaxes and matching rules are the ones `directory.matching` implements;
  a file that names any other fails to load with an error naming it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

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
from directory.schema_files import (
    ATTRIBUTE_TYPE,
    DIT_CONTENT_RULE,
    LDAP_SYNTAX,
    OBJECT_CLASS,
    Description,
    Macros,
    SchemaError,
    read,
)

_Definition = TypeVar("_Definition", "AttributeType", "ObjectClass", "DITContentRule")

USER_APPLICATIONS = "userApplications"
EXTENSIBLE_OBJECT = "extensibleobject"


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


@dataclass(frozen=True, slots=True, eq=False)
class DITContentRule:
    """What entries of one structural class (the rule's OID) may and must
    hold beyond their classes (RFC 4512 §4.1.6)."""

    oid: str
    names: tuple[str, ...]
    definition: str
    obsolete: bool = False
    aux: frozenset[str] = frozenset()  # keys of auxiliary classes
    must: frozenset[str] = frozenset()  # keys of attribute types, as are may and precluded
    may: frozenset[str] = frozenset()
    precluded: frozenset[str] = frozenset()

    @property
    def name(self) -> str:
        return self.names[0] if self.names else self.oid


def _one(fields: Mapping[str, list[str]], keyword: str) -> str | None:
    values = fields.get(keyword)
    return values[0] if values else None


# --- the schema ------------------------------------------------------------

class Schema:
    """An immutable, loaded schema; hashable by identity (caches key on it)."""

    def __init__(self) -> None:
        self._attributes: dict[str, AttributeType] = {}
        self._classes: dict[str, ObjectClass] = {}
        self._subtypes: dict[str, tuple[AttributeType, ...]] = {}
        self._chains: dict[str, tuple[ObjectClass, ...]] = {}
        self._dit_rules: dict[str, DITContentRule] = {}  # by its structural class's OID
        self._origins: dict[int, str] = {}  # id of a definition -> "file:line"
        syntaxes, rules = builtin(self, self._oid_of)
        self.syntaxes: dict[str, Syntax] = syntaxes
        self._rules = rule_names(rules.values())

    @classmethod
    def load(cls, paths: Iterable[Path]) -> Schema:
        schema = cls()
        macros = Macros()
        found: dict[str, list[Description]] = {LDAP_SYNTAX: [], ATTRIBUTE_TYPE: [],
                                               OBJECT_CLASS: [], DIT_CONTENT_RULE: []}
        for path in paths:
            files = sorted(path.glob("*.schema")) if path.is_dir() else [path]
            for file in files:
                for description in read(file, macros):
                    found[description.kind].append(description)
        schema._add_syntaxes(found[LDAP_SYNTAX])
        schema._add_types(found[ATTRIBUTE_TYPE])
        schema._add_classes(found[OBJECT_CLASS])
        for description in found[DIT_CONTENT_RULE]:
            schema._add_dit_content_rule(description)
        return schema

    def _add_syntaxes(self, found: list[Description]) -> None:
        defined: dict[str, tuple[str, str]] = {}  # OID -> (substitute, where)
        for d in found:
            substitute = _one(d.fields, "X-SUBST")
            known = defined.get(d.oid)
            if known is not None and known[0] == substitute:
                continue
            if known is not None or d.oid in self.syntaxes:
                raise SchemaError(f"{d.where}: syntax {d.oid} is already defined "
                                  f"{'at ' + known[1] if known else 'by certdir'}")
            if substitute is None or substitute not in self.syntaxes:
                raise SchemaError(f"{d.where}: syntax {d.oid}: certdir implements no such "
                                  "syntax; X-SUBST must name one it does")
            base = self.syntaxes[substitute]
            self.syntaxes[d.oid] = Syntax(d.oid, _one(d.fields, "DESC") or base.description,
                                          base.validate, base.binary)
            defined[d.oid] = (substitute, d.where)

    def _add_types(self, found: list[Description]) -> None:
        pending = list(found)
        while pending:
            waiting = []
            for d in pending:
                sup_name = _one(d.fields, "SUP")
                sup = self.find_attribute(sup_name) if sup_name else None
                if sup_name and sup is None:
                    waiting.append(d)
                    continue
                self._register_type(d, sup)
            if len(waiting) == len(pending):
                d = waiting[0]
                raise SchemaError(f"{d.where}: {_name(d)}: unknown SUP {_one(d.fields, 'SUP')}")
            pending = waiting

    def _register_type(self, d: Description, sup: AttributeType | None) -> None:
        fields, name = d.fields, _name(d)

        def inherited(keyword: str, parent: str | None) -> str | None:
            value = _one(fields, keyword)
            if value is None:
                return parent
            if value.lower() not in self._rules:
                raise SchemaError(f"{d.where}: {name}: unknown matching rule {value}")
            return self._rules[value.lower()].oid

        syntax = _one(fields, "SYNTAX")
        if syntax is not None:
            syntax = syntax.split("{", 1)[0]
            if syntax not in self.syntaxes:
                raise SchemaError(f"{d.where}: {name}: unknown syntax {syntax}")
        elif sup is None:
            raise SchemaError(f"{d.where}: {name}: neither SYNTAX nor SUP")
        complete = AttributeType(
            d.oid, tuple(fields.get("NAME", ())), d.definition,
            sup=None if sup is None else sup.key,
            equality=inherited("EQUALITY", sup.equality if sup else None),
            ordering=inherited("ORDERING", sup.ordering if sup else None),
            substr=inherited("SUBSTR", sup.substr if sup else None),
            syntax=syntax or (sup.syntax if sup else None),
            single_value="SINGLE-VALUE" in fields,
            no_user_modification="NO-USER-MODIFICATION" in fields,
            usage=_one(fields, "USAGE") or USER_APPLICATIONS,
        )
        if self._known(d, self._attributes, _type_meaning, complete):
            return
        for each in (complete.oid, *complete.names):
            self._attributes[each.lower()] = complete
        self._subtypes[complete.key] = (complete,)
        parent = sup
        while parent is not None:
            self._subtypes[parent.key] += (complete,)
            parent = self._attributes[parent.sup] if parent.sup else None

    def _known(self, d: Description, table: Mapping[str, _Definition],
               meaning: Callable[[_Definition], dict[str, object]], new: _Definition) -> bool:
        """Whether `new` is already defined the same way; a definition that
        shares its OID or a name but means something else is refused,
        naming both places."""
        known = {table.get(each.lower()) for each in (new.oid, *new.names)}
        if known == {None}:
            self._origins[id(new)] = d.where
            return False
        first = next(k for k in known if k is not None)
        old, now = meaning(first), meaning(new)
        if known == {first} and old == now:
            return True
        what = _KIND_NAMES[d.kind]
        differ = ", ".join(k for k in old if old[k] != now[k])
        raise SchemaError(f"{d.where}: {what} {new.name} ({new.oid}) conflicts with "
                          f"{first.name} ({first.oid}) defined at {self._origins[id(first)]}"
                          f" (they differ in {differ})")

    def _add_classes(self, found: list[Description]) -> None:
        pending = list(found)
        while pending:
            waiting = []
            for d in pending:
                sups = [self.find_object_class(s) for s in d.fields.get("SUP", ())]
                if any(s is None for s in sups):
                    waiting.append(d)
                    continue
                self._register_class(d, [s for s in sups if s])
            if len(waiting) == len(pending):
                d = waiting[0]
                raise SchemaError(f"{d.where}: {_name(d)}: "
                                  f"unknown SUP {' '.join(d.fields.get('SUP', ()))}")
            pending = waiting

    def _register_class(self, d: Description, sups: list[ObjectClass]) -> None:
        def keys(keyword: str) -> frozenset[str]:
            found = set()
            for name in d.fields.get(keyword, ()):
                at = self.find_attribute(name)
                if at is None:
                    raise SchemaError(f"{d.where}: {keyword} names unknown attribute {name}")
                found.add(at.key)
            return frozenset(found)

        must, may = keys("MUST"), keys("MAY")
        kind = next((k for k in ("ABSTRACT", "AUXILIARY", "STRUCTURAL") if k in d.fields),
                    "STRUCTURAL")
        oc = ObjectClass(
            d.oid, tuple(d.fields.get("NAME", ())), d.definition,
            sup=tuple(s.key for s in sups), kind=kind, must=must, may=may,
            all_must=must.union(*(s.all_must for s in sups)),
            all_may=may.union(*(s.all_may for s in sups)),
        )
        if self._known(d, self._classes, _class_meaning, oc):
            return
        for name in (oc.oid, *oc.names):
            self._classes[name.lower()] = oc

    def _add_dit_content_rule(self, d: Description) -> None:
        oc = self.find_object_class(d.oid)
        if oc is None or oc.kind != "STRUCTURAL":
            raise SchemaError(f"{d.where}: DIT content rule {_name(d)}: {d.oid} is not a "
                              "structural object class")
        aux = []
        for name in d.fields.get("AUX", ()):
            each = self.find_object_class(name)
            if each is None or each.kind != "AUXILIARY":
                raise SchemaError(f"{d.where}: DIT content rule {_name(d)}: AUX {name} is "
                                  "not an auxiliary object class")
            aux.append(each.key)
        lists: dict[str, frozenset[str]] = {}
        for keyword in ("MUST", "MAY", "NOT"):
            keys = []
            for name in d.fields.get(keyword, ()):
                at = self.find_attribute(name)
                if at is None:
                    raise SchemaError(f"{d.where}: DIT content rule {_name(d)}: {keyword} "
                                      f"names unknown attribute {name}")
                if any(at.key in other for other in lists.values()) or at.key in keys:
                    raise SchemaError(f"{d.where}: DIT content rule {_name(d)}: {name} is "
                                      "listed twice")
                keys.append(at.key)
            lists[keyword] = frozenset(keys)
        rule = DITContentRule(oc.oid, tuple(d.fields.get("NAME", ())), d.definition,
                              obsolete="OBSOLETE" in d.fields, aux=frozenset(aux),
                              must=lists["MUST"], may=lists["MAY"], precluded=lists["NOT"])
        if not self._known(d, self._dit_rules, _dit_rule_meaning, rule):
            self._dit_rules[oc.oid.lower()] = rule

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
        for who, must, names in rule.required:
            if present.isdisjoint(names):
                raise LDAPError(ResultCode.OBJECT_CLASS_VIOLATION,
                                f"{who} requires attribute {must}")
        precluded = sorted(present & rule.dit_rule.precluded) if rule.dit_rule else []
        if rule.dit_rule is not None and precluded:
            raise LDAPError(ResultCode.OBJECT_CLASS_VIOLATION,
                            f"content rule {rule.dit_rule.name} precludes attribute "
                            f"{self._attributes[precluded[0]].name}")
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
        """What the object classes `values` (with their superclasses) and
        the DIT content rule of their structural class require and allow;
        objectClassViolation for unknown classes, a structural chain that
        is missing or forked, an OBSOLETE rule or an auxiliary class the
        rule does not list."""
        listed = [self.object_class(value.decode(errors="replace")) for value in values]
        classes: list[ObjectClass] = []
        for oc in listed:
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
        dit = self._dit_rules.get(leaves[0].oid)
        if dit is not None:
            self._check_dit_rule(dit, listed)
        required = tuple(
            (f"object class {oc.name}", self._attributes[must].name,
             frozenset(at.key for at in self._subtypes[must]))
            for oc in classes for must in sorted(oc.all_must))
        # A type is allowed when it or a supertype is listed: the subtypes of
        # every listed type.
        allowed = frozenset(at.key for oc in classes for name in oc.all_must | oc.all_may
                            for at in self._subtypes[name])
        if dit is not None:
            required += tuple((f"content rule {dit.name}", self._attributes[must].name,
                               frozenset({must})) for must in sorted(dit.must))
            allowed |= dit.must | dit.may
        return ContentRule(leaves[0].name, required, allowed,
                           any(oc.key == EXTENSIBLE_OBJECT for oc in classes), dit)

    @staticmethod
    def _check_dit_rule(dit: DITContentRule, listed: list[ObjectClass]) -> None:
        if dit.obsolete:
            raise LDAPError(ResultCode.OBJECT_CLASS_VIOLATION,
                            f"content rule {dit.name} is obsolete")
        for oc in listed:
            if oc.kind == "AUXILIARY" and oc.key not in dit.aux:
                raise LDAPError(ResultCode.OBJECT_CLASS_VIOLATION,
                                f"class {oc.name} not allowed by content rule {dit.name}")

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
        } | ({"dITContentRules": tuple(r.definition.encode()
                                     for r in self._dit_rules.values())}
             if self._dit_rules else {})


def _name(d: Description) -> str:
    return _one(d.fields, "NAME") or d.oid


def _type_meaning(at: AttributeType) -> dict[str, object]:
    """What of an attribute type certdir acts on, by keyword: two
    definitions that differ only in DESC, OBSOLETE, length bounds or X-
    extensions are the same."""
    return {"OID": at.oid, "NAME": tuple(n.lower() for n in at.names), "SUP": at.sup,
            "EQUALITY": at.equality, "ORDERING": at.ordering, "SUBSTR": at.substr,
            "SYNTAX": at.syntax, "SINGLE-VALUE": at.single_value,
            "NO-USER-MODIFICATION": at.no_user_modification, "USAGE": at.usage.lower()}


_KIND_NAMES: Mapping[str, str] = {ATTRIBUTE_TYPE: "attribute type",
                                   OBJECT_CLASS: "object class",
                                   DIT_CONTENT_RULE: "DIT content rule"}


def _dit_rule_meaning(rule: DITContentRule) -> dict[str, object]:
    return {"OID": rule.oid, "NAME": tuple(n.lower() for n in rule.names),
            "OBSOLETE": rule.obsolete, "AUX": rule.aux, "MUST": rule.must, "MAY": rule.may,
            "NOT": rule.precluded}


def _class_meaning(oc: ObjectClass) -> dict[str, object]:
    return {"OID": oc.oid, "NAME": tuple(n.lower() for n in oc.names),
            "SUP": frozenset(oc.sup), "KIND": oc.kind, "MUST": oc.must, "MAY": oc.may}


@dataclass(frozen=True, slots=True)
class ContentRule:
    """What a set of object classes asks of an entry."""

    structural: str
    # ("object class X" or "content rule X", MUST type, the types that satisfy it)
    required: tuple[tuple[str, str, frozenset[str]], ...]
    allowed: frozenset[str]
    extensible: bool
    dit_rule: DITContentRule | None = None


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
