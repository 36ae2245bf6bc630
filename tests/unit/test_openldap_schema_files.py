"""OpenLDAP's schema files load as they are (issue 12 part 6).

- Every schema file Debian's slapd package installs in /etc/ldap/schema/,
  in both its forms (.schema, and .ldif: the cn=config entry), loads over
  certdir's own schema with the Debian files slapd needs before it
  (slaptest decides the same), or is refused with `file:line: reason`.
  The files come with the slapd package `make` installs: without them the
  test fails, it does not skip.
- The reader follows slapd.conf: OID macros, tabs after the keyword,
  comments and blank lines end a statement, `attribute...` keywords.
- Identical redefinitions are accepted; conflicting ones name both places
  and what differs.
- A `ditcontentrule` statement (olcDitContentRules in the .ldif form) is
  published in cn=Subschema's dITContentRules with its macros expanded;
  one for a class that is not structural, with an AUX class that is not
  auxiliary, an unknown type or a type in two lists is refused.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from directory.matching import InvalidValue
from directory.protocol.dn import DN
from directory.protocol.results import LDAPError, ResultCode
from directory.schema import Schema
from directory.schema_files import SchemaError

DEBIAN = Path("/etc/ldap/schema")
BUILTIN = Path(__file__).resolve().parents[2] / "schema"
STRING = "1.3.6.1.4.1.1466.115.121.1.15"

# file -> (the Debian files slapd needs before it, None if it loads, else
# (line in the .schema form, line in the .ldif form, words the refusal names))
DEBIAN_FILES: dict[str, tuple[tuple[str, ...], tuple[int, int, tuple[str, ...]] | None]] = {
    "collective": (("core",), None),
    "corba": (("core",), None),
    "core": ((), None),
    "cosine": (("core",), None),
    "dsee": (("core", "cosine", "inetorgperson", "nis"), None),
    "duaconf": (("core", "cosine", "nis"), None),
    "dyngroup": (("core",), None),
    "inetorgperson": (("core", "cosine"), None),
    "java": (("core",), None),
    "misc": (("core",), None),
    "msuser": (("core", "cosine", "inetorgperson", "nis"), None),
    "namedobject": (("core", "cosine"), None),
    "nis": (("core", "cosine"), None),
    "openldap": (("core", "cosine", "inetorgperson"), None),
    "pmi": (("core", "cosine"), None),
}


def _load(*files: Path) -> Schema:
    return Schema.load([BUILTIN, *files])


@pytest.mark.parametrize("suffix", [".schema", ".ldif"])
def test_every_debian_schema_file_is_in_the_table(suffix: str) -> None:
    assert DEBIAN.is_dir(), f"{DEBIAN} is missing: install slapd (make installs it)"
    assert sorted(p.stem for p in DEBIAN.glob(f"*{suffix}")) == sorted(DEBIAN_FILES)


@pytest.mark.parametrize("suffix", [".schema", ".ldif"])
@pytest.mark.parametrize("name", sorted(DEBIAN_FILES))
def test_debian_file_loads_or_is_refused_with_its_line(name: str, suffix: str) -> None:
    needs, refusal = DEBIAN_FILES[name]
    files = [DEBIAN / f"{n}{suffix}" for n in (*needs, name)]
    if refusal is None:
        _load(*files)
        return
    schema_line, ldif_line, words = refusal
    with pytest.raises(SchemaError) as caught:
        _load(*files)
    line = schema_line if suffix == ".schema" else ldif_line
    assert str(caught.value).startswith(f"{DEBIAN / name}{suffix}:{line}: ")
    assert all(word in str(caught.value) for word in words)


def test_both_forms_give_the_same_definitions() -> None:
    names = ("core", "cosine", "inetorgperson", "nis", "openldap")
    forms = [_load(*(DEBIAN / f"{n}{suffix}" for n in names)) for suffix in (".schema", ".ldif")]
    schema, ldif = ({at.oid: at.definition for at in s.attribute_types()} for s in forms)
    assert schema == ldif
    # The .ldif generator writes `MAY ( x )` as `MAY x`: the classes compare
    # by what they say.
    classes = [{oc.oid: (oc.names, oc.sup, oc.kind, oc.must, oc.may)
                for oc in s.object_classes()} for s in forms]
    assert classes[0] == classes[1]


@pytest.fixture(scope="module")
def debian() -> Schema:
    return _load(*(DEBIAN / f"{n}.schema" for n in
                   ("core", "cosine", "inetorgperson", "nis", "misc", "openldap", "dsee")))


def test_redefinitions_of_builtin_types_keep_the_builtin(debian: Schema) -> None:
    assert debian.attribute("cn").definition == _load().attribute("cn").definition
    assert debian.attribute("fax") is debian.attribute("facsimileTelephoneNumber")


def test_macros_are_expanded_in_published_definitions(debian: Schema) -> None:
    person = debian.object_class("OpenLDAPperson")
    assert person.oid == "1.3.6.1.4.1.4203.1.4.5"
    assert person.definition.startswith("( 1.3.6.1.4.1.4203.1.4.5 NAME 'OpenLDAPperson'")
    assert debian.object_class("1.3.6.1.4.1.4203.1.4.5") is person


def test_slapd_attribute_keyword_prefix_is_read(debian: Schema) -> None:
    # dsee.schema spells one statement `attributeype`; slapd takes any
    # keyword that starts with `attribute`.
    assert debian.attribute("targetUniqueId").oid == "1.3.6.1.4.1.42.2.27.9.1.596"


def test_nis_entries_check(debian: Schema) -> None:
    account = {"objectclass": (b"account", b"posixAccount"), "uid": (b"al",),
               "cn": (b"Al",), "uidnumber": (b"1001",), "gidnumber": (b"100",),
               "homedirectory": (b"/home/al",)}
    dn = DN.parse("uid=al,ou=people,dc=example,dc=com", debian)
    assert debian.check_entry(dn, account) == "account"
    netgroup = {"objectclass": (b"nisNetgroup",), "cn": (b"admins",),
                "nisnetgrouptriple": (b"(host1,al,example.com)", b"(,bob,)")}
    assert debian.check_entry(DN.parse("cn=admins", debian), netgroup) == "nisNetgroup"
    with pytest.raises(LDAPError) as caught:
        debian.check_entry(DN.parse("cn=admins", debian),
                           {**netgroup, "nisnetgrouptriple": (b"host1,al,example.com",)})
    assert caught.value.code == ResultCode.INVALID_ATTRIBUTE_SYNTAX
    substr = debian.substrings(debian.attribute("memberUid"))
    assert substr is not None and substr.name == "caseExactIA5SubstringsMatch"


def test_pilot_person_is_builtin() -> None:
    builtin = _load()
    pilot = builtin.object_class("newPilotPerson")
    assert (pilot.oid, pilot.sup) == ("0.9.2342.19200300.100.4.4", ("person",))
    assert {"janetmailbox", "mailpreferenceoption", "personalsignature"} <= pilot.all_may


# (why, file text, line of the refusal, words it names); the file is loaded
# over certdir's own schema.
REFUSED: list[tuple[str, str, int, tuple[str, ...]]] = [
    ("conflicting redefinition",
     "# local\nattributetype ( 2.5.4.3 NAME ( 'cn' 'commonName' ) SUP name SINGLE-VALUE )\n",
     2, ("attribute type cn (2.5.4.3) conflicts with cn (2.5.4.3) defined at "
         f"{BUILTIN / 'core.schema'}:", "(they differ in SINGLE-VALUE)")),
    ("a builtin name under another OID",
     "attributetype ( 9.9.9.1 NAME 'mail' SUP name )\n", 1,
     ("mail (9.9.9.1) conflicts with mail (0.9.2342.19200300.100.1.3)", "OID")),
    ("conflicting class", "objectclass ( 2.5.6.6 NAME 'person' SUP top AUXILIARY )\n", 1,
     ("object class person (2.5.6.6)", "KIND", "MUST", "MAY")),
    ("unknown macro", "attributetype ( Nowhere:1 NAME 'x' SYNTAX " + STRING + " )\n", 1,
     ("unknown objectidentifier macro Nowhere",)),
    ("macro defined twice otherwise",
     "objectidentifier Here 1.1\nobjectIdentifier here 1.2\n", 2,
     ("objectidentifier here is 1.2 here but 1.1 at", ":1")),
    ("objectidentifier without its OID", "objectidentifier Here\n", 1,
     ("a name and an OID",)),
    ("a comment ends the statement",
     "attributetype ( 9.9.9.1 NAME 'x'\n# note\n  SYNTAX " + STRING + " )\n", 1,
     ("a description is",)),
    ("a blank line ends the statement",
     "attributetype ( 9.9.9.1 NAME 'x'\n\n  SYNTAX " + STRING + " )\n", 1,
     ("a description is",)),
    ("syntax without substitute", "ldapsyntax ( 9.9.9.5 DESC 'mine' )\n", 1,
     ("syntax 9.9.9.5", "X-SUBST")),
    ("builtin syntax redefined",
     "ldapsyntax ( " + STRING + " DESC 'again' X-SUBST '" + STRING + "' )\n", 1,
     (f"syntax {STRING} is already defined by certdir",)),
    ("unknown matching rule in a macro'd type",
     "objectidentifier Mine 9.9.9\nattributetype ( Mine:1 NAME 'x'\n\tEQUALITY fooMatch\n"
     "\tSYNTAX " + STRING + " )\n", 2, ("x: unknown matching rule fooMatch",)),
    ("unknown statement", "nameform ( 9.9.9.7 NAME 'personForm' )\n", 1,
     ("unknown statement 'nameform'",)),
    ("content rule for an auxiliary class",
     "ditcontentrule ( 2.5.20.1 NAME 'rule' )\n", 1,
     ("DIT content rule rule", "is not a structural object class")),
    ("content rule AUX names a structural class",
     "ditcontentrule ( 2.5.6.6 NAME 'personRule' AUX ( organizationalPerson ) )\n", 1,
     ("AUX organizationalPerson is not an auxiliary object class",)),
    ("content rule names an unknown type",
     "ditcontentrule ( 2.5.6.6 NAME 'personRule' MAY ( nowhere ) )\n", 1,
     ("MAY names unknown attribute nowhere",)),
    ("content rule lists a type twice",
     "ditcontentrule ( 2.5.6.6 NAME 'personRule' MAY ( mail ) NOT ( mail ) )\n", 1,
     ("mail is listed twice",)),
    ("content rule defined twice otherwise",
     "ditcontentrule ( 2.5.6.6 NAME 'personRule' MAY mail )\n"
     "ditcontentrule ( 2.5.6.6 NAME 'personRule' MAY l )\n", 2,
     ("DIT content rule personRule (2.5.6.6) conflicts with", "MAY")),
    ("text after the description",
     "attributetype ( 9.9.9.1 NAME 'x' SYNTAX " + STRING + " ) ( 9.9.9.2 )\n", 1,
     ("text after the closing parenthesis: '( 9.9.9.2 )'",)),
    ("unclosed description", "attributetype ( 9.9.9.1 NAME 'x' MUST ( a $ b )\n", 1,
     ("a description is",)),
    ("slapd's attributeoptions is configuration", "attributeoptions x-hidden lang-\n", 1,
     ("unknown statement 'attributeoptions'",)),
]


LDIF_REFUSED: list[tuple[str, str, int, tuple[str, ...]]] = [
    ("unknown schema attribute",
     "dn: cn=local,cn=schema,cn=config\nobjectClass: olcSchemaConfig\ncn: local\n"
     "olcNameForms: ( 9.9.9.7 )\n", 4, ("unknown schema attribute 'olcNameForms'",)),
    ("broken LDIF", "dn: cn=local,cn=schema,cn=config\nobjectClass olcSchemaConfig\n", 2,
     ("expected 'attribute: value'",)),
    ("unknown syntax on a folded line",
     "dn: cn=local,cn=schema,cn=config\ncn: local\n"
     "olcAttributeTypes: {0}( 9.9.9.1 NAME 'x'\n  SYNTAX 9.9.9.9 )\n", 3,
     ("x: unknown syntax 9.9.9.9",)),
]


@pytest.mark.parametrize("why, text, line, words", LDIF_REFUSED,
                         ids=[r[0] for r in LDIF_REFUSED])
def test_refused_ldif_file_names_file_line_and_reason(tmp_path: Path, why: str, text: str,
                                                      line: int, words: tuple[str, ...]) -> None:
    file = tmp_path / "local.ldif"
    file.write_text(text)
    with pytest.raises(SchemaError) as caught:
        _load(file)
    message = str(caught.value)
    assert message.startswith(f"{file}:{line}: ")
    assert all(word in message for word in words), message


def test_ldif_order_prefixes_and_macros_first(tmp_path: Path) -> None:
    file = tmp_path / "local.ldif"
    file.write_text("dn: cn=local,cn=schema,cn=config\nobjectClass: olcSchemaConfig\n"
                    "cn: local\n"
                    "olcAttributeTypes: {0}( Local:1 NAME 'badge' EQUALITY caseIgnoreMatch\n"
                    "  SYNTAX 1.3.6.1.4.1.1466.115.121.1.15{64} )\n"
                    "olcObjectIdentifier: {0}Local 9.9.9\n")
    badge = _load(file).attribute("badge")
    assert badge.oid == "9.9.9.1"
    assert badge.definition == ("( 9.9.9.1 NAME 'badge' EQUALITY caseIgnoreMatch "
                                "SYNTAX 1.3.6.1.4.1.1466.115.121.1.15{64} )")


DIT_CONTENT_RULE = ("( Person NAME 'personRule' DESC 'people' AUX ( badged ) "
                    "MUST ( telephoneNumber ) NOT ( seeAlso ) )")


@pytest.mark.parametrize("text", [
    "objectidentifier Local 9.9.9\nobjectidentifier Person 2.5.6.6\n"
    "objectclass ( Local:1 NAME 'badged' AUXILIARY MAY description )\n"
    "ditcontentrule " + DIT_CONTENT_RULE.replace("( T", "(\n  T") + "\n",
    "dn: cn=local,cn=schema,cn=config\nobjectClass: olcSchemaConfig\ncn: local\n"
    f"olcDitContentRules: {{0}}{DIT_CONTENT_RULE}\n"
    "olcObjectClasses: {0}( Local:1 NAME 'badged' AUXILIARY MAY description )\n"
    "olcObjectIdentifier: {0}Local 9.9.9\nolcObjectIdentifier: {1}Person 2.5.6.6\n",
], ids=["schema", "ldif"])
def test_dit_content_rule_is_read_and_published(tmp_path: Path, text: str) -> None:
    file = tmp_path / ("local.ldif" if text.startswith("dn:") else "local.schema")
    file.write_text(text)
    assert _load(file).subschema()["dITContentRules"] == (
        DIT_CONTENT_RULE.replace("Person", "2.5.6.6").encode(),)


def test_no_dit_content_rule_publishes_none() -> None:
    assert "dITContentRules" not in _load().subschema()


@pytest.mark.parametrize("why, text, line, words", REFUSED, ids=[r[0] for r in REFUSED])
def test_refused_file_names_file_line_and_reason(tmp_path: Path, why: str, text: str,
                                                 line: int, words: tuple[str, ...]) -> None:
    file = tmp_path / "local.schema"
    file.write_text(text)
    with pytest.raises(SchemaError) as caught:
        _load(file)
    message = str(caught.value)
    assert message.startswith(f"{file}:{line}: ")
    assert all(word in message for word in words), message


def test_slapd_spellings_load(tmp_path: Path) -> None:
    file = tmp_path / "local.schema"
    file.write_text(
        "objectIdentifier Local 9.9.9\n"
        "objectidentifier LocalAt Local:1\n"
        "objectidentifier LocalSyntax Local:3.1\n"
        "objectidentifier Local 9.9.9\n"
        "# a comment\n"
        "\tstill the comment\n"
        "ldapsyntax ( LocalSyntax DESC 'badge' X-SUBST '1.3.6.1.4.1.1466.115.121.1.27' )\n"
        "ATTRIBUTETYPE\t( LocalAt:7 NAME 'badge'\n"
        "\tEQUALITY integerMatch\n"
        "   \t\n"
        "\tSYNTAX 'LocalSyntax' SINGLE-VALUE )\n"
        "objectclass\t\t( Local:2.1 NAME 'badged' SUP top AUXILIARY MUST badge ) # ours\n"
        "attributetype ( 2.5.4.3 NAME ( 'cn' 'commonName' ) DESC 'RFC4519: common name'\n"
        "\tSUP name )\n")
    schema = _load(file)
    badge = schema.attribute("badge")
    assert (badge.oid, badge.syntax) == ("9.9.9.1.7", "9.9.9.3.1")
    assert schema.syntaxes["9.9.9.3.1"].description == "badge"
    assert schema.object_class("badged").oid == "9.9.9.2.1"
    entry = {"objectclass": (b"person", b"badged"), "cn": (b"A",), "sn": (b"B",)}
    with pytest.raises(LDAPError) as caught:
        schema.check_entry(DN.parse("cn=A", schema), {**entry, "badge": (b"seven",)})
    assert caught.value.code == ResultCode.INVALID_ATTRIBUTE_SYNTAX
    assert schema.check_entry(DN.parse("cn=A", schema), {**entry, "badge": (b"7",)}) == "person"


def test_quoted_syntax_is_published_unquoted() -> None:
    # msuser.schema writes SYNTAX '...'; RFC 4512's noidlen has no quotes.
    schema = _load(*(DEBIAN / f"{n}.schema" for n in
                     ("core", "cosine", "inetorgperson", "nis", "msuser")))
    at = schema.attribute("msSFU30Name")
    assert at.syntax == "1.3.6.1.4.1.1466.115.121.1.26"
    assert "SYNTAX 1.3.6.1.4.1.1466.115.121.1.26" in at.definition


# (attribute of a Debian file, value, the same under its equality rule, a different one)
EQUAL_VALUES: list[tuple[str, bytes, bytes, bytes]] = [
    ("dgAuthz", b"dn:uid=Al,dc=example,dc=com", b"dn: UID=al, dc=Example,dc=com",
     b"dn:uid=bob,dc=example,dc=com"),
    ("dgAuthz", b"u:al", b"u:al", b"u:Al"),
    ("presentationAddress", b"TELEX+00726322+RFC-1006+02+130.59.2.1",
     b"telex+00726322+rfc-1006+02+130.59.2.1", b"TELEX+00726322"),
    ("memberUid", b"alice", b"alice", b"Alice"),
]


@pytest.mark.parametrize("name, value, same, other", EQUAL_VALUES,
                         ids=[f"{e[0]}-{e[1].decode()}" for e in EQUAL_VALUES])
def test_rules_of_debian_files_match(name: str, value: bytes, same: bytes, other: bytes) -> None:
    schema = _load(*(DEBIAN / f"{n}.schema" for n in ("core", "cosine", "nis", "dyngroup")))
    rule = schema.equality(schema.attribute(name))
    assert rule is not None
    assert rule.value_key(value) == rule.assertion_key(same)
    assert rule.value_key(value) != rule.assertion_key(other)


def _validator(name: str) -> Callable[[bytes], None]:
    schema = _load(*(DEBIAN / f"{n}.schema" for n in ("core", "cosine", "nis")))
    syntax = schema.attribute(name).syntax
    assert syntax is not None
    return schema.syntaxes[syntax].validate


@pytest.mark.parametrize("name, value", [
    ("bootParameter", b"root=bootserver:/export/root/client"),
    ("nisNetgroupTriple", b"(,,)"),
    ("nisNetgroupTriple", b"( host1 , al , example.com )"),
])
def test_rfc2307_values_fit_their_syntax(name: str, value: bytes) -> None:
    _validator(name)(value)


@pytest.mark.parametrize("name, value", [
    ("bootParameter", b"root bootserver /export"),
    ("nisNetgroupTriple", b"(h\xc3\xa9,u,d)"),
    ("nisNetgroupTriple", b"(a,b)"),
])
def test_rfc2307_values_outside_their_syntax(name: str, value: bytes) -> None:
    with pytest.raises(InvalidValue):
        _validator(name)(value)
