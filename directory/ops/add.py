"""Add (RFC 4511 §4.7).

- The entry must not exist (entryAlreadyExists) and its parent must,
  unless the entry is the naming context itself (noSuchObject with
  matchedDN otherwise).
- Each attribute description appears once and has at least one value;
  values are not repeated (RFC 4511 §4.7; attributeOrValueExists).
- Clients may not supply NO-USER-MODIFICATION attributes
  (constraintViolation, RFC 4512 §4.1.2).
- Values of DN syntax are stored in slapd's form (`directory.dn_values`).
- objectClass values are stored under the name the schema gives each
  class (its first NAME), whatever case or OID the client wrote, as slapd
  stores them. The chain is completed with every superclass (RFC 4512
  §2.4.1), so (objectClass=person) finds inetOrgPerson entries through the
  index.
- The whole entry is schema-checked before anything is written; the
  server then adds its operational attributes (RFC 4512 §3.4).
- userPassword values given in clear text are stored hashed, hashed on the
  password queue before the writer job (`directory.ops.userpassword`);
  offline writes (`collect` from an LDIF import) hash them in place.
- Post-read (RFC 4527) returns the entry as added.
- Access (`privileges`): add on the parent's `children`, on the new
  entry's `entry` and on each attribute given, checked in the transaction.
- Hooks the application adds (`DSA.add_hooks`, e.g. the KMS's automatic
  enrollment) run in the same transaction; what they leave to do after the
  commit (sending mail) runs once it is durable.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from directory.backend import Transaction
from directory.deferreds import from_coroutine
from directory.dn_values import stored_value
from directory.dsa import DSA, AfterCommit
from directory.entry import Entry, resolve_stored
from directory.operation import Operation, Outcome, Reply
from directory.operational import stamp_new
from directory.ops import privileges, userpassword
from directory.ops.readback import read_controls
from directory.ops.visibility import view_of
from directory.protocol.dn import DN
from directory.protocol.messages import SUCCESS, AddRequest, AddResponse
from directory.protocol.results import LDAPError, ResultCode
from directory.schema import Schema

Attributes = dict[str, tuple[bytes, ...]]


def collect(dsa: DSA, pairs: Iterable[tuple[str, Iterable[bytes]]]) -> Attributes:
    """Client-supplied attributes keyed by attribute key, checked for
    duplicates, empty value sets and server-only attributes."""
    attributes: Attributes = {}
    for name, values in pairs:
        resolved = resolve_stored(dsa.schema, name)
        if resolved.type.no_user_modification:
            raise LDAPError(ResultCode.CONSTRAINT_VIOLATION,
                            f"{name}: no user modification allowed")
        if resolved.key in attributes:
            raise LDAPError(ResultCode.ATTRIBUTE_OR_VALUE_EXISTS,
                            f"attribute {name} provided more than once")
        vals = tuple(values)
        if not vals:
            raise LDAPError(ResultCode.PROTOCOL_ERROR, f"attribute {name} has no values")
        if resolved.type.key == "userpassword":
            vals = tuple(dsa.hashing.prepare(v) for v in vals)
        attributes[resolved.key] = tuple(stored_value(dsa.schema, resolved.type, v)
                                         for v in vals)
    return attributes


def complete_classes(dsa: DSA, attributes: Attributes) -> None:
    """Name the object classes as the schema does and add the superclasses
    the client left out (RFC 4512 §2.4.1)."""
    names = attributes.get("objectclass")
    if names:
        attributes["objectclass"] = _with_superclasses(dsa.schema, names)


@lru_cache(maxsize=1024)
def _with_superclasses(schema: Schema, names: tuple[bytes, ...]) -> tuple[bytes, ...]:
    classes = [schema.find_object_class(v.decode(errors="replace")) for v in names]
    completed = [value if oc is None else oc.name.encode()
                 for value, oc in zip(names, classes, strict=True)]
    held = {value.lower() for value in completed}
    for oc in classes:
        for sup in schema.sup_chain(oc) if oc is not None else ():
            if sup.name.encode().lower() not in held:
                held.add(sup.name.encode().lower())
                completed.append(sup.name.encode())
    return tuple(completed)


def validate(dsa: DSA, dn: DN, attributes: Attributes) -> str:
    """Complete the object classes of a new entry and schema-check it;
    return its structural class."""
    complete_classes(dsa, attributes)
    return dsa.schema.check_entry(dn, attributes)


def build(dsa: DSA, dn: DN, attributes: Attributes, actor: DN) -> Entry:
    """Validate a new entry and give it its operational attributes."""
    stamp_new(dsa, attributes, actor, validate(dsa, dn, attributes))
    return Entry(dn, attributes)


def check_within(dsa: DSA, dn: DN) -> None:
    if not dn.is_descendant_of(dsa.suffix):
        raise LDAPError(ResultCode.NO_SUCH_OBJECT,
                        f"{dn} is not within the naming context {dsa.suffix}")


def insert(dsa: DSA, txn: Transaction, entry: Entry) -> None:
    dn = entry.dn
    check_within(dsa, dn)
    try:
        txn.add(entry, root=dn == dsa.suffix)
    except LDAPError as e:
        if e.code != ResultCode.NO_SUCH_OBJECT:
            raise
        raise LDAPError(ResultCode.NO_SUCH_OBJECT, f"parent {dn.parent} does not exist",
                        matched=dsa.matched(dn.parent)) from None


def handle(op: Operation) -> Outcome:
    request = op.request
    assert isinstance(request, AddRequest)
    dsa = op.dsa
    dn = op.target
    op.detail = f'dn="{request.dn}"'
    if not dn:
        raise LDAPError(ResultCode.ENTRY_ALREADY_EXISTS, "the root DSE always exists")

    async def add() -> list[Reply]:
        pairs = await userpassword.prepare_attributes(op, dn, request.attributes)
        entry = build(dsa, dn, collect(dsa, pairs), op.session.bound)

        def job(txn: Transaction) -> list[AfterCommit]:
            check_within(dsa, dn)
            privileges.add(dsa, view_of(op).reading(txn.get), entry)
            insert(dsa, txn, entry)
            return [after for hook in dsa.add_hooks if (after := hook(txn, entry)) is not None]

        for after in await dsa.write(job):
            after()
        return [Reply(AddResponse(SUCCESS), read_controls(op, None, entry))]

    return from_coroutine(add())
