"""Scenario 062: every update asks the access rules (slapd.access(5)).

With the default rules (issue 10 part 1: users read everything but
userPassword, which its owner may change but not read):

- A user changes its own password (modify or Password Modify, RFC 3062),
  and nothing else: its own mail, another user's attributes or password,
  adding, deleting or renaming entries are insufficientAccessRights (50),
  and nothing changes; a modify changing its password and its mail at once
  is refused whole (RFC 4511 §4.6: all or nothing).
- An update naming an entry that does not exist is noSuchObject (32), as
  slapd answers: it is not a question of rights.
- Anonymous updates are insufficientAccessRights (50) whether or not the
  entry exists, so they cannot probe which entries do.
"""

from __future__ import annotations

import subprocess

import pytest

from tests.integration.conftest import Server
from tests.integration.ldif_compare import by_dn

BASE = "dc=example,dc=com"
PEOPLE = f"ou=people,{BASE}"
USERS = ("alice", "bob")


def dn(uid: str) -> str:
    return f"uid={uid},{PEOPLE}"


def password(uid: str) -> str:
    return f"{uid}-secret-062"


@pytest.fixture(scope="module")
def people(server: Server) -> Server:
    entries = "".join(
        f"\ndn: {dn(uid)}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid.title()}\n"
        f"sn: {uid.title()}\nmail: {uid}@example.com\nuserPassword: {password(uid)}\n"
        for uid in USERS)
    added = server.tool("ldapadd", input=(
        f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n{entries}").encode())
    assert added.returncode == 0, added.stderr
    return server


def as_user(server: Server, uid: str, name: str, *args: str,
            input: str | None = None) -> subprocess.CompletedProcess[bytes]:
    return server.tool(name, "-D", dn(uid), "-w", password(uid), *args,
                       input=None if input is None else input.encode(), bind=False)


def binds(server: Server, uid: str, secret: str) -> bool:
    whoami = server.tool("ldapwhoami", "-D", dn(uid), "-w", secret, bind=False)
    return whoami.returncode == 0


def mail_of(server: Server, uid: str) -> tuple[str, ...]:
    search = server.tool("ldapsearch", "-LLL", "-b", dn(uid), "-s", "base", "mail")
    return by_dn(search.stdout)[dn(uid)].values("mail")


def replace(uid: str, attribute: str, value: str) -> str:
    return f"dn: {dn(uid)}\nchangetype: modify\nreplace: {attribute}\n{attribute}: {value}\n"


def test_user_changes_own_password_with_modify(people: Server) -> None:
    changed = as_user(people, "alice", "ldapmodify",
                      input=replace("alice", "userPassword", "alice-second-062"))
    assert changed.returncode == 0, changed.stderr
    assert binds(people, "alice", "alice-second-062")
    back = people.tool("ldapmodify",
                       input=replace("alice", "userPassword", password("alice")).encode())
    assert back.returncode == 0, back.stderr


def test_user_changes_own_password_with_password_modify(people: Server) -> None:
    changed = as_user(people, "bob", "ldappasswd", "-a", password("bob"), "-s", "bob-new-062")
    assert changed.returncode == 0, changed.stdout + changed.stderr
    assert binds(people, "bob", "bob-new-062")
    back = people.tool("ldappasswd", "-s", password("bob"), dn("bob"))
    assert back.returncode == 0, back.stderr


@pytest.mark.parametrize("uid", ["alice", "bob"])
def test_user_cannot_change_mail(people: Server, uid: str) -> None:
    attempt = as_user(people, "alice", "ldapmodify",
                      input=replace(uid, "mail", "changed@example.org"))
    assert attempt.returncode == 50, attempt.stderr
    assert mail_of(people, uid) == (f"{uid}@example.com",)


def test_password_and_mail_at_once_refused_whole(people: Server) -> None:
    attempt = as_user(people, "alice", "ldapmodify", input=(
        f"dn: {dn('alice')}\nchangetype: modify\nreplace: userPassword\n"
        "userPassword: alice-third-062\n-\nreplace: mail\nmail: changed@example.org\n"))
    assert attempt.returncode == 50, attempt.stderr
    assert binds(people, "alice", password("alice"))
    assert mail_of(people, "alice") == ("alice@example.com",)


def test_user_cannot_change_other_password(people: Server) -> None:
    attempt = as_user(people, "alice", "ldapmodify",
                      input=replace("bob", "userPassword", "stolen-062"))
    assert attempt.returncode == 50, attempt.stderr
    passwd = as_user(people, "alice", "ldappasswd", "-s", "stolen-062", dn("bob"))
    assert "Result: Insufficient access (50)" in passwd.stdout.decode(), passwd.stdout
    assert binds(people, "bob", password("bob"))
    assert not binds(people, "bob", "stolen-062")


USER_UPDATES: tuple[tuple[str, str, tuple[str, ...], str | None], ...] = (
    ("add", "ldapadd", (), f"dn: uid=eve,{PEOPLE}\nobjectClass: inetOrgPerson\nuid: eve\n"
                           "cn: Eve\nsn: Eve\n"),
    ("delete", "ldapdelete", (dn("bob"),), None),
    ("rename-self", "ldapmodrdn", (dn("alice"), "uid=alicia"), None),
    ("rename-other", "ldapmodrdn", (dn("bob"), "uid=robert"), None),
    ("delete-ou", "ldapdelete", ("-r", PEOPLE), None),
)


@pytest.mark.parametrize(("tool", "args", "ldif"),
                         [(tool, args, ldif) for _, tool, args, ldif in USER_UPDATES],
                         ids=[name for name, *_ in USER_UPDATES])
def test_user_updates_refused(people: Server, tool: str, args: tuple[str, ...],
                              ldif: str | None) -> None:
    attempt = as_user(people, "alice", tool, *args, input=ldif)
    assert attempt.returncode == 50, attempt.stderr
    search = people.tool("ldapsearch", "-LLL", "-b", PEOPLE, "-s", "one", "(objectClass=*)",
                         "1.1")
    assert sorted(by_dn(search.stdout)) == sorted(dn(uid) for uid in USERS)


MISSING = dn("nobody")
MISSING_UPDATES: tuple[tuple[str, str, tuple[str, ...], str | None], ...] = (
    ("modify", "ldapmodify", (), replace("nobody", "mail", "x@example.org")),
    ("delete", "ldapdelete", (MISSING,), None),
    ("rename", "ldapmodrdn", (MISSING, "uid=somebody"), None),
)


@pytest.mark.parametrize(("tool", "args", "ldif"),
                         [(tool, args, ldif) for _, tool, args, ldif in MISSING_UPDATES],
                         ids=[name for name, *_ in MISSING_UPDATES])
def test_user_update_of_missing_entry(people: Server, tool: str, args: tuple[str, ...],
                                      ldif: str | None) -> None:
    attempt = as_user(people, "alice", tool, *args, input=ldif)
    assert attempt.returncode == 32, attempt.stderr
    said = (attempt.stdout + attempt.stderr).decode().lower()
    assert f"matched dn: {PEOPLE}" in said, said


def test_password_modify_of_missing_entry(people: Server) -> None:
    passwd = as_user(people, "alice", "ldappasswd", "-s", "whatever-062", MISSING)
    assert "Result: No such object (32)" in passwd.stdout.decode(), passwd.stdout


ANONYMOUS_UPDATES: tuple[tuple[str, str, tuple[str, ...], str | None], ...] = (
    ("add", "ldapadd", (), f"dn: uid=eve,{PEOPLE}\nobjectClass: inetOrgPerson\nuid: eve\n"
                           "cn: Eve\nsn: Eve\n"),
    ("modify", "ldapmodify", (), replace("bob", "mail", "x@example.org")),
    ("modify-missing", "ldapmodify", (), replace("nobody", "mail", "x@example.org")),
    ("delete", "ldapdelete", (dn("bob"),), None),
    ("delete-missing", "ldapdelete", (MISSING,), None),
    ("rename", "ldapmodrdn", (dn("bob"), "uid=robert"), None),
)


@pytest.mark.parametrize(("tool", "args", "ldif"),
                         [(tool, args, ldif) for _, tool, args, ldif in ANONYMOUS_UPDATES],
                         ids=[name for name, *_ in ANONYMOUS_UPDATES])
def test_anonymous_updates_refused(people: Server, tool: str, args: tuple[str, ...],
                                   ldif: str | None) -> None:
    attempt = people.tool(tool, *args, input=None if ldif is None else ldif.encode(),
                          bind=False)
    assert attempt.returncode == 50, attempt.stderr
    assert mail_of(people, "bob") == ("bob@example.com",)
