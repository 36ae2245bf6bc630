"""A throwaway PostgreSQL cluster for the tests and benchmarks (Debian's postgresql).

- `CERTDIR_TEST_PG_URL` names a server to use instead (a superuser URL,
  e.g. `postgresql://postgres@127.0.0.1:5432/postgres`); otherwise
  `start()` runs `initdb` and `postgres` from Debian's newest
  /usr/lib/postgresql/*/bin on a free port, in a temporary directory, and
  `stop()` removes it all.
- initdb refuses to run as root: as root the cluster belongs to the
  `postgres` system user (`runuser`).
- The superuser `postgres` is trusted from 127.0.0.1 (the cluster listens
  on loopback only and lives as long as the test session); every other
  role logs in with its password (scram-sha-256), so a test of a storage
  URL's password means what it says. fsync stays on, so a kill -9 test
  means what it says too.
- `database()` creates a fresh database and returns its URL: every certdir
  under test gets its own. `copy(url)` makes a new database holding what
  that one holds (pg_dump into psql, which works while a server uses it).
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

from tests.ports import free_port

URL_VARIABLE = "CERTDIR_TEST_PG_URL"
SUPERUSER = "postgres"
HBA = (f"local all {SUPERUSER} trust\n"
       f"host all {SUPERUSER} 127.0.0.1/32 trust\n"
       "host all all 127.0.0.1/32 scram-sha-256\n")


def _bin_dir() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                   key=lambda p: int(p.parent.parent.name))
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    if initdb is None:
        raise RuntimeError("PostgreSQL is not installed; `make test` installs it")
    return Path(initdb).parent


def tool(name: str) -> str:
    """The path of one of PostgreSQL's programs (pg_dump, psql, pg_amcheck, ...)."""
    return str(_bin_dir() / name)


def _as_owner(command: list[str]) -> list[str]:
    return ["runuser", "-u", SUPERUSER, "--", *command] if os.geteuid() == 0 else command


@dataclass
class Cluster:
    url: str
    directory: Path | None = None
    process: subprocess.Popen[bytes] | None = None
    _names: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def database(self, prefix: str = "certdir") -> str:
        """A new, empty database; its URL."""
        name = f"{prefix}_{os.getpid()}_{next(self._names)}"
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        parts = urlsplit(self.url)
        return urlunsplit((parts.scheme, parts.netloc, f"/{name}", "", ""))

    def copy(self, url: str) -> str:
        """A new database with the tables and rows of the one at `url`; its URL."""
        copy = self.database("copy")
        dump = subprocess.run([tool("pg_dump"), "--no-owner", "--no-privileges",
                               "--dbname", url], check=True, capture_output=True, timeout=120)
        subprocess.run([tool("psql"), "--quiet", "--no-psqlrc", "--set",
                        "ON_ERROR_STOP=1", "--dbname", copy], input=dump.stdout, check=True,
                       capture_output=True, timeout=120)
        return copy

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None


def start() -> Cluster:
    """The server `CERTDIR_TEST_PG_URL` names, or a new cluster on a free port."""
    given = os.environ.get(URL_VARIABLE)
    if given:
        return Cluster(given)
    bin_dir = _bin_dir()
    directory = Path(tempfile.mkdtemp(prefix="certdir-pg-"))
    if os.geteuid() == 0:
        shutil.chown(directory, SUPERUSER, SUPERUSER)
    data = directory / "data"
    subprocess.run(_as_owner([str(bin_dir / "initdb"), "-D", str(data), "-U", SUPERUSER,
                              "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"]),
                   check=True, capture_output=True, timeout=120)
    (data / "pg_hba.conf").write_text(HBA)
    port = free_port()
    with (directory / "postgres.log").open("ab") as log:
        process = subprocess.Popen(
            _as_owner([str(bin_dir / "postgres"), "-D", str(data), "-p", str(port),
                       "-c", "listen_addresses=127.0.0.1",
                       "-c", f"unix_socket_directories={directory}",
                       "-c", "max_connections=300"]),
            stdout=log, stderr=subprocess.STDOUT)
    url = f"postgresql://{SUPERUSER}@127.0.0.1:{port}/postgres"
    cluster = Cluster(url, directory, process)
    deadline = time.monotonic() + 60
    while True:
        try:
            psycopg.connect(url, connect_timeout=2).close()
            return cluster
        except psycopg.OperationalError:
            if process.poll() is not None or time.monotonic() > deadline:
                log_text = (directory / "postgres.log").read_text(errors="replace")
                cluster.stop()
                raise RuntimeError(f"PostgreSQL did not start:\n{log_text[-2000:]}") from None
            time.sleep(0.1)
