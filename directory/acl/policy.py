"""What an access policy answers (the rule engine implements it).

- `rights(who, entry, attribute, get)`: the privileges `who` has on one
  attribute of `entry` (a type key such as "cn"), or on the `ENTRY` and
  `CHILDREN` pseudo-attributes. `get` reads other entries (group
  membership) from the same view of the database as the operation.
- `uniform(who, attribute, get)`: the rights `who` has on that attribute of
  every entry, when they do not depend on the entry; None when they may.
- `may_proxy(who, target, get)`: whether `who` may act as `target` with the
  proxied authorization control (RFC 4370).
- The root DN never reaches a policy: `View` grants it everything.

`directory.acl.engine.RulePolicy` implements it from `access.rules`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from directory.acl.identity import Identity
from directory.acl.rights import Rights
from directory.entry import Entry
from directory.protocol.dn import DN

ENTRY = "entry"
CHILDREN = "children"

Reader = Callable[[DN], Entry | None]


class AccessPolicy(Protocol):
    def rights(self, who: Identity, entry: Entry, attribute: str, get: Reader) -> Rights: ...

    def uniform(self, who: Identity, attribute: str, get: Reader) -> Rights | None: ...

    def may_proxy(self, who: Identity, target: DN, get: Reader) -> bool: ...
