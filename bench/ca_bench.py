"""Benchmark the certificate authority: issuance against raw signing, and a 100k-entry CRL.

- Each CA key type (P-256, RSA-2048) gets its own data directory, made the way an
  administrator would: `certdir init --no-ca`, `certdir ca init --key-type`, then
  `certdir ldif import` of --entries people with `mail`.
- Raw signing rate: `key.sign` of a digest-sized message with the CA key, its hash and
  padding (PKCS#1 v1.5 for RSA, ECDSA), in this process, just before the issuance runs.
- Issue+publish rate: `ca.issue.prepare` + `ca.issue.commit` on pre-generated P-256
  requests (profile smime-user, a distinct entry each), through the code path of `certdir
  ca issue`: the certificate is signed, then recorded and published into its holder's
  entry in one transaction. Half
  the entries are issued one transaction (one fsync) per certificate, as the CLI does; the
  other half in transactions of 100, as the server's group commit would. The ratio to the
  raw signing rate shows what issuance costs beyond the signature.
- CRL: 100,000 revoked rows (distinct 159-bit serials, mixed reasons, 1,000 of them since
  the last CRL so the delta CRL is not empty) go into ca_certificates; the steps of
  `ca.crl.generate` (read, sign full + delta, record and publish into the CA entry) are
  timed together against the
  2 s target (median of 3 runs; all but the last rolled back, so each does the same work),
  next to cryptography's CertificateRevocationListBuilder alone on the same list. A MISS is
  profiled (cProfile, in a transaction rolled back) and the hot spots shown.
- Targets are reported as PASS or MISS, never asserted: the exit status is 0 unless a step
  failed. The table goes to standard output followed by one JSON line; progress goes to
  standard error.

Usage: ca_bench.py [--entries 2000] [--quick] [--workdir DIR]
"""
from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import json
import os
import pstats
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from address_book import REPO, SUFFIX, certdir_cli, now, opened, person_dn, uid, write_people
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from harness import BenchError, run_main, verdict, work_directory
from rich.console import Console
from rich.table import Table

from ca import crl as crls
from ca import issue
from ca.authority import Authority
from ca.crl import CRLs
from ca.keys import PrivateKey, signature_hash
from ca.policy import Origin
from ca.profiles import profile
from ca.store import Store
from certdir.config import Config, load
from directory.dsa import DSA
from directory.publisher import DirectoryWriter

CA_NAME = f"cn=Bench CA,{SUFFIX}"
KEY_TYPES = ("p256", "rsa2048")
PROFILE = "smime-user"
BATCH = 100
QUICK_ENTRIES = 400
SIGN_SECONDS = 2.0
QUICK_SIGN_SECONDS = 0.5
CRL_REVOKED = 100_000
CRL_RECENT = 1_000
CRL_TARGET_S = 2.0
CRL_KEY_TYPE = "p256"
CRL_RUNS = 3
HOT_SPOTS = 12
# Reasons as ca.revoke stores them (x509.ReasonFlags values); hold rows have status 'hold'.
REASONS = ("unspecified", "keyCompromise", "superseded", "cessationOfOperation",
           "affiliationChanged", "certificateHold")


class RollBack(Exception):
    """Raised to leave a transaction without committing (the profiled CRL run)."""


@dataclass(frozen=True, slots=True)
class KeyFigures:
    key_type: str
    sign_per_s: float
    issued_single: int
    single_per_s: float
    issued_batched: int
    batched_per_s: float

    @property
    def single_ratio(self) -> float:
        return self.single_per_s / self.sign_per_s

    @property
    def batched_ratio(self) -> float:
        return self.batched_per_s / self.sign_per_s


@dataclass(frozen=True, slots=True)
class CRLFigures:
    key_type: str
    revoked: int
    insert_s: float
    generate_runs: tuple[float, ...]
    commit_s: float
    builder_s: float
    full_bytes: int
    delta_entries: int
    hot_spots: tuple[str, ...]

    @property
    def generate_s(self) -> float:
        return statistics.median(self.generate_runs)

    @property
    def passed(self) -> bool:
        return self.generate_s < CRL_TARGET_S


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entries", type=int, default=2000,
                        help="people per CA (half issued one per transaction, half in batches)")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke test: {QUICK_ENTRIES} entries, "
                             f"{QUICK_SIGN_SECONDS:g} s of raw signing")
    parser.add_argument("--workdir", type=Path,
                        help="keep the data directories here instead of a temp dir")
    args = parser.parse_args()
    args.sign_seconds = SIGN_SECONDS
    if args.quick:
        args.entries, args.sign_seconds = QUICK_ENTRIES, QUICK_SIGN_SECONDS
    if args.entries < 2:
        parser.error("--entries must be at least 2")
    return args




def prepare(work: Path, key_type: str, entries: int) -> Config:
    data_dir = work / key_type
    certdir_cli("init", "--data-dir", str(data_dir), "--suffix", SUFFIX, "--no-ca")
    certdir_cli("ca", "init", "--data-dir", str(data_dir), "--name", CA_NAME,
                "--key-type", key_type)
    ldif = work / f"{key_type}-people.ldif"
    write_people(ldif, entries)
    certdir_cli("ldif", "import", "--data-dir", str(data_dir), "--quiet", str(ldif))
    return load(data_dir)


def signer(key: PrivateKey) -> Callable[[bytes], bytes]:
    """The CA key's raw signature, with the hash and padding its certificates use."""
    algorithm = signature_hash(key)
    if isinstance(key, rsa.RSAPrivateKey) and algorithm is not None:
        return lambda data: key.sign(data, padding.PKCS1v15(), algorithm)
    if isinstance(key, ec.EllipticCurvePrivateKey) and algorithm is not None:
        return lambda data: key.sign(data, ec.ECDSA(algorithm))
    raise BenchError(f"no raw signing benchmark for {type(key).__name__}")


def sign_rate(key: PrivateKey, seconds: float) -> float:
    sign = signer(key)
    algorithm = signature_hash(key)
    message = os.urandom(algorithm.digest_size if algorithm is not None else 32)
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(50):
            sign(message)
        count += 50
    return count / elapsed


def requests(count: int) -> tuple[bytes, ...]:
    """PKCS#10 requests for fresh P-256 keys (the subject comes from the entry)."""
    made = []
    for n in range(count):
        key = ec.generate_private_key(ec.SECP256R1())
        csr = (x509.CertificateSigningRequestBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, uid(n))]))
               .sign(key, hashes.SHA256()))
        made.append(csr.public_bytes(Encoding.DER))
    return tuple(made)


@contextmanager
def writing(dsa: DSA, authority: Authority) -> Iterator[DirectoryWriter]:
    """As certdir.ca_commands._writing: one transaction, acting as the CA."""
    with dsa.backend.transaction() as txn:
        yield DirectoryWriter(dsa, txn, dsa.parse_dn(authority.entry_dn))


def issue_rate(dsa: DSA, authority: Authority, jobs: Sequence[tuple[str, bytes]],
               batch: int) -> float:
    chosen = profile(authority.config.profiles, PROFILE)
    start = time.perf_counter()
    for first in range(0, len(jobs), batch):
        prepared = [issue.prepare(authority, csr, chosen, issue.holder_entry(dsa, holder),
                                  Origin.OFFICER, now())
                    for holder, csr in jobs[first:first + batch]]
        with writing(dsa, authority) as writer:
            for made in prepared:
                outcome = issue.commit(writer, made, now())
                if outcome.certificate is None:
                    raise BenchError(f"{made.holder}: not issued ({outcome.why})")
    return len(jobs) / (time.perf_counter() - start)


def measure_key(config: Config, dsa: DSA, authority: Authority, entries: int,
                sign_seconds: float, console: Console) -> KeyFigures:
    key_type = config.ca.key_type if config.ca else "?"
    console.print(f"  {key_type}: raw signing for {sign_seconds:g} s ...")
    signing = sign_rate(authority.key, sign_seconds)
    console.print(f"  {key_type}: {entries} P-256 requests ...")
    jobs = tuple(zip((person_dn(n) for n in range(entries)), requests(entries), strict=True))
    half = entries // 2
    console.print(f"  {key_type}: issuing {half} one per transaction ...")
    single = issue_rate(dsa, authority, jobs[:half], 1)
    console.print(f"  {key_type}: issuing {entries - half} in transactions of {BATCH} ...")
    batched = issue_rate(dsa, authority, jobs[half:], BATCH)
    return KeyFigures(key_type, signing, half, single, entries - half, batched)


def record_revoked(store: Store, template: bytes, issuer: str, when: dt.datetime,
                   count: int, recent: int) -> None:
    """Revoked certificates in the CA's records (DER `template`); `recent` of them
    revoked at `when` (after the last CRL), the others up to a year before it."""
    rng = random.Random(4)
    serials: set[int] = set()
    while len(serials) < count:
        serials.add(rng.getrandbits(159) | 1 << 158)
    for index, serial in enumerate(serials):
        reason = REASONS[index % len(REASONS)]
        revoked_at = when if index < recent else when - dt.timedelta(
            seconds=rng.randrange(3600, 365 * 86400))
        store.record(serial=serial, issuer=issuer, subject=f"CN={uid(index)}@example.com",
                     entry=None, profile=PROFILE, not_before=when - dt.timedelta(days=400),
                     not_after=when + dt.timedelta(days=400), der=template)
        store.set_status(serial, "hold" if reason == "certificateHold" else "revoked",
                         revoked_at, reason)


def insert_revoked(dsa: DSA, authority: Authority, when: dt.datetime) -> float:
    with writing(dsa, authority) as writer:
        store = Store(writer.records)
        issued = store.recent(1)
        if not issued:
            raise BenchError("no issued certificate to use as the revoked rows' DER")
        start = time.perf_counter()
        record_revoked(store, issued[0].der, authority.certificate.subject.rfc4514_string(),
                       when, CRL_REVOKED, CRL_RECENT)
    return time.perf_counter() - start


@contextmanager
def rolled_back(dsa: DSA, authority: Authority) -> Iterator[DirectoryWriter]:
    """A transaction like `writing`, left without committing: runs repeat identical work."""
    try:
        with writing(dsa, authority) as writer:
            yield writer
            raise RollBack
    except RollBack:
        pass


def generate_in(authority: Authority, writer: DirectoryWriter) -> CRLs:
    """`ca.crl.generate`'s read, sign and commit, in the benchmark's own transaction (so
    that repeated runs can be rolled back)."""
    made = crls.sign(authority, crls.read(Store(writer.records), now()))
    crls.commit(authority, writer, made)
    return made


def timed_generate(authority: Authority, writer: DirectoryWriter) -> tuple[float, CRLs]:
    start = time.perf_counter()
    made = generate_in(authority, writer)
    return time.perf_counter() - start, made


def builder_alone(dsa: DSA, authority: Authority, when: dt.datetime) -> float:
    """cryptography alone: revoked entries, builder, signature, DER; no store, no publish."""
    with dsa.backend.reading() as records:
        revocations = Store(records).revocations()
    algorithm = signature_hash(authority.key)
    start = time.perf_counter()
    entries = []
    for r in revocations:
        entry = x509.RevokedCertificateBuilder(r.serial, r.revoked_at)
        if r.reason != "unspecified":
            entry = entry.add_extension(x509.CRLReason(x509.ReasonFlags(r.reason)),
                                        critical=False)
        entries.append(entry.build())
    builder = x509.CertificateRevocationListBuilder(
        authority.certificate.subject, when, when + dt.timedelta(days=7), [], entries)
    builder.sign(authority.key, algorithm).public_bytes(Encoding.DER)
    return time.perf_counter() - start


def shown_path(filename: str) -> str:
    repo = str(REPO) + os.sep
    return filename.removeprefix(repo) if filename.startswith(repo) else Path(filename).name


def hot_spots(dsa: DSA, authority: Authority) -> tuple[str, ...]:
    """Where generate spends its time, from a profiled run that is rolled back."""
    profiler = cProfile.Profile()
    with rolled_back(dsa, authority) as writer:
        profiler.runcall(generate_in, authority, writer)
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    rows = sorted(stats.items(), key=lambda item: item[1][2], reverse=True)[:HOT_SPOTS]
    return tuple(
        f"{tottime:6.3f}s self {cumtime:6.3f}s cum {calls:>7} calls  "
        f"{shown_path(filename)}:{line}({function})"
        for (filename, line, function), (_, calls, tottime, cumtime, _) in rows
    )


def measure_crl(config: Config, dsa: DSA, authority: Authority,
                console: Console) -> CRLFigures:
    key_type = config.ca.key_type if config.ca else "?"
    when = now().replace(microsecond=0)
    console.print(f"  inserting {CRL_REVOKED} revoked certificates ...")
    insert_s = insert_revoked(dsa, authority, when)
    console.print(f"  generating the full and delta CRLs, {CRL_RUNS} times ...")
    runs = []
    for _ in range(CRL_RUNS - 1):
        with rolled_back(dsa, authority) as writer:
            runs.append(timed_generate(authority, writer)[0])
    with writing(dsa, authority) as writer:
        seconds, made = timed_generate(authority, writer)
        generated = time.perf_counter()
    commit_s = time.perf_counter() - generated
    runs.append(seconds)
    listed = len(list(made.full))
    if listed < CRL_REVOKED:
        raise BenchError(f"the full CRL lists {listed} certificates, expected {CRL_REVOKED}+")
    console.print(f"  cryptography's builder alone on the same list, {CRL_RUNS} times ...")
    builder_s = statistics.median(builder_alone(dsa, authority, when) for _ in range(CRL_RUNS))
    spots: tuple[str, ...] = ()
    if statistics.median(runs) >= CRL_TARGET_S:
        console.print("  target missed: profiling generate ...")
        spots = hot_spots(dsa, authority)
    return CRLFigures(key_type, listed, insert_s, tuple(runs), commit_s, builder_s,
                      len(made.full.public_bytes(Encoding.DER)), len(list(made.delta)), spots)



def report(console: Console, keys: Sequence[KeyFigures], crl: CRLFigures) -> None:
    table = Table(title=f"certdir CA: issue+publish (profile {PROFILE}, P-256 subjects) "
                        "against the CA key's raw signing")
    for column in ("CA key", "raw sign/s", "issued", "issue/s 1 per txn", "ratio",
                   "issued", f"issue/s {BATCH} per txn", "ratio"):
        table.add_column(column, justify="left" if column == "CA key" else "right")
    for k in keys:
        table.add_row(k.key_type, f"{k.sign_per_s:.0f}", str(k.issued_single),
                      f"{k.single_per_s:.0f}", f"{k.single_ratio:.3f}", str(k.issued_batched),
                      f"{k.batched_per_s:.0f}", f"{k.batched_ratio:.3f}")
    console.print(table)
    crl_table = Table(title=f"CRL of {crl.revoked} revoked certificates ({crl.key_type} CA)")
    crl_table.add_column("step")
    crl_table.add_column("seconds", justify="right")
    for step, seconds in (
            ("insert rows (executemany, one txn)", crl.insert_s),
            (f"ca.crl.generate, full + delta + publish (median of {CRL_RUNS})", crl.generate_s),
            (f"ca.crl.generate, best of {CRL_RUNS}", min(crl.generate_runs)),
            ("commit of the last run", crl.commit_s),
            (f"cryptography builder alone, full (median of {CRL_RUNS})", crl.builder_s)):
        crl_table.add_row(step, f"{seconds:.2f}")
    console.print(crl_table)
    console.print(f"full CRL {crl.full_bytes / 1e6:.1f} MB, delta CRL {crl.delta_entries} entries; "
                  f"generate / builder alone: {crl.generate_s / crl.builder_s:.2f}")
    console.print(f"target CRL of {CRL_REVOKED} in < {CRL_TARGET_S:g} s: "
                  f"{crl.generate_s:.2f} s {verdict(crl.passed)}")
    if crl.hot_spots:
        console.print("where generate spends its time (cProfile, by self time):")
        for line in crl.hot_spots:
            console.print(f"  {line}", markup=False, highlight=False, soft_wrap=True)
    print(json.dumps({
        "keys": [{**asdict(k), "single_ratio": round(k.single_ratio, 4),
                  "batched_ratio": round(k.batched_ratio, 4)} for k in keys],
        "batch": BATCH,
        "crl": {**asdict(crl), "generate_s": round(crl.generate_s, 3),
                "target_s": CRL_TARGET_S, "pass": crl.passed},
    }))



def run(args: argparse.Namespace, console: Console) -> None:
    keys, crl = [], None
    with work_directory(args.workdir, "certdir-ca-bench-") as work:
        for key_type in KEY_TYPES:
            console.print(f"{key_type} CA with {args.entries} people ...")
            config = prepare(work, key_type, args.entries)
            with opened(config) as (dsa, authority):
                keys.append(measure_key(config, dsa, authority, args.entries,
                                        args.sign_seconds, console))
                if key_type == CRL_KEY_TYPE:
                    console.print(f"{key_type} CA: CRL ...")
                    crl = measure_crl(config, dsa, authority, console)
    if crl is None:
        raise BenchError(f"no {CRL_KEY_TYPE} CA to measure the CRL with")
    report(Console(width=None if sys.stdout.isatty() else 120), keys, crl)



def main() -> int:
    return run_main(run, parse_args(), Console(stderr=True))


if __name__ == "__main__":
    sys.exit(main())
