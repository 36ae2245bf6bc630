"""Benchmark: ACME issuance, newOrder to certificate, many orders at once (issue 13).

- One data directory made as an administrator would: `certdir init` (P-256 root CA,
  no KMS; LDAP, http and https on free loopback ports; `--storage-url` passed through),
  then `ca.acme` allowing `.bench.test` and 127.0.0.0/8, every name ordered resolving
  to 127.0.0.1 (`resolve`), http-01 validated on a free port where the benchmark's own
  server answers, the `acme` policy module issuing tls-server, the rate limits above
  what the run asks, the access log off. `certdir serve` runs it; the benchmark talks
  to it over https only.
- The client is scenario 103's (tests/acme_josepy.py, josepy signing; its http-01
  server the one both test clients share, tests/acme_client_base.py): --accounts
  ES256 accounts registered before the clock starts; --orders orders, one name each
  (`oNNNNN.bench.test`), spread over the accounts in turn; --parallel threads take
  them in turn, each thread with its own kept-alive connection and nonce per account
  it uses (made before the clock starts, as are the CSR keys). An order: newOrder ->
  the authorization read, http-01 answered -> the order polled every --poll seconds
  until ready -> finalize (P-256 CSR) -> polled until valid, when finalize did not
  answer valid -> the certificate downloaded. Polls are signed POST-as-GET requests,
  each spending a nonce, as real clients' are.
- Reported: p50, p90, p99 and max of newOrder -> certificate over the orders issued,
  and of its steps (newOrder; validation until ready; finalize until valid; the
  download); the wall time from the first newOrder to the last certificate; orders/s
  (certificates / wall time); errors (an order that did not end in a certificate),
  the first few shown. The client shares the machine with the server, so its CPU
  (TLS, JSON, signing, 100 threads) is in the figures.
- No targets: figures only. Table on standard output, then one JSON line; progress
  on standard error. The exit status is 0 unless a step failed (1, or 130 when
  interrupted); errors of single orders are counted, not fatal.

Usage: acme_bench.py [--orders 100] [--parallel 100] [--accounts 10] [--poll 0.25]
                     [--storage-url URL] [--quick] [--workdir DIR]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml
from cryptography.hazmat.primitives.asymmetric import ec
from harness import BenchError, run_main, work_directory
from rich.console import Console
from rich.table import Table
from servers import Running, free_port, start

REPO = Path(__file__).resolve().parent.parent
# The client is the test suite's (scenario 103), imported from the checkout, not copied.
sys.path.insert(0, str(REPO))
from tests.acme_client_base import ChallengeServers  # noqa: E402
from tests.acme_josepy import Client, Issued, Key, obtain  # noqa: E402

SUFFIX = "dc=example,dc=com"
DOMAIN = "bench.test"
QUICK_ORDERS = 20
STEPS = ("newOrder", "validated", "finalized", "downloaded")
SHOWN_ERRORS = 5


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=100, help="orders, one name each")
    parser.add_argument("--parallel", type=int, help="client threads (default: --orders)")
    parser.add_argument("--accounts", type=int, default=10, help="ACME accounts")
    parser.add_argument("--poll", type=float, default=0.25,
                        help="seconds between polls of an order")
    parser.add_argument("--storage-url", help="certdir init --storage-url (an empty database)")
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_ORDERS} orders, all in parallel")
    parser.add_argument("--workdir", type=Path,
                        help="keep the data directory here instead of a temp dir")
    args = parser.parse_args()
    if args.quick:
        args.orders = QUICK_ORDERS
    if args.parallel is None or args.quick:
        args.parallel = args.orders
    if min(args.orders, args.parallel, args.accounts) < 1 or args.poll <= 0:
        parser.error("--orders, --parallel and --accounts must be at least 1, --poll > 0")
    return args


@dataclass(frozen=True, slots=True)
class Site:
    data_dir: Path
    https_port: int
    http01_port: int

    @property
    def directory_url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}/acme/directory"

    @property
    def ca_file(self) -> Path:
        return self.data_dir / "public" / "ca.pem"


def names(orders: int) -> list[str]:
    return [f"o{n:05d}.{DOMAIN}" for n in range(orders)]


def prepare(work: Path, args: argparse.Namespace) -> Site:
    site = Site(work / "data", free_port(), free_port())
    url = () if args.storage_url is None else ("--storage-url", args.storage_url)
    done = subprocess.run(
        [sys.executable, "-m", "certdir", "init", "--data-dir", str(site.data_dir),
         "--suffix", SUFFIX, "--no-kms", "--listen", f"ldap://127.0.0.1:{free_port()}",
         "--http-listen", f"http://127.0.0.1:{free_port()}",
         "--http-listen", f"https://127.0.0.1:{site.https_port}", *url],
        cwd=REPO, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BenchError(f"certdir init failed: {done.stderr[-2000:]}")
    path = site.data_dir / "certdir.yaml"
    settings = yaml.safe_load(path.read_text())
    settings.setdefault("log", {})["access"] = False
    settings["ca"]["policies"] = {"tls-server": "acme"}
    settings["ca"]["acme"] = {
        "allowed": [f".{DOMAIN}", "127.0.0.0/8"],
        "resolve": {name: "127.0.0.1" for name in names(args.orders)},
        "http01_port": site.http01_port,
        "rate_limits": {"orders_per_account": max(300, args.orders)},
    }
    path.write_text(yaml.safe_dump(settings, sort_keys=False))
    return site


@dataclass
class Outcome:
    """What one order came to: its step marks when issued, else the error."""

    name: str
    marks: tuple[tuple[str, float], ...] = ()
    error: str = ""


@dataclass
class Worker:
    """One client thread: its orders, a forked client per account they use."""

    clients: dict[int, Client]
    orders: list[tuple[int, str, ec.EllipticCurvePrivateKey]] = field(default_factory=list)


def workers(accounts: Sequence[Client], orders: Sequence[str], parallel: int) -> list[Worker]:
    """The orders dealt to `parallel` workers in turn, order n to account n mod accounts."""
    made = [Worker({}) for _ in range(min(parallel, len(orders)))]
    for n, name in enumerate(orders):
        worker, account = made[n % len(made)], n % len(accounts)
        if account not in worker.clients:
            worker.clients[account] = accounts[account].fork()
        worker.orders.append((account, name, ec.generate_private_key(ec.SECP256R1())))
    return made


def run_orders(made: Sequence[Worker], challenges: ChallengeServers,
               poll_s: float) -> list[Outcome]:
    ready = threading.Barrier(len(made))

    def work(worker: Worker) -> list[Outcome]:
        ready.wait()
        outcomes = []
        for account, name, key in worker.orders:
            try:
                issued: Issued = obtain(worker.clients[account], (name,), challenges,
                                        poll_s=poll_s, key=key)
            except Exception as e:
                outcomes.append(Outcome(name, error=f"{type(e).__name__}: {e}"))
                continue
            outcomes.append(Outcome(name, issued.marks))
        for client in worker.clients.values():
            client.close()
        return outcomes

    with ThreadPoolExecutor(max_workers=len(made)) as pool:
        return [o for found in pool.map(work, made) for o in found]


def percentile(values: Sequence[float], q: int) -> float:
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


@dataclass(frozen=True, slots=True)
class Spread:
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Spread:
        ms = [s * 1000 for s in seconds]
        return cls(statistics.median(ms), percentile(ms, 90), percentile(ms, 99), max(ms))


@dataclass(frozen=True, slots=True)
class Figures:
    orders: int
    parallel: int
    accounts: int
    poll_s: float
    storage: str
    certificates: int
    errors: int
    wall_s: float
    orders_per_s: float
    total: Spread | None
    steps: dict[str, Spread]
    first_errors: list[str]


def figures(args: argparse.Namespace, outcomes: Sequence[Outcome]) -> Figures:
    issued = [dict(o.marks) for o in outcomes if not o.error]
    failed = [f"{o.name}: {o.error}" for o in outcomes if o.error]
    wall = (max(m["downloaded"] for m in issued) - min(m["start"] for m in issued)
            if issued else 0.0)
    steps = {step: Spread.of([m[step] - m[before] for m in issued])
             for before, step in zip(("start", *STEPS), STEPS, strict=False)} if issued else {}
    return Figures(
        args.orders, min(args.parallel, args.orders), args.accounts,
        args.poll, "sqlite" if args.storage_url is None else "postgresql", len(issued),
        len(failed), wall, len(issued) / wall if wall else 0.0,
        Spread.of([m["downloaded"] - m["start"] for m in issued]) if issued else None,
        steps, failed[:SHOWN_ERRORS])


def report(console: Console, f: Figures) -> None:
    table = Table(title=f"ACME: {f.orders} orders, {f.parallel} in parallel, {f.accounts} "
                        f"accounts, polls every {f.poll_s:g} s ({f.storage})")
    for column in ("from newOrder", "p50 ms", "p90 ms", "p99 ms", "max ms"):
        table.add_column(column, justify="left" if column == "from newOrder" else "right")
    rows = ([("to certificate", f.total)] if f.total else []) + [
        (f"step: {step}", spread) for step, spread in f.steps.items()]
    for label, spread in rows:
        table.add_row(label, f"{spread.p50_ms:.0f}", f"{spread.p90_ms:.0f}",
                      f"{spread.p99_ms:.0f}", f"{spread.max_ms:.0f}")
    console.print(table)
    console.print(f"{f.certificates} certificates in {f.wall_s:.2f} s: "
                  f"{f.orders_per_s:.1f} orders/s; {f.errors} errors")
    for error in f.first_errors:
        console.print(f"  error: {error}")
    print(json.dumps(asdict(f)))


def serve(site: Site, work: Path) -> Running:
    return start("certdir", [sys.executable, "-m", "certdir", "serve", "--data-dir",
                             str(site.data_dir)], site.https_port, work / "certdir.log",
                 cwd=REPO)


def run(args: argparse.Namespace, console: Console) -> None:
    with work_directory(args.workdir, "certdir-acme-bench-") as work:
        console.print("data directory with a CA and ACME ...")
        site = prepare(work, args)
        server = serve(site, work)
        folder = work / "challenges"
        folder.mkdir()
        try:
            with ChallengeServers(folder, site.http01_port).serving() as challenges:
                console.print(f"{args.accounts} accounts, {args.parallel} client threads ...")
                accounts = []
                for _ in range(args.accounts):
                    client = Client(site.directory_url, site.ca_file, Key.generate("ES256"))
                    client.start()
                    made = client.register()
                    if made.status != 201:
                        raise BenchError(f"newAccount answered {made.status}: {made.body!r}")
                    accounts.append(client)
                dealt = workers(accounts, names(args.orders), args.parallel)
                console.print(f"{args.orders} orders ...")
                outcomes = run_orders(dealt, challenges, args.poll)
            server.check_alive()
        finally:
            server.stop()
    report(Console(width=None if sys.stdout.isatty() else 120), figures(args, outcomes))


def main() -> int:
    return run_main(run, parse_args(), Console(stderr=True))


if __name__ == "__main__":
    sys.exit(main())
