"""Benchmark certdir against OpenLDAP slapd on the same population and the same machine.

- One LDIF address book (gen_ldif.py) is generated once; slapd gets it whole, certdir gets it
  without the suffix entry, which `certdir init` already created.
- Import time is wall time of `slapadd -q` versus `certdir ldif import`.
- Each workload (ldapload.py: search-mail and bind, at 1 and 32 connections) runs against
  slapd and then certdir before the next workload starts, so that both servers see the same
  machine conditions; a short unreported warm-up run precedes each measured run.
- 32 connections are spread over --client-procs load-generator processes so that the
  client is not the bottleneck.
- Results are ratios certdir/slapd. The targets (search-mail at 32 connections >= 0.25 of
  slapd; import of 100,000 entries < 30 s, scaled linearly for other sizes) are reported as
  PASS or MISS, never asserted: the exit status is 0 unless a step failed.

Usage: directory_bench.py [--entries 100000] [--duration 10] [--quick] [--tools DIR]
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path

from harness import BenchError, run_main, verdict, work_directory
from rich.console import Console
from rich.table import Table
from servers import Certdir, Running, Slapd, free_port, missing_slapd

REPO = Path(__file__).resolve().parent.parent
DEFAULT_TOOLS = REPO.parent / "shared" / "tools"
SUFFIX = "dc=example,dc=com"
WORKLOADS = (("search-mail", 1), ("search-mail", 32), ("bind", 1), ("bind", 32))
QUICK_ENTRIES = 10_000
QUICK_DURATION = 3.0
SEARCH_RATIO_TARGET = 0.25
IMPORT_TARGET_SECONDS = 30.0
IMPORT_TARGET_ENTRIES = 100_000


@dataclass(frozen=True, slots=True)
class Load:
    ops_per_s: float
    p50_ms: float | None
    p99_ms: float | None
    errors: int


@dataclass(frozen=True, slots=True)
class Comparison:
    op: str
    conns: int
    slapd: Load
    certdir: Load

    @property
    def ratio(self) -> float | None:
        return self.certdir.ops_per_s / self.slapd.ops_per_s if self.slapd.ops_per_s else None


@dataclass(frozen=True, slots=True)
class Imports:
    entries: int
    slapd_s: float
    certdir_s: float

    @property
    def ratio(self) -> float:
        return self.certdir_s / self.slapd_s

    @property
    def target_s(self) -> float:
        return IMPORT_TARGET_SECONDS * self.entries / IMPORT_TARGET_ENTRIES


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entries", type=int, default=100_000, help="population size")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measured run")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of unmeasured load")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke test: {QUICK_ENTRIES} entries, {QUICK_DURATION:g} s runs, 1 s warm-up",
    )
    parser.add_argument(
        "--client-procs", type=int, default=2, help="load-generator processes for 32 connections"
    )
    parser.add_argument(
        "--tools", type=Path, default=DEFAULT_TOOLS, help="directory of gen_ldif.py, ldapload.py"
    )
    parser.add_argument(
        "--workdir", type=Path, help="keep data, configs and logs here instead of a temp dir"
    )
    args = parser.parse_args()
    if args.quick:
        args.entries, args.duration, args.warmup = QUICK_ENTRIES, QUICK_DURATION, 1.0
    return args


def generate(tools: Path, entries: int, work: Path) -> tuple[Path, Path]:
    """Write the address book with and without its suffix entry."""
    whole = work / "book.ldif"
    with whole.open("wb") as out:
        subprocess.run(
            [sys.executable, str(tools / "gen_ldif.py"), str(entries), "--base", SUFFIX],
            stdout=out,
            check=True,
        )
    without_base = work / "book-no-base.ldif"
    with whole.open("rb") as source, without_base.open("wb") as out:
        first = source.readline()
        if first.strip() != f"dn: {SUFFIX}".encode():
            raise BenchError(f"gen_ldif.py did not start with the suffix entry: {first!r}")
        for line in source:
            if not line.strip():
                break
        shutil.copyfileobj(source, out)
    return whole, without_base


def load_run(tools: Path, args: argparse.Namespace, port: int, op: str, conns: int,
             duration: float) -> Load:
    procs = min(args.client_procs, conns)
    command = [
        sys.executable, str(tools / "ldapload.py"),
        "--port", str(port), "--base", SUFFIX, "--n", str(args.entries), "--op", op,
        "--conns", str(conns // procs), "--procs", str(procs), "--duration", str(duration),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BenchError(f"ldapload {op} x{conns} on port {port} failed: {done.stderr[-2000:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    return Load(figures["ops_per_s"], figures["p50_ms"], figures["p99_ms"], figures["errors"])


def measure(tools: Path, args: argparse.Namespace, servers: tuple[Running, Running],
            console: Console) -> tuple[Comparison, ...]:
    results = []
    for op, conns in WORKLOADS:
        loads = []
        for server in servers:
            console.print(f"  {op} x{conns} on {server.name} ...")
            if args.warmup > 0:
                load_run(tools, args, server.port, op, conns, args.warmup)
            loads.append(load_run(tools, args, server.port, op, conns, args.duration))
        results.append(Comparison(op, conns, loads[0], loads[1]))
    return tuple(results)


def fmt(value: float | None, pattern: str = "{:.2f}") -> str:
    return "-" if value is None else pattern.format(value)



def report(console: Console, imports: Imports, results: tuple[Comparison, ...],
           duration: float) -> None:
    table = Table(title=f"certdir vs slapd: {imports.entries} entries, {duration:g} s per run")
    for column in ("workload", "conns", "slapd ops/s", "certdir ops/s", "ratio",
                   "slapd p50/p99 ms", "certdir p50/p99 ms", "errors s/c"):
        table.add_column(column, justify="left" if column == "workload" else "right")
    for r in results:
        table.add_row(
            r.op, str(r.conns),
            fmt(r.slapd.ops_per_s, "{:.0f}"), fmt(r.certdir.ops_per_s, "{:.0f}"), fmt(r.ratio),
            f"{fmt(r.slapd.p50_ms)}/{fmt(r.slapd.p99_ms)}",
            f"{fmt(r.certdir.p50_ms)}/{fmt(r.certdir.p99_ms)}",
            f"{r.slapd.errors}/{r.certdir.errors}",
        )
    table.add_row(
        "import", "-", f"{imports.slapd_s:.1f} s", f"{imports.certdir_s:.1f} s",
        fmt(imports.ratio), "", "", "",
    )
    console.print(table)
    search32 = next(r for r in results if r.op == "search-mail" and r.conns == 32)
    console.print(
        f"target search-mail@32 ratio >= {SEARCH_RATIO_TARGET}: {fmt(search32.ratio)} "
        f"{verdict((search32.ratio or 0.0) >= SEARCH_RATIO_TARGET)}"
    )
    console.print(
        f"target certdir import < {imports.target_s:g} s "
        f"({IMPORT_TARGET_SECONDS:g} s per {IMPORT_TARGET_ENTRIES} entries): "
        f"{imports.certdir_s:.1f} s {verdict(imports.certdir_s < imports.target_s)}"
    )
    print(json.dumps({
        "entries": imports.entries,
        "duration_s": duration,
        "import": {"slapd_s": round(imports.slapd_s, 2), "certdir_s": round(imports.certdir_s, 2),
                   "ratio": round(imports.ratio, 2), "target_s": imports.target_s,
                   "pass": imports.certdir_s < imports.target_s},
        "workloads": [
            {"op": r.op, "conns": r.conns, "slapd": asdict(r.slapd), "certdir": asdict(r.certdir),
             "ratio": None if r.ratio is None else round(r.ratio, 3)}
            for r in results
        ],
        "search_mail_32_pass": (search32.ratio or 0.0) >= SEARCH_RATIO_TARGET,
    }))




def run(args: argparse.Namespace, console: Console) -> None:
    with ExitStack() as stack:
        work = stack.enter_context(work_directory(args.workdir, "certdir-bench-"))
        console.print(f"generating {args.entries} entries in {work} ...")
        whole, without_base = generate(args.tools, args.entries, work)
        slapd = Slapd(work / "slapd", SUFFIX)
        certdir = Certdir(work / "certdir", SUFFIX, REPO)
        slapd_port, certdir_port = free_port(), free_port()
        slapd.prepare()
        certdir.prepare(certdir_port)
        console.print("importing with slapadd ...")
        slapd_s = slapd.load(whole)
        console.print(f"  {slapd_s:.1f} s; importing with certdir ...")
        certdir_s = certdir.load(without_base)
        console.print(f"  {certdir_s:.1f} s; starting both servers ...")
        slapd_server = slapd.serve(slapd_port)
        stack.callback(slapd_server.stop)
        certdir_server = certdir.serve(certdir_port)
        stack.callback(certdir_server.stop)
        results = measure(args.tools, args, (slapd_server, certdir_server), console)
        output = Console(width=None if sys.stdout.isatty() else 120)
        report(output, Imports(args.entries, slapd_s, certdir_s), results, args.duration)


def main() -> int:
    args = parse_args()
    console = Console(stderr=True)
    problem = missing_slapd()
    if problem is not None:
        console.print(f"cannot compare with slapd: {problem}")
        return 2
    return run_main(run, args, console)


if __name__ == "__main__":
    sys.exit(main())
