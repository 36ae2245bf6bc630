"""Benchmark: what token redemptions do to LDAP write latency (issue 9, part 5).

- One data directory made the way an administrator would: `certdir init` (CA, KMS,
  LDAP, http and https on free ports), `certdir ldif import` of --redemptions + 1
  people with `mail` under ou=people, `certdir kms enroll-bulk` for their tokens;
  then `certdir serve`, driven only over the network.
- The writer loop: one python-ldap connection bound as the root DN replaces the
  `description` of a person nobody enrolls, one modify after another; each
  modify's latency is from the request to its result.
- Quiet: --baseline modifies with nothing else running.
- Loaded: --redemptions `POST /kms/enroll` over https at once (one curl process
  each, the server verified against public/ca.pem, pre-generated P-256 signing
  requests), while the same loop runs; the modifies counted are those that start
  before the last redemption answers. Every redemption must answer 200.
- Printed: p50 and p99 of both, and loaded/quiet ratios. A redemption that
  signs inside the writer's transaction holds every queued modify behind it;
  one that signs on the web pool does not.
- --repo runs another checkout's server and CLI (e.g. /work/main, before the
  change) with this same client, so before and after come from one script.
- No targets: figures only. The exit status is 0 unless a step failed. The
  table goes to standard output followed by one JSON line; progress to stderr.

Usage: redemption_bench.py [--redemptions 20] [--baseline 300] [--repo DIR] [--quick]
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import ldap
from address_book import PEOPLE, SUFFIX, person_dn, write_people
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from harness import BenchError, run_main, work_directory
from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parent.parent
P12_PASSWORD = "pw"
QUICK_REDEMPTIONS = 10
QUICK_BASELINE = 100
START_TIMEOUT = 60.0
REDEEM_TIMEOUT = 300.0


@dataclass(frozen=True, slots=True)
class Figures:
    repo: str
    redemptions: int
    quiet_modifies: int
    quiet_p50_ms: float
    quiet_p99_ms: float
    loaded_modifies: int
    loaded_p50_ms: float
    loaded_p99_ms: float
    loaded_max_ms: float
    redemptions_s: float

    @property
    def p50_ratio(self) -> float:
        return self.loaded_p50_ms / self.quiet_p50_ms

    @property
    def p99_ratio(self) -> float:
        return self.loaded_p99_ms / self.quiet_p99_ms


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--redemptions", type=int, default=20,
                        help="concurrent token redemptions")
    parser.add_argument("--baseline", type=int, default=300, help="modifies measured quiet")
    parser.add_argument("--repo", type=Path, default=REPO,
                        help="the certdir checkout whose server and CLI run")
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_REDEMPTIONS} redemptions, {QUICK_BASELINE} quiet modifies")
    parser.add_argument("--workdir", type=Path,
                        help="keep the data directory here instead of a temp dir")
    args = parser.parse_args()
    if args.quick:
        args.redemptions, args.baseline = QUICK_REDEMPTIONS, QUICK_BASELINE
    if args.redemptions < 1 or args.baseline < 10:
        parser.error("--redemptions must be at least 1 and --baseline at least 10")
    return args


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cli(repo: Path, *args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "certdir", *args], cwd=repo,
                          env={**os.environ, "PYTHONPATH": str(repo)},
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BenchError(f"certdir {' '.join(args[:2])} failed: {done.stderr[-2000:]}")


@dataclass(frozen=True, slots=True)
class Site:
    data_dir: Path
    ldap_port: int
    https_port: int

    @property
    def ldap_uri(self) -> str:
        return f"ldap://127.0.0.1:{self.ldap_port}"

    @property
    def enroll_url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}/kms/enroll"

    @property
    def ca_file(self) -> Path:
        return self.data_dir / "public" / "ca.pem"

    @property
    def root_password(self) -> str:
        return (self.data_dir / "secrets" / "root-password").read_text().strip()


def prepare(repo: Path, work: Path, people: int) -> tuple[Site, list[str]]:
    """The data directory and one enrollment token per person, person 0 first."""
    site = Site(work / "data", free_port(), free_port())
    cli(repo, "init", "--data-dir", str(site.data_dir), "--suffix", SUFFIX,
        "--listen", site.ldap_uri, "--http-listen", f"http://127.0.0.1:{free_port()}",
        "--http-listen", f"https://127.0.0.1:{site.https_port}")
    ldif = work / "people.ldif"
    write_people(ldif, people)
    cli(repo, "ldif", "import", "--data-dir", str(site.data_dir), "--quiet", str(ldif))
    tokens = work / "tokens.csv"
    cli(repo, "kms", "enroll-bulk", "--data-dir", str(site.data_dir), "--base", PEOPLE,
        "--out", str(tokens))
    with tokens.open(newline="") as f:
        by_dn = {row["dn"].lower(): row["token"] for row in csv.DictReader(f)}
    return site, [by_dn[person_dn(n).lower()] for n in range(people)]


@contextmanager
def serving(repo: Path, site: Site) -> Iterator[None]:
    log = (site.data_dir / "serve.log").open("ab")
    proc = subprocess.Popen([sys.executable, "-m", "certdir", "serve", "--data-dir",
                             str(site.data_dir)], cwd=repo,
                            env={**os.environ, "PYTHONPATH": str(repo)},
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                raise BenchError(f"certdir serve exited with {proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", site.https_port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise BenchError("certdir serve did not listen in time") from None
                time.sleep(0.1)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def signing_requests(folder: Path, count: int) -> list[Path]:
    made = []
    for n in range(count):
        key = ec.generate_private_key(ec.SECP256R1())
        csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).sign(
            key, hashes.SHA256())
        path = folder / f"csr{n}.pem"
        path.write_bytes(csr.public_bytes(Encoding.PEM))
        made.append(path)
    return made


class Modifier:
    """The innocent writer: replaces one person's description, again and again."""

    def __init__(self, site: Site, target: str) -> None:
        self.conn = ldap.initialize(site.ldap_uri)
        self.conn.simple_bind_s(f"cn=admin,{SUFFIX}", site.root_password)
        self.target = target
        self.count = 0

    def modify(self) -> float:
        """One modify; its latency in milliseconds."""
        self.count += 1
        change = [(ldap.MOD_REPLACE, "description", [f"write {self.count}".encode()])]
        start = time.perf_counter()
        self.conn.modify_s(self.target, change)
        return (time.perf_counter() - start) * 1000

    def close(self) -> None:
        self.conn.unbind_s()


def redeem_all(site: Site, tokens: Sequence[str], requests: Sequence[Path],
               modifier: Modifier, out: Path) -> tuple[list[float], float]:
    """Modify latencies while the redemptions run, and how long they all took."""
    procs = [subprocess.Popen(
        ["curl", "--silent", "--show-error", "--cacert", str(site.ca_file),
         "--max-time", str(REDEEM_TIMEOUT), "--output", str(out / f"bundle{n}.p12"),
         "--write-out", "%{http_code}", "--data-urlencode", f"token={token}",
         "--data-urlencode", f"csr@{csr}", "--data-urlencode", f"p12_password={P12_PASSWORD}",
         site.enroll_url], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for n, (token, csr) in enumerate(zip(tokens, requests, strict=True))]
    start = time.perf_counter()
    latencies = []
    while any(proc.poll() is None for proc in procs):
        latencies.append(modifier.modify())
    seconds = time.perf_counter() - start
    for n, proc in enumerate(procs):
        stdout, stderr = proc.communicate()
        if stdout != b"200":
            answer = (out / f"bundle{n}.p12").read_bytes()[:200] if stdout else stderr
            raise BenchError(f"redemption {n} answered {stdout.decode() or proc.returncode}: "
                             f"{answer.decode(errors='replace')}")
    return latencies, seconds


def percentile(values: Sequence[float], q: int) -> float:
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def report(console: Console, f: Figures) -> None:
    table = Table(title=f"LDAP modify latency, {f.redemptions} concurrent redemptions "
                        f"({f.repo})")
    for column in ("run", "modifies", "p50 ms", "p99 ms"):
        table.add_column(column, justify="left" if column == "run" else "right")
    table.add_row("quiet", str(f.quiet_modifies), f"{f.quiet_p50_ms:.2f}",
                  f"{f.quiet_p99_ms:.2f}")
    table.add_row(f"during {f.redemptions} redemptions", str(f.loaded_modifies),
                  f"{f.loaded_p50_ms:.2f}", f"{f.loaded_p99_ms:.2f}")
    table.add_row("loaded / quiet", "", f"{f.p50_ratio:.1f}", f"{f.p99_ratio:.1f}")
    console.print(table)
    console.print(f"the redemptions took {f.redemptions_s:.2f} s in all; the slowest modify "
                  f"during them {f.loaded_max_ms:.1f} ms")
    print(json.dumps({**asdict(f), "p50_ratio": round(f.p50_ratio, 2),
                      "p99_ratio": round(f.p99_ratio, 2)}))


def run(args: argparse.Namespace, console: Console) -> None:
    repo = args.repo.resolve()
    with work_directory(args.workdir, "certdir-redemption-bench-") as work:
        console.print(f"data directory with CA, KMS and {args.redemptions + 1} people "
                      f"({repo}) ...")
        site, tokens = prepare(repo, work, args.redemptions + 1)
        requests = signing_requests(work, args.redemptions)
        with serving(repo, site):
            modifier = Modifier(site, person_dn(args.redemptions))
            for _ in range(20):
                modifier.modify()
            console.print(f"{args.baseline} modifies, quiet ...")
            quiet = [modifier.modify() for _ in range(args.baseline)]
            console.print(f"modifies during {args.redemptions} redemptions ...")
            loaded, seconds = redeem_all(site, tokens[:args.redemptions], requests, modifier,
                                         work)
            modifier.close()
    report(Console(width=None if sys.stdout.isatty() else 120), Figures(
        str(repo), args.redemptions, len(quiet), statistics.median(quiet),
        percentile(quiet, 99), len(loaded), statistics.median(loaded),
        percentile(loaded, 99), max(loaded), seconds))


def main() -> int:
    return run_main(run, parse_args(), Console(stderr=True))


if __name__ == "__main__":
    sys.exit(main())
