"""Benchmark certdir against OpenLDAP slapd on the same population and the same machine.

- One LDIF address book (gen_ldif.py) is generated once; slapd gets it whole, certdir gets it
  without the suffix entry, which `certdir init` already created. Its passwords are gen_ldif's
  {SSHA}, one salt per entry.
- A second, small population, `directory_report.ARGON2_PEOPLE` (1,000 people under
  ou=people,ou=argon2,<suffix>, gen_ldif.py's entries with every userPassword replaced by one
  Argon2id hash at certdir's default cost, `directory.passwords.hash_password`), is loaded
  into both servers after the book, outside the import's timing: the bind workload on it
  compares the same hash on both sides (slapd verifies it with its argon2 module).
- Both servers index the same attributes the same way (index_config.py); certdir runs in
  one configuration per `--workers` value (default 1 and 2), each on its own port and its
  own copy of the loaded data directory (on `--storage-url`, the same database).
- Each round runs every workload of directory_report.WORKLOADS (ldapload.py: search-mail at
  32 and 1 connections, bind at 32 on the book and on the Argon2id people, autocomplete at 8,
  search-sub at 1; each addressing its workload's people) against slapd and
  then every certdir configuration before the next workload starts, so that all see the
  same machine conditions; a short unreported warm-up run precedes each measured run, and
  before it the server must have settled (finished what earlier loads left queued).
- Connections are spread over --client-procs load-generator processes so that the client
  is not the bottleneck.
- A server whose measured run of a workload overran the duration by half (single operations
  taking seconds) is not run again for that workload in later rounds.
- directory_report.py says how the rounds become figures and which targets are checked;
  targets are reported PASS or MISS, never asserted: the exit status is 0 unless a step
  failed.

Usage: directory_bench.py [--entries 100000] [--duration 10] [--rounds 3] [--quick]
       [--workers 1,2] [--storage-url URL] [--index-form auto|kinds|names]
       [--tools DIR] [--workdir DIR]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from directory_report import (
    ARGON2_PEOPLE,
    WORKLOADS,
    Load,
    Outcome,
    Run,
    Startup,
    Summary,
    Workload,
    report,
)
from harness import BenchError, work_directory
from index_config import IndexForm
from rich.console import Console
from servers import Certdir, Running, Slapd, free_port, run_with_slapd

from directory.passwords import hash_password

REPO = Path(__file__).resolve().parent.parent
DEFAULT_TOOLS = REPO.parent / "shared" / "tools"
SUFFIX = "dc=example,dc=com"
PASSWORD = "secret"
QUICK_ENTRIES = 10_000
QUICK_DURATION = 3.0
QUICK_ROUNDS = 1
INDEX_FORMS = ("auto", "kinds", "names")
# A measured run whose load generator runs longer than OVERRUN times its duration, plus
# CLIENT_START_S for starting its processes, is not repeated.
OVERRUN = 1.5
CLIENT_START_S = 3.0
# ldapload waits for ever when one of its processes lost its server.
CLIENT_TIMEOUT_S = 300.0


def worker_counts(text: str) -> tuple[int, ...]:
    counts = tuple(int(part) for part in text.split(","))
    if not counts or min(counts) < 1 or len(set(counts)) != len(counts):
        raise argparse.ArgumentTypeError(f"{text!r}: distinct worker counts >= 1, e.g. 1,2")
    return counts


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entries", type=int, default=100_000, help="population size")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measured run")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of unmeasured load")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; figures are medians")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke test: {QUICK_ENTRIES} entries, {QUICK_ROUNDS} round of "
             f"{QUICK_DURATION:g} s runs, 1 s warm-up",
    )
    parser.add_argument(
        "--workers", type=worker_counts, default=(1, 2),
        help="certdir configurations to compare, as worker counts (default 1,2)",
    )
    parser.add_argument(
        "--storage-url", help="certdir's database (passed to `certdir init --storage-url`)"
    )
    parser.add_argument(
        "--index-form", choices=INDEX_FORMS, default="auto",
        help="certdir's storage.indexes as a mapping of kinds, a list of names (equality "
             "only), or auto: kinds where certdir accepts them, else names",
    )
    parser.add_argument(
        "--client-procs", type=int, default=2, help="load-generator processes for 8+ connections"
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
        args.rounds = QUICK_ROUNDS
    return args


def gen_ldif(tools: Path, entries: int, base: str, out: Path, *extra: str) -> None:
    with out.open("wb") as written:
        done = subprocess.run(
            [sys.executable, str(tools / "gen_ldif.py"), str(entries), "--base", base,
             "--password", PASSWORD, *extra],
            stdout=written, stderr=subprocess.PIPE, check=False,
        )
    if done.returncode != 0:
        raise BenchError(f"gen_ldif.py failed ({done.returncode}): {done.stderr[-2000:]!r}")


def generate(tools: Path, entries: int, work: Path) -> tuple[Path, Path]:
    """Write the address book with and without its suffix entry."""
    generated = work / "generated.ldif"
    gen_ldif(tools, entries, SUFFIX, generated)
    whole, without_base = work / "book.ldif", work / "book-no-base.ldif"
    with generated.open("rb") as source, whole.open("wb") as out, \
            without_base.open("wb") as rest:
        first = source.readline()
        if first.strip() != f"dn: {SUFFIX}".encode():
            raise BenchError(f"gen_ldif.py did not start with the suffix entry: {first!r}")
        out.write(first)
        in_suffix_entry = True
        for line in source:
            out.write(line)
            if not in_suffix_entry:
                rest.write(line)
            in_suffix_entry = in_suffix_entry and bool(line.strip())
    generated.unlink()
    return whole, without_base


def generate_argon2_people(tools: Path, entries: int, work: Path) -> Path:
    """Write `ARGON2_PEOPLE` under their organizational unit, every userPassword one
    Argon2id hash of the load's password at certdir's default cost, which certdir verifies
    without upgrading it."""
    people = ARGON2_PEOPLE
    generated = work / "generated-argon2.ldif"
    gen_ldif(tools, people.count(entries), people.base(SUFFIX), generated, "--no-base")
    password = b"userPassword: " + hash_password(PASSWORD.encode()) + b"\n"
    ldif = work / "argon2.ldif"
    with generated.open("rb") as source, ldif.open("wb") as out:
        out.write(f"dn: {people.base(SUFFIX)}\nobjectClass: organizationalUnit\n"
                  f"ou: {people.ou}\n\n".encode())
        for line in source:
            out.write(password if line.startswith(b"userPassword: ") else line)
    generated.unlink()
    return ldif


def load_run(tools: Path, args: argparse.Namespace, port: int, w: Workload,
             duration: float) -> Load:
    procs = min(args.client_procs, w.conns)
    command = [
        sys.executable, str(tools / "ldapload.py"), "--port", str(port),
        "--base", w.people.base(SUFFIX), "--n", str(w.people.count(args.entries)),
        "--op", w.op, "--conns", str(w.conns // procs), "--procs", str(procs),
        "--duration", str(duration),
    ]
    begin = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False,
                              timeout=duration + CLIENT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise BenchError(f"ldapload {w.name} on port {port} did not finish within "
                         f"{CLIENT_TIMEOUT_S:g} s of its duration") from None
    if done.returncode != 0:
        raise BenchError(f"ldapload {w.name} on port {port} failed: {done.stderr[-2000:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    return Load(figures["ops_per_s"], figures["p50_ms"], figures["p99_ms"], figures["errors"],
                time.perf_counter() - begin)


def measure(tools: Path, args: argparse.Namespace, servers: tuple[Running, ...],
            console: Console) -> tuple[Outcome, ...]:
    """Every workload on every server, round by round; a server whose measured run overran
    its duration by more than half (its operations take seconds each) is not run again
    for that workload, so that one slow figure cannot stretch the benchmark by minutes."""
    runs: dict[tuple[int, str], list[Load]] = {}
    done: set[tuple[int, str]] = set()
    for round_no in range(1, args.rounds + 1):
        for i, w in enumerate(WORKLOADS):
            for server in servers:
                if (i, server.name) in done:
                    continue
                server.check_alive()
                waited = server.settle()
                console.print(f"  round {round_no}/{args.rounds}: {w.name} "
                              f"on {server.name} (settled in {waited:.1f} s) ...")
                if args.warmup > 0:
                    load_run(tools, args, server.port, w, args.warmup)
                load = load_run(tools, args, server.port, w, args.duration)
                runs.setdefault((i, server.name), []).append(load)
                if load.elapsed_s > OVERRUN * args.duration + CLIENT_START_S:
                    console.print(f"  {server.name} overran: {w.name} is not repeated on it")
                    done.add((i, server.name))
    return tuple(
        Outcome(w, {s.name: Summary(tuple(runs[i, s.name])) for s in servers})
        for i, w in enumerate(WORKLOADS)
    )


def shown(url: str | None) -> str | None:
    """`url` as the output may show it: without its password."""
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def started(server: Slapd | Certdir, stack: ExitStack) -> tuple[Running, float]:
    """Start a server; returns it and how long it took to answer on its port."""
    begin = time.perf_counter()
    running = server.serve()
    stack.callback(running.stop)
    return running, time.perf_counter() - begin


def run(args: argparse.Namespace, console: Console) -> None:
    begin = time.perf_counter()
    with ExitStack() as stack:
        work = stack.enter_context(work_directory(args.workdir, "certdir-bench-"))
        console.print(f"generating {args.entries} entries in {work} ...")
        whole, without_base = generate(args.tools, args.entries, work)
        argon2_people = generate_argon2_people(args.tools, args.entries, work)
        slapd = Slapd(work / "slapd", SUFFIX, free_port())
        slapd.prepare()
        first, *others = args.workers
        certdir = Certdir(work / f"certdir-w{first}", SUFFIX, REPO, free_port(), first)
        forced: IndexForm | None = None if args.index_form == "auto" else args.index_form
        form = certdir.prepare(args.storage_url, forced)
        console.print(f"certdir's storage.indexes written as {form}")
        console.print("importing with slapadd ...")
        slapd_load = slapd.load(whole)
        console.print(f"  {slapd_load:.1f} s; importing with certdir ...")
        certdir_load = certdir.load(without_base)
        console.print(f"  {certdir_load:.1f} s; loading the Argon2id people into both ...")
        slapd.load(argon2_people)
        certdir.load(argon2_people)
        console.print("starting the servers ...")
        certdirs = [certdir] + [
            certdir.copy(work / f"certdir-w{n}", free_port(), n, form) for n in others
        ]
        slapd_server, slapd_start = started(slapd, stack)
        certdir_servers, certdir_starts = zip(*(started(c, stack) for c in certdirs),
                                              strict=True)
        servers = (slapd_server, *certdir_servers)
        outcomes = measure(args.tools, args, servers, console)
        rss = {s.name: s.rss_bytes() for s in servers}
        output = Console(width=None if sys.stdout.isatty() else 120)
        report(output, Run(
            entries=args.entries, duration_s=args.duration, rounds=args.rounds,
            index_form=form, storage_url=shown(args.storage_url),
            slapd_import=Startup(slapd_load, slapd_start),
            certdir_import=Startup(certdir_load, certdir_starts[0]),
            outcomes=outcomes, rss=rss, wall_s=time.perf_counter() - begin,
        ))


def main() -> int:
    return run_with_slapd(run, parse_args())


if __name__ == "__main__":
    sys.exit(main())
