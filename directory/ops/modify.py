"""Modify (RFC 4511 §4.6, RFC 4525).

- The entry must exist. Changes apply in order, all or nothing; the
  result must pass every schema check (RFC 4511 §4.6).
- add: values must not already be present under the equality rule
  (attributeOrValueExists); delete: without values removes the attribute,
  with values removes each, and a missing attribute or value is
  noSuchAttribute; replace: sets the values, or removes the attribute when
  none are given (no error if absent); increment (RFC 4525): one value, an
  integer, added to every value of an existing integer attribute.
- Values of DN syntax added or replaced are stored in slapd's form
  (`directory.dn_values`).
- Values of the RDN cannot be removed (notAllowedOnRDN, RFC 4511 §4.6).
- objectClass values are named and completed with their superclasses as
  on Add (`directory.ops.add`).
- The structural object class cannot change (objectClassModsProhibited),
  checked before the rest of the schema, as slapd does (RFC 4512 §2.4.2).
- NO-USER-MODIFICATION attributes are refused (constraintViolation).
- Values to add are compared with the stored ones, and values to delete
  found among them, by their equality-rule keys through a dict: linear in
  the number of values, never pairwise.
- userPassword: new values are hashed, and clear-text values to delete
  matched to the stored hash they verify against, on the password queue
  before the writer job (`directory.ops.userpassword`); inside it values
  compare as bytes. Offline writes (`apply_changes` from an LDIF import)
  hash clear-text values in place.
- Assertion (RFC 4528), pre-read and post-read (RFC 4527) controls.
- Access (`privileges`): add or delete on each attribute changed, checked
  in the transaction; an entry not disclosed to the requester is
  noSuchObject.
"""

from __future__ import annotations

from collections.abc import Callable

from directory.backend import Transaction
from directory.deferreds import from_coroutine
from directory.dn_values import stored_value
from directory.dsa import DSA
from directory.entry import Entry, Resolved, resolve_stored
from directory.matching import InvalidValue
from directory.operation import Operation, Outcome, Reply
from directory.operational import stamp_modified
from directory.ops import add as add_op
from directory.ops import assertion, privileges, userpassword
from directory.ops.readback import read_controls
from directory.ops.visibility import view_of
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


def _add(dsa: DSA, attrs: Attributes, resolved: Resolved, values: tuple[bytes, ...]) -> None:
    key = _keyer(dsa, resolved)
    current = list(attrs.get(resolved.key, ()))
    have = {key(v) for v in current}
    for index, value in enumerate(values):
        k = key(value)
        if k in have:
            raise LDAPError(ResultCode.ATTRIBUTE_OR_VALUE_EXISTS,
                            f"{resolved.text}: value #{index} already exists")
        have.add(k)
        current.append(stored_value(dsa.schema, resolved.type, value))
    attrs[resolved.key] = tuple(current)


def _delete(dsa: DSA, attrs: Attributes, resolved: Resolved, values: tuple[bytes, ...]) -> None:
    current = attrs.get(resolved.key)
    if current is None:
        raise LDAPError(ResultCode.NO_SUCH_ATTRIBUTE, f"no attribute {resolved.text}")
    if not values:
        del attrs[resolved.key]
        return
    key = _keyer(dsa, resolved)
    positions: dict[bytes, list[int]] = {}
    for position, stored in enumerate(current):
        positions.setdefault(key(stored), []).append(position)
    removed: set[int] = set()
    for index, value in enumerate(values):
        found = positions.get(key(value))
        if not found:
            raise LDAPError(ResultCode.NO_SUCH_ATTRIBUTE,
                            f"{resolved.text}: no such value #{index}")
        removed.add(found.pop())
    remaining = tuple(v for position, v in enumerate(current) if position not in removed)
    if remaining:
        attrs[resolved.key] = remaining
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
        resolved = resolve_stored(dsa.schema, change.attribute)
        if resolved.type.no_user_modification:
            raise LDAPError(ResultCode.CONSTRAINT_VIOLATION,
                            f"{change.attribute}: no user modification allowed")
        values = change.values
        if resolved.type.key == "userpassword" and change.op in (ModOp.ADD, ModOp.REPLACE):
            values = tuple(dsa.hashing.prepare(v) for v in values)
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
    dn = op.target
    op.detail = f'dn="{request.dn}"'
    for change in request.changes:
        resolve_stored(dsa.schema, change.attribute)

    async def modify() -> list[Reply]:
        changes = await userpassword.prepare_changes(op, dn, request.changes)

        def job(txn: Transaction) -> tuple[Entry, Entry]:
            view = view_of(op).reading(txn.get)
            entry = privileges.disclosed(view, dn)
            privileges.modify(dsa, view, entry, changes)
            assertion.check(op, entry, view)
            updated = apply_changes(dsa, entry, changes, op.session.bound)
            txn.replace(updated)
            return entry, updated

        before, after = await dsa.write(job)
        return [Reply(ModifyResponse(SUCCESS), read_controls(op, before, after))]

    return from_coroutine(modify())
