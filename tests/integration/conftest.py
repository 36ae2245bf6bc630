"""A real certdir on free ports for each test module, driven by real clients.

`certdir init` and `certdir serve` run as separate processes exactly as an
administrator runs them; tests talk to the server only over the network.

- Every server of a session stores in the backend `--storage` names
  (tests/conftest.py): SQLite in its data directory, or on postgresql a
  fresh database of the session's cluster (`make_server` passes
  `--storage-url` unless the test gives its own; a test running `certdir
  init` itself adds `STORAGE.init_args()`). Every test id ends in the storage's name.
- `@pytest.mark.only_on(storage, reason)` marks a test about one backend
  itself (SQLite's file, PostgreSQL's URL and roles): on the other it is
  skipped with that reason, never for failing there.
- `make_server`'s servers hash and verify passwords with Argon2id at its
  least work (FAST_PASSWORDS), the root DN's included, and the keys init
  derives from its generated passphrases are re-derived cheaply: the CA
  key's PBKDF2 rounds (FAST_KEY_ROUNDS) and the KMS vault's Argon2id
  (FAST_VAULT), both read from the key file and the vault's row. A
  scenario of that work's own cost asks for init's (`fast_passwords=False`).
- `database_rows` and `copy_data_dir` reach a data directory's tables behind
  the server's back (what a test of tampering or of the CA's records needs)
  on either backend, following its certdir.yaml.
- Ports come from `tests.ports` (reserved across concurrent runs, never
  one the kernel hands to outgoing connections). `Server.start` returns
  only once serve says every listener is up, never on a process that is
  exiting; a port taken anyway since it was picked moves to a fresh one
  and serve runs again, a bounded number of times.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from psycopg.conninfo import make_conninfo

from ca.keys import decrypt_private_key, encrypt_private_key
from directory.passwords import Hashing, HashPolicy
from kms.vault import KDFCost
from tests import pg_cluster
from tests.ports import free_port

SUFFIX = "dc=example,dc=com"
CERTDIR = [sys.executable, "-m", "certdir"]
# Argon2id's least work (one pass over 8 MiB, one lane) for the servers of
# `make_server`: every ldap-utils command of a test binds as the root DN, and
# at the default cost (three passes over 64 MiB) each such bind cost the
# server a quarter of a second of CPU, a quarter of the suite's in all. The
# code that hashes and verifies is the same; the scenarios of that work's
# own cost (test066) keep init's hash and the default policy.
FAST_PASSWORDS = HashPolicy(time_cost=1, memory_kib=8192, parallelism=1)
# The same for the keys derived from init's passphrases, which every start
# with a CA or a KMS, every signing `certdir ca` command and every `certdir
# kms` command derives again: a fifth of a second or more each at the
# product's costs (PBKDF2 600,000 rounds; Argon2id three passes over 64 MiB).
FAST_KEY_ROUNDS = 1000
FAST_VAULT = KDFCost(time_cost=1, memory_kib=8192, parallelism=1)


@dataclass
class Storage:
    """The backend this session's servers store in; set once by the `storage` fixture."""

    name: str = "sqlite"
    cluster: pg_cluster.Cluster | None = None

    def init_args(self) -> tuple[str, ...]:
        """What `certdir init` needs to store there: a fresh database on PostgreSQL."""
        if self.cluster is None:
            return ()
        return ("--storage-url", self.cluster.database())


STORAGE = Storage()


def storage_url(data_dir: Path) -> str | None:
    """The PostgreSQL URL a data directory's certdir.yaml names, if it names one."""
    settings = yaml.safe_load((data_dir / "certdir.yaml").read_text())
    url: str | None = (settings.get("storage") or {}).get("url")
    return url


def sqlite_file(data_dir: Path) -> Path:
    settings = yaml.safe_load((data_dir / "certdir.yaml").read_text())
    path: str = (settings.get("storage") or {}).get("path", "certdir.db")
    return data_dir / path


def database_rows(data_dir: Path, query: str, *parameters: object) -> list[tuple[Any, ...]]:
    """Run one statement (`?` placeholders) on the data directory's database, committed;
    the rows it returns."""
    url = storage_url(data_dir)
    if url is None:
        with closing(sqlite3.connect(sqlite_file(data_dir))) as db:
            rows = db.execute(query, parameters).fetchall()
            db.commit()
            return rows
    passfile = data_dir / "secrets" / "storage-password"
    conninfo = make_conninfo(url, passfile=str(passfile)) if passfile.exists() else url
    with psycopg.connect(conninfo, autocommit=True) as conn:
        if parameters:
            cursor = conn.execute(query.replace("%", "%%").replace("?", "%s"), parameters)
        else:
            cursor = conn.execute(query)
        return [] if cursor.description is None else [tuple(row) for row in cursor]


def copy_data_dir(source: Path, destination: Path) -> None:
    """A copy of a data directory and of its database, the copy independent of the original."""
    shutil.copytree(source, destination)
    url = storage_url(source)
    if url is None:
        return
    assert STORAGE.cluster is not None, "a PostgreSQL data directory outside --storage=postgresql"
    copy = STORAGE.cluster.copy(url)
    config = destination / "certdir.yaml"
    settings = yaml.safe_load(config.read_text())
    settings["storage"]["url"] = copy
    config.write_text(yaml.safe_dump(settings, sort_keys=False))


class ServeExited(RuntimeError):
    """`certdir serve` ended before it served; `output` is what it printed."""

    def __init__(self, returncode: int, output: str) -> None:
        super().__init__(f"certdir serve exited with {returncode}:\n{output}")
        self.output = output


# Logged once every listener is up, by the only process (or by worker 0, the
# one that listens on https: the other workers log it behind a `[N]`).
SERVING = " certdir certdir serving "
# `cannot listen on URL: ...Address already in use...; URL: ...`, one item per URL.
TAKEN = re.compile(r"(?:on |; )(?:ldaps?|https?)://127\.0\.0\.1:(\d+): [^;\n]*"
                   r"Address already in use")
START_ATTEMPTS = 5


def wait_until_serving(proc: subprocess.Popen[bytes], log_file: Path, offset: int = 0,
                       timeout: float = 60.0) -> None:
    """Return once the `certdir serve` in `proc`, printing to `log_file` from
    `offset` on, serves on every URL it was given; raise ServeExited if it
    exits first, however briefly a port of it listened (and kill it if it
    does neither within `timeout`)."""
    deadline = time.monotonic() + timeout
    while True:
        exited = proc.poll() is not None
        with log_file.open("rb") as log:
            log.seek(offset)
            said = log.read().decode(errors="replace")
        if exited:
            raise ServeExited(proc.returncode, said)
        if SERVING in said:
            return
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise RuntimeError(f"certdir serve did not serve within {timeout} s:\n{said}")
        time.sleep(0.05)


@dataclass
class Server:
    """One certdir instance: its data directory, ports and credentials."""

    data_dir: Path
    port: int
    ldaps_port: int
    http_port: int = 0
    https_port: int = 0
    suffix: str = SUFFIX
    proc: subprocess.Popen[bytes] | None = None
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def uri(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def ldaps_uri(self) -> str:
        return f"ldaps://127.0.0.1:{self.ldaps_port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def https_url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    @property
    def root_dn(self) -> str:
        return f"cn=admin,{self.suffix}"

    @property
    def root_password(self) -> str:
        return (self.data_dir / "secrets" / "root-password").read_text().strip()

    @property
    def ca_file(self) -> Path:
        return self.data_dir / "public" / "ca.pem"

    def env(self) -> dict[str, str]:
        return {**os.environ, "LDAPTLS_CACERT": str(self.ca_file), **self.extra_env}

    def certdir(self, *args: str, input: bytes | None = None,
                check: bool = True) -> subprocess.CompletedProcess[bytes]:
        """Run a `certdir` CLI command against this data directory."""
        return subprocess.run([*CERTDIR, *args], input=input, capture_output=True,
                              check=check, env=self.env(), timeout=300)

    def tool(self, name: str, *args: str, input: bytes | None = None, bind: bool = True,
             check: bool = False, timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
        """Run an ldap-utils command (ldapsearch, ldapmodify, ...) against the server,
        bound as the root DN unless `bind` is False."""
        auth = ["-x", "-D", self.root_dn, "-w", self.root_password] if bind else ["-x"]
        return subprocess.run([name, "-H", self.uri, *auth, *args], input=input,
                              capture_output=True, check=check, env=self.env(), timeout=timeout)

    def configure(self, section: str | None = None, **values: Any) -> None:
        """Set keys of certdir.yaml (of `section`, or at the top), before `start`."""
        path = self.data_dir / "certdir.yaml"
        settings = yaml.safe_load(path.read_text())
        (settings if section is None else settings.setdefault(section, {})).update(values)
        path.write_text(yaml.safe_dump(settings, sort_keys=False))

    @property
    def log_file(self) -> Path:
        return self.data_dir / "serve.log"

    def log(self) -> str:
        """Everything the server printed so far (a file, so a busy access log
        never blocks the server the way an unread pipe would)."""
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def logged(self, text: str, timeout: float = 10.0) -> str:
        """The server's log once it holds `text`: an access-log line follows the
        answer it describes, so a client can finish before the line is written."""
        deadline = time.monotonic() + timeout
        while text not in (log := self.log()):
            assert time.monotonic() < deadline, f"{text!r} never logged"
            time.sleep(0.05)
        return log

    def start(self) -> None:
        """Run `certdir serve`; return once it serves on every URL. A port of
        this server that another process took since it was picked moves to a
        fresh one (in certdir.yaml and here) and serve runs again, up to
        START_ATTEMPTS times; a restart on the same ports needs no move."""
        for attempt in range(1, START_ATTEMPTS + 1):
            offset = self.log_file.stat().st_size if self.log_file.exists() else 0
            with self.log_file.open("ab") as log:
                self.proc = subprocess.Popen(
                    [*CERTDIR, "serve", "--data-dir", str(self.data_dir)],
                    stdout=log, stderr=subprocess.STDOUT, env=self.env())
            try:
                wait_until_serving(self.proc, self.log_file, offset)
                return
            except ServeExited as exited:
                self.proc = None
                taken = {int(port) for port in TAKEN.findall(exited.output)}
                if not taken or attempt == START_ATTEMPTS:
                    raise
                self.move(taken)

    def move(self, taken: set[int]) -> None:
        """Give each of these ports of the server a fresh one: its attribute
        here and every ldap(s)/http(s) URL of certdir.yaml that names it."""
        fields = ("port", "ldaps_port", "http_port", "https_port")
        ours = {getattr(self, name) for name in fields}
        if not taken <= ours:
            raise RuntimeError(f"ports {sorted(taken - ours)} are not this server's to move")
        fresh = {port: free_port() for port in taken}
        for name in fields:
            setattr(self, name, fresh.get(getattr(self, name), getattr(self, name)))
        path = self.data_dir / "certdir.yaml"
        path.write_text(re.sub(
            r"((?:ldaps?|https?)://127\.0\.0\.1:)(\d+)(?!\d)",
            lambda url: url.group(1) + str(fresh.get(int(url.group(2)), url.group(2))),
            path.read_text()))

    def stop(self) -> str:
        """Stop the server (SIGTERM) and return what it printed."""
        assert self.proc is not None
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
        return self.log()

    def kill(self) -> None:
        """kill -9: no chance to flush or close anything."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()
        self.proc = None


def cheapen_ca_key(data_dir: Path) -> None:
    """The CA key init wrote, encrypted again under its passphrase with FAST_KEY_ROUNDS."""
    key_file = data_dir / "ca" / "key.pem"
    if not key_file.exists():
        return
    passphrase = (data_dir / "secrets" / "ca-passphrase").read_bytes().strip()
    key = decrypt_private_key(key_file.read_bytes(), passphrase, "the CA key")
    key_file.write_bytes(encrypt_private_key(key, passphrase, iterations=FAST_KEY_ROUNDS))


def cheapen_vault(data_dir: Path) -> None:
    """The KMS master key init made, wrapped again under its passphrase with FAST_VAULT."""
    secret_file = data_dir / "secrets" / "kms-passphrase"
    if not secret_file.exists():
        return
    secret = secret_file.read_bytes().strip()
    [(time_cost, memory_kib, parallelism, salt, nonce, wrapped)] = database_rows(
        data_dir, "SELECT time_cost, memory_kib, parallelism, salt, nonce, wrapped FROM kms_vault")
    master = KDFCost(time_cost, memory_kib, parallelism).unwrap(
        secret, bytes(salt), bytes(nonce), bytes(wrapped))
    database_rows(data_dir, "UPDATE kms_vault SET time_cost = ?, memory_kib = ?,"
                  " parallelism = ?, salt = ?, nonce = ?, wrapped = ?",
                  *FAST_VAULT.wrap(master, secret))


def make_server(tmp: Path, *init_args: str, fast_passwords: bool = True) -> Server:
    """`certdir init` on free ports; with `fast_passwords`, Argon2id at the
    suite's own cost (FAST_PASSWORDS) for the root's password and new
    hashes, and init's CA key and KMS vault re-derived cheaply."""
    server = Server(data_dir=tmp / "data", port=free_port(), ldaps_port=free_port(),
                    http_port=free_port(), https_port=free_port())
    subprocess.run([*CERTDIR, "init", "--data-dir", str(server.data_dir), "--suffix", SUFFIX,
                    "--listen", server.uri, "--listen", server.ldaps_uri,
                    "--http-listen", server.http_url, "--http-listen", server.https_url,
                    *(() if "--storage-url" in init_args else STORAGE.init_args()),
                    *init_args], check=True, capture_output=True, timeout=120)
    if fast_passwords:
        hashing = Hashing(FAST_PASSWORDS)
        server.configure("root", password_hash=hashing.hash(server.root_password.encode()).decode())
        server.configure("passwords", time_cost=FAST_PASSWORDS.time_cost,
                         memory_kib=FAST_PASSWORDS.memory_kib,
                         parallelism=FAST_PASSWORDS.parallelism)
        cheapen_ca_key(server.data_dir)
        cheapen_vault(server.data_dir)
    return server


@pytest.hookimpl(trylast=True)
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "storage" in metafunc.fixturenames:
        metafunc.parametrize("storage", [metafunc.config.getoption("storage")],
                             indirect=True, scope="session")


@pytest.fixture(scope="session", autouse=True)
def storage(request: pytest.FixtureRequest) -> Iterator[Storage]:
    """The session's backend; on postgresql the session's cluster (tests/conftest.py)."""
    STORAGE.name = request.param
    if STORAGE.name == "postgresql":
        STORAGE.cluster = request.getfixturevalue("cluster")
    yield STORAGE
    STORAGE.cluster = None
    STORAGE.name = "sqlite"


def pytest_runtest_setup(item: pytest.Item) -> None:
    marker = item.get_closest_marker("only_on")
    if marker is not None and item.config.getoption("storage") != marker.args[0]:
        storage, reason = marker.args
        pytest.skip(f"{storage} only: {reason}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A fresh, running certdir with only its suffix entry, one per test module:
    the directory alone (`--no-ca --no-kms`), so scenarios see no CA entries;
    the CA's and the KMS's scenarios make servers with them."""
    srv = make_server(tmp_path_factory.mktemp("certdir"), "--no-ca", "--no-kms")
    srv.start()
    yield srv
    if srv.proc is not None:
        log = srv.stop()
        if "Traceback" in log:
            pytest.fail(f"server printed a traceback:\n{log}")


@pytest.fixture(scope="session", autouse=True)
def _ldap_utils() -> None:
    if shutil.which("ldapsearch") is None:
        pytest.fail("ldap-utils are not installed; `make test` installs them")
