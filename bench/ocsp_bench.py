"""Benchmark the OCSP responder: certdir's /ocsp against `openssl ocsp -index ... -port`
on the same CA, in the same run.

- One data directory made as an administrator would (`certdir init`, default P-256 root,
  web service on a free loopback port); --leaves tls-server certificates (no holder)
  issued in process through `ca.issue.prepare` and `commit` in one transaction, one in
  ten then revoked (keyCompromise) and one in ten put on hold.
- certdir: `certdir serve` with the access log off and `workers: --workers` (every worker
  serves the plain-http site); the benchmark waits for the delegated responder
  certificate of each worker (whose key never leaves that worker's memory).
- openssl: `openssl ocsp -index index.txt -port P -rsigner responder.pem -rkey
  responder.key -CA ca.pem -nmin <ca.ocsp.response_hours>`; index.txt is written from the
  ca_certificates table (V or R, expiry, revocation time and reason, serial, subject), and
  the responder certificate is a second ocsp-signing certificate of the same CA, same
  profile and key type, issued for it with `ca.responder` and its key written to the work
  directory.
- Load: the same pre-built DER requests (SHA-1 CertIDs, the leaves in turn) POSTed by the
  same asyncio client over --connections concurrent loopback connections, one request
  per connection (openssl's responder closes after each answer, so certdir is asked the
  same way: `Connection: close`), for --duration seconds after --warmup seconds.
  Workloads: without a nonce (certdir answers from its per-certificate cache, openssl
  signs each); with a fresh 16-octet nonce in every request (both sign every answer);
  and without a nonce over kept-alive connections for certdir, against openssl's only
  mode (one request per connection), as clients that reuse connections see them. Each
  workload runs --rounds times against openssl and then certdir, alternating, before the
  next starts; the median of each server's rounds is reported (the machine may be busy).
- For scale, the workloads without a nonce also run against `fixed_site.py`, a plain
  twisted.web site answering every POST with one fixed response fetched from certdir:
  what any twisted.web responder can reach on this machine.
- Every answer must be HTTP 200 with a successful OCSPResponse; one in `CHECK_EVERY` is
  parsed in full and its certificate status compared with the store's. Any other answer
  fails the benchmark.
- The figure is certdir's responses/s over openssl's per workload (target >= 1.0),
  reported as PASS or MISS, never asserted. Table on standard output, then one JSON
  line; progress on standard error.

Usage: ocsp_bench.py [--leaves 1000] [--duration 5] [--warmup 1] [--rounds 3]
                     [--connections 16] [--workers 1]
                     [--quick] [--workdir DIR]
"""
from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml
from address_book import REPO, SUFFIX, certdir_cli, now, opened
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID
from harness import BenchError, run_main, verdict, work_directory
from rich.console import Console
from rich.table import Table
from servers import Running, free_port, start

from ca import issue, responder, revoke
from ca.policy import Origin
from ca.profiles import profile
from ca.store import Store
from certdir.config import Config, load
from directory.publisher import DirectoryWriter

QUICK_LEAVES = 200
QUICK_DURATION = 2.0
NONCE_REQUESTS = 20_000
CHECK_EVERY = 50
TARGET = 1.0
RESPONDER_WAIT_S = 30.0
OPENSSL_TIMEOUT_S = 5
TWISTED = "twisted.web alone"
# Expected certificate status of leaf n: every tenth revoked, the next tenth on hold.
REVOKED_EVERY = 10


@dataclass(frozen=True, slots=True)
class Leaf:
    certificate: x509.Certificate
    status: ocsp.OCSPCertStatus


@dataclass(frozen=True, slots=True)
class Run:
    server: str
    workload: str
    answers: int
    seconds: float

    @property
    def per_s(self) -> float:
        return self.answers / self.seconds


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leaves", type=int, default=1000, help="certificates to ask about")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measured run")
    parser.add_argument("--warmup", type=float, default=1.0,
                        help="seconds of unmeasured load before each run")
    parser.add_argument("--rounds", type=int, default=3,
                        help="alternating openssl/certdir runs per workload (median taken)")
    parser.add_argument("--connections", type=int, default=16,
                        help="concurrent connections of the load generator")
    parser.add_argument("--workers", type=int, default=1,
                        help="certdir server processes (`workers` in certdir.yaml)")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke test: {QUICK_LEAVES} leaves, {QUICK_DURATION:g} s runs")
    parser.add_argument("--workdir", type=Path,
                        help="keep the data directory, index.txt and logs here")
    args = parser.parse_args()
    if args.quick:
        args.leaves, args.duration = QUICK_LEAVES, QUICK_DURATION
    if args.leaves < REVOKED_EVERY:
        parser.error(f"--leaves must be at least {REVOKED_EVERY}")
    if (args.duration <= 0 or args.warmup < 0
            or min(args.connections, args.rounds, args.workers) < 1):
        parser.error("--duration must be positive, --warmup not negative, "
                     "--connections, --rounds and --workers at least 1")
    return args


def prepare(work: Path, workers: int) -> tuple[Config, int]:
    data_dir, port = work / "data", free_port()
    certdir_cli("init", "--data-dir", str(data_dir), "--suffix", SUFFIX,
                "--listen", f"ldap://127.0.0.1:{free_port()}",
                "--http-listen", f"http://127.0.0.1:{port}")
    path = data_dir / "certdir.yaml"
    settings = yaml.safe_load(path.read_text())
    settings.setdefault("log", {})["access"] = False
    settings["workers"] = workers
    path.write_text(yaml.safe_dump(settings, sort_keys=False))
    return load(data_dir), port


def expected(n: int) -> ocsp.OCSPCertStatus:
    return ocsp.OCSPCertStatus.REVOKED if n % REVOKED_EVERY in (0, 1) else \
        ocsp.OCSPCertStatus.GOOD


def csr(n: int, key: ec.EllipticCurvePrivateKey) -> bytes:
    name = f"leaf{n:06d}"
    return (x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(f"{name}.example.com")]),
                           critical=False)
            .sign(key, hashes.SHA256()).public_bytes(Encoding.DER))


def issue_leaves(config: Config, count: int, work: Path) -> tuple[list[Leaf], x509.Certificate]:
    """The leaves (revoked and held as `expected` says) and the CA certificate; also
    writes openssl's responder certificate and key."""
    key = ec.generate_private_key(ec.SECP256R1())
    leaves = []
    with opened(config) as (dsa, authority), dsa.backend.transaction() as txn:
        writer = DirectoryWriter(dsa, txn, dsa.root_dn)
        chosen = profile(authority.config.profiles, "tls-server")
        for n in range(count):
            outcome = issue.commit(writer, issue.prepare(authority, csr(n, key), chosen, None,
                                             Origin.OFFICER, now()), now())
            if outcome.certificate is None:
                raise BenchError(f"leaf {n} was not issued: {outcome.why}")
            leaves.append(Leaf(outcome.certificate, expected(n)))
        for n in range(0, count, REVOKED_EVERY):
            revoke.revoke(authority, writer, leaves[n].certificate.serial_number,
                          x509.ReasonFlags.key_compromise, now())
            revoke.revoke(authority, writer, leaves[n + 1].certificate.serial_number,
                          x509.ReasonFlags.certificate_hold, now())
        responder_key, request = responder.new_request(authority)
        certificate = responder.issued(issue.commit(writer, issue.prepare(
            authority, request, responder.responder_profile(authority), None, Origin.OFFICER,
            now()), now()))
        write_index(Store(txn.records), work / "index.txt")
        ca = authority.certificate
    (work / "responder.key").write_bytes(responder_key.private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    (work / "responder.pem").write_bytes(certificate.public_bytes(Encoding.PEM))
    (work / "ca.pem").write_bytes(ca.public_bytes(Encoding.PEM))
    (work / "index.txt.attr").write_text("unique_subject = no\n")
    return leaves, ca


def _openssl_time(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%y%m%d%H%M%SZ")


def _even_hex(serial: int) -> str:
    text = format(serial, "X")
    return "0" * (len(text) % 2) + text


def write_index(store: Store, path: Path) -> None:
    """openssl ca's index.txt: status, expiry, revocation[,reason], serial, file, subject."""
    lines = []
    for record in store.certificates():
        revoked = "" if record.revoked_at is None else \
            f"{_openssl_time(record.revoked_at)},{record.reason}"
        subject = "/" + "/".join(reversed(record.subject.split(",")))
        lines.append("\t".join(("V" if revoked == "" else "R", _openssl_time(record.not_after),
                                revoked, _even_hex(record.serial), "unknown", subject)))
    path.write_text("\n".join(lines) + "\n")


def requests(leaves: Sequence[Leaf], ca: x509.Certificate, nonces: bool,
             keep_alive: bool) -> list[tuple[bytes, int]]:
    """HTTP requests (POST), each with the index of its leaf."""
    count = NONCE_REQUESTS if nonces else len(leaves)
    connection = "" if keep_alive else "Connection: close\r\n"
    made = []
    for i in range(count):
        n = i % len(leaves)
        builder = ocsp.OCSPRequestBuilder().add_certificate(leaves[n].certificate, ca,
                                                            hashes.SHA1())
        if nonces:
            builder = builder.add_extension(x509.OCSPNonce(os.urandom(16)), critical=False)
        der = builder.build().public_bytes(Encoding.DER)
        head = ("POST /ocsp HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                "Content-Type: application/ocsp-request\r\n"
                f"Content-Length: {len(der)}\r\n{connection}\r\n").encode()
        made.append((head + der, n))
    return made


@dataclass(frozen=True, slots=True)
class Workload:
    name: str
    nonces: bool
    # certdir only: openssl's responder answers one request per connection whatever
    # the client asks, so it runs its only mode in this workload too.
    keep_alive: bool = False


WORKLOADS = (Workload("cached (no nonce)", nonces=False),
             Workload("nonce (signed each)", nonces=True),
             Workload("cached, keep-alive (openssl: not)", nonces=False, keep_alive=True))


def check(answer: bytes, leaf: Leaf, full: bool, where: str) -> None:
    head, _, body = answer.partition(b"\r\n\r\n")
    if not head.startswith((b"HTTP/1.1 200", b"HTTP/1.0 200")):
        raise BenchError(f"{where}: {head[:200]!r}")
    if not full:
        return
    parsed = ocsp.load_der_ocsp_response(body)
    if parsed.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
        raise BenchError(f"{where}: response status {parsed.response_status.name}")
    if parsed.certificate_status is not leaf.status:
        raise BenchError(f"{where}: {parsed.certificate_status.name} for a "
                         f"{leaf.status.name} certificate")


async def _response(reader: asyncio.StreamReader) -> bytes:
    """Head and body, by Content-Length: openssl's responder does not close first."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return head + await reader.readexactly(length)


async def _load(port: int, work: Sequence[tuple[bytes, int]], leaves: Sequence[Leaf],
                connections: int, seconds: float, keep_alive: bool, verify: bool,
                where: str) -> int:
    deadline = time.perf_counter() + seconds
    counter = iter(range(sys.maxsize))
    answered = 0

    async def client() -> None:
        nonlocal answered
        writer = None
        while time.perf_counter() < deadline:
            i = next(counter)
            request, n = work[i % len(work)]
            if writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request)
            answer = await _response(reader)
            if not keep_alive:
                writer.close()
                writer = None
            check(answer, leaves[n], verify and i % CHECK_EVERY == 0, where)
            answered += 1
        if writer is not None:
            writer.close()

    await asyncio.gather(*(client() for _ in range(connections)))
    return answered


def measure(server: str, workload: Workload, port: int, work: Sequence[tuple[bytes, int]],
            leaves: Sequence[Leaf], args: argparse.Namespace, console: Console) -> Run:
    where = f"{server} {workload.name}"
    keep_alive = workload.keep_alive and server != "openssl"
    console.print(f"{where}: {args.warmup:g} s warm-up, {args.duration:g} s measured ...")
    load = (port, work, leaves, args.connections)
    asyncio.run(_load(*load, args.warmup, keep_alive, server != TWISTED, where))
    start_time = time.perf_counter()
    answered = asyncio.run(_load(*load, args.duration, keep_alive, server != TWISTED, where))
    return Run(server, workload.name, answered, time.perf_counter() - start_time)


def wait_for_responder(server: Running, workers: int) -> None:
    deadline = time.monotonic() + RESPONDER_WAIT_S
    while server.log.read_text().count("OCSP responder certificate") < workers:
        if time.monotonic() > deadline or server.process.poll() is not None:
            raise BenchError(f"certdir issued no OCSP responder certificate: {server.tail()}")
        time.sleep(0.1)


def serve_certdir(config: Config, port: int, work: Path) -> Running:
    """`certdir serve`, up once every worker has its responder certificate."""
    command = [sys.executable, "-m", "certdir", "serve", "--data-dir", str(config.data_dir)]
    server = start("certdir", command, port, work / "certdir.log", cwd=REPO)
    wait_for_responder(server, config.workers)
    return server


def serve_openssl(config: Config, work: Path, probe: bytes) -> tuple[Running, int]:
    """openssl's responder, up once it answers `probe` (an HTTP request). A bare connect
    will not do: OpenSSL 3.0's responder spins on a connection closed before a request
    arrives; `-timeout` bounds how long it waits for one."""
    assert config.ca is not None
    port = free_port()
    command = ["openssl", "ocsp", "-index", str(work / "index.txt"), "-port", str(port),
               "-rsigner", str(work / "responder.pem"), "-rkey", str(work / "responder.key"),
               "-CA", str(work / "ca.pem"), "-nmin", str(config.ca.ocsp.response_hours * 60),
               "-timeout", str(OPENSSL_TIMEOUT_S)]
    log = work / "openssl.log"
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=work, stdin=subprocess.DEVNULL, stdout=out,
                                   stderr=subprocess.STDOUT)
    server = Running("openssl ocsp", port, process, log)
    deadline = time.monotonic() + RESPONDER_WAIT_S
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=OPENSSL_TIMEOUT_S) as s:
                s.sendall(probe)
                if s.recv(16).startswith(b"HTTP/1.0 200"):
                    return server, port
        except OSError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            server.stop()
            raise BenchError(f"openssl ocsp did not answer on port {port}: {server.tail()}")
        time.sleep(0.1)


def median_rate(runs: Sequence[Run], server: str, workload: str) -> float:
    return statistics.median(r.per_s for r in runs if (r.server, r.workload) == (server,
                                                                                 workload))


def report(console: Console, args: argparse.Namespace, runs: Sequence[Run]) -> None:
    table = Table(title=f"OCSP responses/s (median of {args.rounds} alternating rounds), "
                        f"{args.leaves} certificates, {args.connections} connections, "
                        f"certdir workers: {args.workers}")
    for column in ("workload", "openssl ocsp/s", "certdir/s", "certdir/openssl", "target",
                   f"{TWISTED}/s", "certdir/twisted"):
        table.add_column(column, justify="left" if column == "workload" else "right")
    figures: dict[str, float] = {}
    for workload in WORKLOADS:
        openssl = median_rate(runs, "openssl", workload.name)
        certdir = median_rate(runs, "certdir", workload.name)
        ratio = certdir / openssl
        key = workload.name.split(" (")[0].replace(", ", "_").replace(" ", "_")
        figures.update({f"{key}_openssl_per_s": round(openssl, 1),
                        f"{key}_certdir_per_s": round(certdir, 1),
                        f"{key}_ratio": round(ratio, 3)})
        ceiling = ("", "")
        if not workload.nonces:
            twisted = median_rate(runs, TWISTED, workload.name)
            figures[f"{key}_twisted_per_s"] = round(twisted, 1)
            ceiling = (f"{twisted:.0f}", f"{certdir / twisted:.2f}")
        table.add_row(workload.name, f"{openssl:.0f}", f"{certdir:.0f}", f"{ratio:.2f}",
                      f">= {TARGET:g} {verdict(ratio >= TARGET)}", *ceiling)
    console.print(table)
    print(json.dumps({"leaves": args.leaves, "connections": args.connections,
                      "workers": args.workers,
                      "rounds": args.rounds, **figures, "runs": [asdict(r) for r in runs]}))


def fetch(port: int, request: bytes) -> bytes:
    """One answer's body."""
    with socket.create_connection(("127.0.0.1", port), timeout=RESPONDER_WAIT_S) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer.partition(b"\r\n\r\n")[2]


def serve_fixed(work: Path, body: bytes) -> tuple[Running, int]:
    (work / "fixed.der").write_bytes(body)
    port = free_port()
    command = [sys.executable, str(REPO / "bench" / "fixed_site.py"), str(port),
               str(work / "fixed.der")]
    return start(TWISTED, command, port, work / "fixed_site.log"), port


def measure_all(config: Config, work: Path, port: int,
                made: dict[Workload, tuple[list[tuple[bytes, int]], list[tuple[bytes, int]]]],
                leaves: Sequence[Leaf], args: argparse.Namespace, console: Console) -> list[Run]:
    """Each workload against openssl, certdir (already serving on `port`) and, without
    nonces, the fixed twisted.web site, in alternating rounds."""
    probe = made[WORKLOADS[0]][0][0][0]
    openssl, openssl_port = serve_openssl(config, work, probe)
    fixed, fixed_port = serve_fixed(work, fetch(port, probe))
    runs = []
    try:
        for workload, (for_openssl, for_certdir) in made.items():
            for _ in range(args.rounds):
                runs.append(measure("openssl", workload, openssl_port, for_openssl, leaves,
                                    args, console))
                runs.append(measure("certdir", workload, port, for_certdir, leaves, args,
                                    console))
                if not workload.nonces:
                    runs.append(measure(TWISTED, workload, fixed_port, for_certdir, leaves,
                                        args, console))
    finally:
        fixed.stop()
        openssl.stop()
    return runs


def run(args: argparse.Namespace, console: Console) -> None:
    with work_directory(args.workdir, "certdir-ocsp-bench-") as work:
        console.print("data directory ...")
        config, port = prepare(work, args.workers)
        console.print(f"issuing {args.leaves} leaves, index.txt, openssl's responder ...")
        leaves, ca = issue_leaves(config, args.leaves, work)
        made = {w: (requests(leaves, ca, w.nonces, keep_alive=False),
                    requests(leaves, ca, w.nonces, w.keep_alive)) for w in WORKLOADS}
        certdir = serve_certdir(config, port, work)
        try:
            runs = measure_all(config, work, port, made, leaves, args, console)
        finally:
            certdir.stop()
    report(Console(width=None if sys.stdout.isatty() else 120), args, runs)


def main() -> int:
    return run_main(run, parse_args(), Console(stderr=True))


if __name__ == "__main__":
    sys.exit(main())
