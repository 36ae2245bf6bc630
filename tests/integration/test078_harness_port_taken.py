"""Scenario 078: the harness's own start, when a port it picked is taken.

- A port of the server (LDAP, LDAPS, http, https) that another socket holds
  when `Server.start` runs: serve exits with Address already in use, and
  start moves that port to a fresh one (certdir.yaml and the Server) and
  runs serve again; the server then answers on all four ports with real
  clients, the taken port left to its holder.
- serve exiting for any other reason after its LDAP port listened (a web
  URL on an address this host does not have) is an error of start with
  serve's own line, never a ready server.
- A restart after kill -9 runs on the same ports: nothing is moved.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator

import pytest

from tests.integration.conftest import ServeExited, Server, make_server

PORTS = ("port", "ldaps_port", "http_port", "https_port")
# TEST-NET-1 (RFC 5737): an address no host of this test has.
ABSENT = "192.0.2.1"


@pytest.fixture(scope="module")
def stopped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server with a CA (so it listens on the web ports too), started by each test."""
    server = make_server(tmp_path_factory.mktemp("port-taken"))
    yield server
    if server.proc is not None:
        server.stop()


def answers(server: Server) -> tuple[str, str, str, str]:
    """What ldapwhoami says on ldap:// and ldaps://, what curl gets over http and https."""
    password = str(server.data_dir / "secrets" / "root-password")

    def run(*command: str) -> str:
        done = subprocess.run(command, capture_output=True, text=True, env=server.env(),
                              timeout=60, check=False)
        return f"{done.returncode} {done.stdout.strip()}"

    whoami = ("ldapwhoami", "-x", "-D", server.root_dn, "-y", password, "-H")
    status = ("curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert",
              str(server.ca_file))
    return (run(*whoami, server.uri), run(*whoami, server.ldaps_uri),
            run(*status, f"{server.http_url}/Example-Root-CA.crt"),
            run(*status, f"{server.https_url}/Example-Root-CA.crt"))


def expected(server: Server) -> tuple[str, str, str, str]:
    return (f"0 dn:{server.root_dn}", f"0 dn:{server.root_dn}", "0 200", "0 200")


@pytest.mark.parametrize("which", PORTS)
def test_a_taken_port_moves_and_the_server_answers(stopped: Server, which: str) -> None:
    held = getattr(stopped, which)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", held))
        holder.listen()
        stopped.start()
        try:
            seen = (getattr(stopped, which) != held,
                    f"127.0.0.1:{held}: [Errno 98] Address already in use" in stopped.log(),
                    answers(stopped))
        finally:
            stopped.stop()
    assert seen == (True, True, expected(stopped))


def test_serve_exiting_after_ldap_listened_is_an_error(stopped: Server) -> None:
    config = stopped.data_dir / "certdir.yaml"
    original = config.read_text()
    url = f"http://{ABSENT}:{stopped.http_port}"
    stopped.configure("http", listen=[url, stopped.https_url])
    try:
        with pytest.raises(ServeExited) as exited:
            stopped.start()
    finally:
        config.write_text(original)
    lines = exited.value.output.splitlines()
    assert (stopped.proc, f"listening on {stopped.uri}" in exited.value.output, lines[-1]) == (
        None, True, f"certdir: error: cannot listen on {url}: Couldn't listen on "
        f"{ABSENT}:{stopped.http_port}: [Errno 99] Cannot assign requested address.")


def test_a_restart_after_kill_keeps_its_ports(stopped: Server) -> None:
    stopped.start()
    before = tuple(getattr(stopped, name) for name in PORTS)
    with socket.create_connection(("127.0.0.1", stopped.port), timeout=10):
        stopped.kill()
    stopped.start()
    try:
        seen = (tuple(getattr(stopped, name) for name in PORTS), answers(stopped))
    finally:
        stopped.stop()
    assert seen == (before, expected(stopped))
