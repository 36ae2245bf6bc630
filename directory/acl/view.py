"""An operation's questions to the access policy, for one identity.

- The root DN has every right on everything, before any rule.
- Answers are kept for the life of the view (one operation), per entry
  and attribute, so a search asks once per entry and attribute.
- `denied` names the attributes (type keys) among those given that lack a
  right: results leave them out, and filters treat them as Undefined.
"""

from __future__ import annotations

from collections.abc import Iterable

from directory.acl.identity import Identity
from directory.acl.policy import CHILDREN, ENTRY, AccessPolicy, Reader
from directory.acl.rights import ALL, Rights
from directory.entry import Entry
from directory.protocol.dn import DN

__all__ = ["CHILDREN", "ENTRY", "View"]


class View:
    def __init__(self, policy: AccessPolicy, who: Identity, get: Reader) -> None:
        self.policy = policy
        self.who = who
        self.get = get
        self._known: dict[tuple[DN, str], Rights] = {}

    def rights(self, entry: Entry, attribute: str = ENTRY) -> Rights:
        if self.who.is_root:
            return ALL
        key = (entry.dn, attribute)
        found = self._known.get(key)
        if found is None:
            found = self._known[key] = self.policy.rights(self.who, entry, attribute, self.get)
        return found

    def allows(self, entry: Entry, wanted: Rights, attribute: str = ENTRY) -> bool:
        return wanted in self.rights(entry, attribute)

    def denied(self, entry: Entry, wanted: Rights, attributes: Iterable[str]) -> frozenset[str]:
        if self.who.is_root:
            return frozenset()
        return frozenset(a for a in attributes if wanted not in self.rights(entry, a))

    def may_proxy(self, target: DN) -> bool:
        return self.who.is_root or self.policy.may_proxy(self.who, target, self.get)

    def reading(self, get: Reader) -> View:
        """The same identity and policy, reading through `get` (a writer's transaction)."""
        return View(self.policy, self.who, get)
