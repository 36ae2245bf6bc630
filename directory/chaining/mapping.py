"""Where a search of ours goes on a peer, and where the peer's entries go here.

- A peer serves namespaces: pairs of a DN on the peer and the DN it stands
  for here (`referral.list[].map`; the URL's base as itself by default).
- A search based at or below one of our DNs goes to the peer with that
  suffix replaced by the peer's, scope unchanged. A search whose scope
  holds one of our DNs (subtree, children, or one level just above it)
  goes to the peer's DN itself, as a subtree (base for one level). Any
  other search is not the peer's: it is not asked.
- An entry the peer returns is moved back under our DN; one outside every
  namespace of the peer cannot be placed here and is dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from directory.protocol.dn import DN
from directory.protocol.messages import Scope


@dataclass(frozen=True, slots=True)
class Namespace:
    theirs: DN
    ours: DN


def moved(dn: DN, old: DN, new: DN) -> DN:
    """`dn`, at or below `old`, with that suffix replaced by `new`."""
    return DN(dn.rdns[: len(dn) - len(old)] + new.rdns)


def namespaces(pairs: tuple[tuple[str, str], ...], parse: Callable[[str], DN]
               ) -> tuple[Namespace, ...]:
    return tuple(Namespace(parse(theirs), parse(ours)) for theirs, ours in pairs)


def outbound(spaces: tuple[Namespace, ...], base: DN, scope: Scope) -> tuple[DN, Scope] | None:
    """The peer's base and scope for our search, None when it is not the peer's."""
    for space in spaces:
        if base.is_descendant_of(space.ours):
            return moved(base, space.ours, space.theirs), scope
        if not space.ours.is_descendant_of(base, strict=True):
            continue
        if scope in (Scope.SUB, Scope.CHILDREN):
            return space.theirs, Scope.SUB
        if scope == Scope.ONE and space.ours.parent == base:
            return space.theirs, Scope.BASE
    return None


def inbound(spaces: tuple[Namespace, ...], dn: DN) -> DN | None:
    """The DN here of the peer's entry `dn`, None when no namespace holds it."""
    for space in spaces:
        if dn.is_descendant_of(space.theirs):
            return moved(dn, space.theirs, space.ours)
    return None
