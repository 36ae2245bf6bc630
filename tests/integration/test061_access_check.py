"""Scenario 061: `certdir access check`, its output, exit status and errors.

- Offline: the data directory's database is read with no server running.
- The output names the entry, attribute and identity, the rule that decided
  (`default[i]` without `access.rules`, else `access.rules[i]`, with its
  `to`), the `by` clause, and the rights as a level and as `=letters`; with
  `--level`, a last line `<level>: allowed` or `denied`.
- Exit status 0 when allowed (or without `--level`), 1 when denied, 2 on an
  error: one line `certdir: error: ...` naming it, nothing on stdout.
- A rule the schema refutes stops `certdir serve` too, with one line naming
  the key, and no traceback.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import CERTDIR, Server, make_server

BASE = "dc=example,dc=com"
PEOPLE = f"ou=people,{BASE}"
ALICE = f"uid=alice,{PEOPLE}"
BOB = f"uid=bob,{PEOPLE}"
EXIT_DENIED = 1
EXIT_ERROR = 2

TREE = f"""dn: {PEOPLE}
objectClass: organizationalUnit
ou: people

dn: {ALICE}
objectClass: inetOrgPerson
uid: alice
cn: Alice
sn: Liddell
userPassword: alice-secret

dn: {BOB}
objectClass: inetOrgPerson
uid: bob
cn: Bob
sn: Builder
"""


def offline(tmp: Path, **access: object) -> Server:
    """An initialised data directory with TREE imported, never served."""
    srv = make_server(tmp, "--no-ca")
    if access:
        srv.configure("access", **access)
    tree = tmp / "tree.ldif"
    tree.write_text(TREE)
    srv.certdir("ldif", "import", "--data-dir", str(srv.data_dir), "--quiet", str(tree))
    return srv


@pytest.fixture(scope="module")
def defaults(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield offline(Path(tmp_path_factory.mktemp("defaults")))


@pytest.fixture(scope="module")
def configured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield offline(Path(tmp_path_factory.mktemp("configured")), rules=[
        {"to": {"dn": PEOPLE, "scope": "children", "attrs": ["cn", "sn"]},
         "by": [{"who": "self", "level": "write"}]}])


def access_check(server: Server, *args: str) -> subprocess.CompletedProcess[bytes]:
    return server.certdir("access", "check", "--data-dir", str(server.data_dir), *args,
                          check=False)


def lines(*text: str) -> bytes:
    return "".join(f"{t}\n" for t in text).encode()


def test_allowed(defaults: Server) -> None:
    done = access_check(defaults, "--as", ALICE, "--dn", ALICE, "--attr", "userPassword",
                        "--level", "=x")
    assert (done.returncode, done.stderr) == (0, b"")
    assert done.stdout == lines(
        f"entry:  {ALICE}",
        "attr:   userPassword",
        f"as:     {ALICE}",
        "rule:   default[0] to attrs=userPassword",
        "by:     default[0].by[0] self =xw",
        "rights: =xaz",
        "=x: allowed")


def test_denied(defaults: Server) -> None:
    done = access_check(defaults, "--as", "anonymous", "--dn", ALICE, "--attr", "userPassword",
                        "--level", "read")
    assert (done.returncode, done.stderr) == (EXIT_DENIED, b"")
    assert done.stdout == lines(
        f"entry:  {ALICE}",
        "attr:   userPassword",
        "as:     anonymous",
        "rule:   default[0] to attrs=userPassword",
        "by:     default[0].by[1] * auth",
        "rights: auth (=dx)",
        "read: denied")


def test_without_level(defaults: Server) -> None:
    done = access_check(defaults, "--as", BOB, "--dn", ALICE)
    assert (done.returncode, done.stderr) == (0, b"")
    assert done.stdout == lines(
        f"entry:  {ALICE}",
        "attr:   entry",
        f"as:     {BOB}",
        "rule:   default[2] to *",
        "by:     default[2].by[0] users read",
        "rights: read (=dxcsr)")


def test_root(defaults: Server) -> None:
    done = access_check(defaults, "--as", f"CN=Admin,{BASE}", "--dn", PEOPLE, "--attr",
                        "children", "--level", "write")
    assert (done.returncode, done.stderr) == (0, b"")
    assert done.stdout == lines(
        f"entry:  {PEOPLE}",
        "attr:   children",
        f"as:     CN=Admin,{BASE}",
        "rule:   none (the root DN is above every rule)",
        "by:     -",
        "rights: write (=dxcsraz)",
        "write: allowed")


def test_rule_without_a_matching_by(configured: Server) -> None:
    done = access_check(configured, "--as", BOB, "--dn", ALICE, "--attr", "cn", "--level",
                        "read")
    assert (done.returncode, done.stderr) == (EXIT_DENIED, b"")
    assert done.stdout == lines(
        f"entry:  {ALICE}",
        "attr:   cn",
        f"as:     {BOB}",
        f'rule:   access.rules[0] to dn.children="{PEOPLE}" attrs=cn,sn',
        "by:     none matched",
        "rights: none",
        "read: denied")


def test_no_rule_matches(configured: Server) -> None:
    done = access_check(configured, "--as", ALICE, "--dn", ALICE, "--attr", "mail",
                        "--level", "disclose")
    assert (done.returncode, done.stderr) == (EXIT_DENIED, b"")
    assert done.stdout.splitlines()[3:] == [b"rule:   none matched (default deny)", b"by:     -",
                                            b"rights: none", b"disclose: denied"]


def test_configured_rule_allows(configured: Server) -> None:
    done = access_check(configured, "--as", ALICE, "--dn", ALICE, "--attr", "sn", "--level",
                        "write")
    assert (done.returncode, done.stderr) == (0, b"")
    assert done.stdout.splitlines()[4:] == [b"by:     access.rules[0].by[0] self write",
                                            b"rights: write (=dxcsraz)", b"write: allowed"]


ERRORS = [
    ("unknown level", ("--as", ALICE, "--dn", ALICE, "--level", "reed"),
     "--level: 'reed': unknown level (one of none, disclose, auth, compare, search, read, "
     "add, delete, write or =letters)"),
    ("unknown privilege", ("--as", ALICE, "--dn", ALICE, "--level", "=rq"),
     "--level: '=rq': unknown privilege 'q' (one of dxcsrazw)"),
    ("no such entry", ("--as", ALICE, "--dn", f"uid=nobody,{PEOPLE}"),
     f"--dn: no entry uid=nobody,{PEOPLE}"),
    ("--dn not a DN", ("--as", ALICE, "--dn", "nobody"),
     "--dn: invalid DN 'nobody': attribute type without '='"),
    ("--as not a DN", ("--as", "alice", "--dn", ALICE),
     "--as: invalid DN 'alice': attribute type without '='"),
    ("unknown attribute", ("--as", ALICE, "--dn", ALICE, "--attr", "telephonNumber"),
     "--attr: 'telephonNumber': unknown attribute type"),
]


@pytest.mark.parametrize("why, args, message", ERRORS, ids=[e[0] for e in ERRORS])
def test_errors(defaults: Server, why: str, args: tuple[str, ...], message: str) -> None:
    done = access_check(defaults, *args)
    assert (done.returncode, done.stdout) == (EXIT_ERROR, b"")
    assert done.stderr.decode() == f"certdir: error: {message}\n"


def test_not_initialised(tmp_path: Path) -> None:
    done = subprocess.run([*CERTDIR, "access", "check", "--data-dir", str(tmp_path), "--as",
                           ALICE, "--dn", ALICE], capture_output=True, check=False, timeout=60)
    assert (done.returncode, done.stdout) == (EXIT_ERROR, b"")
    assert done.stderr.decode() == (
        f"certdir: error: {tmp_path}/certdir.yaml: no configuration; run `certdir init "
        f"--data-dir {tmp_path}` first\n")


def test_usage_error(defaults: Server) -> None:
    done = access_check(defaults, "--dn", ALICE)
    assert done.returncode == EXIT_ERROR
    assert b"the following arguments are required: --as" in done.stderr


def test_bad_rule_syntax(tmp_path: Path) -> None:
    srv = make_server(tmp_path, "--no-ca")
    srv.configure("access", rules=[{"to": {}, "by": [{"who": "users", "level": "reed"}]}])
    done = access_check(srv, "--as", ALICE, "--dn", BASE)
    assert (done.returncode, done.stdout) == (EXIT_ERROR, b"")
    assert done.stderr.decode() == (
        f"certdir: error: {srv.data_dir}/certdir.yaml: access.rules[0].by[0].level: 'reed': "
        "unknown level (one of none, disclose, auth, compare, search, read, add, delete, "
        "write or =letters)\n")


def test_rule_the_schema_refutes(tmp_path: Path) -> None:
    srv = make_server(tmp_path, "--no-ca")
    srv.configure("access", rules=[{"to": {"attrs": ["telephonNumber"]},
                                    "by": [{"who": "self", "level": "write"}]}])
    message = (f"certdir: error: {srv.data_dir}/certdir.yaml: access.rules[0].to.attrs[0]: "
               "'telephonNumber': unknown attribute type\n")
    done = access_check(srv, "--as", ALICE, "--dn", BASE)
    assert (done.returncode, done.stdout, done.stderr.decode()) == (EXIT_ERROR, b"", message)
    served = srv.certdir("serve", "--data-dir", str(srv.data_dir), check=False)
    assert (served.returncode, served.stderr.decode()) == (1, message)
