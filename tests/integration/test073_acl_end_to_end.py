"""Scenario 073: the example config's access rules, enforced by every operation.

A server runs with `config.example.yaml`'s `access` section (the help desk,
members of cn=helpdesk, manages ou=people; people edit their own telephone
number; cn=webmail may act for people with the proxied authorization
control). Real clients then find, over LDAP, what `certdir access check`
predicts:

1. A help-desk member changes a person's cn, adds a person and deletes one
   (0); a person may change their own telephoneNumber (0) but not their cn,
   another person's telephoneNumber, nor add or delete people
   (insufficientAccessRights, 50).
2. Anonymous may not write (50) and may read people.
3. cn=webmail, allowed by `access.proxy`, acts as a person: WhoAmI names
   the person and the person's rights apply (their own telephone number, 0;
   someone else's, 50); it may not act as the root DN, nor as an entry
   outside ou=people (authorizationDenied, 123).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.integration.conftest import Server, make_server

BASE = "dc=example,dc=com"
PEOPLE = f"ou=people,{BASE}"
GROUPS = f"ou=groups,{BASE}"
WEBMAIL = f"cn=webmail,ou=services,{BASE}"
EXAMPLE = Path(__file__).parents[2] / "config.example.yaml"
INSUFFICIENT_ACCESS = 50
AUTHORIZATION_DENIED = 123


def person(uid: str) -> str:
    return (f"dn: uid={uid},{PEOPLE}\nobjectClass: inetOrgPerson\nuid: {uid}\n"
            f"cn: {uid.title()}\nsn: {uid.title()}\nmail: {uid}@example.com\n"
            f"telephoneNumber: +49 30 1000\nuserPassword: {uid}-secret\n\n")


TREE = (
    f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n\n"
    f"dn: {GROUPS}\nobjectClass: organizationalUnit\nou: groups\n\n"
    f"dn: ou=services,{BASE}\nobjectClass: organizationalUnit\nou: services\n\n"
    + person("alice") + person("bob") + person("dave")
    + f"dn: {WEBMAIL}\nobjectClass: person\ncn: webmail\nsn: webmail\n"
    "userPassword: webmail-secret\n\n"
    f"dn: cn=helpdesk,{GROUPS}\nobjectClass: groupOfNames\ncn: helpdesk\n"
    f"member: uid=bob,{PEOPLE}\n\n"
)


def uid(name: str) -> str:
    return f"uid={name},{PEOPLE}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    access = yaml.safe_load(EXAMPLE.read_text())["access"]
    srv = make_server(Path(tmp_path_factory.mktemp("acl-e2e")), "--no-ca")
    srv.configure("access", rules=access["rules"], proxy=access["proxy"])
    srv.start()
    added = srv.tool("ldapmodify", "-a", input=TREE.encode())
    assert added.returncode == 0, added.stderr
    yield srv
    log = srv.stop()
    assert "Traceback" not in log, log


def as_user(server: Server, tool: str, dn: str, password: str, *args: str,
            ldif: str | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([tool, "-H", server.uri, "-x", "-D", dn, "-w", password, *args],
                          input=None if ldif is None else ldif.encode(), capture_output=True,
                          env=server.env(), timeout=60, check=False)


def modify(server: Server, who: str, ldif: str, *args: str) -> int:
    done = as_user(server, "ldapmodify", uid(who), f"{who}-secret", *args, ldif=ldif)
    return done.returncode


def replace(dn: str, attribute: str, value: str) -> str:
    return f"dn: {dn}\nchangetype: modify\nreplace: {attribute}\n{attribute}: {value}\n"


def test_help_desk_changes_a_person(server: Server) -> None:
    assert modify(server, "bob", replace(uid("alice"), "cn", "Alice Liddell")) == 0


def test_help_desk_adds_and_deletes_people(server: Server) -> None:
    assert modify(server, "bob", person("erin"), "-a") == 0
    assert modify(server, "bob", f"dn: {uid('erin')}\nchangetype: delete\n") == 0


def test_self_edits_own_telephone_number(server: Server) -> None:
    assert modify(server, "alice", replace(uid("alice"), "telephoneNumber", "+49 30 2")) == 0


@pytest.mark.parametrize("why, ldif, args", [
    ("own cn", replace(uid("alice"), "cn", "Queen Alice"), ()),
    ("another person's telephone number", replace(uid("dave"), "telephoneNumber", "+1"), ()),
    ("add a person", person("frank"), ("-a",)),
    ("delete a person", f"dn: {uid('dave')}\nchangetype: delete\n", ()),
])
def test_a_person_may_not(server: Server, why: str, ldif: str, args: tuple[str, ...]) -> None:
    assert modify(server, "alice", ldif, *args) == INSUFFICIENT_ACCESS


def test_anonymous_may_read_but_not_write(server: Server) -> None:
    found = server.tool("ldapsearch", "-LLL", "-b", PEOPLE, "(uid=dave)", "mail", bind=False)
    assert (found.returncode, found.stdout.decode().split("\n")[1]) == (
        0, "mail: dave@example.com")
    done = subprocess.run(["ldapmodify", "-H", server.uri, "-x"], capture_output=True,
                          input=replace(uid("dave"), "cn", "Dave").encode(), env=server.env(),
                          timeout=60, check=False)
    assert done.returncode == INSUFFICIENT_ACCESS


def webmail(server: Server, tool: str, authzid: str, *args: str,
            ldif: str | None = None) -> subprocess.CompletedProcess[bytes]:
    return as_user(server, tool, WEBMAIL, "webmail-secret", "-e", f"!authzid=dn:{authzid}",
                   *args, ldif=ldif)


def test_webmail_acts_for_a_person(server: Server) -> None:
    done = webmail(server, "ldapwhoami", uid("dave"))
    assert (done.returncode, done.stdout.decode().strip()) == (0, f"dn:{uid('dave')}")
    own = webmail(server, "ldapmodify", uid("dave"),
                  ldif=replace(uid("dave"), "telephoneNumber", "+49 30 3"))
    assert own.returncode == 0, own.stderr
    other = webmail(server, "ldapmodify", uid("dave"),
                    ldif=replace(uid("alice"), "telephoneNumber", "+49 30 4"))
    assert other.returncode == INSUFFICIENT_ACCESS


@pytest.mark.parametrize("target", [f"cn=admin,{BASE}", f"cn=helpdesk,{GROUPS}"])
def test_webmail_may_not_act_outside_people(server: Server, target: str) -> None:
    # ldapwhoami exits 1 whatever the result; it prints the code.
    done = webmail(server, "ldapwhoami", target)
    assert (done.returncode, done.stderr.decode().splitlines()[0]) == (
        1, f"ldap_parse_result: Proxied Authorization Denied ({AUTHORIZATION_DENIED})")
