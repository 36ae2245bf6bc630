"""Run one coverage-guided fuzz target with atheris: `python -m tests.fuzz.run
TARGET [libFuzzer options] [CORPUS...]` (TARGET in tests.fuzz.targets.TARGETS).

`make fuzz` runs each target for $(FUZZ_SECONDS) with a corpus under
run/fuzz/TARGET, seeded from tests/data/fuzz/TARGET/. A crash input is
written by libFuzzer as crash-<sha1> in the working directory; it becomes a
regression case (tests/data/fuzz/README.md).
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["directory"]):
    from tests.fuzz.targets import TARGETS


def main() -> None:
    name, *options = sys.argv[1:]
    atheris.Setup([sys.argv[0], *options], TARGETS[name])
    atheris.Fuzz()


if __name__ == "__main__":
    main()
