"""Benchmark the referral list: the latency of a lookup certdir does not hold itself.

- Three slapds (servers.Slapd, each loaded with its own person, suffix dc=example,dc=com)
  and one certdir (servers.Certdir, `--no-ca --no-kms`) holding one person of its own.
- For 1, 2 and 3 peers, certdir's `referral.list` names the first N slapds (`mode:
  first`, `timeout_s: 2`, the answer cache off so every lookup goes to the peers, then on
  for the cached figure); one client (python-ldap, one connection, anonymous) looks up
  `(mail=…)` with `userCertificate;binary mail cn` in a loop for --duration seconds after
  --warmup: the person only the last listed slapd holds (a local miss that waits for every
  peer in the list's order), and, as the reference in the same run, the person certdir
  holds (a local hit: the peers are not asked).
- Figures: p50 and p99 of the lookup latency in milliseconds, and the ratio of the miss's
  p50 to the hit's. A lookup counts only when it returns the one expected entry; anything
  else fails the run. They are never asserted.
- Bounded: 3 peer counts x (uncached miss, cached miss, hit) x (warm-up + duration);
  loopback only. The table goes to standard output followed by one JSON line; progress to
  standard error; the exit status is 0 unless a step failed.

Usage: referral_bench.py [--duration 3] [--warmup 1] [--quick] [--workdir DIR]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import ldap
import yaml
from harness import BenchError, run_main, work_directory
from rich.console import Console
from rich.table import Table
from servers import Certdir, Running, Slapd, free_port

REPO = Path(__file__).resolve().parents[1]
SUFFIX = "dc=example,dc=com"
PEERS = 3
QUICK_DURATION = 1.0
ATTRIBUTES = ["userCertificate;binary", "mail", "cn"]


@dataclass(frozen=True, slots=True)
class Figure:
    peers: int
    lookup: str
    p50_ms: float
    p99_ms: float
    ratio_to_hit: float


def person(name: str, suffix: str = SUFFIX) -> str:
    return (f"dn: cn={name},{suffix}\nobjectClass: inetOrgPerson\ncn: {name}\nsn: {name}\n"
            f"mail: {name.lower()}@example.com\n\n")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--quick", action="store_true", help="1 s runs")
    parser.add_argument("--workdir", type=Path, help="kept afterwards (for profiling)")
    return parser.parse_args()


def start_peers(work: Path) -> list[tuple[Slapd, Running]]:
    peers = []
    for number in range(1, PEERS + 1):
        slapd = Slapd(work / f"slapd{number}", SUFFIX, free_port())
        slapd.prepare()
        ldif = work / f"slapd{number}.ldif"
        ldif.write_text(f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\n"
                        f"o: example\ndc: example\n\n" + person(f"Peer{number}"))
        slapd.load(ldif)
        peers.append((slapd, slapd.serve()))
    return peers


def configure(certdir: Certdir, slapds: list[Slapd], cached: bool) -> None:
    config = yaml.safe_load(certdir.config_path.read_text())
    seconds = 60 if cached else 0
    config["referral"] = {"mode": "first", "cache": {"positive_s": seconds,
                                                     "negative_s": seconds},
                          "list": [{"url": f"ldap://127.0.0.1:{s.port}/{SUFFIX}",
                                    "timeout_s": 2} for s in slapds]}
    certdir.config_path.write_text(yaml.safe_dump(config, sort_keys=False))


def latencies(port: int, mail: str, warmup: float, duration: float) -> list[float]:
    client = ldap.initialize(f"ldap://127.0.0.1:{port}")
    client.simple_bind_s("", "")
    seen: list[float] = []
    begin = time.perf_counter()
    # At least one lookup after the warm-up, however long lookups take.
    while (now := time.perf_counter()) - begin < warmup + duration or not seen:
        found = client.search_s(SUFFIX, ldap.SCOPE_SUBTREE, f"(mail={mail})", ATTRIBUTES)
        took = time.perf_counter() - now
        if len(found) != 1:
            raise BenchError(f"(mail={mail}) found {len(found)} entries")
        if now - begin >= warmup:
            seen.append(took * 1000)
    client.unbind_s()
    return seen


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] if len(values) > 1 else values[0]


def measure(args: argparse.Namespace, work: Path, console: Console) -> list[Figure]:
    duration = QUICK_DURATION if args.quick else args.duration
    peers = start_peers(work)
    figures = []
    try:
        certdir = Certdir(work / "certdir", SUFFIX, REPO, free_port(), 1)
        form = certdir.prepare(None, None)
        ldif = work / "local.ldif"
        ldif.write_text(person("Local"))
        certdir.load(ldif)
        for count in range(1, PEERS + 1):
            slapds = [slapd for slapd, _ in peers[:count]]
            for cached in (False, True):
                certdir.configure(form)
                configure(certdir, slapds, cached)
                console.print(f"{count} peers, cache {'on' if cached else 'off'}")
                served = certdir.serve()
                try:
                    hit = latencies(certdir.port, "local@example.com", args.warmup, duration)
                    miss = latencies(certdir.port, f"peer{count}@example.com", args.warmup,
                                     duration)
                finally:
                    served.stop()
                base = statistics.median(hit)
                lookup = "miss, cached" if cached else "miss"
                figures.append(Figure(count, lookup, statistics.median(miss), p99(miss),
                                      statistics.median(miss) / base))
                if not cached:
                    figures.append(Figure(count, "hit", base, p99(hit), 1.0))
    finally:
        for _, running in peers:
            running.stop()
    return figures


def report(console: Console, figures: list[Figure]) -> None:
    table = Table(title="referral list: lookup latency (ms)")
    for column in ("peers", "lookup", "p50", "p99", "p50 / hit p50"):
        table.add_column(column, justify="right")
    for f in figures:
        table.add_row(str(f.peers), f.lookup, f"{f.p50_ms:.2f}", f"{f.p99_ms:.2f}",
                      f"{f.ratio_to_hit:.1f}")
    Console().print(table)
    print(json.dumps([asdict(f) for f in figures]))


def run(args: argparse.Namespace, console: Console) -> None:
    with work_directory(args.workdir, "referral-bench-") as work:
        report(console, measure(args, work, console))


def main() -> int:
    return run_main(run, parse_args(), Console(stderr=True))


if __name__ == "__main__":
    sys.exit(main())
