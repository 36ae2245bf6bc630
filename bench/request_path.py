"""The server's request path without sockets: CPU per search, in this process.

`directory_bench.py` measures certdir through the network with a load generator on the
same two cores, so its figures mix the Python request path with the kernel's and the
client's share. This one feeds BER requests, as ldapload.py sends them, to one
`LDAPServerProtocol` over an in-memory transport and times what the server does with
them: decode, dispatch and overlays, plan, fetch, access checks, encode. It is the
figure to move when the per-request path is the floor, and the process to profile
(`py-spy record -- .venv/bin/python bench/request_path.py --data-dir DIR`).

- The directory: `gen_ldif.py N` imported with the benchmark's indexes (or `--data-dir`,
  one loaded before, e.g. a `directory_bench.py --workdir` copy, to skip that).
- Workloads, one after the other, each after up to `WARMUP` unmeasured requests:
  - search-mail: `(mail=<random person>)` for cn, mail, userCertificate;binary, as
    ldapload's. With the default entry cache most of them miss it at 100,000 people.
  - search-mail (cached): the same among `CACHED` people only, so every entry is in the
    cache: the difference from the line above is what a cache miss costs.
  - autocomplete: `(|(cn=V*)(mail=V*)(sn=V*))`, V "User " and 3 to 5 digits, size
    limit 100, for cn and mail (a mail client's type-ahead).
  - search-sub: `(cn=*NNNN*)`, the last four digits of a random person, size limit 100.
- The garbage collector is settled as in a server worker (`certdir.collector`): with
  CPython's default thresholds a sixth of the CPU went to collections no server makes.
- Printed: per request, CPU time (its mean) and wall time (median and p99); entries
  returned per request, and the CPU per returned entry.

Progress goes to standard error, the table to standard output.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import count
from pathlib import Path
from typing import Any, cast

from directory_bench import DEFAULT_TOOLS, SUFFIX, generate
from harness import run_main, work_directory
from rich.console import Console
from rich.table import Table
from servers import Certdir, free_port

from certdir.config import load as load_config
from directory.protocol.ber import read_tlv
from directory.protocol.codec import encode
from directory.protocol.filter import Equality, Filter, Or, Substrings
from directory.protocol.messages import Deref, LDAPMessage, Scope, SearchRequest

REPO = Path(__file__).resolve().parent.parent
PEOPLE = f"ou=people,{SUFFIX}"
WARMUP = 2_000
CACHED = 1_000
SEED = 11
SEARCH_RESULT_ENTRY = 0x64  # [APPLICATION 4], RFC 4511 4.5.2


@dataclass(frozen=True, slots=True)
class Workload:
    name: str
    requests: int
    search: Callable[[random.Random], SearchRequest]


def _search(search_filter: Filter, attributes: tuple[str, ...], size_limit: int = 0,
            ) -> SearchRequest:
    return SearchRequest(PEOPLE, Scope.SUB, Deref.NEVER, size_limit, 0, False, search_filter,
                         attributes)


def mail(rng: random.Random, people: int) -> SearchRequest:
    person = rng.randrange(people)
    return _search(Equality("mail", f"user{person:07d}@example.com".encode()),
                   ("cn", "mail", "userCertificate;binary"))


def autocomplete(rng: random.Random, people: int) -> SearchRequest:
    typed = ("User " + str(rng.randrange(people))[:rng.randrange(3, 6)]).encode()
    return _search(Or(tuple(Substrings(a, typed, (), None) for a in ("cn", "mail", "sn"))),
                   ("cn", "mail"), 100)


def substring(rng: random.Random, people: int) -> SearchRequest:
    digits = str(rng.randrange(people))[-4:].encode()
    return _search(Substrings("cn", None, (digits,), None), ("cn", "mail"), 100)


def workloads(entries: int, requests: int) -> tuple[Workload, ...]:
    return (
        Workload("search-mail", requests, lambda rng: mail(rng, entries)),
        Workload("search-mail (cached)", requests, lambda rng: mail(rng, min(CACHED, entries))),
        Workload("autocomplete", requests // 10, lambda rng: autocomplete(rng, entries)),
        Workload("search-sub", requests // 10, lambda rng: substring(rng, entries)),
    )


class Sink:
    """The transport: keeps what is written until `entries` counts it."""

    def __init__(self) -> None:
        self.written: list[bytes] = []

    def entries(self) -> int:
        """The search entries written since the last call, outside the timing."""
        found = sum(_entries(data) for data in self.written)
        self.written.clear()
        return found

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def getPeer(self) -> Any:
        return None

    def setTcpNoDelay(self, enabled: bool) -> None:
        """An in-memory transport has no Nagle delay to turn off."""

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        """Nothing here pushes back."""

    def unregisterProducer(self) -> None:
        """Nothing was registered."""

    def loseConnection(self) -> None:
        """There is no connection to close."""


def _entries(data: bytes) -> int:
    """The SearchResultEntry messages in `data`, a run of whole LDAPMessages: the
    operation's tag follows each one's messageID."""
    found, pos = 0, 0
    while pos < len(data):
        _, start, end = read_tlv(data, pos, len(data))
        _, _, after_id = read_tlv(data, start, end)
        found += data[after_id] == SEARCH_RESULT_ENTRY
        pos = end
    return found


@dataclass(frozen=True, slots=True)
class Figures:
    name: str
    cpu_us: float
    p50_us: float
    p99_us: float
    entries: float


@contextmanager
def served(data_dir: Path) -> Iterator[tuple[Callable[[bytes], None], Sink]]:
    """A function that hands one request to a server protocol and runs it to its
    end, and the transport its replies go to."""
    from twisted.internet import asyncioreactor

    asyncioreactor.install()
    from twisted.internet import reactor

    from certdir import collector
    from certdir.directory_open import open_directory
    from directory.server import LDAPServerFactory

    dsa = open_directory(load_config(data_dir), reactor)
    collector.settle()  # as a server worker does once it is ready
    protocol = LDAPServerFactory(dsa, reactor, count(1)).buildProtocol(None)
    sink = Sink()
    cast(Any, protocol).makeConnection(sink)  # Twisted's untyped; the sink is the transport

    def run(request: bytes) -> None:
        protocol.dataReceived(request)
        while protocol._running or protocol._waiting:
            protocol._take_turn()

    try:
        yield run, sink
    finally:
        if dsa.writer is not None:
            dsa.writer.stop()
        dsa.backend.close()


def measure(run: Callable[[bytes], None], sink: Sink, workload: Workload) -> Figures:
    rng = random.Random(SEED)
    ids = count(1)

    def request() -> bytes:
        return encode(LDAPMessage(next(ids), workload.search(rng)))

    for _ in range(min(WARMUP, workload.requests)):
        run(request())
    sink.entries()
    pdus = [request() for _ in range(workload.requests)]
    wall: list[float] = []
    cpu = time.process_time()
    for pdu in pdus:
        began = time.perf_counter()
        run(pdu)
        wall.append(time.perf_counter() - began)
    cpu = time.process_time() - cpu
    quantiles = statistics.quantiles(wall, n=100)
    return Figures(workload.name, cpu / len(pdus) * 1e6, statistics.median(wall) * 1e6,
                   quantiles[98] * 1e6, sink.entries() / len(pdus))


def loaded(args: argparse.Namespace, work: Path, console: Console) -> Path:
    if args.data_dir is not None:
        return Path(args.data_dir)
    certdir = Certdir(work / "certdir", SUFFIX, REPO, free_port(), 1)
    console.log(f"generating {args.entries:,} people and importing them ...")
    _, without_base = generate(args.tools, args.entries, work)
    certdir.prepare(None, None)
    certdir.load(without_base)
    return certdir.data_dir


def run(args: argparse.Namespace, console: Console) -> None:
    progress = Console(stderr=True)
    with work_directory(args.workdir, "certdir-request-path-") as work:
        data_dir = loaded(args, work, progress)
        table = Table(title=f"certdir's request path in process, {args.entries:,} people")
        for column in ("workload", "CPU us/req", "p50 us", "p99 us", "entries/req",
                       "CPU us/entry"):
            table.add_column(column, justify="left" if column == "workload" else "right")
        with served(data_dir) as (handle, sink):
            for workload in workloads(args.entries, args.requests):
                progress.log(f"{workload.name} ...")
                got = measure(handle, sink, workload)
                per_entry = f"{got.cpu_us / got.entries:,.1f}" if got.entries else "-"
                table.add_row(got.name, f"{got.cpu_us:,.1f}", f"{got.p50_us:,.1f}",
                              f"{got.p99_us:,.1f}", f"{got.entries:,.1f}", per_entry)
        console.print(table)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=100_000, help="population size")
    parser.add_argument("--requests", type=int, default=20_000,
                        help="measured requests per single-entry workload (a tenth for the others)")
    parser.add_argument("--data-dir", help="a loaded certdir data directory of --entries people")
    parser.add_argument("--tools", type=Path, default=DEFAULT_TOOLS,
                        help="directory of gen_ldif.py")
    parser.add_argument("--workdir", type=Path, help="keep the generated data here")
    return run_main(run, parser.parse_args(), Console(width=100))


if __name__ == "__main__":
    sys.exit(main())
