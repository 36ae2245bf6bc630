"""An operation's questions to the access policy, for one identity.

- The root DN has every right on everything, before any rule.
- Answers are kept for the life of the view (one operation), per entry
  and attribute, so a search asks once per entry and attribute. They are
  kept by entry DN, one table per entry, and the table of the entry asked
  about last is at hand without a lookup: a search asks all its questions
  about one entry before the next.
- Rights the policy gives on every entry alike (`uniform`) are asked once
  per attribute, for the whole operation.
- `lacking` names the attributes (type keys) among those given that lack a
  right: results leave them out, and filters treat them as Undefined. When
  none does it returns one shared empty set, so the common case allocates
  nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

from directory.acl.identity import Identity
from directory.acl.policy import CHILDREN, ENTRY, AccessPolicy, Reader
from directory.acl.rights import ALL, Rights
from directory.entry import Entry
from directory.protocol.dn import DN

__all__ = ["CHILDREN", "ENTRY", "NOTHING", "View"]

NOTHING: frozenset[str] = frozenset()
NOT_UNIFORM = -1


class View:
    def __init__(self, policy: AccessPolicy, who: Identity, get: Reader) -> None:
        self.policy = policy
        self.who = who
        self.get = get
        self._known: dict[DN, dict[str, int]] = {}
        # Per attribute: the rights on every entry, or NOT_UNIFORM.
        self._uniform: dict[str, int] = {}
        self._entry: Entry | None = None
        self._rights: dict[str, int] = {}

    def _bits(self, entry: Entry, attribute: str) -> int:
        """The rights on `attribute` of `entry` as plain bits (cheap to test)."""
        found = self._uniform.get(attribute)
        if found is None:
            uniform = self.policy.uniform(self.who, attribute, self.get)
            found = self._uniform[attribute] = NOT_UNIFORM if uniform is None else int(uniform)
        if found != NOT_UNIFORM:
            return found
        if entry is not self._entry:
            self._entry = entry
            self._rights = self._known.setdefault(entry.dn, {})
        found = self._rights.get(attribute)
        if found is None:
            found = self._rights[attribute] = int(
                self.policy.rights(self.who, entry, attribute, self.get))
        return found

    def rights(self, entry: Entry, attribute: str = ENTRY) -> Rights:
        if self.who.is_root:
            return ALL
        return Rights(self._bits(entry, attribute))

    def allows(self, entry: Entry, wanted: Rights, attribute: str = ENTRY) -> bool:
        if self.who.is_root:
            return True
        bits = int(wanted)
        return self._bits(entry, attribute) & bits == bits

    def lacking(self, entry: Entry, wanted: Rights, attributes: Iterable[str]) -> frozenset[str]:
        if self.who.is_root:
            return NOTHING
        bits = int(wanted)
        found = self._bits
        lacking = [a for a in attributes if found(entry, a) & bits != bits]
        return frozenset(lacking) if lacking else NOTHING

    def may_proxy(self, target: DN) -> bool:
        return self.who.is_root or self.policy.may_proxy(self.who, target, self.get)

    def reading(self, get: Reader) -> View:
        """The same identity and policy, reading through `get` (a writer's transaction)."""
        return View(self.policy, self.who, get)
