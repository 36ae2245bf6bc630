"""Benchmark CRL downloads over plain http from a running certdir, next to a static file server.

- A data directory made with `certdir init --no-kms` (a P-256 root CA; LDAP, http and https
  on free loopback ports, `log.access: false`); --revoked rows (default 10,000: distinct
  159-bit serials, mixed reasons, from `ca_bench.record_revoked`) go into ca_certificates, then
  `certdir ca crl` runs twice: the full CRL lists them all, the delta CRL (relative to the
  first full one) lists none. These are the large and the small CRL.
- `certdir serve` answers `GET /<slug>.crl` and `GET /<slug>-delta.crl` from the database
  (`ca.web.downloads`). The reference, in the same run on the same machine: the very same
  files (`public/<slug>.crl`, `-delta.crl`) served by twisted.web's static.File (`python -m
  twisted --reactor=asyncio web --path public`, the framework certdir's web service uses).
  Python's http.server is no reference: with keep-alive (`-p HTTP/1.1`) it writes headers
  and body in separate segments without TCP_NODELAY and waits out the peer's delayed ACK,
  about 25 answers/s; without keep-alive it measures connection set-up.
- Load: P client processes, each with one keep-alive connection (http.client), GET the
  same URL in a loop for --duration seconds after a --warmup; an answer counts when it is
  200 with the expected length, anything else is an error. At 1 and 4 connections. For each
  CRL and each connection count, certdir and the reference take turns for --rounds rounds,
  so they see the same machine conditions; the figures are the medians of the rounds'
  downloads/s and of the rounds' ratios certdir/reference. They are never asserted.
- Bounded: 2 CRLs x 2 connection counts x rounds x 2 servers x (warm-up + duration);
  loopback only.
  The table goes to standard output followed by one JSON line; progress to standard error;
  the exit status is 0 unless a step failed.

Usage: crl_bench.py [--revoked 10000] [--duration 3] [--warmup 1] [--rounds 3] [--quick]
                    [--workdir DIR]
"""
from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path

import yaml
from address_book import REPO, SUFFIX, certdir_cli, opened
from ca_bench import record_revoked, writing
from cryptography.hazmat.primitives.serialization import Encoding
from harness import BenchError, run_main, work_directory
from rich.console import Console
from rich.table import Table
from servers import Running, free_port, start

from ca.store import Store
from certdir.config import load

CONNECTIONS = (1, 4)
QUICK_REVOKED = 2_000
QUICK_DURATION = 1.0
QUICK_ROUNDS = 2


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    port: int
    paths: dict[str, str]  # CRL kind -> URL path


@dataclass(frozen=True, slots=True)
class Figure:
    crl: str
    size: int
    connections: int
    certdir_per_s: float
    static_file_per_s: float
    ratio: float
    ratios: tuple[float, ...]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--revoked", type=int, default=10_000,
                        help="revoked certificates the large CRL lists")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per measured run")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds before each run")
    parser.add_argument("--rounds", type=int, default=3, help="turns of certdir and reference")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke test: {QUICK_REVOKED} revoked, {QUICK_ROUNDS} rounds of "
                             f"{QUICK_DURATION:g} s")
    parser.add_argument("--workdir", type=Path, help="keep the data directory here")
    args = parser.parse_args()
    if args.quick:
        args.revoked, args.duration, args.rounds = QUICK_REVOKED, QUICK_DURATION, QUICK_ROUNDS
    if args.revoked < 1 or args.duration <= 0 or args.warmup < 0 or args.rounds < 1:
        parser.error("--revoked, --duration and --rounds must be positive, --warmup not "
                     "negative")
    return args


def prepare(work: Path, revoked: int) -> tuple[Path, int, str]:
    """The data directory, its http port and the CA's slug, with both CRLs made."""
    data_dir, http_port = work / "data", free_port()
    certdir_cli("init", "--data-dir", str(data_dir), "--suffix", SUFFIX, "--no-kms",
                "--listen", f"ldap://127.0.0.1:{free_port()}",
                "--http-listen", f"http://127.0.0.1:{http_port}",
                "--http-listen", f"https://127.0.0.1:{free_port()}")
    config_path = data_dir / "certdir.yaml"
    settings = yaml.safe_load(config_path.read_text())
    settings.setdefault("log", {})["access"] = False
    config_path.write_text(yaml.safe_dump(settings, sort_keys=False))
    config = load(data_dir)
    with opened(config) as (dsa, authority), writing(dsa, authority) as writer:
        template = authority.certificate.public_bytes(Encoding.DER)
        record_revoked(Store(writer.records), template,
                       authority.certificate.subject.rfc4514_string(),
                       dt.datetime.now(dt.UTC) - dt.timedelta(hours=1), revoked, 0)
        slug = authority.slug
    certdir_cli("ca", "crl", "--data-dir", str(data_dir))
    certdir_cli("ca", "crl", "--data-dir", str(data_dir))
    return data_dir, http_port, slug


def drive(port: int, path: str, seconds: float, expected: int) -> tuple[int, int]:
    """One keep-alive connection GETting `path` for `seconds`: (good answers, errors)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    good = errors = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read()
        if response.status == 200 and len(body) == expected:
            good += 1
        else:
            errors += 1
    connection.close()
    return good, errors


def load_run(pool: ProcessPoolExecutor, port: int, path: str, connections: int,
             seconds: float, expected: int) -> tuple[float, int]:
    started = time.perf_counter()
    results = list(pool.map(drive, [port] * connections, [path] * connections,
                            [seconds] * connections, [expected] * connections))
    elapsed = time.perf_counter() - started
    good = sum(r[0] for r in results)
    return good / max(elapsed, seconds), sum(r[1] for r in results)


@contextmanager
def serving(work: Path, data_dir: Path, certdir_port: int) -> Iterator[list[Running]]:
    public = data_dir / "public"
    static_port = free_port()
    commands: Sequence[tuple[str, list[str], int]] = (
        ("certdir", [sys.executable, "-m", "certdir", "serve", "--data-dir", str(data_dir)],
         certdir_port),
        ("static.File", [sys.executable, "-m", "twisted", "--reactor=asyncio", "web",
                         "--listen", f"tcp:{static_port}:interface=127.0.0.1",
                         "--path", str(public), "--logfile", "/dev/null"], static_port),
    )
    running: list[Running] = []
    try:
        for name, command, port in commands:
            running.append(start(name, command, port, work / f"{name}.log", cwd=REPO))
        yield running
    finally:
        for server in running:
            server.stop()


def measure(args: argparse.Namespace, work: Path, console: Console) -> list[Figure]:
    console.print(f"data directory with {args.revoked} revoked certificates ...")
    data_dir, http_port, slug = prepare(work, args.revoked)
    crls = {"large": f"{slug}.crl", "small": f"{slug}-delta.crl"}
    sizes = {kind: (data_dir / "public" / name).stat().st_size for kind, name in crls.items()}
    figures = []
    with serving(work, data_dir, http_port) as servers, ProcessPoolExecutor(
            max(CONNECTIONS), mp_context=get_context("fork")) as pool:
        for kind, name in crls.items():
            for connections in CONNECTIONS:
                console.print(f"  {kind} CRL ({sizes[kind]} bytes), {connections} "
                              f"connection(s), {args.rounds} rounds ...")
                rates: dict[str, list[float]] = {server.name: [] for server in servers}
                for _ in range(args.rounds):
                    for server in servers:
                        if args.warmup:
                            load_run(pool, server.port, f"/{name}", connections, args.warmup,
                                     sizes[kind])
                        rate, errors = load_run(pool, server.port, f"/{name}", connections,
                                                args.duration, sizes[kind])
                        if errors:
                            raise BenchError(f"{server.name}: {errors} wrong answers for "
                                             f"{name}; see {work}/{server.name}.log")
                        rates[server.name].append(rate)
                ours, theirs = rates["certdir"], rates["static.File"]
                ratios = tuple(a / b for a, b in zip(ours, theirs, strict=True))
                figures.append(Figure(kind, sizes[kind], connections, statistics.median(ours),
                                      statistics.median(theirs), statistics.median(ratios),
                                      ratios))
    return figures


def report(console: Console, figures: list[Figure], args: argparse.Namespace) -> None:
    table = Table(title=f"CRL downloads/s over http (loopback, medians of {args.rounds} "
                        f"rounds of {args.duration:g} s)")
    for column in ("CRL", "bytes", "connections", "certdir", "static.File",
                   "certdir/static.File", "rounds' ratios"):
        table.add_column(column, justify="right")
    for f in figures:
        table.add_row(f.crl, str(f.size), str(f.connections), f"{f.certdir_per_s:,.0f}",
                      f"{f.static_file_per_s:,.0f}", f"{f.ratio:.2f}",
                      " ".join(f"{r:.2f}" for r in f.ratios))
    console.print(table)
    print(json.dumps({"revoked": args.revoked, "duration_s": args.duration,
                      "rounds": args.rounds, "figures": [asdict(f) for f in figures]}))


def run(args: argparse.Namespace, console: Console) -> None:
    with work_directory(args.workdir, "certdir-crl-bench-") as work:
        figures = measure(args, work, console)
    report(Console(width=None if sys.stdout.isatty() else 140), figures, args)


def main() -> int:
    return run_main(run, parse_args(), Console(stderr=True))


if __name__ == "__main__":
    sys.exit(main())
