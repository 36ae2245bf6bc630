"""The two directory servers the benchmark compares, each loaded and started the same way.

- OpenLDAP slapd (Debian's /usr/sbin/slapd, back_mdb): a throwaway slapd.conf with the
  core, cosine and inetOrgPerson schemas, the {ARGON2} password scheme (Debian's argon2
  module, for the people who share one Argon2id hash), the indexes of
  `index_config.INDEXES`, loglevel 0; data loaded offline with `slapadd -q` (one LDIF after
  another); served in the foreground (`-d 0` keeps slapd attached to its parent without
  printing debug output).
- certdir: `certdir init --no-ca --no-kms` (the CA and the KMS are not under test, and
  without them certdir opens no http port), `--storage-url` passed through when given;
  then `certdir ldif import` of the same LDIFs, one after another (the book without the
  suffix entry: init made it), then `certdir serve` with `log.access: false` so the
  access log does not cost time under load (slapd runs with loglevel 0), `workers` as
  asked and `storage.indexes` from `index_config.INDEXES`: the mapping of kinds where
  certdir's configuration accepts it, else the list of names (equality only), or the form
  forced by the caller.
- Another certdir configuration (another `workers`) is a copy of the loaded data directory
  with its own port: on SQLite a copy of the database, on a `--storage-url` database the
  same database served by two front ends.
- A server counts as up when its port accepts a TCP connection; it is stopped with SIGTERM
  and killed when it does not exit within a few seconds. Its resident memory is the sum of
  VmRSS over the process and its descendants (certdir's workers), its CPU time likewise;
  it has settled when that CPU time grows by less than 5 % of a core over half a second.
- A benchmark against slapd exits with 2, after parsing its arguments and before any work,
  when slapd is not installed; otherwise as `harness.run_main` says.
"""
from __future__ import annotations

import argparse
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml
from harness import BenchError, run_main
from index_config import KINDS, NAMES, IndexForm, slapd_index_lines, storage_indexes
from rich.console import Console

SLAPD = Path("/usr/sbin/slapd")
SLAPADD = Path("/usr/sbin/slapadd")
SCHEMA_DIR = Path("/etc/ldap/schema")
MODULE_DIR = Path("/usr/lib/ldap")
INSTALL_HINT = "install OpenLDAP with: apt-get install slapd ldap-utils"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
SETTLE_TIMEOUT = 60.0
QUIET_WINDOW = 0.5
QUIET_SHARE = 0.05
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

SLAPD_CONF = """\
include {schema}/core.schema
include {schema}/cosine.schema
include {schema}/inetorgperson.schema
modulepath {module_dir}
{moduleloads}loglevel 0
pidfile {work}/slapd.pid
argsfile {work}/slapd.args

database mdb
maxsize 4294967296
suffix "{suffix}"
rootdn "cn=admin,{suffix}"
rootpw {password}
directory {work}/mdb
{nosync}{indexes}{database_lines}"""
# certdir's configuration loaded as `certdir serve` loads it, from the checkout under test.
CHECK_CONFIG = "import sys, pathlib, certdir.config as c; c.load(pathlib.Path(sys.argv[1]))"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def slapd_conf(work: Path, suffix: str, password: str, *, modules: Sequence[str] = (),
               durable: bool = True, database_lines: str = "") -> str:
    """slapd.conf of one back_mdb database in `work`: back_mdb and `modules` loaded, root DN
    `cn=admin,<suffix>`, `dbnosync` unless `durable`, the indexes of `index_config.INDEXES`,
    then `database_lines`."""
    return SLAPD_CONF.format(
        schema=SCHEMA_DIR,
        module_dir=MODULE_DIR,
        moduleloads="".join(f"moduleload {name}\n" for name in ("back_mdb", *modules)),
        work=work,
        suffix=suffix,
        password=password,
        nosync="" if durable else "dbnosync\n",
        indexes=slapd_index_lines(),
        database_lines=database_lines,
    )


def missing_slapd() -> str | None:
    """Why slapd cannot be benchmarked here, or None when it can."""
    for path in (SLAPD, SLAPADD, SCHEMA_DIR / "inetorgperson.schema"):
        if not path.exists():
            return f"{path} not found; {INSTALL_HINT}"
    return None


def run_with_slapd(run: Callable[[argparse.Namespace, Console], None],
                   args: argparse.Namespace) -> int:
    """`harness.run_main(run, args, ...)` with a console on stderr, or 2 without slapd."""
    console = Console(stderr=True)
    problem = missing_slapd()
    if problem is not None:
        console.print(f"cannot compare with slapd: {problem}")
        return 2
    return run_main(run, args, console)


def process_tree(root: int) -> list[int]:
    """`root` and its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, pending = [], [root]
    while pending:
        pid = pending.pop()
        tree.append(pid)
        pending.extend(children.get(pid, ()))
    return tree


def cpu_seconds(root: int) -> float:
    """User and system CPU time of `root` and its descendants."""
    ticks = 0
    for pid in process_tree(root):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / CLOCK_TICKS


def resident_bytes(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def run_timed(command: list[str], what: str, cwd: Path | None = None) -> float:
    """Run a command to completion and return its wall time in seconds."""
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise BenchError(f"{what} failed ({done.returncode}): {done.stderr[-2000:]}")
    return elapsed


@dataclass(slots=True)
class Running:
    """One started server process and the file its output goes to."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise BenchError(f"{self.name} did not listen on port {self.port}: {self.tail()}")

    def settle(self) -> float:
        """Wait until the server has finished the work of the last load (a queue of
        password hashes, say): less than `QUIET_SHARE` of a core over `QUIET_WINDOW`
        seconds, or `SETTLE_TIMEOUT`. Returns the seconds waited."""
        begin = time.monotonic()
        used = cpu_seconds(self.process.pid)
        while time.monotonic() - begin < SETTLE_TIMEOUT:
            time.sleep(QUIET_WINDOW)
            now = cpu_seconds(self.process.pid)
            if now - used < QUIET_SHARE * QUIET_WINDOW:
                break
            used = now
        return time.monotonic() - begin

    def rss_bytes(self) -> int:
        """Resident memory of the server: its process and every descendant."""
        return sum(resident_bytes(pid) for pid in process_tree(self.process.pid))

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise BenchError(f"{self.name} exited ({self.process.returncode}): {self.tail()}")

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start(name: str, command: list[str], port: int, log: Path, cwd: Path | None = None) -> Running:
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
        )
    server = Running(name, port, process, log)
    try:
        server.wait_ready()
    except BaseException:
        server.stop()
        raise
    return server


@dataclass(frozen=True, slots=True)
class Slapd:
    work: Path
    suffix: str
    port: int

    @property
    def conf(self) -> Path:
        return self.work / "slapd.conf"

    def prepare(self) -> None:
        (self.work / "mdb").mkdir(parents=True)
        self.conf.write_text(
            slapd_conf(self.work, self.suffix, secrets.token_urlsafe(18), modules=("argon2",))
        )

    def load(self, ldif: Path) -> float:
        return run_timed(
            [str(SLAPADD), "-f", str(self.conf), "-l", str(ldif), "-q"], "slapadd"
        )

    def serve(self) -> Running:
        command = [
            str(SLAPD), "-f", str(self.conf), "-h", f"ldap://127.0.0.1:{self.port}/", "-d", "0"
        ]
        return start("slapd", command, self.port, self.work / "slapd.log")


@dataclass(frozen=True, slots=True)
class Certdir:
    """One certdir data directory, served on `port` by `workers` processes."""

    work: Path
    suffix: str
    repo: Path
    port: int
    workers: int

    @property
    def name(self) -> str:
        return f"certdir w{self.workers}"

    @property
    def data_dir(self) -> Path:
        return self.work / "data"

    @property
    def config_path(self) -> Path:
        return self.data_dir / "certdir.yaml"

    def cli(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "certdir", *args]

    def prepare(self, storage_url: str | None, form: IndexForm | None) -> IndexForm:
        """Initialise the data directory; returns the form `storage.indexes` was written in
        (`form`, or when None the mapping of kinds if certdir accepts it, else names)."""
        self.work.mkdir(parents=True, exist_ok=True)
        url = () if storage_url is None else ("--storage-url", storage_url)
        run_timed(
            self.cli(
                "init", "--data-dir", str(self.data_dir), "--suffix", self.suffix,
                "--listen", f"ldap://127.0.0.1:{self.port}", "--no-ca", "--no-kms", *url,
            ),
            "certdir init",
            cwd=self.repo,
        )
        chosen = KINDS if form is None else form
        self.configure(chosen)
        refusal = self.config_refusal()
        if refusal is None:
            return chosen
        if form is None and "storage.indexes" in refusal:
            self.configure(NAMES)
            return NAMES
        raise BenchError(f"certdir refused its configuration: {refusal}")

    def configure(self, form: IndexForm) -> None:
        config = yaml.safe_load(self.config_path.read_text())
        config.setdefault("log", {})["access"] = False
        config["workers"] = self.workers
        config["listen"] = [f"ldap://127.0.0.1:{self.port}"]
        config.setdefault("storage", {})["indexes"] = storage_indexes(form)
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))

    def config_refusal(self) -> str | None:
        done = subprocess.run(
            [sys.executable, "-c", CHECK_CONFIG, str(self.data_dir)],
            cwd=self.repo, capture_output=True, text=True, check=False,
        )
        return None if done.returncode == 0 else done.stderr.strip().splitlines()[-1]

    def load(self, ldif: Path) -> float:
        return run_timed(
            self.cli("ldif", "import", "--data-dir", str(self.data_dir), "--quiet", str(ldif)),
            "certdir ldif import",
            cwd=self.repo,
        )

    def copy(self, work: Path, port: int, workers: int, form: IndexForm) -> Certdir:
        """The same loaded data directory served on `port` by `workers` processes."""
        other = Certdir(work, self.suffix, self.repo, port, workers)
        work.mkdir(parents=True, exist_ok=True)
        shutil.copytree(self.data_dir, other.data_dir)
        other.configure(form)
        return other

    def serve(self) -> Running:
        command = self.cli("serve", "--data-dir", str(self.data_dir))
        return start(self.name, command, self.port, self.work / "certdir.log", cwd=self.repo)
