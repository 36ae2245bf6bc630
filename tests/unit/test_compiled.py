"""A compiled module older than its source is refused, naming it and the rebuild; one
as new as its source, or an extension without a source beside it, is not."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from directory.compiled import StaleExtension, refuse_stale

SUFFIX = ".cpython-311-x86_64-linux-gnu.so"


def files(root: Path, source_time: float, extension_time: float) -> None:
    (root / "ops").mkdir()
    for path, at in ((root / "ops" / "search.py", source_time),
                     (root / "ops" / f"search{SUFFIX}", extension_time)):
        path.write_bytes(b"")
        os.utime(path, (at, at))


def test_an_extension_older_than_its_source_is_refused(tmp_path: Path) -> None:
    files(tmp_path, 2_000_000, 1_000_000)
    with pytest.raises(StaleExtension, match=r"search\.cpython.* is older than search\.py: "
                                             r"rebuild it with `make \.venv/\.compiled`"):
        refuse_stale(tmp_path)


def test_an_extension_as_new_as_its_source_is_kept(tmp_path: Path) -> None:
    files(tmp_path, 1_000_000, 1_000_000)
    refuse_stale(tmp_path)


def test_an_extension_without_a_source_is_not_looked_at(tmp_path: Path) -> None:
    (tmp_path / f"runtime{SUFFIX}").write_bytes(b"")
    refuse_stale(tmp_path)
