"""The small address book the CA and KMS benchmarks load, the CLI they
drive it with (N inetOrgPerson entries with mail under ou=people), and
the unlocked CA and open directory they measure in process."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from harness import BenchError

from ca.authority import Authority, unlock
from certdir.config import Config
from certdir.directory_open import offline_directory
from directory.dsa import DSA

REPO = Path(__file__).resolve().parent.parent
SUFFIX = "dc=example,dc=com"
PEOPLE = f"ou=people,{SUFFIX}"


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def uid(n: int) -> str:
    return f"user{n:07d}"


def person_dn(n: int) -> str:
    return f"uid={uid(n)},{PEOPLE}"


def certdir_cli(*args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "certdir", *args], cwd=REPO,
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BenchError(f"certdir {' '.join(args[:2])} failed: {done.stderr[-2000:]}")


def write_people(path: Path, entries: int) -> None:
    with path.open("w") as out:
        out.write(f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n\n")
        for n in range(entries):
            out.write(f"dn: {person_dn(n)}\nobjectClass: inetOrgPerson\nuid: {uid(n)}\n"
                      f"cn: User {n}\nsn: User{n}\nmail: {uid(n)}@example.com\n\n")


@contextmanager
def opened(config: Config) -> Iterator[tuple[DSA, Authority]]:
    if config.ca is None:
        raise BenchError(f"{config.data_dir}: no ca section in certdir.yaml")
    authority = unlock(config.ca, config.data_dir, config.directory.suffix)
    with offline_directory(config) as dsa:
        yield dsa, authority
