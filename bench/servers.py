"""The two directory servers the benchmark compares, each loaded and started the same way.

- OpenLDAP slapd (Debian's /usr/sbin/slapd, back_mdb): a throwaway slapd.conf with the
  core, cosine and inetOrgPerson schemas, equality indexes on objectClass, mail, uid and cn,
  loglevel 0; data loaded offline with `slapadd -q`; served in the foreground (`-d 0`
  keeps slapd attached to its parent without printing debug output).
- certdir: `certdir init`, then `certdir ldif import` of the same population without the
  suffix entry (init made it), then `certdir serve` with `log.access: false` so the access
  log does not cost time under load, and one worker process per core (`workers`), as
  slapd runs its threads on every core.
- A server counts as up when its port accepts a TCP connection; it is stopped with SIGTERM
  and killed when it does not exit within a few seconds.
"""
from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml
from harness import BenchError

SLAPD = Path("/usr/sbin/slapd")
SLAPADD = Path("/usr/sbin/slapadd")
SCHEMA_DIR = Path("/etc/ldap/schema")
MODULE_DIR = Path("/usr/lib/ldap")
INSTALL_HINT = "install OpenLDAP with: apt-get install slapd ldap-utils"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0

SLAPD_CONF = """\
include {schema}/core.schema
include {schema}/cosine.schema
include {schema}/inetorgperson.schema
modulepath {modules}
moduleload back_mdb
loglevel 0
pidfile {work}/slapd.pid
argsfile {work}/slapd.args

database mdb
maxsize 4294967296
suffix "{suffix}"
rootdn "cn=admin,{suffix}"
rootpw {password}
directory {work}/mdb
index objectClass,mail,uid,cn eq
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def missing_slapd() -> str | None:
    """Why slapd cannot be benchmarked here, or None when it can."""
    for path in (SLAPD, SLAPADD, SCHEMA_DIR / "inetorgperson.schema"):
        if not path.exists():
            return f"{path} not found; {INSTALL_HINT}"
    return None


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
            if self.process.poll() is not None:
                raise BenchError(f"{self.name} exited ({self.process.returncode}): {self.tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise BenchError(f"{self.name} did not listen on port {self.port}: {self.tail()}")

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

    @property
    def conf(self) -> Path:
        return self.work / "slapd.conf"

    def prepare(self) -> None:
        (self.work / "mdb").mkdir(parents=True)
        self.conf.write_text(
            SLAPD_CONF.format(
                schema=SCHEMA_DIR,
                modules=MODULE_DIR,
                work=self.work,
                suffix=self.suffix,
                password=secrets.token_urlsafe(18),
            )
        )

    def load(self, ldif: Path) -> float:
        return run_timed(
            [str(SLAPADD), "-f", str(self.conf), "-l", str(ldif), "-q"], "slapadd"
        )

    def serve(self, port: int) -> Running:
        command = [str(SLAPD), "-f", str(self.conf), "-h", f"ldap://127.0.0.1:{port}/", "-d", "0"]
        return start("slapd", command, port, self.work / "slapd.log")


@dataclass(frozen=True, slots=True)
class Certdir:
    work: Path
    suffix: str
    repo: Path

    @property
    def data_dir(self) -> Path:
        return self.work / "data"

    def cli(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "certdir", *args]

    def prepare(self, port: int) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        run_timed(
            self.cli(
                "init",
                "--data-dir", str(self.data_dir),
                "--suffix", self.suffix,
                "--listen", f"ldap://127.0.0.1:{port}",
            ),
            "certdir init",
            cwd=self.repo,
        )
        config_path = self.data_dir / "certdir.yaml"
        config = yaml.safe_load(config_path.read_text())
        config.setdefault("log", {})["access"] = False
        config["workers"] = os.cpu_count() or 1
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))

    def load(self, ldif: Path) -> float:
        return run_timed(
            self.cli("ldif", "import", "--data-dir", str(self.data_dir), "--quiet", str(ldif)),
            "certdir ldif import",
            cwd=self.repo,
        )

    def serve(self, port: int) -> Running:
        command = self.cli("serve", "--data-dir", str(self.data_dir))
        return start("certdir", command, port, self.work / "certdir.log", cwd=self.repo)
