"""Scenario 018: hygiene of what the server writes and offers.

- The access log escapes what a client chose: a bind DN holding a newline and
  a fake log line is logged as one line, the newline as \\x0a.
- TLS 1.2 offers ECDHE with AEAD ciphers only: a CBC-SHA suite or RSA key
  exchange is refused with a handshake failure, AES-GCM and ChaCha20 work.
- `certdir init` into an existing 0755 directory holding 0777 public/ and
  secrets/ folders, under umask 022 or 000, leaves the directory 0700 and
  every file in it 0600 (folders 0700).
- A listen URL that does not parse, and a `storage.path` that is not an
  SQLite database, are one error line naming them, never a traceback; so is
  a duration longer than the calendar holds (ca.tls_renew_days).
"""

from __future__ import annotations

import socket
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.integration.conftest import CERTDIR, STORAGE, SUFFIX, Server
from tests.integration.test017_starttls_injection import read_until, simple_bind

FORGED = 'conn=1 op=1 BIND dn="cn=admin,dc=example,dc=com" method=128 result=0'


def test_access_log_escapes_a_forged_line(server: Server) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(simple_bind(1, f"cn=x\n{FORGED}", "guess"))
        _, replies = read_until(sock, 1)
    assert [r.result_code for r in replies] == [34]  # invalidDNSyntax
    log = server.logged("cn=x\\x0aconn=1 op=1 BIND")
    assert [line for line in log.splitlines() if line.startswith(FORGED)] == []


@pytest.mark.parametrize("cipher, accepted", [
    ("ECDHE-ECDSA-AES128-GCM-SHA256", True),
    ("ECDHE-ECDSA-CHACHA20-POLY1305", True),
    ("ECDHE-ECDSA-AES128-SHA", False),
    ("ECDHE-ECDSA-AES256-SHA384", False),
    ("AES128-GCM-SHA256", False),
])
def test_tls12_offers_aead_only(server: Server, cipher: str, accepted: bool) -> None:
    done = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{server.ldaps_port}",
                           "-tls1_2", "-cipher", cipher, "-CAfile", str(server.ca_file)],
                          input=b"", capture_output=True, check=False, timeout=30)
    assert (done.returncode == 0, f"Cipher is {cipher}".encode() in done.stdout) == (
        accepted, accepted), done.stderr


def modes(folder: Path) -> set[tuple[str, str]]:
    return {(("dir" if path.is_dir() else "file"), oct(stat.S_IMODE(path.stat().st_mode)))
            for path in (folder, *folder.rglob("*"))}


@pytest.mark.parametrize("umask", ["022", "000"])
def test_init_makes_everything_private(tmp_path: Path, umask: str) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o755)
    for folder in ("public", "secrets"):
        (data_dir / folder).mkdir()
        (data_dir / folder).chmod(0o777)
    subprocess.run(["sh", "-c", f'umask {umask} && exec "$@"', "init", *CERTDIR, "init",
                    "--data-dir", str(data_dir), "--suffix", SUFFIX, *STORAGE.init_args()],
                   check=True, capture_output=True, timeout=120)
    assert modes(data_dir) == {("dir", "0o700"), ("file", "0o600")}


def test_listen_url_that_does_not_parse_is_named(tmp_path: Path) -> None:
    done = subprocess.run([*CERTDIR, "init", "--data-dir", str(tmp_path / "d"), "--suffix",
                           SUFFIX, "--listen", "ldap://[x"], capture_output=True, text=True,
                          check=False, timeout=60)
    assert (done.returncode, done.stderr) == (
        1, "certdir: error: --listen: 'ldap://[x': Invalid IPv6 URL\n")


@pytest.mark.only_on("sqlite", "storage.path names an SQLite file (test076: storage.url's)")
@pytest.mark.parametrize("command", [("serve",), ("ldif", "export"), ("kms", "status")])
def test_storage_path_that_is_not_sqlite_is_named(tmp_path: Path,
                                                  command: tuple[str, ...]) -> None:
    data_dir = tmp_path / "d"
    subprocess.run([*CERTDIR, "init", "--data-dir", str(data_dir), "--suffix", SUFFIX,
                    "--http-listen", "http://127.0.0.1:1"], check=True, capture_output=True,
                   timeout=120)
    config = data_dir / "certdir.yaml"
    (data_dir / "bogus.db").write_text("not a database\n" * 100)
    config.write_text(config.read_text().replace("path: certdir.db", "path: bogus.db"))
    done = subprocess.run([*CERTDIR, *command, "--data-dir", str(data_dir)],
                          capture_output=True, text=True, check=False, timeout=60)
    assert (done.returncode, done.stderr) == (
        1, f"certdir: error: storage.path: {data_dir / 'bogus.db'}: file is not a database\n")


def test_duration_beyond_the_calendar_is_named(tmp_path: Path) -> None:
    """ca.tls_renew_days: 2147483647 was an OverflowError traceback at start."""
    data_dir = tmp_path / "d"
    subprocess.run([*CERTDIR, "init", "--data-dir", str(data_dir), "--suffix", SUFFIX,
                    "--http-listen", "http://127.0.0.1:1", *STORAGE.init_args()], check=True,
                   capture_output=True, timeout=120)
    config = data_dir / "certdir.yaml"
    settings = yaml.safe_load(config.read_text())
    settings["ca"]["tls_renew_days"] = 2**31 - 1
    config.write_text(yaml.safe_dump(settings))
    done = subprocess.run([*CERTDIR, "serve", "--data-dir", str(data_dir)],
                          capture_output=True, text=True, check=False, timeout=60)
    assert (done.returncode, done.stderr) == (
        1, f"certdir: error: {config}: ca.tls_renew_days: 2147483647 is not allowed "
           "(from 1 to 36500 days)\n")
