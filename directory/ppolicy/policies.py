"""What one directory holds for its password policy: the policies by subtree,
the root DN's backoff, and the turns of binds to entries being failed.

- `policy_for(dn)` is the policy of the most specific configured subtree
  that holds `dn`, or None.
- `on_add` (an add hook, in the add's transaction) gives a new entry with
  a userPassword under a policy its pwdChangedTime.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from directory.backend import Transaction
from directory.entry import Entry
from directory.ppolicy import state
from directory.ppolicy.backoff import Backoff
from directory.ppolicy.config import PasswordPolicies, Policy
from directory.ppolicy.turns import Turns
from directory.protocol.dn import DN
from directory.schema import Schema


class Policies:
    def __init__(self, settings: PasswordPolicies, schema: Schema,
                 now: Callable[[], dt.datetime]) -> None:
        parsed = [(DN.parse(p.subtree, schema), p) for p in settings.policies]
        self._by_depth = sorted(parsed, key=lambda pair: len(pair[0]), reverse=True)
        self.backoff = Backoff(settings.root_backoff)
        self.turns = Turns()
        self._now = now

    def policy_for(self, dn: DN) -> Policy | None:
        return next((p for subtree, p in self._by_depth if dn.is_descendant_of(subtree)), None)

    def on_add(self, txn: Transaction, entry: Entry) -> None:
        if entry.get("userpassword") and self.policy_for(entry.dn) is not None:
            txn.replace(entry.with_attributes(state.with_changed_time(entry.attributes,
                                                                      self._now())))
