"""A real certdir on free ports for each test module, driven by real clients.

`certdir init` and `certdir serve` run as separate processes exactly as an
administrator runs them; tests talk to the server only over the network.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

SUFFIX = "dc=example,dc=com"
CERTDIR = [sys.executable, "-m", "certdir"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"certdir serve exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"certdir did not listen on {port} within {timeout} s")


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
             check: bool = False) -> subprocess.CompletedProcess[bytes]:
        """Run an ldap-utils command (ldapsearch, ldapmodify, ...) against the server,
        bound as the root DN unless `bind` is False."""
        auth = ["-x", "-D", self.root_dn, "-w", self.root_password] if bind else ["-x"]
        return subprocess.run([name, "-H", self.uri, *auth, *args], input=input,
                              capture_output=True, check=check, env=self.env(), timeout=60)

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

    def start(self) -> None:
        with self.log_file.open("ab") as log:
            self.proc = subprocess.Popen([*CERTDIR, "serve", "--data-dir", str(self.data_dir)],
                                         stdout=log, stderr=subprocess.STDOUT, env=self.env())
        wait_for_port(self.port, self.proc)

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


def make_server(tmp: Path, *init_args: str) -> Server:
    server = Server(data_dir=tmp / "data", port=free_port(), ldaps_port=free_port(),
                    http_port=free_port(), https_port=free_port())
    subprocess.run([*CERTDIR, "init", "--data-dir", str(server.data_dir), "--suffix", SUFFIX,
                    "--listen", server.uri, "--listen", server.ldaps_uri,
                    "--http-listen", server.http_url, "--http-listen", server.https_url,
                    *init_args], check=True, capture_output=True, timeout=120)
    return server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A fresh, running certdir with only its suffix entry, one per test module:
    the directory alone (`--no-ca`), so scenarios see no CA entries; the CA's
    scenarios (test020-024) make servers with a CA."""
    srv = make_server(tmp_path_factory.mktemp("certdir"), "--no-ca")
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
