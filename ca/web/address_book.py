"""Finding people in the directory for the web pages (reads on the reactor).

- By mail address: an equality search on the `mail` index
  (`directory.search_plan`), each candidate checked against the filter
  (the plan may return a superset), at most `limit` entries.
- By DN: the entry itself. A name that is not a DN is no entry.
- Every read starts with `dsa.refresh()`, so a change made by another
  process (a `certdir` CLI command) is seen at once.
"""

from __future__ import annotations

from itertools import islice

from directory.dsa import DSA
from directory.entry import Entry
from directory.predicates import compile_filter
from directory.protocol.filter import Equality
from directory.protocol.messages import Scope
from directory.protocol.results import LDAPError
from directory.resolved_filter import resolve_filter
from directory.search_plan import plan


def by_mail(dsa: DSA, mail: str, limit: int) -> list[Entry]:
    dsa.refresh()
    wanted = resolve_filter(dsa.schema, Equality("mail", mail.encode()))
    matches = compile_filter(dsa.schema, wanted)
    found = dsa.backend.search(dsa.suffix, Scope.SUB, plan(dsa.backend.indexed, wanted))
    return list(islice((entry for entry in found if matches(entry) is True), limit))


def by_dn(dsa: DSA, dn: str) -> Entry | None:
    dsa.refresh()
    try:
        parsed = dsa.parse_dn(dn)
    except LDAPError:
        return None
    return dsa.backend.get(parsed)


def person(dsa: DSA, name: str) -> Entry | None:
    """The entry a person names when logging in: a DN, or a mail address only one has."""
    if "=" in name:
        return by_dn(dsa, name)
    found = by_mail(dsa, name, 2)
    return found[0] if len(found) == 1 else None
