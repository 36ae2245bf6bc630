"""Every input the fuzzers found, and their seeds, replayed (issue 10 part 7).

- Each file under tests/data/fuzz/ goes through its target's check
  (tests/fuzz/targets.py): the parser returns a value, round-tripping where
  its module promises it, or raises its documented error type; nothing else.
- Each regression gives the one documented error it must: the message that
  names the problem (tests/data/fuzz/README.md says where each came from).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from directory import ldif
from directory.protocol import filter as filters
from directory.schema import Schema
from directory.schema_files import SchemaError
from tests.fuzz.targets import TARGETS

DATA = Path(__file__).parents[1] / "data" / "fuzz"
SEEDS = sorted(DATA.glob("seeds/*/*"))
REGRESSIONS = DATA / "regressions"


@pytest.mark.parametrize("path", SEEDS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_seed_meets_its_target(path: Path) -> None:
    TARGETS[path.parent.name](path.read_bytes())


@pytest.mark.parametrize("path", sorted(REGRESSIONS.iterdir()), ids=lambda p: p.name)
def test_regression_meets_its_target(path: Path) -> None:
    TARGETS[path.name.split("-", 1)[0]](path.read_bytes())


def _filter(path: Path) -> object:
    return filters.parse(path.read_text())


def _ldif(path: Path) -> object:
    return ldif.parse_bytes(path.read_bytes())


def _schema(path: Path) -> object:
    return Schema.load([path])


EXPECTED: list[tuple[str, Callable[[Path], object], type[Exception], str]] = [
    ("filter-substrings-without-piece", _filter, filters.FilterSyntaxError,
     "substrings filter 'cb=**' has no piece (RFC 4511 §4.5.1.7.2)"),
    ("ldif-control-base64-not-ascii", _ldif, ldif.LDIFError,
     "line 3: bad base64 control value"),
    ("ldif-dash-in-content-record", _ldif, ldif.LDIFError,
     "line 13: '-' ends a block of a modify record only"),
    ("ldif-empty-attribute-description", _ldif, ldif.LDIFError,
     "line 3: bad attribute description ''"),
    ("ldif-nul-in-attribute-description", _ldif, ldif.LDIFError,
     "line 4: bad attribute description 'nver\\x00\\x00Ersion'"),
    ("schema-not-utf8", _schema, SchemaError,
     f"{REGRESSIONS / 'schema-not-utf8'}: not UTF-8 (byte 197)"),
]


def test_every_regression_has_its_expected_error() -> None:
    assert sorted(name for name, *_ in EXPECTED) == sorted(p.name for p in REGRESSIONS.iterdir())


@pytest.mark.parametrize("name, parse, error, message", EXPECTED, ids=[e[0] for e in EXPECTED])
def test_regression_gives_its_documented_error(name: str, parse: Callable[[Path], object],
                                               error: type[Exception], message: str) -> None:
    with pytest.raises(error) as raised:
        parse(REGRESSIONS / name)
    assert str(raised.value) == message
