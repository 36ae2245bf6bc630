"""userPassword work for bind, add, modify and Password Modify, done on the
password queue (`directory.verify_queue`) before any writer job.

- Every job of one operation goes to the queue in turn, one value per job,
  under the path (peer address, target DN, connection), so that the queue
  shares its threads fairly and one request holds at most one of them.
- Values a client adds or replaces in clear text are hashed with the
  server's Argon2id parameters (`directory.passwords`).
- A value that is already a hash (`{SCHEME}...`) is stored as given only
  when the root DN sends it, in a known scheme and within the hash policy;
  otherwise it is refused with constraintViolation (19), as slapd's ppolicy
  refuses a hashed value whose quality it cannot check: the server cannot
  check what it cannot read, and a client would choose the cost of every
  later bind.
- A value to delete given as the stored hash matches it exactly; given in
  clear text it is verified against the stored hashes, each stored value at
  most once, stopping at the first match (a matched value leaves the
  running), and is replaced by the hash it matched, so the writer compares
  bytes only. A clear-text value that matches none is noSuchAttribute (16).
- `check` verifies the acceptable stored values in turn; when none is
  acceptable (no entry, no userPassword, unknown schemes, hashes outside the
  policy) it verifies the dummy hash, so a missing DN costs what a wrong
  password costs.
- `upgrade` replaces a value verified in an older scheme or with older
  parameters by an Argon2id hash of the same password: the hash on the
  queue, then a writer job that replaces that exact value; if the value
  changed meanwhile, the change wins. A busy queue postpones it to a later
  bind.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, TypeVar

from directory.backend import Transaction
from directory.entry import resolve
from directory.operation import Operation
from directory.operational import stamp_modified
from directory.passwords import Hashing, is_hashed
from directory.protocol.dn import DN
from directory.protocol.messages import Change, ModOp
from directory.protocol.results import LDAPError, ResultCode

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred


USER_PASSWORD = "userpassword"
T = TypeVar("T")
X = TypeVar("X")
Pairs = list[tuple[str, Sequence[bytes]]]
log = logging.getLogger(__name__)


def submit(op: Operation, dn: DN, fn: Callable[[X], T], item: X) -> Deferred[T]:
    """fn(item) on the password queue, in the lane of `op`'s client and `dn`."""
    peer = op.session.peer
    host = peer.rpartition(":")[0] or peer
    connection = f"conn={op.session.conn_id}"
    return op.dsa.passwords.submit(connection, (host, dn.normalized, connection), fn, item)


async def _first(op: Operation, dn: DN, test: Callable[[bytes], bool],
                 items: Sequence[bytes]) -> bytes | None:
    """The first item that passes `test`, one job at a time."""
    for item in items:
        if await submit(op, dn, test, item):
            return item
    return None


def _verifier(hashing: Hashing, password: bytes) -> Callable[[bytes], bool]:
    return lambda stored: hashing.verify(stored, password)


def _dummy(hashing: Hashing, password: bytes) -> None:
    hashing.verify(hashing.dummy, password)


async def check(op: Operation, dn: DN, stored: Sequence[bytes], password: bytes) -> bytes | None:
    """The stored value `password` verifies against, or None."""
    hashing = op.dsa.hashing
    candidates = [s for s in stored if hashing.acceptable(s)]
    if not candidates:
        await submit(op, dn, lambda h: _dummy(h, password), hashing)
        return None
    return await _first(op, dn, _verifier(hashing, password), candidates)


def _refuse_hash(op: Operation, value: bytes) -> None:
    if not op.session.is_root:
        raise LDAPError(ResultCode.CONSTRAINT_VIOLATION,
                        "userPassword: give the password in clear text; the server hashes it")
    if not op.dsa.hashing.acceptable(value):
        raise LDAPError(ResultCode.CONSTRAINT_VIOLATION,
                        "userPassword: hash in an unknown scheme or outside the hash policy")


async def hashed(op: Operation, dn: DN, values: Sequence[bytes]) -> tuple[bytes, ...]:
    """The values to store: clear text hashed, hashes checked (see above)."""
    for value in values:
        if is_hashed(value):
            _refuse_hash(op, value)
    hashing = op.dsa.hashing
    return tuple([v if is_hashed(v) else await submit(op, dn, hashing.hash, v) for v in values])


async def matching(op: Operation, dn: DN, values: Sequence[bytes],
                   stored: Sequence[bytes]) -> tuple[bytes, ...]:
    """The stored values to delete for `values` (see above)."""
    hashing = op.dsa.hashing
    exact = set(stored)
    running = [s for s in stored if s not in set(values) and hashing.acceptable(s)]
    found = list(values)
    for index, value in enumerate(values):
        if value in exact or is_hashed(value):
            continue
        match = await _first(op, dn, _verifier(hashing, value), list(running))
        if match is None:
            raise LDAPError(ResultCode.NO_SUCH_ATTRIBUTE, f"userPassword: no such value #{index}")
        found[index] = match
        running.remove(match)
    return tuple(found)


def _is_password(op: Operation, attribute: str) -> bool:
    return resolve(op.dsa.schema, attribute).type.key == USER_PASSWORD


async def prepare_changes(op: Operation, dn: DN,
                          changes: tuple[Change, ...]) -> tuple[Change, ...]:
    """The changes with userPassword values hashed, or matched to the stored
    hashes they delete, before the writer job."""
    touched = [i for i, c in enumerate(changes) if c.values and c.op != ModOp.INCREMENT
               and _is_password(op, c.attribute)]
    if not touched:
        return changes
    entry = op.dsa.backend.get(dn)
    stored = entry.get(USER_PASSWORD) if entry is not None else ()
    prepared = list(changes)
    for index in touched:
        change = changes[index]
        if change.op == ModOp.DELETE:
            values = await matching(op, dn, change.values, stored)
        else:
            values = await hashed(op, dn, change.values)
        prepared[index] = replace(change, values=values)
    return tuple(prepared)


async def prepare_attributes(op: Operation, dn: DN,
                             attributes: Sequence[tuple[str, Sequence[bytes]]]) -> Pairs:
    """An add's attributes with userPassword values hashed before the writer job."""
    return [(name, await hashed(op, dn, values) if _is_password(op, name) else values)
            for name, values in attributes]


async def upgrade(op: Operation, dn: DN, old: bytes, password: bytes) -> None:
    """Store an Argon2id hash of `password` in place of `old`, if it needs it."""
    hashing = op.dsa.hashing
    if not hashing.needs_upgrade(old):
        return
    try:
        new = await submit(op, dn, hashing.hash, password)
    except LDAPError:
        return

    def job(txn: Transaction) -> None:
        entry = txn.get(dn)
        if entry is None or old not in entry.get(USER_PASSWORD):
            return
        attributes = dict(entry.attributes)
        attributes[USER_PASSWORD] = tuple(new if v == old else v for v in entry.get(USER_PASSWORD))
        stamp_modified(op.dsa, attributes, op.dsa.root_dn)
        txn.replace(entry.with_attributes(attributes))

    try:
        await op.dsa.write(job)
    except LDAPError as e:
        log.warning("upgrading the password hash of %s failed: %s", dn, e)
