"""Scenario 060: access rules in certdir.yaml, decided as configured.

A server runs with `access.rules` giving a help desk (members of
cn=helpdesk, also through the nested cn=tier2, which holds cn=helpdesk
again: a cycle) the management of ou=people, and people the editing of
their own telephone number; contractors' mail is for the help desk only;
the groups are readable by certificate (tls:) and SASL EXTERNAL (sasl:)
identities. The tree is added over LDAP; `certdir access check` then reads
the same database beside the running server and pins, for each identity,
entry and attribute, the rights, the rule (index) and the `by` clause that
decided:

- the help desk may write people's attributes, add and delete people
  (`children` of ou=people, the `entry` of each person), through nested
  groups; others may not;
- self may write its own telephoneNumber and userPassword (`=xw`), not its
  other attributes; users below ou=people read (dn.regex), others search;
- a filter-based `to` (employeeType=contractor) hides mail from all but
  the help desk; the first matching rule decides even when no `by` matches;
- tls:<subject> and sasl:EXTERNAL match only with that certificate or
  mechanism; the root DN is above every rule;
- a change of group membership is seen by the next check.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TypedDict

import pytest

from tests.integration.conftest import Server, make_server

BASE = "dc=example,dc=com"
PEOPLE = f"ou=people,{BASE}"
GROUPS = f"ou=groups,{BASE}"
HELPDESK = f"group:cn=helpdesk,{GROUPS}"
EXIT_DENIED = 1


class By(TypedDict):
    who: str
    level: str


class Rule(TypedDict):
    """One of certdir.yaml's `access.rules`."""

    to: dict[str, str | list[str]]
    by: list[By]


RULES: list[Rule] = [
    {"to": {"attrs": ["userPassword"]},
     "by": [{"who": "self", "level": "=xw"}, {"who": HELPDESK, "level": "=xw"},
            {"who": "*", "level": "auth"}]},
    {"to": {"dn": PEOPLE, "attrs": ["telephoneNumber"]},
     "by": [{"who": "self", "level": "write"}, {"who": HELPDESK, "level": "write"},
            {"who": "users", "level": "read"}]},
    {"to": {"dn": PEOPLE, "filter": "(employeeType=contractor)", "attrs": ["mail"]},
     "by": [{"who": HELPDESK, "level": "read"}]},
    {"to": {"dn": PEOPLE, "scope": "base", "attrs": ["children"]},
     "by": [{"who": HELPDESK, "level": "write"}]},
    {"to": {"dn": PEOPLE, "scope": "children"},
     "by": [{"who": HELPDESK, "level": "write"},
            {"who": f"dn.regex:^uid=[^,]+,{PEOPLE}$", "level": "read"},
            {"who": "*", "level": "search"}]},
    {"to": {"dn_regex": f"^cn=[^,]+,{GROUPS}$"},
     "by": [{"who": "tls:CN=Alice,O=Example", "level": "read"},
            {"who": "sasl:EXTERNAL", "level": "search"},
            {"who": "users", "level": "none"},
            {"who": "*", "level": "compare"}]},
    {"to": {}, "by": [{"who": "*", "level": "read"}]},
]


def person(uid: str, *extra: str) -> str:
    lines = "".join(f"{line}\n" for line in extra)
    return (f"dn: uid={uid},{PEOPLE}\nobjectClass: inetOrgPerson\nuid: {uid}\n"
            f"cn: {uid.title()}\nsn: {uid.title()}\nmail: {uid}@example.com\n"
            f"userPassword: {uid}-secret\n{lines}\n")


TREE = (
    f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n\n"
    f"dn: {GROUPS}\nobjectClass: organizationalUnit\nou: groups\n\n"
    f"dn: ou=services,{BASE}\nobjectClass: organizationalUnit\nou: services\n\n"
    + person("alice", "telephoneNumber: +49 30 1234")
    + person("bob")
    + person("carol", "employeeType: contractor")
    + f"dn: cn=webmail,ou=services,{BASE}\nobjectClass: organizationalRole\ncn: webmail\n\n"
    f"dn: cn=helpdesk,{GROUPS}\nobjectClass: groupOfNames\ncn: helpdesk\n"
    f"member: uid=carol,{PEOPLE}\n\n"
    f"dn: cn=tier2,{GROUPS}\nobjectClass: groupOfUniqueNames\ncn: tier2\n"
    f"uniqueMember: uid=bob,{PEOPLE}\nuniqueMember: cn=helpdesk,{GROUPS}\n\n"
    f"dn: cn=helpdesk,{GROUPS}\nchangetype: modify\nadd: member\n"
    f"member: cn=tier2,{GROUPS}\n\n"
)


def uid(name: str) -> str:
    return f"uid={name},{PEOPLE}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = make_server(Path(tmp_path_factory.mktemp("acl-rules")), "--no-ca")
    srv.configure("access", rules=RULES)
    srv.start()
    added = srv.tool("ldapmodify", "-a", input=TREE.encode())
    assert added.returncode == 0, added.stderr
    yield srv
    log = srv.stop()
    assert "Traceback" not in log, log


def check(server: Server, who: str, target: str, attr: str, level: str,
          *extra: str) -> tuple[int, dict[str, str]]:
    done = server.certdir("access", "check", "--data-dir", str(server.data_dir), "--as", who,
                          "--dn", target, "--attr", attr, "--level", level, *extra,
                          check=False)
    assert done.stderr == b"", done.stderr
    fields = dict(line.split(":", 1) for line in done.stdout.decode().splitlines())
    return done.returncode, {k: v.strip() for k, v in fields.items()}


CASES = [
    # why, --as, --dn, --attr, --level, extra options, exit status, rights, rule, by
    ("help desk (nested) writes a telephone number", uid("bob"), uid("alice"),
     "telephoneNumber", "write", (), 0, "write (=dxcsraz)", 1, 1),
    ("help desk (direct) writes a telephone number", uid("carol"), uid("alice"),
     "telephoneNumber", "write", (), 0, "write (=dxcsraz)", 1, 1),
    ("self writes its telephone number", uid("alice"), uid("alice"), "telephoneNumber",
     "write", (), 0, "write (=dxcsraz)", 1, 0),
    ("others only read it", f"cn=webmail,ou=services,{BASE}", uid("alice"), "telephoneNumber",
     "write", (), EXIT_DENIED, "read (=dxcsr)", 1, 2),
    ("anonymous gets none of it", "anonymous", uid("alice"), "telephoneNumber", "disclose",
     (), EXIT_DENIED, "none", 1, None),
    ("help desk writes a person's cn", uid("bob"), uid("alice"), "cn", "write", (), 0,
     "write (=dxcsraz)", 4, 0),
    ("self may not write its cn", uid("alice"), uid("alice"), "cn", "write", (), EXIT_DENIED,
     "read (=dxcsr)", 4, 1),
    ("help desk deletes a person", uid("bob"), uid("alice"), "entry", "delete", (), 0,
     "write (=dxcsraz)", 4, 0),
    ("help desk adds people", uid("bob"), PEOPLE, "children", "add", (), 0,
     "write (=dxcsraz)", 3, 0),
    ("a person may not add people", uid("alice"), PEOPLE, "children", "add", (), EXIT_DENIED,
     "none", 3, None),
    ("a service searches people", f"cn=webmail,ou=services,{BASE}", uid("alice"), "cn",
     "read", (), EXIT_DENIED, "search (=dxcs)", 4, 2),
    ("self changes its password", uid("alice"), uid("alice"), "userPassword", "=xw", (), 0,
     "=xaz", 0, 0),
    ("nor self reads it", uid("alice"), uid("alice"), "userPassword", "read", (), EXIT_DENIED,
     "=xaz", 0, 0),
    ("help desk resets passwords", uid("bob"), uid("alice"), "userPassword", "=w", (), 0,
     "=xaz", 0, 1),
    ("anyone binds with it", "anonymous", uid("alice"), "userPassword", "auth", (), 0,
     "auth (=dx)", 0, 2),
    ("contractor's mail hidden from users", uid("alice"), uid("carol"), "mail", "read", (),
     EXIT_DENIED, "none", 2, None),
    ("contractor's mail read by the help desk", uid("bob"), uid("carol"), "mail", "read", (),
     0, "read (=dxcsr)", 2, 0),
    ("employee's mail read by users of ou=people", uid("alice"), uid("bob"), "mail", "read",
     (), 0, "read (=dxcsr)", 4, 1),
    ("tls: with that certificate", uid("alice"), f"cn=tier2,{GROUPS}", "uniqueMember", "read",
     ("--tls-subject", "cn=alice, o=example"), 0, "read (=dxcsr)", 5, 0),
    ("sasl:EXTERNAL", uid("bob"), f"cn=tier2,{GROUPS}", "uniqueMember", "search",
     ("--mechanism", "EXTERNAL"), 0, "search (=dxcs)", 5, 1),
    ("sasl:EXTERNAL searches, not reads", uid("bob"), f"cn=tier2,{GROUPS}", "uniqueMember",
     "read", ("--mechanism", "EXTERNAL"), EXIT_DENIED, "search (=dxcs)", 5, 1),
    ("users bound simply get none there", uid("alice"), f"cn=tier2,{GROUPS}", "uniqueMember",
     "compare", (), EXIT_DENIED, "none", 5, 2),
    ("anonymous compares", "anonymous", f"cn=helpdesk,{GROUPS}", "member", "compare", (), 0,
     "compare (=dxc)", 5, 3),
    ("the rest is read by all", "anonymous", BASE, "dc", "read", (), 0, "read (=dxcsr)", 6, 0),
    ("the root DN is above the rules", f"cn=admin,{BASE}", uid("alice"), "userPassword",
     "write", (), 0, "write (=dxcsraz)", None, None),
]


@pytest.mark.parametrize("why, who, target, attr, level, extra, status, rights, rule, by",
                         CASES, ids=[c[0] for c in CASES])
def test_decision(server: Server, why: str, who: str, target: str, attr: str, level: str,
                  extra: tuple[str, ...], status: int, rights: str, rule: int | None,
                  by: int | None) -> None:
    returncode, fields = check(server, who, target, attr, level, *extra)
    assert (returncode, fields["rights"]) == (status, rights)
    assert fields[level] == ("allowed" if status == 0 else "denied")
    if rule is None:
        assert fields["rule"] == "none (the root DN is above every rule)"
        return
    assert fields["rule"].startswith(f"access.rules[{rule}] to ")
    expected_by = "none matched" if by is None else (
        f"access.rules[{rule}].by[{by}] {RULES[rule]['by'][by]['who']}")
    assert fields["by"].startswith(expected_by)


def test_membership_change_is_seen(server: Server) -> None:
    """Bob is in the help desk through cn=tier2; once cn=tier2 leaves it, not."""
    assert check(server, uid("bob"), PEOPLE, "children", "add")[0] == 0
    removed = server.tool("ldapmodify", input=(
        f"dn: cn=helpdesk,{GROUPS}\nchangetype: modify\ndelete: member\n"
        f"member: cn=tier2,{GROUPS}\n").encode())
    assert removed.returncode == 0, removed.stderr
    assert check(server, uid("bob"), PEOPLE, "children", "add")[0] == EXIT_DENIED
    assert check(server, uid("carol"), PEOPLE, "children", "add")[0] == 0
