"""Benchmark the key-management service: bulk token issue and token redemption.

- One data directory made the way an administrator would: `certdir init` (CA and
  KMS), then `certdir ldif import` of --entries people with `mail` under ou=people.
- Bulk token issue through the CLI: `certdir kms enroll-bulk --base ou=people,...
  --out tokens.csv` with no SMTP server configured, so every token goes to the CSV;
  wall time of the whole process, tokens per second, and the CSV must hold one token
  per person.
- The same work in process: `kms.enrollment.enroll_user` for every person in one
  transaction, opened as `certdir kms` opens it (KMS and CA tables ready, acting as
  the root DN). The difference to the CLI is start-up, search and CSV cost. These
  tokens supersede the CLI's, so they are the ones redeemed next.
- Redemption in process: `kms.enrollment.redeem_offline` for --redeem of those tokens,
  signed and sealed first, then one transaction (one fsync) each as `certdir kms enroll`
  does, on pre-generated P-256
  signing requests: two certificates issued and published, the encryption key
  generated (`kms.encryption_key_type`), escrowed and sealed into a PKCS#12. The
  vault is unlocked (Argon2id) once, outside the timing. As references, measured in
  the same run: generating the encryption key type alone, and sealing a redeemed
  key and its certificates into PKCS#12 alone (`enrollment.bundle`, PBKDF2 rounds
  `ca.keys.PBKDF2_ITERATIONS`).
- No targets: figures only. The exit status is 0 unless a step failed. The table
  goes to standard output followed by one JSON line; progress goes to standard error.

Usage: kms_bench.py [--entries 1000] [--redeem 100] [--quick] [--workdir DIR]
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from address_book import PEOPLE, SUFFIX, certdir_cli, now, opened, person_dn, uid, write_people
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding, pkcs12
from cryptography.x509.oid import NameOID
from harness import BenchError, run_main, work_directory
from rich.console import Console
from rich.table import Table

from ca import keys
from ca.authority import Authority
from certdir.config import Config, load
from directory.dsa import DSA
from directory.publisher import DirectoryWriter
from kms import enrollment
from kms.config import KMSConfig
from kms.vault import Vault, secret_from

P12_PASSWORD = b"pw"
QUICK_ENTRIES = 200
QUICK_REDEEM = 20
KEYGEN_SECONDS = 2.0
QUICK_KEYGEN_SECONDS = 0.5


@dataclass(frozen=True, slots=True)
class Figures:
    entries: int
    cli_tokens: int
    cli_s: float
    inprocess_tokens: int
    inprocess_s: float
    redeemed: int
    redeem_s: float
    encryption_key_type: str
    keygen_per_s: float
    pkcs12_per_s: float

    @property
    def cli_per_s(self) -> float:
        return self.cli_tokens / self.cli_s

    @property
    def inprocess_per_s(self) -> float:
        return self.inprocess_tokens / self.inprocess_s

    @property
    def redeem_per_s(self) -> float:
        return self.redeemed / self.redeem_s


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entries", type=int, default=1000, help="people to enroll")
    parser.add_argument("--redeem", type=int, default=100, help="tokens to redeem")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke test: {QUICK_ENTRIES} entries, {QUICK_REDEEM} redemptions, "
                             f"{QUICK_KEYGEN_SECONDS:g} s of key generation")
    parser.add_argument("--workdir", type=Path,
                        help="keep the data directory here instead of a temp dir")
    args = parser.parse_args()
    args.keygen_seconds = KEYGEN_SECONDS
    if args.quick:
        args.entries, args.redeem = QUICK_ENTRIES, QUICK_REDEEM
        args.keygen_seconds = QUICK_KEYGEN_SECONDS
    if args.entries < 1:
        parser.error("--entries must be at least 1")
    if not 0 < args.redeem <= args.entries:
        parser.error("--redeem must be between 1 and --entries")
    return args




def prepare(work: Path, entries: int) -> Config:
    data_dir = work / "data"
    certdir_cli("init", "--data-dir", str(data_dir), "--suffix", SUFFIX)
    ldif = work / "people.ldif"
    write_people(ldif, entries)
    certdir_cli("ldif", "import", "--data-dir", str(data_dir), "--quiet", str(ldif))
    return load(data_dir)


def bulk_cli(config: Config, out: Path) -> tuple[int, float]:
    """Tokens in the CSV and wall seconds of `certdir kms enroll-bulk`."""
    start = time.perf_counter()
    certdir_cli("kms", "enroll-bulk", "--data-dir", str(config.data_dir), "--base", PEOPLE,
                "--out", str(out))
    seconds = time.perf_counter() - start
    with out.open(newline="") as f:
        rows = [row for row in csv.DictReader(f) if row["token"]]
    return len(rows), seconds


def kms_of(config: Config) -> KMSConfig:
    if config.kms is None:
        raise BenchError(f"{config.data_dir}: no kms section after `certdir init`")
    return config.kms


@contextmanager
def session(dsa: DSA) -> Iterator[DirectoryWriter]:
    """As certdir.kms_commands._session: one transaction, acting as the root DN."""
    with dsa.backend.transaction() as txn:
        yield DirectoryWriter(dsa, txn, dsa.root_dn)


def enroll_all(dsa: DSA, kms: KMSConfig, entries: int) -> tuple[tuple[str, ...], float]:
    actor = str(dsa.root_dn)
    start = time.perf_counter()
    with session(dsa) as writer:
        issued = tuple(enrollment.enroll_user(writer, kms, person_dn(n), actor, now())
                       for n in range(entries))
    return issued, time.perf_counter() - start


def signing_requests(count: int) -> tuple[bytes, ...]:
    """PKCS#10 requests for fresh P-256 signing keys (the subject comes from the entry)."""
    made = []
    for n in range(count):
        key = ec.generate_private_key(ec.SECP256R1())
        csr = (x509.CertificateSigningRequestBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, uid(n))]))
               .sign(key, hashes.SHA256()))
        made.append(csr.public_bytes(Encoding.DER))
    return tuple(made)


def unlocked_vault(dsa: DSA, kms: KMSConfig) -> Vault:
    with session(dsa) as writer:
        return Vault.unlock(writer.records, secret_from(kms))


def redeem_all(dsa: DSA, authority: Authority, vault: Vault, kms: KMSConfig,
               issued: Sequence[str], requests: Sequence[bytes]) -> tuple[bytes, float]:
    """The last PKCS#12 made and the seconds all redemptions took."""
    sealed = b""
    start = time.perf_counter()
    for n, (token, csr) in enumerate(zip(issued, requests, strict=True)):
        done = enrollment.redeem_offline(authority, dsa, vault, kms, token, csr, P12_PASSWORD,
                                         now())
        if done.entry.lower() != person_dn(n).lower():
            raise BenchError(f"token {n} redeemed for {done.entry}, not {person_dn(n)}")
        sealed = done.pkcs12
    return sealed, time.perf_counter() - start


def keygen_rate(key_type: str, seconds: float) -> float:
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        keys.generate(key_type)
        count += 1
    return count / elapsed


def pkcs12_rate(sealed: bytes, seconds: float) -> float:
    """`enrollment.bundle` again on what one redemption sealed."""
    opened = pkcs12.load_pkcs12(sealed, P12_PASSWORD)
    if opened.key is None or opened.cert is None:
        raise BenchError("a redeemed PKCS#12 holds no key or no certificate")
    key, certificate = opened.key, opened.cert.certificate
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
                      | ed25519.Ed25519PrivateKey):
        raise BenchError(f"unexpected encryption key {type(key).__name__}")
    others = tuple(c.certificate for c in opened.additional_certs)
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        enrollment.bundle(key, certificate, others, "bench@example.com", P12_PASSWORD)
        count += 1
    return count / elapsed


def report(console: Console, f: Figures) -> None:
    table = Table(title=f"certdir KMS: enrollment of {f.entries} people")
    for column in ("step", "count", "seconds", "per second"):
        table.add_column(column, justify="left" if column == "step" else "right")
    for step, count, seconds in (
            ("`certdir kms enroll-bulk` (CLI process, tokens to CSV)", f.cli_tokens, f.cli_s),
            ("enrollment.enroll_user in process (one transaction)", f.inprocess_tokens,
             f.inprocess_s),
            ("enrollment.redeem in process (one transaction each)", f.redeemed, f.redeem_s)):
        table.add_row(step, str(count), f"{seconds:.2f}", f"{count / seconds:.1f}")
    console.print(table)
    console.print(f"CLI start-up and overhead: {f.cli_s - f.inprocess_s:.2f} s; "
                  f"each redemption takes {1000 / f.redeem_per_s:.1f} ms, of which "
                  f"{f.encryption_key_type} key generation alone {1000 / f.keygen_per_s:.1f} ms "
                  f"({f.keygen_per_s:.1f}/s) and PKCS#12 sealing alone "
                  f"{1000 / f.pkcs12_per_s:.1f} ms ({f.pkcs12_per_s:.1f}/s)")
    print(json.dumps({
        **asdict(f),
        "cli_per_s": round(f.cli_per_s, 2),
        "inprocess_per_s": round(f.inprocess_per_s, 2),
        "redeem_per_s": round(f.redeem_per_s, 2),
    }))


def run(args: argparse.Namespace, console: Console) -> None:
    with work_directory(args.workdir, "certdir-kms-bench-") as work:
        console.print(f"data directory with CA, KMS and {args.entries} people ...")
        config = prepare(work, args.entries)
        kms = kms_of(config)
        console.print("certdir kms enroll-bulk ...")
        cli_tokens, cli_s = bulk_cli(config, work / "tokens.csv")
        if cli_tokens != args.entries:
            raise BenchError(f"enroll-bulk wrote {cli_tokens} tokens for {args.entries} people")
        console.print(f"{args.redeem} P-256 signing requests ...")
        requests = signing_requests(args.redeem)
        with opened(config) as (dsa, authority):
            console.print("enroll_user in process ...")
            issued, inprocess_s = enroll_all(dsa, kms, args.entries)
            vault = unlocked_vault(dsa, kms)
            console.print(f"redeeming {args.redeem} tokens ...")
            sealed, redeem_s = redeem_all(dsa, authority, vault, kms, issued[:args.redeem],
                                          requests)
        console.print(f"{kms.encryption_key_type} key generation for "
                      f"{args.keygen_seconds:g} s ...")
        keygen = keygen_rate(kms.encryption_key_type, args.keygen_seconds)
        console.print(f"PKCS#12 sealing for {args.keygen_seconds:g} s ...")
        sealing = pkcs12_rate(sealed, args.keygen_seconds)
    report(Console(width=None if sys.stdout.isatty() else 120), Figures(
        args.entries, cli_tokens, cli_s, len(issued), inprocess_s, args.redeem, redeem_s,
        kms.encryption_key_type, keygen, sealing))


def main() -> int:
    return run_main(run, parse_args(), Console(stderr=True))


if __name__ == "__main__":
    sys.exit(main())
