"""The directory benchmark's figures, its table and its targets (issue 11, part 4).

- A workload's figure for one server is the median over the rounds of ops/s, p50 and p99
  (errors are summed; a server too slow to repeat a workload has fewer rounds); certdir's
  figure is that of the configuration (workers) with the most ops/s, and the table says
  which. Every ratio is certdir / slapd from the same run.
- Import is the wall time of loading the address book's LDIF plus the first start until the
  port answers, for both servers (`slapadd -q` + slapd, `certdir ldif import` + `certdir
  serve`); the 1,000 Argon2id people are loaded after the book, outside that time.
- RSS is measured after the last round: slapd's process, certdir's processes summed.
- Each workload addresses its `People`: the address book of --entries people under
  ou=people,<suffix>, or `ARGON2_PEOPLE`, 1,000 people under ou=people,ou=argon2,<suffix>
  who share one Argon2id hash at certdir's default cost.
- Bind is measured twice. On the book's {SSHA} passwords certdir upgrades each value to
  Argon2id on its first successful bind (issue 10) and verifies Argon2id from then on, while
  slapd keeps verifying salted SHA-1: that row compares two different hashes and has no
  target; the table's caption says so. On `ARGON2_PEOPLE` both servers verify the same
  Argon2id hash (slapd through its argon2 module): that row carries the bind target.
- Targets: search-mail x32 and bind x32 on the same Argon2id hash >= 0.6 of slapd,
  autocomplete x8 >= 0.4, search-sub x1 >= 0.3, search-mail x1 p99 <= 2 x slapd's,
  RSS <= 1.5 x slapd for every certdir configuration, import <= 2 x slapd's. A workload
  whose certdir runs had errors misses its targets. Targets are printed PASS/MISS, never
  asserted.
"""
from __future__ import annotations

import json
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

from harness import verdict
from rich.console import Console
from rich.table import Table

MIB = 1024 * 1024
SLAPD_NAME = "slapd"
RSS_TARGET = 1.5
IMPORT_TARGET = 2.0


@dataclass(frozen=True, slots=True)
class People:
    """Whom ldapload addresses: uid=userNNNNNNN,ou=people,<base> for the first `size` users
    (None: every entry of the book), <base> being ou=`ou`,<suffix> or the suffix itself."""

    ou: str | None = None
    size: int | None = None

    def base(self, suffix: str) -> str:
        return suffix if self.ou is None else f"ou={self.ou},{suffix}"

    def count(self, entries: int) -> int:
        return entries if self.size is None else self.size


BOOK = People()
ARGON2_PEOPLE = People("argon2", 1_000)


@dataclass(frozen=True, slots=True)
class Workload:
    op: str
    conns: int
    label: str
    people: People = BOOK
    min_ratio: float | None = None
    max_p99_ratio: float | None = None
    shows_p99: bool = False
    note: str | None = None

    @property
    def name(self) -> str:
        """Short name for the detail table, the targets and the JSON line."""
        where = "" if self.people.ou is None else f" ou={self.people.ou}"
        return f"{self.op} x{self.conns}{where}"


WORKLOADS = (
    Workload("search-mail", 32, "search-mail, 32 connections", min_ratio=0.6),
    Workload("search-mail", 1, "search-mail, 1 connection", max_p99_ratio=2.0, shows_p99=True),
    Workload("bind", 32, "bind, 32 connections, {SSHA} (no target)",
             note="bind {SSHA}: certdir upgrades each {SSHA} value to Argon2id on its first "
                  "bind (issue 10) and verifies Argon2id from then on; slapd keeps verifying "
                  "salted SHA-1. A figure without a target."),
    Workload("bind", 32, "bind, 32 connections, the same Argon2id hash", people=ARGON2_PEOPLE,
             min_ratio=0.6,
             note="bind, the same Argon2id hash: 1,000 people under ou=argon2 share one "
                  "Argon2id hash at certdir's default cost, which both servers verify."),
    Workload("autocomplete", 8, "autocomplete, 8 connections", min_ratio=0.4, shows_p99=True),
    Workload("search-sub", 1, "search-sub (cn=*NNNN*), 1 connection", min_ratio=0.3,
             shows_p99=True),
)


@dataclass(frozen=True, slots=True)
class Load:
    """One ldapload run's figures, and its wall time from starting the client."""

    ops_per_s: float
    p50_ms: float | None
    p99_ms: float | None
    errors: int
    elapsed_s: float


@dataclass(frozen=True, slots=True)
class Summary:
    """One server's figures for one workload over the rounds."""

    runs: tuple[Load, ...]

    @property
    def ops_per_s(self) -> float:
        return statistics.median(run.ops_per_s for run in self.runs)

    @property
    def p50_ms(self) -> float | None:
        return _median([run.p50_ms for run in self.runs])

    @property
    def p99_ms(self) -> float | None:
        return _median([run.p99_ms for run in self.runs])

    @property
    def errors(self) -> int:
        return sum(run.errors for run in self.runs)

    @property
    def spread(self) -> str:
        rates = [run.ops_per_s for run in self.runs]
        return f"{min(rates):,.0f}-{max(rates):,.0f}" if len(rates) > 1 else "-"


@dataclass(frozen=True, slots=True)
class Outcome:
    """Every server's summary for one workload."""

    workload: Workload
    servers: Mapping[str, Summary]

    @property
    def slapd(self) -> Summary:
        return self.servers[SLAPD_NAME]

    @property
    def best(self) -> str:
        """The certdir configuration with the most ops/s."""
        certdirs = (n for n in self.servers if n != SLAPD_NAME)
        return max(certdirs, key=lambda n: self.servers[n].ops_per_s)

    @property
    def certdir(self) -> Summary:
        return self.servers[self.best]

    @property
    def ratio(self) -> float | None:
        return _quotient(self.certdir.ops_per_s, self.slapd.ops_per_s)

    @property
    def p99_ratio(self) -> float | None:
        if self.certdir.p99_ms is None or self.slapd.p99_ms is None:
            return None
        return _quotient(self.certdir.p99_ms, self.slapd.p99_ms)


@dataclass(frozen=True, slots=True)
class Startup:
    """Loading the LDIF and the first start of one server, in seconds."""

    load_s: float
    start_s: float

    @property
    def total_s(self) -> float:
        return self.load_s + self.start_s


@dataclass(frozen=True, slots=True)
class Run:
    """Everything one benchmark run measured."""

    entries: int
    duration_s: float
    rounds: int
    index_form: str
    storage_url: str | None
    slapd_import: Startup
    certdir_import: Startup
    outcomes: tuple[Outcome, ...]
    rss: Mapping[str, int]
    wall_s: float

    @property
    def import_ratio(self) -> float | None:
        return _quotient(self.certdir_import.total_s, self.slapd_import.total_s)

    def rss_ratio(self, name: str) -> float | None:
        return _quotient(self.rss[name], self.rss[SLAPD_NAME])

    @property
    def certdirs(self) -> tuple[str, ...]:
        return tuple(name for name in self.rss if name != SLAPD_NAME)


@dataclass(frozen=True, slots=True)
class Target:
    what: str
    figure: str
    passed: bool


def _median(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def _quotient(a: float, b: float) -> float | None:
    return a / b if b else None


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _fmt(value: float | None, pattern: str = "{:.2f}") -> str:
    return "-" if value is None else pattern.format(value)


def _rate(summary: Summary, shows_p99: bool) -> str:
    rate = f"{summary.ops_per_s:,.0f}/s"
    return f"{rate} (p99 {_fmt(summary.p99_ms)} ms)" if shows_p99 else rate


def targets(run: Run) -> list[Target]:
    found = []
    for o in run.outcomes:
        w, clean = o.workload, o.certdir.errors == 0
        note = "" if clean else f", {o.certdir.errors} errors"
        if w.min_ratio is not None:
            found.append(Target(f"{w.name} >= {w.min_ratio:g} x slapd",
                                f"{_fmt(o.ratio)}{note}",
                                clean and (o.ratio or 0.0) >= w.min_ratio))
        if w.max_p99_ratio is not None:
            found.append(Target(f"{w.name} p99 <= {w.max_p99_ratio:g} x slapd's",
                                f"{_fmt(o.p99_ratio)}{note}",
                                clean and o.p99_ratio is not None
                                and o.p99_ratio <= w.max_p99_ratio))
    for name in run.certdirs:
        ratio = run.rss_ratio(name)
        found.append(Target(f"RSS {name} <= {RSS_TARGET:g} x slapd", _fmt(ratio),
                            ratio is not None and ratio <= RSS_TARGET))
    found.append(Target(f"import <= {IMPORT_TARGET:g} x slapd", _fmt(run.import_ratio),
                        run.import_ratio is not None and run.import_ratio <= IMPORT_TARGET))
    return found


def summary_table(run: Run) -> Table:
    where = f", storage {run.storage_url}" if run.storage_url else ""
    notes = [o.workload.note for o in run.outcomes if o.workload.note is not None]
    table = Table(title=f"certdir vs slapd: {run.entries:,} entries, {run.rounds} round(s) of "
                        f"{run.duration_s:g} s, medians{where}",
                  caption="\n".join(notes) or None, caption_justify="left")
    for column in ("workload", "certdir (best configuration)", "slapd", "ratio"):
        table.add_column(column, justify="left" if column == "workload" else "right")
    for o in run.outcomes:
        table.add_row(o.workload.label, f"{_rate(o.certdir, o.workload.shows_p99)} ({o.best})",
                      _rate(o.slapd, o.workload.shows_p99), _fmt(o.ratio))
    c, s = run.certdir_import, run.slapd_import
    table.add_row("LDIF import + first start",
                  f"{c.total_s:.1f} s ({c.load_s:.1f} + {c.start_s:.1f})",
                  f"{s.total_s:.1f} s ({s.load_s:.1f} + {s.start_s:.1f})",
                  f"{_fmt(run.import_ratio)}x")
    table.add_row("RSS after the run",
                  ", ".join(f"{run.rss[n] / MIB:,.0f} MiB ({n})" for n in run.certdirs),
                  f"{run.rss[SLAPD_NAME] / MIB:,.0f} MiB",
                  " / ".join(f"{_fmt(run.rss_ratio(n))}x" for n in run.certdirs))
    return table


def detail_table(run: Run) -> Table:
    table = Table(title="every server: medians over its rounds, ops/s spread min-max")
    for column in ("workload", "server", "rounds", "ops/s", "spread", "p50 ms", "p99 ms",
                   "errors"):
        table.add_column(column, justify="left" if column in ("workload", "server") else "right")
    for o in run.outcomes:
        for name, s in o.servers.items():
            table.add_row(o.workload.name, name, str(len(s.runs)),
                          f"{s.ops_per_s:,.0f}",
                          s.spread, _fmt(s.p50_ms, "{:.3f}"), _fmt(s.p99_ms, "{:.3f}"),
                          str(s.errors))
    return table


def as_json(run: Run, found: list[Target]) -> str:
    return json.dumps({
        "entries": run.entries, "duration_s": run.duration_s, "rounds": run.rounds,
        "index_form": run.index_form, "storage_url": run.storage_url,
        "wall_s": round(run.wall_s, 1),
        "import": {"slapd": asdict(run.slapd_import), "certdir": asdict(run.certdir_import),
                   "ratio": _rounded(run.import_ratio)},
        "rss_bytes": dict(run.rss),
        "workloads": [
            {"name": o.workload.name, "op": o.workload.op, "conns": o.workload.conns,
             "ou": o.workload.people.ou, "n": o.workload.people.size, "best": o.best,
             "ratio": _rounded(o.ratio), "p99_ratio": _rounded(o.p99_ratio),
             "servers": {name: [asdict(r) for r in s.runs] for name, s in o.servers.items()}}
            for o in run.outcomes
        ],
        "targets": [{"what": t.what, "figure": t.figure, "pass": t.passed} for t in found],
    })


def report(console: Console, run: Run) -> None:
    """The table of the issue, every server's figures, the targets, then one JSON line."""
    console.print(summary_table(run))
    console.print(detail_table(run))
    found = targets(run)
    for t in found:
        console.print(f"target {t.what}: {t.figure} {verdict(t.passed)}")
    console.print(f"storage.indexes written as {run.index_form}; "
                  f"the run took {run.wall_s / 60:.1f} min")
    print(as_json(run, found))
