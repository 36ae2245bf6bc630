"""Scenario 079: OpenLDAP's schema files as `schema: paths:` (issue 12 part 6).

- A certdir whose certdir.yaml lists Debian's core, cosine, inetorgperson,
  nis and openldap schema files (the .schema form, or the .ldif one)
  starts; posixAccount, posixGroup and
  nisNetgroup entries are added with ldapadd and found with ldapsearch
  by uidNumber and gidNumber (integerMatch, integerOrderingMatch) and by
  memberUid substrings (caseExactIA5SubstringsMatch: case counts).
- A netgroup triple that is not `(host,user,domain)` is refused with
  invalidAttributeSyntax (21).
- cn=Subschema publishes the definitions with the OIDs the files' macros
  stand for, never a macro name.
- A schema file that redefines a type certdir has, differently, stops
  `certdir serve`: exit status 1 and one line naming the file, the line
  and the definition it conflicts with, no traceback; so does one that
  names a matching rule certdir lacks (Debian's pmi.schema).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import Server, make_server

DEBIAN = Path("/etc/ldap/schema")
NAMES = ("core", "cosine", "inetorgperson", "nis", "openldap")
FILES = [str(DEBIAN / f"{name}.schema") for name in NAMES]
BASE = "dc=example,dc=com"

ENTRIES = f"""dn: ou=people,{BASE}
objectClass: organizationalUnit
ou: people

dn: ou=groups,{BASE}
objectClass: organizationalUnit
ou: groups

dn: uid=alice,ou=people,{BASE}
objectClass: inetOrgPerson
objectClass: posixAccount
objectClass: shadowAccount
uid: alice
cn: Alice Archer
sn: Archer
uidNumber: 1001
gidNumber: 500
homeDirectory: /home/alice
loginShell: /bin/sh
shadowLastChange: 19000

dn: uid=bob,ou=people,{BASE}
objectClass: inetOrgPerson
objectClass: posixAccount
uid: bob
cn: Bob Baker
sn: Baker
uidNumber: 1002
gidNumber: 500
homeDirectory: /home/bob

dn: cn=staff,ou=groups,{BASE}
objectClass: posixGroup
cn: staff
gidNumber: 500
memberUid: alice
memberUid: bob

dn: cn=admins,ou=groups,{BASE}
objectClass: nisNetgroup
cn: admins
nisNetgroupTriple: (host1.example.com,alice,example.com)
nisNetgroupTriple: (,bob,)
"""


@pytest.fixture(scope="module", params=[".schema", ".ldif"])
def nis(request: pytest.FixtureRequest,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = make_server(tmp_path_factory.mktemp("certdir"), "--no-ca")
    server.configure("schema", paths=[str(DEBIAN / f"{name}{request.param}") for name in NAMES])
    server.start()
    added = server.tool("ldapadd", input=ENTRIES.encode())
    assert added.returncode == 0, added.stderr
    yield server
    log = server.stop()
    assert "Traceback" not in log, log


def _dns(server: Server, filter_: str) -> list[str]:
    found = server.tool("ldapsearch", "-LLL", "-b", BASE, filter_, "1.1")
    assert found.returncode == 0, found.stderr
    return [line[4:] for line in found.stdout.decode().splitlines() if line.startswith("dn: ")]


@pytest.mark.parametrize("filter_, dns", [
    ("(uidNumber=1001)", [f"uid=alice,ou=people,{BASE}"]),
    ("(&(objectClass=posixAccount)(uidNumber>=1002))", [f"uid=bob,ou=people,{BASE}"]),
    ("(&(objectClass=posixGroup)(gidNumber=500))", [f"cn=staff,ou=groups,{BASE}"]),
    ("(memberUid=ali*)", [f"cn=staff,ou=groups,{BASE}"]),
    ("(memberUid=ALI*)", []),
    ("(&(objectClass=nisNetgroup)(cn=admins))", [f"cn=admins,ou=groups,{BASE}"]),
    ("(objectClass=shadowAccount)", [f"uid=alice,ou=people,{BASE}"]),
])
def test_nis_entries_are_found(nis: Server, filter_: str, dns: list[str]) -> None:
    assert _dns(nis, filter_) == dns


def test_bad_netgroup_triple_is_invalid_syntax(nis: Server) -> None:
    added = nis.tool("ldapadd", input=f"""dn: cn=broken,ou=groups,{BASE}
objectClass: nisNetgroup
cn: broken
nisNetgroupTriple: host1,alice,example.com
""".encode())
    assert added.returncode == 21, added.stderr


def test_subschema_publishes_expanded_oids(nis: Server) -> None:
    found = nis.tool("ldapsearch", "-LLL", "-o", "ldif-wrap=no", "-b", "cn=Subschema",
                     "-s", "base", "(objectClass=*)", "objectClasses", "attributeTypes")
    assert found.returncode == 0, found.stderr
    text = found.stdout.decode()
    assert "objectClasses: ( 1.3.6.1.4.1.4203.1.4.5 NAME 'OpenLDAPperson'" in text
    assert "objectClasses: ( 1.3.6.1.1.1.2.0 NAME 'posixAccount'" in text
    assert "OpenLDAPobjectClass" not in text


def test_conflicting_redefinition_stops_serve(tmp_path: Path) -> None:
    server = make_server(tmp_path, "--no-ca")
    conflict = server.data_dir / "local.schema"
    conflict.write_text("# a local idea of uidNumber\n"
                        "attributetype ( 1.3.6.1.1.1.1.0 NAME 'uidNumber'\n"
                        "\tEQUALITY caseIgnoreMatch\n"
                        "\tSYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )\n")
    server.configure("schema", paths=[*FILES, "local.schema"])
    served = server.certdir("serve", "--data-dir", str(server.data_dir), check=False)
    assert served.returncode == 1, served.stderr
    lines = served.stderr.decode().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"certdir: error: schema.paths: {conflict}:2: attribute type "
                               "uidNumber (1.3.6.1.1.1.1.0) conflicts with uidNumber "
                               "(1.3.6.1.1.1.1.0) defined at "), lines[0]
    assert "core.schema:" in lines[0] and "EQUALITY" in lines[0], lines[0]


def test_unknown_matching_rule_stops_serve(tmp_path: Path) -> None:
    server = make_server(tmp_path, "--no-ca")
    server.configure("schema", paths=[*FILES, str(DEBIAN / "pmi.schema")])
    served = server.certdir("serve", "--data-dir", str(server.data_dir), check=False)
    assert served.returncode == 1, served.stderr
    assert served.stderr.decode().splitlines() == [
        f"certdir: error: schema.paths: {DEBIAN / 'pmi.schema'}:347: "
        "attributeCertificateAttribute: unknown matching rule attributeCertificateExactMatch"]
