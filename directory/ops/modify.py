"""Modify (RFC 4511 §4.6, RFC 4525).

- The entry must exist. Changes apply in order, all or nothing; the
  result must pass every schema check (RFC 4511 §4.6).
- add: values must not already be present under the equality rule
  (attributeOrValueExists); delete: without values removes the attribute,
  with values removes each, and a missing attribute or value is
  noSuchAttribute; replace: sets the values, or removes the attribute when
  none are given (no error if absent); increment (RFC 4525): one value, an
  integer, added to every value of an existing integer attribute.
- Values of the RDN cannot be removed (notAllowedOnRDN, RFC 4511 §4.6).
- The structural object class cannot change (objectClassModsProhibited),
  checked before the rest of the schema, as slapd does (RFC 4512 §2.4.2).
- NO-USER-MODIFICATION attributes are refused (constraintViolation).
- userPassword: new values are stored hashed; a clear-text value to
  delete matches the stored hash it verifies against.
- Assertion (RFC 4528), pre-read and post-read (RFC 4527) controls.
"""

from __future__ import annotations

from collections.abc import Callable

from directory import passwords
from directory.backend.sqlite import SQLiteTransaction
from directory.dsa import DSA
from directory.entry import Entry, Resolved, resolve
from directory.matching import InvalidValue
from directory.operation import Operation, Outcome, Reply
from directory.operational import stamp_modified
from directory.ops import add as add_op
from directory.ops import assertion
from directory.ops.readback import read_controls
from directory.protocol.dn import DN
from directory.protocol.messages import SUCCESS, Change, ModifyRequest, ModifyResponse, ModOp
from directory.protocol.results import LDAPError, ResultCode

Attributes = dict[str, tuple[bytes, ...]]


def _keyer(dsa: DSA, resolved: Resolved) -> Callable[[bytes], bytes]:
    rule = dsa.schema.equality(resolved.type)
    if rule is None:
        return lambda v: v

    def key(value: bytes) -> bytes:
        try:
            return rule.value_key(value)
        except InvalidValue:
            return value

    return key


def _same(dsa: DSA, resolved: Resolved, stored: bytes, given: bytes,
          key: Callable[[bytes], bytes]) -> bool:
    if resolved.type.key == "userpassword" and stored != given:
        return passwords.verify(stored, given)
    return key(stored) == key(given)


def _add(dsa: DSA, attrs: Attributes, resolved: Resolved, values: tuple[bytes, ...]) -> None:
    key = _keyer(dsa, resolved)
    current = list(attrs.get(resolved.key, ()))
    have = {key(v) for v in current}
    for value in values:
        k = key(value)
        if k in have:
            raise LDAPError(ResultCode.ATTRIBUTE_OR_VALUE_EXISTS,
                            f"{resolved.text}: value #{values.index(value)} already exists")
        have.add(k)
        current.append(value)
    attrs[resolved.key] = tuple(current)


def _delete(dsa: DSA, attrs: Attributes, resolved: Resolved, values: tuple[bytes, ...]) -> None:
    current = attrs.get(resolved.key)
    if current is None:
        raise LDAPError(ResultCode.NO_SUCH_ATTRIBUTE, f"no attribute {resolved.text}")
    if not values:
        del attrs[resolved.key]
        return
    key = _keyer(dsa, resolved)
    remaining = list(current)
    for value in values:
        match = next((v for v in remaining if _same(dsa, resolved, v, value, key)), None)
        if match is None:
            raise LDAPError(ResultCode.NO_SUCH_ATTRIBUTE,
                            f"{resolved.text}: no such value #{values.index(value)}")
        remaining.remove(match)
    if remaining:
        attrs[resolved.key] = tuple(remaining)
    else:
        del attrs[resolved.key]


def _replace(dsa: DSA, attrs: Attributes, resolved: Resolved,
             values: tuple[bytes, ...]) -> None:
    attrs.pop(resolved.key, None)
    if values:
        _add(dsa, attrs, resolved, values)


def _increment(dsa: DSA, attrs: Attributes, resolved: Resolved,
               values: tuple[bytes, ...]) -> None:
    if len(values) != 1:
        raise LDAPError(ResultCode.PROTOCOL_ERROR, "increment takes exactly one value")
    current = attrs.get(resolved.key)
    if current is None:
        raise LDAPError(ResultCode.NO_SUCH_ATTRIBUTE, f"no attribute {resolved.text}")
    try:
        delta = int(values[0])
        attrs[resolved.key] = tuple(str(int(v) + delta).encode() for v in current)
    except ValueError:
        raise LDAPError(ResultCode.CONSTRAINT_VIOLATION,
                        f"{resolved.text}: increment needs integer values") from None


APPLY: dict[ModOp, Callable[[DSA, Attributes, Resolved, tuple[bytes, ...]], None]] = {
    ModOp.ADD: _add,
    ModOp.DELETE: _delete,
    ModOp.REPLACE: _replace,
    ModOp.INCREMENT: _increment,
}


def apply_changes(dsa: DSA, entry: Entry, changes: tuple[Change, ...], actor: DN) -> Entry:
    """The entry after `changes`, schema-checked and stamped."""
    attrs: Attributes = dict(entry.attributes)
    for change in changes:
        resolved = resolve(dsa.schema, change.attribute)
        if resolved.type.no_user_modification:
            raise LDAPError(ResultCode.CONSTRAINT_VIOLATION,
                            f"{change.attribute}: no user modification allowed")
        values = change.values
        if resolved.type.key == "userpassword" and change.op in (ModOp.ADD, ModOp.REPLACE):
            values = tuple(passwords.prepare(v) for v in values)
        APPLY[change.op](dsa, attrs, resolved, values)
    for rdn in entry.dn.rdns[:1]:
        for ava in rdn.avas:
            stored = attrs.get(ava.key, ())
            norms = {dsa.schema.normalize_value(ava.key, v.decode(errors="replace"))
                     for v in stored}
            if ava.norm not in norms:
                raise LDAPError(ResultCode.NOT_ALLOWED_ON_RDN,
                                f"cannot remove RDN value {ava.attribute}={ava.value}")
    old_structural = entry.first("structuralobjectclass")
    add_op.complete_classes(dsa, attrs)
    classes = attrs.get("objectclass")
    if old_structural is not None and classes:
        structural = dsa.schema.content_rule(classes).structural
        if old_structural.decode().lower() != structural.lower():
            raise LDAPError(ResultCode.OBJECT_CLASS_MODS_PROHIBITED,
                            f"structural object class cannot change from "
                            f"{old_structural.decode()} to {structural}")
    dsa.schema.check_entry(entry.dn, attrs)
    stamp_modified(dsa, attrs, actor)
    return entry.with_attributes(attrs)


def handle(op: Operation) -> Outcome:
    request = op.request
    assert isinstance(request, ModifyRequest)
    dsa = op.dsa
    dn = dsa.parse_dn(request.dn)
    op.detail = f'dn="{request.dn}"'
    for change in request.changes:
        resolve(dsa.schema, change.attribute)

    def job(txn: SQLiteTransaction) -> tuple[Entry, Entry]:
        entry = txn.get(dn)
        if entry is None:
            raise dsa.no_such_object(dn)
        assertion.check(op, entry)
        updated = apply_changes(dsa, entry, request.changes, op.session.bound)
        txn.replace(updated)
        return entry, updated

    return dsa.write(job).addCallback(
        lambda pair: [Reply(ModifyResponse(SUCCESS), read_controls(op, pair[0], pair[1]))])
