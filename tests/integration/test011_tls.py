"""Scenario 011: TLS via StartTLS and LDAPS (RFC 4511 §4.14, RFC 4513 §3).

- StartTLS (ldapsearch -ZZ) and ldaps:// both succeed when the client trusts
  D/public/ca.pem, and fail certificate verification when it does not.
- Only TLS 1.2 and newer are negotiated: a client offering at most TLS 1.1
  fails the handshake on ldaps:// and after StartTLS.
- With access.confidentiality_required, a simple bind on a cleartext
  connection gets confidentialityRequired (13) (RFC 4513 §6.3.1); the same
  bind succeeds after StartTLS or over LDAPS.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from tests.integration.conftest import Server, make_server

BASE = "dc=example,dc=com"


def run(server: Server, *args: str, env: dict[str, str] | None = None,
        ) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(list(args), check=False, capture_output=True,
                          env=env or server.env(),
                          timeout=60, stdin=subprocess.DEVNULL)


def whoami(server: Server, uri: str, *extra: str, env: dict[str, str] | None = None,
           ) -> subprocess.CompletedProcess[bytes]:
    return run(server, "ldapwhoami", "-H", uri, "-x", "-D", server.root_dn,
               "-w", server.root_password, *extra, env=env)


def untrusting_env(server: Server) -> dict[str, str]:
    env = {key: value for key, value in server.env().items() if key != "LDAPTLS_CACERT"}
    env["LDAPTLS_REQCERT"] = "demand"
    env["LDAPTLS_CACERT"] = "/dev/null"
    return env


def s_client(server: Server, *args: str) -> subprocess.CompletedProcess[bytes]:
    # SECLEVEL=0 lets OpenSSL 3 itself offer TLS 1.1, so a failure is the server's refusal.
    return subprocess.run(["openssl", "s_client", "-CAfile", str(server.ca_file),
                           "-cipher", "DEFAULT@SECLEVEL=0", *args],
                          input=b"", capture_output=True, check=False, timeout=30)


def test_starttls_search(server: Server) -> None:
    search = server.tool("ldapsearch", "-ZZ", "-LLL", "-b", BASE, "-s", "base", "dc",
                         bind=False)
    assert search.returncode == 0, search.stderr
    assert search.stdout.decode().splitlines()[:2] == [f"dn: {BASE}", "dc: example"]


def test_starttls_whoami(server: Server) -> None:
    result = whoami(server, server.uri, "-ZZ")
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().strip().lower() == f"dn:{server.root_dn}"


def test_ldaps_whoami(server: Server) -> None:
    result = whoami(server, server.ldaps_uri)
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().strip().lower() == f"dn:{server.root_dn}"


def test_ldaps_anonymous_search(server: Server) -> None:
    search = run(server, "ldapsearch", "-H", server.ldaps_uri, "-x", "-LLL", "-b", BASE,
                 "-s", "base", "1.1")
    assert search.returncode == 0, search.stderr
    assert search.stdout.decode().strip() == f"dn: {BASE}"


def test_starttls_without_trust_anchor_fails(server: Server) -> None:
    result = whoami(server, server.uri, "-ZZ", env=untrusting_env(server))
    assert result.returncode == 1
    assert result.stdout == b""


def test_ldaps_without_trust_anchor_fails(server: Server) -> None:
    result = whoami(server, server.ldaps_uri, env=untrusting_env(server))
    assert result.returncode == 255
    assert result.stdout == b""


def test_ldaps_tls12_handshake(server: Server) -> None:
    result = s_client(server, "-connect", f"127.0.0.1:{server.ldaps_port}", "-tls1_2")
    assert result.returncode == 0, result.stderr
    assert b"Verify return code: 0 (ok)" in result.stdout


def test_ldaps_tls13_handshake(server: Server) -> None:
    result = s_client(server, "-connect", f"127.0.0.1:{server.ldaps_port}", "-tls1_3")
    assert result.returncode == 0, result.stderr
    assert b"TLSv1.3" in result.stdout


def test_ldaps_tls11_refused(server: Server) -> None:
    result = s_client(server, "-connect", f"127.0.0.1:{server.ldaps_port}", "-tls1_1")
    assert result.returncode == 1
    assert b"no peer certificate available" in result.stdout


def test_starttls_tls11_refused(server: Server) -> None:
    result = s_client(server, "-connect", f"127.0.0.1:{server.port}", "-starttls", "ldap",
                      "-tls1_1")
    assert result.returncode == 1
    assert b"no peer certificate available" in result.stdout


def test_starttls_tls12_handshake(server: Server) -> None:
    result = s_client(server, "-connect", f"127.0.0.1:{server.port}", "-starttls", "ldap",
                      "-tls1_2")
    assert result.returncode == 0, result.stderr
    assert b"Verify return code: 0 (ok)" in result.stdout


@pytest.fixture(scope="module")
def confidential(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = make_server(tmp_path_factory.mktemp("certdir-confidential"))
    srv.configure("access", confidentiality_required=True)
    srv.start()
    yield srv
    log = srv.stop()
    assert "Traceback" not in log, log


def test_cleartext_simple_bind_refused(confidential: Server) -> None:
    result = whoami(confidential, confidential.uri)
    assert result.returncode == 13, result.stderr
    assert b"Confidentiality required (13)" in result.stderr


def test_cleartext_write_refused(confidential: Server) -> None:
    modify = confidential.tool("ldapmodify", input=(
        f"dn: {BASE}\nchangetype: modify\nreplace: description\ndescription: x\n").encode())
    assert modify.returncode == 13, modify.stderr
    search = confidential.tool("ldapsearch", "-ZZ", "-LLL", "-b", BASE, "-s", "base",
                               "description")
    assert b"description:" not in search.stdout


def test_simple_bind_after_starttls_accepted(confidential: Server) -> None:
    result = whoami(confidential, confidential.uri, "-ZZ")
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().strip().lower() == f"dn:{confidential.root_dn}"


def test_simple_bind_over_ldaps_accepted(confidential: Server) -> None:
    result = whoami(confidential, confidential.ldaps_uri)
    assert result.returncode == 0, result.stderr


def test_write_after_starttls_accepted(confidential: Server) -> None:
    modify = confidential.tool("ldapmodify", "-ZZ", input=(
        f"dn: {BASE}\nchangetype: modify\nreplace: description\ndescription: tls\n").encode())
    assert modify.returncode == 0, modify.stderr
    search = confidential.tool("ldapsearch", "-ZZ", "-LLL", "-b", BASE, "-s", "base",
                               "description")
    assert b"description: tls" in search.stdout
