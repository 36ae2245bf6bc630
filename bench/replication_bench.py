"""Benchmark replication: certdir as a syncrepl provider and consumer against slapd.

- One address book (gen_ldif.py, N people with certificates, as directory_bench.py makes
  it) plus `replication_delay.STAMPS` people under ou=stamps is loaded into a slapd provider
  (`slapadd`, back_mdb with syncprov) and into a certdir provider (`certdir ldif import`,
  `--no-ca --no-kms`, the indexes of index_config.py).
- Initial refresh, one path after another so that each has the machine to itself: an empty
  consumer is started and timed from its start until it holds as many entries as its
  provider: slapd -> slapd and certdir -> slapd (slapd's `syncrepl` directive,
  refreshAndPersist; `dbnosync` unless --slapd-fsync, see replication_servers.py),
  certdir -> certdir (`replication.consumer`, refreshAndPersist). The time includes
  starting the consumer (the table shows how long until its port answered). The
  consumer's suffix contextCSN is read every 0.2 s and its entries counted (a subtree
  search for `1.1` as its root DN) as soon as the contextCSN holds the provider's values
  or, for a certdir consumer, its log says its refresh is done;
  and, in case neither comes, every 5 s (every 20 times as long as the last count took,
  when that is longer, so that counting a large book does not slow the refresh it
  measures).
- Change propagation, all consumers running: a writer modifies the stamped people on a
  provider at --rate modifies/s for --duration s while persist searches observe ou=stamps
  on the provider itself (the reference: the provider's own persist path) and on each of
  its consumers (replication_delay.py says how the delays are taken). The slapd provider's
  run comes first, then certdir's.
- Figures: seconds per refresh and its ratio to slapd -> slapd; p50, p99 and the maximum
  of the propagation delay per path, with the ratio of certdir's paths to slapd -> slapd,
  and the writers' own modify latency. Nothing is asserted: the exit status is 0 unless a
  step failed (1) or slapd is missing (2). The tables go to standard output followed by
  one JSON line with every figure; progress goes to standard error.

Usage: replication_bench.py [--entries 100000] [--rate 50] [--duration 20] [--quick]
       [--slapd-fsync] [--storage-url URL] [--consumer-storage-url URL] [--tools DIR]
       [--workdir DIR]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path

from directory_bench import DEFAULT_TOOLS, SUFFIX, generate, shown
from harness import BenchError, work_directory
from replication_delay import Delays, planned, propagation, stamps_ldif
from replication_servers import (
    Credentials,
    SlapdServer,
    certdir_credentials,
    context_csn,
    entry_count,
    make_consumer,
    slapd_server,
)
from rich.console import Console
from rich.table import Table
from servers import Certdir, Running, free_port, run_with_slapd

REPO = Path(__file__).resolve().parent.parent
QUICK_ENTRIES = 10_000
QUICK_DURATION = 10.0
CSN_POLL_S = 0.2
COUNT_EVERY_S = 5.0
COUNT_COST_FACTOR = 20.0
SLAPD_PATH = "slapd -> slapd"
# What a certdir consumer logs at the end of its refresh (certdir.replication).
REFRESH_DONE = "replication: refresh from"


@dataclass(frozen=True, slots=True)
class Refresh:
    path: str
    entries: int
    seconds: float
    listening_s: float
    context_csn_matched: bool


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=100_000, help="people in the book")
    parser.add_argument("--rate", type=float, default=50.0, help="modifies per second")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of writes")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke run: {QUICK_ENTRIES} entries, {QUICK_DURATION:g} s of "
                             "writes")
    parser.add_argument("--slapd-fsync", action="store_true",
                        help="slapd consumers without dbnosync: one fsync per replicated entry")
    parser.add_argument("--refresh-timeout", type=float, default=900.0,
                        help="seconds a consumer may take over its initial refresh")
    parser.add_argument("--storage-url", help="the certdir provider's database "
                        "(passed to `certdir init --storage-url`)")
    parser.add_argument("--consumer-storage-url", help="the certdir consumer's database")
    parser.add_argument("--tools", type=Path, default=DEFAULT_TOOLS,
                        help="directory of gen_ldif.py")
    parser.add_argument("--workdir", type=Path, help="keep data, configs and logs here")
    args = parser.parse_args()
    if args.quick:
        args.entries, args.duration = QUICK_ENTRIES, QUICK_DURATION
    return args


def book(tools: Path, entries: int, work: Path) -> tuple[Path, Path]:
    """The address book with and without its suffix entry, both with the stamps."""
    whole, without_base = generate(tools, entries, work)
    for ldif in (whole, without_base):
        with ldif.open("a") as out:
            out.write("\n" + stamps_ldif(SUFFIX))
    return whole, without_base


Starter = Callable[[], tuple[Running, Credentials]]


def refreshed(path: str, start: Starter, provider: Credentials, timeout: float,
              console: Console) -> tuple[Credentials, Refresh]:
    """Start an empty consumer and time it until it holds what `provider` holds."""
    target, expected = context_csn(provider, SUFFIX), entry_count(provider, SUFFIX)
    console.print(f"initial refresh {path}: {expected} entries ...")
    begin = time.perf_counter()
    running, consumer = start()
    listening = time.perf_counter() - begin
    counted_at, count_cost, matched = begin, 0.0, False
    while True:
        running.check_alive()
        now = time.perf_counter()
        if now - begin > timeout:
            raise BenchError(f"{path}: the consumer did not hold {expected} entries within "
                             f"{timeout:g} s")
        matched = matched or target <= context_csn(consumer, SUFFIX)
        if (matched or REFRESH_DONE in running.tail()
                or now - counted_at >= max(COUNT_EVERY_S, COUNT_COST_FACTOR * count_cost)):
            count = entry_count(consumer, SUFFIX)
            counted_at = time.perf_counter()
            count_cost = counted_at - now
            if count >= expected:
                seconds = now - begin
                console.print(f"  {seconds:.1f} s")
                return consumer, Refresh(path, count, seconds, listening, matched)
        time.sleep(CSN_POLL_S)


@dataclass(frozen=True, slots=True)
class Servers:
    """Where the servers of one run live, and the stack that stops them."""

    work: Path
    stack: ExitStack
    slapd_durable: bool

    def started(self, server: Certdir | SlapdServer, name: str) -> Running:
        running = server.serve() if isinstance(server, Certdir) else server.serve(name)
        self.stack.callback(running.stop)
        return running

    def slapd_consumer(self, name: str, rid: int, provider: Credentials) -> Starter:
        consumer = slapd_server(self.work / name, SUFFIX, free_port(), (rid, provider),
                                self.slapd_durable)
        return lambda: (self.started(consumer, name), consumer.credentials)

    def certdir_consumer(self, rid: int, provider: Credentials,
                         storage_url: str | None) -> Starter:
        replica = Certdir(self.work / "certdir-consumer", SUFFIX, REPO, free_port(), 1)
        replica.prepare(storage_url, None)
        make_consumer(replica, rid, provider)
        return lambda: (self.started(replica, replica.name), certdir_credentials(replica))


def measure(args: argparse.Namespace, servers: Servers, console: Console
            ) -> tuple[list[Refresh], list[Delays]]:
    work = servers.work
    console.print(f"generating {args.entries} entries in {work} ...")
    whole, without_base = book(args.tools, args.entries, work)
    slapd_source = slapd_server(work / "slapd-provider", SUFFIX, free_port())
    console.print(f"slapadd: {slapd_source.load(whole):.1f} s")
    certdir_source = Certdir(work / "certdir-provider", SUFFIX, REPO, free_port(), 1)
    certdir_source.prepare(args.storage_url, None)
    console.print(f"certdir ldif import: {certdir_source.load(without_base):.1f} s")
    slapd, certdir = slapd_source.credentials, certdir_credentials(certdir_source)
    slapd_running = servers.started(slapd_source, "slapd provider")
    certdir_running = servers.started(certdir_source, "certdir provider")
    paths = (
        (SLAPD_PATH, slapd_running, slapd, servers.slapd_consumer("slapd-from-slapd", 1, slapd)),
        ("certdir -> slapd", certdir_running, certdir,
         servers.slapd_consumer("slapd-from-certdir", 2, certdir)),
        ("certdir -> certdir", certdir_running, certdir,
         servers.certdir_consumer(3, certdir, args.consumer_storage_url)),
    )
    refreshes, held = [], {}
    for path, source_running, provider, start in paths:
        source_running.settle()
        held[path], refresh = refreshed(path, start, provider, args.refresh_timeout, console)
        refreshes.append(refresh)
    delays = []
    for name, provider, source_running in (("slapd", slapd, slapd_running),
                                           ("certdir", certdir, certdir_running)):
        observed = [(f"{name} provider itself", provider)] + [
            (path, held[path]) for path in held if path.startswith(f"{name} ->")]
        source_running.settle()
        console.print(f"writes on the {name} provider: {args.rate:g}/s for {args.duration:g} s, "
                      f"observed on {', '.join(path for path, _ in observed)} ...")
        delays.extend(propagation(name, provider, observed, SUFFIX, args.rate, args.duration))
    return refreshes, delays


def ratio(value: float, reference: float) -> str:
    return f"{value / reference:.2f}" if reference > 0 else "-"


def report(args: argparse.Namespace, refreshes: list[Refresh], delays: list[Delays]) -> None:
    output = Console(width=None if sys.stdout.isatty() else 120)
    slapd_refresh = next(r.seconds for r in refreshes if r.path == SLAPD_PATH)
    table = Table(title=f"initial refresh of {args.entries:,} people with certificates "
                        "(refreshAndPersist)")
    for column in ("path", "entries", "seconds", "of which start", "entries/s",
                   f"ratio to {SLAPD_PATH}", "contextCSN reached"):
        table.add_column(column, justify="right")
    for r in refreshes:
        table.add_row(r.path, f"{r.entries:,}", f"{r.seconds:.1f}", f"{r.listening_s:.1f}",
                      f"{r.entries / r.seconds:,.0f}",
                      ratio(r.seconds, slapd_refresh), "yes" if r.context_csn_matched else "no")
    output.print(table)
    reference = next(d for d in delays if d.path == SLAPD_PATH)
    table = Table(title=f"change propagation, {args.rate:g} modifies/s for {args.duration:g} s, "
                        f"{planned(args.rate, args.duration)} planned (ms from the modify sent "
                        "to the persist search's answer)",
                  caption="writer: the modify's own latency, sent to result; provider itself: "
                          "a persist search on the provider")
    for column in ("path", "seen / written", "superseded", "converged", "p50", "p99", "max",
                   f"p50 / {SLAPD_PATH}", f"p99 / {SLAPD_PATH}"):
        table.add_column(column, justify="right")
    for d in delays:
        converged = "-" if d.converged is None else "yes" if d.converged else "NO"
        table.add_row(d.path, f"{d.seen} / {d.written}", str(d.superseded), converged,
                      f"{d.p50_ms:.1f}", f"{d.p99_ms:.1f}",
                      f"{d.max_ms:.1f}", ratio(d.p50_ms, reference.p50_ms),
                      ratio(d.p99_ms, reference.p99_ms))
    output.print(table)
    print(json.dumps({"entries": args.entries, "rate": args.rate, "duration_s": args.duration,
                      "storage_url": shown(args.storage_url),
                      "consumer_storage_url": shown(args.consumer_storage_url),
                      "refresh": [asdict(r) for r in refreshes],
                      "propagation": [asdict(d) for d in delays]}))


def run(args: argparse.Namespace, console: Console) -> None:
    with ExitStack() as stack:
        work = stack.enter_context(work_directory(args.workdir, "replication-bench-"))
        refreshes, delays = measure(args, Servers(work, stack, args.slapd_fsync), console)
        report(args, refreshes, delays)


def main() -> int:
    return run_with_slapd(run, parse_args())


if __name__ == "__main__":
    sys.exit(main())
