"""Scenario 010: schema checking of writes and the published schema.

- An entry needs exactly one structural object class chain and every MUST
  attribute of its classes; attributes outside MUST/MAY are refused:
  objectClassViolation (65) (RFC 4512 §2.4, RFC 4511 §4.7).
- Unknown attribute types are refused with undefinedAttributeType (17),
  values that do not match their syntax with invalidAttributeSyntax (21),
  a second value of a SINGLE-VALUE type with constraintViolation (19)
  (RFC 4512 §4.1.2, RFC 4511 Appendix A.2).
- The RDN's values must be present in the entry: namingViolation (64)
  (RFC 4512 §2.3).
- NO-USER-MODIFICATION attributes cannot be supplied by clients (RFC 4512 §4.1.2).
- Modify may not remove an RDN value, notAllowedOnRDN (67), nor change the
  structural object class, objectClassViolation (65) or
  objectClassModsProhibited (69) (RFC 4512 §2.4.2, RFC 4511 §4.6).
- The subschema subentry cn=Subschema publishes attributeTypes, objectClasses,
  ldapSyntaxes, matchingRules and matchingRuleUse (RFC 4512 §4.2); the root DSE
  publishes namingContexts, supportedControl, supportedExtension,
  supportedLDAPVersion and subschemaSubentry (RFC 4512 §5.1).
"""

from __future__ import annotations

import subprocess

import pytest

from tests.integration.conftest import Server
from tests.integration.ldif_compare import Record, by_dn, parse

BASE = "dc=example,dc=com"
PEOPLE = f"ou=people,{BASE}"

PERSON = """dn: uid=ok,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: ok
cn: Valid Person
sn: Person
mail: ok@example.com
"""

# (test id, LDIF of an add request, expected LDAP result code)
REFUSED_ADDS: tuple[tuple[str, str, int], ...] = (
    ("missing-must-sn", """dn: uid=nosn,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: nosn
cn: No Surname
""", 65),
    ("two-structural-chains", """dn: uid=twice,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
objectClass: organization
uid: twice
cn: Two Classes
sn: Classes
o: Two
""", 65),
    ("no-structural-class", """dn: uid=abstract,ou=people,dc=example,dc=com
objectClass: top
uid: abstract
""", 65),
    ("attribute-not-allowed", """dn: uid=extra,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: extra
cn: Extra
sn: Extra
dc: notallowed
""", 65),
    ("undefined-attribute", """dn: uid=undef,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: undef
cn: Undefined
sn: Undefined
fooBarBaz: value
""", 17),
    ("invalid-dn-syntax", """dn: uid=badsee,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: badsee
cn: Bad See Also
sn: Bad
seeAlso: this is not a DN
""", 21),
    ("invalid-country-string", """dn: c=USA,dc=example,dc=com
objectClass: country
c: USA
""", 21),
    ("invalid-ia5-mail", """dn: uid=badmail,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: badmail
cn: Bad Mail
sn: Mail
mail: j\u00fcrgen@example.com
""", 21),
    ("single-value-twice", """dn: uid=twodisplay,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: twodisplay
cn: Two Display
sn: Display
displayName: First
displayName: Second
""", 19),
    ("rdn-value-missing", """dn: uid=ghost,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: someoneelse
cn: Ghost
sn: Ghost
""", 64),
)

REQUIRED_CONTROLS = (
    "1.2.840.113556.1.4.319",   # paged results, RFC 2696
    "1.2.840.113556.1.4.473",   # server side sort, RFC 2891
    "2.16.840.1.113730.3.4.2",  # ManageDsaIT, RFC 3296
    "1.3.6.1.1.12",             # assertion, RFC 4528
    "1.3.6.1.1.13.1",           # pre-read, RFC 4527
    "1.3.6.1.1.13.2",           # post-read, RFC 4527
    "1.2.840.113556.1.4.805",   # subtree delete
)
REQUIRED_EXTENSIONS = (
    "1.3.6.1.4.1.1466.20037",   # StartTLS, RFC 4511 §4.14
    "1.3.6.1.4.1.4203.1.11.1",  # Password Modify, RFC 3062
    "1.3.6.1.4.1.4203.1.11.3",  # Who am I?, RFC 4532
)


def add(server: Server, ldif: str) -> subprocess.CompletedProcess[bytes]:
    return server.tool("ldapadd", input=ldif.encode())


def only_record(output: bytes) -> Record:
    records = parse(output)
    assert len(records) == 1, output.decode()
    return records[0]


def definition_named(values: tuple[str, ...], name: str) -> str:
    """The schema description whose NAME list contains `name` (RFC 4512 §4.1)."""
    quoted = f"'{name.lower()}'"
    matches = [value for value in values if quoted in value.lower().split(" desc ")[0]]
    assert matches, f"{name} not published"
    return matches[0]


@pytest.fixture(scope="module")
def populated(server: Server) -> Server:
    ou = add(server, f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n")
    assert ou.returncode == 0, ou.stderr
    return server


def test_valid_person_is_accepted(populated: Server) -> None:
    added = add(populated, PERSON)
    assert added.returncode == 0, added.stderr
    search = populated.tool("ldapsearch", "-LLL", "-b", f"uid=ok,{PEOPLE}", "-s", "base",
                            bind=False)
    assert search.returncode == 0
    assert by_dn(search.stdout)[f"uid=ok,{PEOPLE}"].values("sn") == ("Person",)


@pytest.mark.parametrize(("ldif", "code"), [(ldif, code) for _, ldif, code in REFUSED_ADDS],
                         ids=[name for name, _, _ in REFUSED_ADDS])
def test_schema_violation_is_refused(populated: Server, ldif: str, code: int) -> None:
    added = add(populated, ldif)
    assert added.returncode == code, added.stderr
    dn = ldif.splitlines()[0][4:]
    search = populated.tool("ldapsearch", "-LLL", "-b", dn, "-s", "base", "1.1", bind=False)
    assert search.returncode == 32, f"{dn} was stored after a refused add"


def test_object_class_violation_diagnostic(populated: Server) -> None:
    added = add(populated, REFUSED_ADDS[0][1])
    assert b"Object class violation (65)" in added.stderr


def test_no_user_modification_attribute_on_add(populated: Server) -> None:
    added = add(populated, """dn: uid=stamped,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: stamped
cn: Stamped
sn: Stamped
createTimestamp: 20200101000000Z
""")
    assert added.returncode == 19, added.stderr


def test_not_allowed_attribute_on_modify(populated: Server) -> None:
    modify = populated.tool("ldapmodify", input=(
        f"dn: uid=ok,{PEOPLE}\nchangetype: modify\nadd: dc\ndc: nope\n").encode())
    assert modify.returncode == 65, modify.stderr


def test_removing_must_attribute_on_modify(populated: Server) -> None:
    modify = populated.tool("ldapmodify", input=(
        f"dn: uid=ok,{PEOPLE}\nchangetype: modify\ndelete: sn\n").encode())
    assert modify.returncode == 65, modify.stderr


def test_deleting_rdn_value_is_not_allowed_on_rdn(populated: Server) -> None:
    modify = populated.tool("ldapmodify", input=(
        f"dn: uid=ok,{PEOPLE}\nchangetype: modify\ndelete: uid\nuid: ok\n").encode())
    assert modify.returncode == 67, modify.stderr


def test_changing_structural_class_is_refused(populated: Server) -> None:
    modify = populated.tool("ldapmodify", input=(
        f"dn: uid=ok,{PEOPLE}\nchangetype: modify\nreplace: objectClass\n"
        "objectClass: organization\n-\nadd: o\no: Example\n").encode())
    assert modify.returncode == 69, modify.stderr


def test_adding_second_structural_class_is_refused(populated: Server) -> None:
    modify = populated.tool("ldapmodify", input=(
        f"dn: uid=ok,{PEOPLE}\nchangetype: modify\nadd: objectClass\n"
        "objectClass: organization\n-\nadd: o\no: Example\n").encode())
    assert modify.returncode == 65, modify.stderr


def test_refused_modifies_left_entry_unchanged(populated: Server) -> None:
    search = populated.tool("ldapsearch", "-LLL", "-b", f"uid=ok,{PEOPLE}", "-s", "base",
                            "objectClass", "uid", "sn", "o", bind=False)
    entry = by_dn(search.stdout)[f"uid=ok,{PEOPLE}"]
    assert entry.values("uid") == ("ok",) and entry.values("sn") == ("Person",)
    assert entry.values("o") == ()
    assert "organization" not in {v.lower() for v in entry.values("objectClass")}


def test_entry_names_its_subschema(populated: Server) -> None:
    search = populated.tool("ldapsearch", "-LLL", "-b", f"uid=ok,{PEOPLE}", "-s", "base",
                            "subschemaSubentry", "structuralObjectClass", bind=False)
    assert search.returncode == 0, search.stderr
    entry = only_record(search.stdout)
    assert [v.lower() for v in entry.values("subschemaSubentry")] == ["cn=subschema"]
    assert entry.values("structuralObjectClass") == ("inetOrgPerson",)


@pytest.fixture(scope="module")
def subschema(server: Server) -> Record:
    search = server.tool("ldapsearch", "-LLL", "-o", "ldif-wrap=no", "-b", "cn=Subschema",
                         "-s", "base", "(objectClass=subschema)", "+", bind=False)
    assert search.returncode == 0, search.stderr
    return only_record(search.stdout)


def test_subschema_publishes_every_kind_of_definition(subschema: Record) -> None:
    for kind in ("attributeTypes", "objectClasses", "ldapSyntaxes", "matchingRules",
                 "matchingRuleUse"):
        assert subschema.values(kind), f"cn=Subschema has no {kind}"


@pytest.mark.parametrize(("kind", "name", "oid"), [
    ("objectClasses", "inetOrgPerson", "2.16.840.1.113730.3.2.2"),
    ("objectClasses", "pkiUser", "2.5.6.21"),
    ("objectClasses", "pkiCA", "2.5.6.22"),
    ("objectClasses", "alias", "2.5.6.1"),
    ("objectClasses", "referral", "2.16.840.1.113730.3.2.6"),
    ("objectClasses", "dcObject", "1.3.6.1.4.1.1466.344"),
    ("attributeTypes", "cn", "2.5.4.3"),
    ("attributeTypes", "mail", "0.9.2342.19200300.100.1.3"),
    ("attributeTypes", "userCertificate", "2.5.4.36"),
    ("attributeTypes", "userSMIMECertificate", "2.16.840.1.113730.3.1.40"),
    ("attributeTypes", "createTimestamp", "2.5.18.1"),
    ("matchingRules", "caseIgnoreMatch", "2.5.13.2"),
    ("matchingRules", "certificateExactMatch", "2.5.13.34"),
])
def test_subschema_definition(subschema: Record, kind: str, name: str, oid: str) -> None:
    definition = definition_named(subschema.values(kind), name)
    assert definition.startswith(f"( {oid} "), definition


def test_subschema_marks_operational_and_single_value(subschema: Record) -> None:
    created = definition_named(subschema.values("attributeTypes"), "createTimestamp")
    assert "NO-USER-MODIFICATION" in created and "SINGLE-VALUE" in created
    assert "USAGE directoryOperation" in created


def test_subschema_lists_directory_string_syntax(subschema: Record) -> None:
    syntaxes = subschema.values("ldapSyntaxes")
    assert any(value.startswith("( 1.3.6.1.4.1.1466.115.121.1.15 ") for value in syntaxes)


def test_subschema_object_class_is_published(server: Server) -> None:
    search = server.tool("ldapsearch", "-LLL", "-b", "cn=Subschema", "-s", "base",
                         "(objectClass=*)", "objectClass", bind=False)
    assert search.returncode == 0, search.stderr
    classes = {v.lower() for v in only_record(search.stdout).values("objectClass")}
    assert "subschema" in classes


@pytest.fixture(scope="module")
def root_dse(server: Server) -> Record:
    search = server.tool("ldapsearch", "-LLL", "-b", "", "-s", "base", "(objectClass=*)",
                         "+", bind=False)
    assert search.returncode == 0, search.stderr
    entry = only_record(search.stdout)
    assert entry.dn == ""
    return entry


def test_root_dse_naming_context(root_dse: Record) -> None:
    assert root_dse.values("namingContexts") == (BASE,)


def test_root_dse_ldap_version_and_subschema(root_dse: Record) -> None:
    assert root_dse.values("supportedLDAPVersion") == ("3",)
    assert [v.lower() for v in root_dse.values("subschemaSubentry")] == ["cn=subschema"]
    assert root_dse.values("vendorName")


@pytest.mark.parametrize("oid", REQUIRED_CONTROLS)
def test_root_dse_supported_control(root_dse: Record, oid: str) -> None:
    assert oid in root_dse.values("supportedControl")


@pytest.mark.parametrize("oid", REQUIRED_EXTENSIONS)
def test_root_dse_supported_extension(root_dse: Record, oid: str) -> None:
    assert oid in root_dse.values("supportedExtension")


def test_root_dse_explicit_attribute(server: Server) -> None:
    search = server.tool("ldapsearch", "-LLL", "-b", "", "-s", "base", "(objectClass=*)",
                         "namingContexts", bind=False)
    assert search.returncode == 0, search.stderr
    entry = only_record(search.stdout)
    assert entry.values("namingContexts") == (BASE,)
    assert entry.names() == frozenset({"namingcontexts"})
