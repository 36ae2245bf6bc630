"""Filter depth within any allowed configuration (issue 10 part 4).

- The deepest filter a configuration may allow (`MAX_DEPTH`) is decoded,
  compiled, evaluated, planned and printed without exhausting Python's
  stack, even below as many frames as the server's own call chain holds.
- The RFC 4515 string parser refuses nesting beyond its bound instead of
  recursing further.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from directory.entry import Entry
from directory.predicates import compile_filter
from directory.protocol import ber
from directory.protocol.dn import DN
from directory.protocol.filter import (
    MAX_DEPTH,
    Filter,
    FilterLimits,
    FilterSyntaxError,
    Not,
    Present,
    format,
    from_ber,
    parse,
    to_ber,
)
from directory.resolved_filter import resolve_filter
from directory.schema import Schema
from directory.search_plan import exact, plan

SCHEMA = Schema.load([Path(__file__).resolve().parents[2] / "schema"])
# More frames than a request's path through Twisted, the dispatcher and
# the overlays puts under a handler.
SERVER_FRAMES = 150


def nested(depth: int) -> Filter:
    f: Filter = Present("cn")
    for _ in range(depth):
        f = Not(f)
    return f


def below(frames: int, work: Callable[[], object]) -> object:
    return work() if frames == 0 else below(frames - 1, work)


def everything(f: Filter) -> bool | None:
    data = to_ber(f)
    tag, start, end = ber.read_tlv(data, 0, len(data))
    decoded = from_ber(data, start, end, tag, 0, FilterLimits(MAX_DEPTH, 1024))
    assert decoded == f and format(decoded).count("(!") == MAX_DEPTH
    resolved = resolve_filter(SCHEMA, decoded)
    query = plan(frozenset({"cn"}), resolved)
    exact(query, resolved)
    return compile_filter(SCHEMA, resolved)(Entry(DN.parse("cn=x"), {"cn": (b"x",)}))


def test_deepest_allowed_filter_fits_on_the_stack() -> None:
    assert below(SERVER_FRAMES, lambda: everything(nested(MAX_DEPTH))) is True


def test_string_filters_nested_too_deep_are_refused() -> None:
    text = "(!" * 1000 + "(cn=x)" + ")" * 1000
    with pytest.raises(FilterSyntaxError, match="nested too deeply"):
        parse(text)
