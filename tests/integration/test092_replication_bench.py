"""Scenario 092: the replication benchmark (bench/replication_bench.py) stays runnable.

- Run as `make bench-replication` runs it, with a tiny book (`--entries 200 --duration
  2`), on the session's storage (on postgresql the certdir provider and the certdir
  consumer each in a database of their own): it exits 0 and its JSON line has an initial
  refresh for slapd -> slapd, certdir -> slapd and certdir -> certdir, each consumer
  holding the book, the stamped people and the entries above them; and for each write run
  (slapd's, then certdir's) the writer, having written (as many as the provider took
  within twice the duration), and every observer (the provider itself and its
  consumers), each having seen every change written (each modify stamps another entry,
  so none is superseded by a later one) and ending with the provider's values. No figure
  is checked: speed lives in bench/.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.integration.conftest import Storage

REPO = Path(__file__).resolve().parents[2]
ENTRIES = 200
STAMPS = 1000
ABOVE = 3  # the suffix, ou=people and ou=stamps
RATE = 50
DURATION = 2
PATHS = ["slapd -> slapd", "certdir -> slapd", "certdir -> certdir"]
WRITERS = ["slapd writer", "certdir writer"]
OBSERVERS = [WRITERS[0], "slapd provider itself", "slapd -> slapd",
             WRITERS[1], "certdir provider itself", "certdir -> slapd", "certdir -> certdir"]


def test_the_bench_runs_every_path_and_sees_every_change(storage: Storage,
                                                         tmp_path: Path) -> None:
    urls: list[str] = []
    if storage.cluster is not None:
        urls = ["--storage-url", storage.cluster.database(),
                "--consumer-storage-url", storage.cluster.database()]
    done = subprocess.run(
        [sys.executable, "bench/replication_bench.py", "--entries", str(ENTRIES),
         "--rate", str(RATE), "--duration", str(DURATION), "--workdir", str(tmp_path / "work"),
         *urls],
        cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert [(r["path"], r["entries"]) for r in figures["refresh"]] == [
        (path, ENTRIES + STAMPS + ABOVE) for path in PATHS]
    assert [(d["path"], d["written"] > 0, d["written"] - d["seen"], d["superseded"],
             d["converged"]) for d in figures["propagation"]] == [
        (path, True, 0, 0, None if path in WRITERS else True) for path in OBSERVERS]
