"""Scenario 025: CA officers act on the command line under their own entries.

1. With `ca.officers` configured, `certdir ca approve` with `--officer DN`
   and that entry's password (from `--password-file`) issues the request;
   the request's decided_by and the audit record name the officer's DN, and
   `certdir audit verify` finds the hash chain intact.
2. A wrong password, a DN that is not in `ca.officers` (with its own right
   password) and a missing `--officer` are each refused with exit status 1
   and one line `certdir: error: ...`; the request stays pending, and no
   certificate and no audit record is added.
3. `deny` takes the password from `$CERTDIR_OFFICER_PASSWORD`; `revoke`
   (certificateHold) and `release` are audited under the officer's DN.
4. A CA without `ca.officers` refuses `--officer` with one error line, and
   `approve` without it acts as the local account (`local:<user>`).

The officers' entries are added with ldapadd, as an administrator would.
"""

from __future__ import annotations

import getpass
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.conftest import CERTDIR, SUFFIX, Server, database_rows, make_server

PEOPLE = f"ou=people,{SUFFIX}"
OFFICER1, OFFICER2 = f"uid=officer1,{PEOPLE}", f"uid=officer2,{PEOPLE}"
CAROL = f"uid=carol,{PEOPLE}"


@dataclass(frozen=True, slots=True)
class World:
    server: Server
    tmp: Path

    def ca(self, *args: str, env: dict[str, str] | None = None,
           check: bool = True) -> subprocess.CompletedProcess[bytes]:
        """`certdir ca <args[0]> --data-dir D <args[1:]>`."""
        return subprocess.run([*CERTDIR, "ca", args[0], "--data-dir",
                               str(self.server.data_dir), *args[1:]],
                              capture_output=True, check=check,
                              env={**self.server.env(), **(env or {})}, timeout=300)

    def password_file(self, uid: str, password: str) -> Path:
        path = self.tmp / f"{uid}.pw"
        path.write_text(password)
        return path

    def submit(self, name: str, *profile: str) -> str:
        """A pending request (default: smime-user for Carol); its number."""
        csr = self.tmp / f"{name}.csr"
        subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                        str(self.tmp / f"{name}.key"), "-subj", "/CN=carol", "-addext",
                        "subjectAltName=DNS:carol.example.com", "-out", str(csr)],
                       check=True, capture_output=True)
        done = self.ca("submit", "--csr", str(csr),
                       *(profile or ("--profile", "smime-user", "--entry", CAROL)))
        found = re.match(r"request (\d+): pending", done.stdout.decode())
        assert found is not None, done.stdout
        return found.group(1)

    def rows(self, query: str, *parameters: str) -> list[tuple[object, ...]]:
        return database_rows(self.server.data_dir, query, *parameters)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("ca-officers")
    server = make_server(tmp)
    server.configure("ca", officers=[OFFICER1, OFFICER2])
    server.start()
    people = "".join(
        f"dn: uid={uid},{PEOPLE}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\n"
        f"sn: {uid}\nmail: {uid}@example.com\nuserPassword: {uid}-pw\n\n"
        for uid in ("carol", "officer1", "officer2"))
    added = server.tool("ldapadd", input=(
        f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n\n{people}").encode())
    assert added.returncode == 0, added.stderr
    yield World(server, tmp)
    assert "Traceback" not in server.stop()


def last_audit(world: World) -> tuple[object, ...]:
    return world.rows("SELECT actor, action, subject FROM kms_audit ORDER BY seq DESC LIMIT 1")[0]


def decided(world: World, request: str) -> tuple[object, ...]:
    return world.rows("SELECT status, decided_by FROM ca_requests WHERE id = ?", request)[0]


def test_officer_approves_with_their_password(world: World) -> None:
    request = world.submit("approved")
    done = world.ca("approve", "--officer", OFFICER1, "--password-file",
                    str(world.password_file("officer1", "officer1-pw")), request)
    assert re.fullmatch(r"[0-9a-f]+\n", done.stdout.decode())
    assert decided(world, request) == ("issued", OFFICER1)
    assert last_audit(world) == (OFFICER1, "ca.approved", request)
    verified = subprocess.run([*CERTDIR, "audit", "verify", "--data-dir",
                               str(world.server.data_dir)], capture_output=True, check=False,
                              env=world.server.env(), timeout=120)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.decode().startswith("audit log intact: ")


REFUSALS = (
    ("wrong password", ("--officer", OFFICER1), "officer1", "not-officer1-pw",
     f"wrong password for {OFFICER1}"),
    ("not an officer", ("--officer", CAROL), "carol", "carol-pw",
     f"{CAROL} is not one of the officers in ca.officers"),
    ("no --officer", (), "officer1", "officer1-pw",
     "this CA has officers (ca.officers): give --officer DN and its password"),
)


@pytest.mark.parametrize(("why", "who", "uid", "password", "says"), REFUSALS)
def test_refusals_change_nothing(world: World, why: str, who: tuple[str, ...], uid: str,
                                 password: str, says: str) -> None:
    request = world.submit(why.replace(" ", "-"))
    counts = "SELECT (SELECT count(*) FROM ca_certificates), (SELECT count(*) FROM kms_audit)"
    before = world.rows(counts)
    done = world.ca("approve", *who, "--password-file",
                    str(world.password_file(uid, password)), request, check=False)
    assert (done.returncode, done.stderr.decode()) == (1, f"certdir: error: {says}\n")
    assert decided(world, request) == ("pending", None)
    assert world.rows(counts) == before


def test_deny_takes_the_password_from_the_environment(world: World) -> None:
    request = world.submit("denied")
    world.ca("deny", "--officer", OFFICER2, request,
             env={"CERTDIR_OFFICER_PASSWORD": "officer2-pw"})
    assert decided(world, request) == ("denied", OFFICER2)
    assert last_audit(world) == (OFFICER2, "ca.denied", request)


def test_hold_and_release_are_audited_under_the_officer(world: World) -> None:
    request = world.submit("held")
    officer = ("--officer", OFFICER2, "--password-file",
               str(world.password_file("officer2", "officer2-pw")))
    serial = world.ca("approve", *officer, request).stdout.decode().strip()
    world.ca("revoke", *officer, serial, "--reason", "certificateHold")
    assert last_audit(world) == (OFFICER2, "ca.revoked", CAROL)
    world.ca("release", *officer, serial)
    assert last_audit(world) == (OFFICER2, "ca.released", CAROL)


@pytest.fixture(scope="module")
def unofficered(tmp_path_factory: pytest.TempPathFactory) -> World:
    """A CA without ca.officers, never served: these commands work on the data directory."""
    tmp = tmp_path_factory.mktemp("ca-no-officers")
    return World(make_server(tmp), tmp)


def test_no_officers_configured(unofficered: World) -> None:
    request = unofficered.submit("local", "--profile", "tls-client")
    refused = unofficered.ca("approve", "--officer", OFFICER1, "--password-file",
                             str(unofficered.password_file("officer1", "officer1-pw")),
                             request, check=False)
    assert (refused.returncode, refused.stderr.decode()) == (
        1, "certdir: error: --officer: this CA has no officers (ca.officers is empty); "
        "leave --officer out to act as the local account\n")
    unofficered.ca("approve", request)
    local = f"local:{getpass.getuser()}"
    assert decided(unofficered, request) == ("issued", local)
    assert last_audit(unofficered) == (local, "ca.approved", request)
