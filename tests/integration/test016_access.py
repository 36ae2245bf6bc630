"""Scenario 016: access control for reads, writes and passwords.

- Anonymous search and read are allowed by default (access.anonymous_read);
  with anonymous_read false, anonymous clients are not even told the
  entries exist: search and compare get noSuchObject (32), as slapd
  answers when the entry is not disclosed (slapd.access(5)).
- userPassword is disclosed to the root DN only: not to anonymous clients,
  not to the entry itself, not even when requested by name, and it cannot be
  probed with a filter or a compare.
- Writes need an authenticated bind: anonymous add/modify/delete/modrdn and
  Password Modify get insufficientAccessRights (50).
- A user may change their own password with Password Modify (RFC 3062) or a
  modify of userPassword, but nobody else's; the root DN may change anyone's.
- Passwords (bind credentials, added and changed values) never reach the
  access log.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import Server, make_server
from tests.integration.ldif_compare import by_dn, parse

BASE = "dc=example,dc=com"
PEOPLE = f"ou=people,{BASE}"
USERS = ("alice", "bob", "carol", "dave")


def dn(uid: str) -> str:
    return f"uid={uid},{PEOPLE}"


def initial_password(uid: str) -> str:
    return f"{uid}-initial-secret"


def tree_ldif() -> str:
    people = "".join(
        f"\ndn: {dn(uid)}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid.title()}\n"
        f"sn: {uid.title()}\nmail: {uid}@example.com\n"
        f"userPassword: {initial_password(uid)}\n" for uid in USERS)
    return f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n{people}"


def populate(server: Server) -> None:
    added = server.tool("ldapadd", input=tree_ldif().encode())
    assert added.returncode == 0, added.stderr
    # Dave's password goes through Password Modify, the others' through add.
    changed = server.tool("ldappasswd", "-s", initial_password("dave"), dn("dave"))
    assert changed.returncode == 0, changed.stderr


def as_user(server: Server, uid: str, password: str, name: str, *args: str,
            input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return server.tool(name, "-D", dn(uid), "-w", password, *args, input=input, bind=False)


def result_code(passwd: subprocess.CompletedProcess[bytes]) -> int:
    """The code ldappasswd prints as "Result: <text> (<code>)"; it exits with 1."""
    line = next(line for line in passwd.stdout.decode().splitlines()
                if line.startswith("Result: "))
    return int(line.rsplit("(", 1)[1].rstrip(")"))


def whoami(server: Server, uid: str, password: str) -> subprocess.CompletedProcess[bytes]:
    return as_user(server, uid, password, "ldapwhoami")


@pytest.fixture(scope="module")
def people(server: Server) -> Server:
    populate(server)
    return server


@pytest.mark.parametrize("attrs", [(), ("*",), ("userPassword",), ("*", "+"),
                                   ("userPassword", "mail")])
def test_anonymous_never_sees_password(people: Server, attrs: tuple[str, ...]) -> None:
    search = people.tool("ldapsearch", "-LLL", "-b", PEOPLE, "(uid=dave)", *attrs, bind=False)
    assert search.returncode == 0, search.stderr
    dave = by_dn(search.stdout)[dn("dave")]
    assert "userpassword" not in dave.names()
    assert b"userPassword" not in search.stdout


def test_anonymous_search_reads_entries(people: Server) -> None:
    search = people.tool("ldapsearch", "-LLL", "-b", PEOPLE, "(mail=*@example.com)", "mail",
                         bind=False)
    assert search.returncode == 0, search.stderr
    entries = by_dn(search.stdout)
    assert sorted(entries) == sorted(dn(uid) for uid in USERS)
    assert entries[dn("dave")].values("mail") == ("dave@example.com",)


def test_anonymous_cannot_probe_password_with_filter(people: Server) -> None:
    search = people.tool("ldapsearch", "-LLL", "-b", PEOPLE, "(userPassword=*)", "1.1",
                         bind=False)
    assert search.returncode == 0, search.stderr
    assert parse(search.stdout) == ()


def test_anonymous_cannot_compare_password(people: Server) -> None:
    compare = people.tool("ldapcompare", dn("dave"), f"userPassword:{initial_password('dave')}",
                          bind=False)
    assert compare.returncode == 50, compare.stdout + compare.stderr


def test_user_does_not_see_own_password(people: Server) -> None:
    search = as_user(people, "dave", initial_password("dave"), "ldapsearch", "-LLL",
                     "-b", dn("dave"), "-s", "base", "(objectClass=*)", "userPassword", "uid")
    assert search.returncode == 0, search.stderr
    dave = by_dn(search.stdout)[dn("dave")]
    assert dave.names() == frozenset({"uid"})


def test_root_sees_hashed_password(people: Server) -> None:
    search = people.tool("ldapsearch", "-LLL", "-b", dn("dave"), "-s", "base",
                         "(objectClass=*)", "userPassword")
    assert search.returncode == 0, search.stderr
    (value,) = by_dn(search.stdout)[dn("dave")].values("userPassword")
    assert value.startswith("{ARGON2}"), value
    assert initial_password("dave") not in value


def test_password_given_in_add_is_stored_hashed(people: Server) -> None:
    search = people.tool("ldapsearch", "-LLL", "-b", dn("carol"), "-s", "base",
                         "(objectClass=*)", "userPassword")
    assert search.returncode == 0, search.stderr
    (value,) = by_dn(search.stdout)[dn("carol")].values("userPassword")
    assert value.startswith("{ARGON2}"), value


ANONYMOUS_WRITES: tuple[tuple[str, str, tuple[str, ...], str], ...] = (
    ("add", "ldapadd", (), f"dn: uid=eve,{PEOPLE}\nobjectClass: inetOrgPerson\nuid: eve\n"
                           "cn: Eve\nsn: Eve\n"),
    ("modify", "ldapmodify", (), f"dn: {dn('dave')}\nchangetype: modify\n"
                                 "replace: mail\nmail: hijacked@example.com\n"),
    ("password-modify", "ldapmodify", (), f"dn: {dn('dave')}\nchangetype: modify\n"
                                          "replace: userPassword\nuserPassword: owned\n"),
    ("delete", "ldapdelete", (dn("dave"),), ""),
    ("modrdn", "ldapmodrdn", (dn("dave"), "uid=mallory"), ""),
)


@pytest.mark.parametrize(("tool", "args", "ldif"),
                         [(tool, args, ldif) for _, tool, args, ldif in ANONYMOUS_WRITES],
                         ids=[name for name, _, _, _ in ANONYMOUS_WRITES])
def test_anonymous_write_refused(people: Server, tool: str, args: tuple[str, ...],
                                 ldif: str) -> None:
    result = people.tool(tool, *args, input=ldif.encode() if ldif else None, bind=False)
    assert result.returncode == 50, result.stderr
    search = people.tool("ldapsearch", "-LLL", "-b", PEOPLE, "(|(uid=eve)(uid=mallory)"
                         "(mail=hijacked@example.com))", "1.1")
    assert parse(search.stdout) == ()
    assert whoami(people, "dave", initial_password("dave")).returncode == 0


def test_anonymous_password_modify_refused(people: Server) -> None:
    result = people.tool("ldappasswd", "-s", "owned", dn("dave"), bind=False)
    # slapd's answer: strongerAuthRequired, "only authenticated users may change passwords".
    assert result_code(result) == 8, result.stdout
    assert whoami(people, "dave", initial_password("dave")).returncode == 0


def test_user_changes_own_password_with_password_modify(people: Server) -> None:
    changed = as_user(people, "alice", initial_password("alice"), "ldappasswd",
                      "-a", initial_password("alice"), "-s", "alice-new-secret")
    assert changed.returncode == 0, changed.stderr
    assert whoami(people, "alice", "alice-new-secret").stdout.decode().strip() == \
        f"dn:{dn('alice')}"
    assert whoami(people, "alice", initial_password("alice")).returncode == 49


def test_user_changes_own_password_with_modify(people: Server) -> None:
    changed = as_user(people, "carol", initial_password("carol"), "ldapmodify", input=(
        f"dn: {dn('carol')}\nchangetype: modify\nreplace: userPassword\n"
        "userPassword: carol-new-secret\n").encode())
    assert changed.returncode == 0, changed.stderr
    assert whoami(people, "carol", "carol-new-secret").returncode == 0
    assert whoami(people, "carol", initial_password("carol")).returncode == 49


def test_user_cannot_change_others_password_with_password_modify(people: Server) -> None:
    attempt = as_user(people, "dave", initial_password("dave"), "ldappasswd",
                      "-s", "stolen", dn("bob"))
    assert attempt.returncode != 0
    assert result_code(attempt) == 50, attempt.stdout
    assert whoami(people, "bob", initial_password("bob")).returncode == 0
    assert whoami(people, "bob", "stolen").returncode == 49


def test_user_cannot_change_others_password_with_modify(people: Server) -> None:
    attempt = as_user(people, "dave", initial_password("dave"), "ldapmodify", input=(
        f"dn: {dn('bob')}\nchangetype: modify\nreplace: userPassword\n"
        "userPassword: stolen\n").encode())
    assert attempt.returncode == 50, attempt.stderr
    assert whoami(people, "bob", initial_password("bob")).returncode == 0


def test_user_cannot_modify_other_entries(people: Server) -> None:
    attempt = as_user(people, "dave", initial_password("dave"), "ldapmodify", input=(
        f"dn: {dn('bob')}\nchangetype: modify\nreplace: mail\nmail: dave-was-here@x.org\n"
    ).encode())
    assert attempt.returncode == 50, attempt.stderr
    search = people.tool("ldapsearch", "-LLL", "-b", dn("bob"), "-s", "base", "mail")
    assert by_dn(search.stdout)[dn("bob")].values("mail") == ("bob@example.com",)


def test_user_cannot_add_entries(people: Server) -> None:
    attempt = as_user(people, "dave", initial_password("dave"), "ldapadd", input=(
        f"dn: uid=sock,{PEOPLE}\nobjectClass: inetOrgPerson\nuid: sock\ncn: S\nsn: S\n"
    ).encode())
    assert attempt.returncode == 50, attempt.stderr


def test_root_changes_anyone_password(people: Server) -> None:
    changed = people.tool("ldappasswd", "-s", "bob-reset-secret", dn("bob"))
    assert changed.returncode == 0, changed.stderr
    assert whoami(people, "bob", "bob-reset-secret").returncode == 0
    assert whoami(people, "bob", initial_password("bob")).returncode == 49


def test_root_generated_password(people: Server) -> None:
    generated = people.tool("ldappasswd", dn("dave"))
    assert generated.returncode == 0, generated.stderr
    lines = generated.stdout.decode().strip().splitlines()
    assert lines and lines[0].startswith("New password: "), generated.stdout
    password = lines[0][len("New password: "):]
    assert len(password) >= 8
    assert whoami(people, "dave", password).returncode == 0
    assert whoami(people, "dave", initial_password("dave")).returncode == 49


@pytest.fixture(scope="module")
def private(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = make_server(tmp_path_factory.mktemp("certdir-private"))
    srv.configure("access", anonymous_read=False)
    srv.start()
    populate(srv)
    yield srv
    log = srv.stop()
    assert "Traceback" not in log, log


def test_private_refuses_anonymous_search(private: Server) -> None:
    search = private.tool("ldapsearch", "-LLL", "-b", BASE, "(objectClass=*)", "1.1",
                          bind=False)
    assert search.returncode == 32, search.stderr
    assert parse(search.stdout) == ()


def test_private_refuses_anonymous_compare(private: Server) -> None:
    compare = private.tool("ldapcompare", dn("alice"), "uid:alice", bind=False)
    assert compare.returncode == 32, compare.stdout + compare.stderr


def test_private_allows_authenticated_user(private: Server) -> None:
    search = as_user(private, "alice", initial_password("alice"), "ldapsearch", "-LLL",
                     "-b", PEOPLE, "(uid=bob)", "mail")
    assert search.returncode == 0, search.stderr
    assert by_dn(search.stdout)[dn("bob")].values("mail") == ("bob@example.com",)


def test_private_allows_root(private: Server) -> None:
    search = private.tool("ldapsearch", "-LLL", "-b", PEOPLE, "(objectClass=inetOrgPerson)",
                          "1.1")
    assert search.returncode == 0, search.stderr
    assert len(parse(search.stdout)) == len(USERS)


def test_passwords_never_logged(tmp_path: Path) -> None:
    srv = make_server(tmp_path)
    srv.start()
    try:
        added = srv.tool("ldapadd", input=(
            f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n\n"
            f"dn: {dn('zoe')}\nobjectClass: inetOrgPerson\nuid: zoe\ncn: Zoe\nsn: Zoe\n"
            "userPassword: zoe-added-secret\n").encode())
        assert added.returncode == 0, added.stderr
        assert whoami(srv, "zoe", "zoe-added-secret").returncode == 0
        assert whoami(srv, "zoe", "zoe-wrong-secret").returncode == 49
        changed = as_user(srv, "zoe", "zoe-added-secret", "ldappasswd", "-s", "zoe-new-secret")
        assert changed.returncode == 0, changed.stdout
        modified = srv.tool("ldapmodify", input=(
            f"dn: {dn('zoe')}\nchangetype: modify\nreplace: userPassword\n"
            "userPassword: zoe-modified-secret\n").encode())
        assert modified.returncode == 0, modified.stderr
        root_password = srv.root_password
    finally:
        log = srv.stop()
    assert "BIND" in log.upper(), log
    for secret in ("zoe-added-secret", "zoe-wrong-secret", "zoe-new-secret",
                   "zoe-modified-secret", root_password):
        assert secret not in log, f"{secret} found in the server log"
