"""The values a search returns under the matched values control (RFC 3876).

- With the control, each attribute of a returned entry keeps only the
  values that match at least one item of the ValuesReturnFilter; an
  attribute none of whose values match is left out, and the entry itself
  is still returned (RFC 3876 §2), as slapd does. The control changes
  which values come back, never which entries.
- An item is judged on one value at a time, as a filter item would be on
  an entry holding that value alone: its description covers subtypes and
  options (`name`, `description;lang-en-`), its rules are the filter's
  (`directory.predicates`), an extensible match without a type applies to
  every attribute its rule does; an item that is Undefined for a value
  does not match it.
- Computed operational attributes are restricted the same way.
"""

from __future__ import annotations

from collections.abc import Mapping

from directory.entry import Entry
from directory.predicates import Predicate, compile_filter
from directory.protocol.controls import ValuesReturnFilter
from directory.protocol.dn import DN
from directory.resolved_filter import resolve_filter
from directory.schema import Schema

Attributes = Mapping[str, tuple[bytes, ...]]


def predicates(schema: Schema, control: ValuesReturnFilter) -> tuple[Predicate, ...]:
    return tuple(compile_filter(schema, resolve_filter(schema, item)) for item in control.items)


def matched(dn: DN, attributes: Attributes, items: tuple[Predicate, ...]) -> dict[
        str, tuple[bytes, ...]]:
    """The attributes with only the values some item matches."""
    kept: dict[str, tuple[bytes, ...]] = {}
    for key, values in attributes.items():
        found = tuple(value for value in values if _matches(Entry(dn, {key: (value,)}), items))
        if found:
            kept[key] = found
    return kept


def _matches(probe: Entry, items: tuple[Predicate, ...]) -> bool:
    return any(item(probe) is True for item in items)
