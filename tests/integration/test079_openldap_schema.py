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
- Every .schema file Debian ships loads together (pmi.schema too): an
  X.509 attribute certificate stored as attributeCertificateAttribute
  is found by slapd's attributeCertificateExactMatch assertion, its
  serial and its issuer's baseCertificateID.
- `ditcontentrule` statements (RFC 4512 §4.1.6) are published in
  cn=Subschema's dITContentRules and enforced as slapd does for an entry
  whose structural class has one: an auxiliary class outside AUX, a
  missing MUST type, a NOT type, or an OBSOLETE rule is
  objectClassViolation (65), on add and on modify; a MAY type of the rule
  is allowed though the classes do not list it.
- A schema file that redefines a type certdir has, differently, stops
  `certdir serve`: exit status 1 and one line naming the file, the line
  and the definition it conflicts with, no traceback; so does one that
  names a matching rule certdir lacks.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509

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
    unknown = server.data_dir / "local.schema"
    unknown.write_text("attributetype ( 1.3.6.1.4.1.99999.1.1 NAME 'badge'\n"
                       "\tEQUALITY fooMatch\n"
                       "\tSYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )\n")
    server.configure("schema", paths=[*FILES, "local.schema"])
    served = server.certdir("serve", "--data-dir", str(server.data_dir), check=False)
    assert served.returncode == 1, served.stderr
    assert served.stderr.decode().splitlines() == [
        f"certdir: error: schema.paths: {unknown}:1: badge: unknown matching rule fooMatch"]


# --- every Debian file, attribute certificates, DIT content rules -------------

RULES = """# device entries: ipHost only, a locality, maybe a mail address, no owner
ditcontentrule ( 2.5.6.14 NAME 'deviceRule' DESC 'devices of the lab'
\tAUX ipHost MUST l MAY mail NOT owner )
ditcontentrule ( 0.9.2342.19200300.100.4.7 NAME 'roomRule' OBSOLETE )
"""
AA = "CN=Attribute Authority,O=Example"


def _tlv(tag: int, *parts: bytes) -> bytes:
    body = b"".join(parts)
    size = len(body).to_bytes(2, "big")
    return bytes([tag]) + (bytes([len(body)]) if len(body) < 0x80 else b"\x82" + size) + body


def _integer(n: int) -> bytes:
    return _tlv(0x02, n.to_bytes((n.bit_length() + 8) // 8, "big", signed=True))


def _attribute_certificate(serial: int, issuer_serial: int) -> bytes:
    """A DER attribute certificate (RFC 5755 §4.1) issued by AA's
    certificate `issuer_serial`; its signature is not checked."""
    name = x509.Name.from_rfc4514_string(AA).public_bytes()
    general_names = _tlv(0x30, _tlv(0xA4, name))  # directoryName [4], explicit
    ecdsa_sha256 = _tlv(0x30, _tlv(0x06, bytes.fromhex("2a8648ce3d040302")))
    info = _tlv(0x30,
                _integer(1),  # v2
                _tlv(0x30, _tlv(0xA1, _tlv(0xA4, name))),  # holder entityName [1]
                _tlv(0xA0, _tlv(0xA0, general_names, _integer(issuer_serial))),  # v2Form
                ecdsa_sha256,
                _integer(serial),
                _tlv(0x30, _tlv(0x18, b"20260101000000Z"), _tlv(0x18, b"20270101000000Z")),
                _tlv(0x30))
    return _tlv(0x30, info, ecdsa_sha256, _tlv(0x03, b"\x00"))


@pytest.fixture(scope="module")
def every_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = make_server(tmp_path_factory.mktemp("certdir"), "--no-ca")
    (server.data_dir / "rules.schema").write_text(RULES)
    server.configure("schema", paths=[*map(str, sorted(DEBIAN.glob("*.schema"))),
                                      "rules.schema"])
    server.start()
    added = server.tool("ldapadd", input=f"""dn: ou=lab,{BASE}
objectClass: organizationalUnit
ou: lab
""".encode())
    assert added.returncode == 0, added.stderr
    yield server
    log = server.stop()
    assert "Traceback" not in log, log


def _ac_filter(serial: int, issuer_serial: int) -> str:
    return (f"(attributeCertificateAttribute;binary={{ serialNumber {serial}, issuer "
            f"{{ baseCertificateID {{ issuer {{ directoryName:rdnSequence:\"{AA.lower()}\" }}, "
            f"serial {issuer_serial} }} }} }})")


def test_attribute_certificate_is_found_by_its_exact_assertion(every_file: Server) -> None:
    value = base64.b64encode(_attribute_certificate(5, 7)).decode()
    added = every_file.tool("ldapadd", input=f"""dn: cn=holder,ou=lab,{BASE}
objectClass: person
objectClass: pmiUser
cn: holder
sn: Holder
attributeCertificateAttribute;binary:: {value}
""".encode())
    assert added.returncode == 0, added.stderr
    assert _dns(every_file, _ac_filter(5, 7)) == [f"cn=holder,ou=lab,{BASE}"]
    assert _dns(every_file, _ac_filter(5, 8)) == []
    assert _dns(every_file, _ac_filter(6, 7)) == []


def test_subschema_publishes_dit_content_rules(every_file: Server) -> None:
    found = every_file.tool("ldapsearch", "-LLL", "-o", "ldif-wrap=no", "-b", "cn=Subschema",
                            "-s", "base", "(objectClass=*)", "dITContentRules")
    assert found.returncode == 0, found.stderr
    assert found.stdout.decode().splitlines()[1:3] == [
        "dITContentRules: ( 2.5.6.14 NAME 'deviceRule' DESC 'devices of the lab' "
        "AUX ipHost MUST l MAY mail NOT owner )",
        "dITContentRules: ( 0.9.2342.19200300.100.4.7 NAME 'roomRule' OBSOLETE )"]


DEVICE = "dn: cn={cn},ou=lab,{base}\nobjectClass: device\ncn: {cn}\n"


@pytest.mark.parametrize("why, lines, code", [
    ("AUX class with its MUST, and the rule's MUST", "objectClass: ipHost\n"
     "ipHostNumber: 192.0.2.1\nl: Basement\n", 0),
    ("the rule's MAY though device lists no mail", "l: Basement\nmail: d@example.com\n", 0),
    ("without the rule's MUST", "description: no l\n", 65),
    ("auxiliary class outside AUX", "objectClass: ieee802Device\nl: Basement\n", 65),
    ("the rule's NOT though device allows owner", f"l: Basement\nowner: cn=x,{BASE}\n", 65),
])
def test_dit_content_rule_on_add(every_file: Server, why: str, lines: str, code: int) -> None:
    cn = why.replace(" ", "-").replace("'", "").replace(",", "")
    added = every_file.tool("ldapadd", input=(DEVICE.format(cn=cn, base=BASE) + lines).encode())
    assert added.returncode == code, added.stderr


def test_obsolete_dit_content_rule_refuses_its_class(every_file: Server) -> None:
    added = every_file.tool("ldapadd", input=f"""dn: cn=room1,ou=lab,{BASE}
objectClass: room
cn: room1
""".encode())
    assert added.returncode == 65, added.stderr


def test_dit_content_rule_on_modify(every_file: Server) -> None:
    dn = f"cn=printer,ou=lab,{BASE}"
    added = every_file.tool("ldapadd", input=(DEVICE.format(cn="printer", base=BASE)
                                              + "l: Basement\n").encode())
    assert added.returncode == 0, added.stderr
    modified = every_file.tool("ldapmodify", input=f"""dn: {dn}
changetype: modify
add: objectClass
objectClass: ieee802Device
""".encode())
    assert modified.returncode == 65, modified.stderr
    modified = every_file.tool("ldapmodify", input=f"""dn: {dn}
changetype: modify
delete: l
""".encode())
    assert modified.returncode == 65, modified.stderr
