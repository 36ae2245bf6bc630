"""Scenario 076: a data directory on PostgreSQL (`certdir init --storage-url`).

- `init --storage-url` with a URL that does not parse, a scheme that is not
  PostgreSQL's, a server nobody listens on, a wrong password, or a
  database that already holds a directory: exit status 1 and one line
  `certdir: error: --storage-url: ...`, never a traceback, never the
  password, and no certdir.yaml left behind (a corrected init can follow).
- A URL with a password: certdir.yaml's `storage.url` names the role, host
  and database without it; the password is in no file outside secrets/,
  and the server logs in with it (the cluster asks every role but the
  superuser for its password).
- A `storage.url` whose server is gone: `serve`, `ldif export` and `kms
  status` each say so in one line `certdir: error: storage.url: ...`,
  exit status 1.
"""

from __future__ import annotations

import re
import secrets
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import yaml

from tests.integration.conftest import (
    CERTDIR,
    STORAGE,
    SUFFIX,
    Server,
    make_server,
    storage_url,
)
from tests.ports import free_port

pytestmark = pytest.mark.only_on("postgresql", "a data directory on PostgreSQL by nature")

PASSWORD = f"pw-{secrets.token_hex(8)}"


def cluster_url() -> str:
    assert STORAGE.cluster is not None
    return STORAGE.cluster.url


def with_path(url: str, netloc: str, database: str) -> str:
    return urlunsplit((urlsplit(url).scheme, netloc, f"/{database}", "", ""))


def owned_database(role: str) -> str:
    """A fresh database owned by a new role that logs in with PASSWORD; its URL with it."""
    assert STORAGE.cluster is not None
    database = urlsplit(STORAGE.cluster.database()).path[1:]
    with psycopg.connect(cluster_url(), autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{PASSWORD}'")
        conn.execute(f'ALTER DATABASE "{database}" OWNER TO {role}')
    host = urlsplit(cluster_url()).netloc.split("@")[-1]
    return with_path(cluster_url(), f"{role}:{PASSWORD}@{host}", database)


def init(data_dir: Path, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CERTDIR, "init", "--data-dir", str(data_dir), "--suffix", SUFFIX,
                           "--no-ca", "--no-kms", "--http-listen", f"http://127.0.0.1:{free_port()}",
                           "--listen", f"ldap://127.0.0.1:{free_port()}", "--storage-url", url],
                          capture_output=True, text=True, check=False, timeout=120)


def unreachable(_: Path) -> str:
    return f"postgresql://certdir:{PASSWORD}@127.0.0.1:{free_port()}/certdir"


def wrong_password(_: Path) -> str:
    url = owned_database(f"wrong_{secrets.token_hex(4)}")
    return url.replace(PASSWORD, "not-the-password")


def holds_a_directory(tmp: Path) -> str:
    assert STORAGE.cluster is not None
    url = STORAGE.cluster.database()
    done = init(tmp / "first", url)
    assert done.returncode == 0, done.stderr
    return url


REFUSED: dict[str, Callable[[Path], str]] = {
    "not a URL": lambda _: "postgresql://[x/certdir",
    "not PostgreSQL": lambda _: "mysql://127.0.0.1/certdir",
    "nobody listening": unreachable,
    "wrong password": wrong_password,
    "already a directory": holds_a_directory,
}


@pytest.mark.parametrize("why", REFUSED)
def test_init_refuses_in_one_line(why: str, tmp_path: Path) -> None:
    url = REFUSED[why](tmp_path)
    data_dir = tmp_path / "refused"
    done = init(data_dir, url)
    assert done.returncode == 1, done.stderr
    assert re.fullmatch(r"certdir: error: --storage-url: [^\n]+\n", done.stderr), done.stderr
    assert PASSWORD not in done.stderr + done.stdout
    assert not (data_dir / "certdir.yaml").exists()


@pytest.fixture(scope="module")
def with_password(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    url = owned_database(f"owner_{secrets.token_hex(4)}")
    server = make_server(tmp_path_factory.mktemp("pg-password"), "--no-ca", "--no-kms",
                         "--storage-url", url)
    server.start()
    yield server, url
    assert "Traceback" not in server.stop()


def test_storage_url_names_the_database_without_the_password(
        with_password: tuple[Server, str]) -> None:
    server, url = with_password
    written = urlsplit(storage_url(server.data_dir) or "")
    given = urlsplit(url)
    assert (written.scheme, written.username, written.password, written.hostname,
            written.port, written.path) == (given.scheme, given.username, None,
                                            given.hostname, given.port, given.path)


def test_password_only_under_secrets(with_password: tuple[Server, str]) -> None:
    server, _ = with_password
    holding = sorted(str(path.relative_to(server.data_dir)) for path in server.data_dir.rglob("*")
                     if path.is_file() and PASSWORD.encode() in path.read_bytes())
    assert holding and all(name.startswith("secrets/") for name in holding), holding


def test_server_logs_in_with_the_password(with_password: tuple[Server, str]) -> None:
    server, _ = with_password
    ldif = f"dn: cn=pw-check,{SUFFIX}\nobjectClass: person\ncn: pw-check\nsn: check\n"
    added = server.tool("ldapadd", input=ldif.encode())
    assert added.returncode == 0, added.stderr
    found = server.tool("ldapsearch", "-LLL", "-b", f"cn=pw-check,{SUFFIX}", "-s", "base", "1.1")
    assert (found.returncode, found.stdout.decode()) == (0, f"dn: cn=pw-check,{SUFFIX}\n\n")


@pytest.fixture(scope="module")
def server_gone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory whose storage.url names a port nobody listens on."""
    server = make_server(tmp_path_factory.mktemp("pg-gone"))
    config = server.data_dir / "certdir.yaml"
    settings = yaml.safe_load(config.read_text())
    parts = urlsplit(settings["storage"]["url"])
    netloc = parts.netloc.replace(f":{parts.port}", f":{free_port()}")
    settings["storage"]["url"] = with_path(settings["storage"]["url"], netloc, parts.path[1:])
    config.write_text(yaml.safe_dump(settings, sort_keys=False))
    return server.data_dir


@pytest.mark.parametrize("command", [("serve",), ("ldif", "export"), ("kms", "status")])
def test_server_gone_is_one_line(server_gone: Path, command: tuple[str, ...]) -> None:
    done = subprocess.run([*CERTDIR, *command, "--data-dir", str(server_gone)],
                          capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 1, done.stderr
    assert re.fullmatch(r"certdir: error: storage\.url: [^\n]+\n", done.stderr), done.stderr
