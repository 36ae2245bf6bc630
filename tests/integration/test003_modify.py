"""Scenario 003: ldapmodify add/delete/replace/increment and the errors they raise.

- A modify applies its changes in order, all or nothing (RFC 4511 §4.6).
- add of a value already present: attributeOrValueExists (20); delete of a
  missing value or attribute: noSuchAttribute (16); replace without values
  of an absent attribute is no error (RFC 4511 §4.6).
- An unknown attribute type: undefinedAttributeType (17); a second value
  of a SINGLE-VALUE type: constraintViolation (19) (RFC 4512 §4.1.2).
- NO-USER-MODIFICATION attributes (createTimestamp) are refused with
  constraintViolation (19), as slapd does.
- increment (RFC 4525) adds to an integer value; a non-integer value is
  constraintViolation (19), a missing attribute noSuchAttribute (16).
- Removing an RDN value is notAllowedOnRDN (67); changing the structural
  object class is objectClassModsProhibited (69); a missing entry is
  noSuchObject (32).
- ldapmodify exits with the result code and prints its name on stderr.
"""

from __future__ import annotations

import itertools
import subprocess
from pathlib import Path

import pytest

from tests.integration.conftest import Server
from tests.integration.ldif_compare import assert_same_ldif, by_dn

DATA = Path(__file__).parents[1] / "data" / "integration"
PEOPLE = "ou=people,dc=example,dc=com"
WALTER = f"uid=walter,{PEOPLE}"
_serial = itertools.count()


@pytest.fixture(scope="module")
def loaded(server: Server) -> Server:
    added = server.tool("ldapadd", input=(DATA / "003_person.ldif").read_bytes())
    assert added.returncode == 0, added.stderr.decode()
    return server


@pytest.fixture
def person(loaded: Server) -> str:
    """A fresh entry per test, so each test starts from the same state."""
    uid = f"p{next(_serial)}"
    dn = f"uid={uid},{PEOPLE}"
    ldif = (f"dn: {dn}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: Pat {uid}\nsn: Pat\n"
            "description: first\ndescription: second\ndisplayName: Pat\nemployeeNumber: 7\n")
    added = loaded.tool("ldapadd", input=ldif.encode())
    assert added.returncode == 0, added.stderr.decode()
    return dn


def modify(server: Server, dn: str, changes: str) -> subprocess.CompletedProcess[bytes]:
    return server.tool("ldapmodify", input=f"dn: {dn}\nchangetype: modify\n{changes}".encode())


def read(server: Server, dn: str, *attributes: str) -> dict[str, tuple[str, ...]]:
    result = server.tool("ldapsearch", "-LLL", "-b", dn, "-s", "base", "(objectClass=*)",
                         *attributes, bind=False)
    assert result.returncode == 0, result.stderr.decode()
    entry = by_dn(result.stdout)[dn.lower()]
    return {name: entry.values(name) for name in entry.names()}


def assert_fails(result: subprocess.CompletedProcess[bytes], code: int, name: str) -> None:
    assert result.returncode == code, (result.returncode, result.stderr.decode())
    assert f"{name} ({code})" in result.stderr.decode()


def test_change_sequence_gives_expected_entry(loaded: Server) -> None:
    result = loaded.tool("ldapmodify", input=(DATA / "003_changes.ldif").read_bytes())
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().count(f'modifying entry "{WALTER}"') == 2
    out = loaded.tool("ldapsearch", "-LLL", "-b", WALTER, "-s", "base", "(objectClass=*)")
    assert_same_ldif(out.stdout, DATA / "003_expected_final.ldif")


def test_add_existing_value_is_value_exists(loaded: Server, person: str) -> None:
    # Matching is by the equality rule: caseIgnoreMatch makes FIRST equal to first.
    assert_fails(modify(loaded, person, "add: description\ndescription: FIRST\n"),
                 20, "Type or value exists")
    assert read(loaded, person, "description")["description"] == ("first", "second")


def test_add_value_equal_but_for_spaces_is_value_exists(loaded: Server, person: str) -> None:
    # RFC 4518 §2.6.1: leading, trailing and repeated spaces are insignificant.
    assert_fails(modify(loaded, person, "add: description\ndescription:   SECOND  \n"),
                 20, "Type or value exists")


def test_attribute_named_by_oid(loaded: Server, person: str) -> None:
    result = modify(loaded, person, "add: 2.5.4.12\n2.5.4.12: Chemist\n")
    assert result.returncode == 0, result.stderr.decode()
    assert read(loaded, person, "title")["title"] == ("Chemist",)


def test_delete_missing_value_is_no_such_attribute(loaded: Server, person: str) -> None:
    assert_fails(modify(loaded, person, "delete: description\ndescription: third\n"),
                 16, "No such attribute")


def test_delete_missing_attribute_is_no_such_attribute(loaded: Server, person: str) -> None:
    assert_fails(modify(loaded, person, "delete: title\n"), 16, "No such attribute")


def test_delete_one_value_and_whole_attribute(loaded: Server, person: str) -> None:
    result = modify(loaded, person, "delete: description\ndescription: First\n")
    assert result.returncode == 0, result.stderr.decode()
    assert read(loaded, person, "description")["description"] == ("second",)
    result = modify(loaded, person, "delete: description\n")
    assert result.returncode == 0, result.stderr.decode()
    assert "description" not in read(loaded, person, "description")


def test_replace_absent_attribute_with_nothing_is_no_error(loaded: Server, person: str) -> None:
    result = modify(loaded, person, "replace: title\n")
    assert result.returncode == 0, result.stderr.decode()


def test_undefined_attribute_type(loaded: Server, person: str) -> None:
    assert_fails(modify(loaded, person, "add: fooBarBaz\nfooBarBaz: x\n"),
                 17, "Undefined attribute type")


def test_attribute_not_allowed_by_object_classes(loaded: Server, person: str) -> None:
    # dnQualifier exists but neither inetOrgPerson nor its superclasses allow it.
    assert_fails(modify(loaded, person, "add: dnQualifier\ndnQualifier: x\n"),
                 65, "Object class violation")


def test_second_value_of_single_valued_attribute(loaded: Server, person: str) -> None:
    assert_fails(modify(loaded, person, "add: displayName\ndisplayName: Other\n"),
                 19, "Constraint violation")
    assert_fails(modify(loaded, person, "replace: displayName\ndisplayName: A\ndisplayName: B\n"),
                 19, "Constraint violation")
    assert read(loaded, person, "displayName")["displayname"] == ("Pat",)


@pytest.mark.parametrize("attribute", ["createTimestamp", "entryUUID", "creatorsName"])
def test_no_user_modification(loaded: Server, person: str, attribute: str) -> None:
    value = {"createTimestamp": "20200101000000Z",
             "entryUUID": "597ae2f6-16a6-1027-98f4-d28b5365dc14",
             "creatorsName": "cn=someone"}[attribute]
    result = modify(loaded, person, f"replace: {attribute}\n{attribute}: {value}\n")
    assert result.returncode == 19, result.stderr.decode()
    assert read(loaded, person, attribute)[attribute.lower()] != (value,)


def test_increment(loaded: Server, person: str) -> None:
    result = modify(loaded, person, "increment: employeeNumber\nemployeeNumber: 5\n-\n"
                                    "increment: employeeNumber\nemployeeNumber: -2\n")
    assert result.returncode == 0, result.stderr.decode()
    assert read(loaded, person, "employeeNumber")["employeenumber"] == ("10",)


def test_increment_of_non_integer_value(loaded: Server, person: str) -> None:
    assert_fails(modify(loaded, person, "increment: displayName\ndisplayName: 1\n"),
                 19, "Constraint violation")


def test_increment_of_missing_attribute(loaded: Server, person: str) -> None:
    assert_fails(modify(loaded, person, "increment: title\ntitle: 1\n"),
                 16, "No such attribute")


def test_failed_change_undoes_the_earlier_ones(loaded: Server, person: str) -> None:
    result = modify(loaded, person, "replace: mail\nmail: new@example.com\n-\n"
                                    "add: description\ndescription: second\n")
    assert result.returncode == 20
    assert "mail" not in read(loaded, person, "mail")


def test_removing_the_rdn_value(loaded: Server, person: str) -> None:
    uid = person.partition(",")[0].removeprefix("uid=")
    assert_fails(modify(loaded, person, f"delete: uid\nuid: {uid}\n"),
                 67, "Operation not allowed on RDN")


def test_replacing_the_rdn_value(loaded: Server, person: str) -> None:
    uid = person.partition(",")[0].removeprefix("uid=")
    keep = modify(loaded, person, f"replace: uid\nuid: {uid}\n")
    assert keep.returncode == 0, keep.stderr.decode()
    assert_fails(modify(loaded, person, "replace: uid\nuid: somebody-else\n"),
                 67, "Operation not allowed on RDN")


@pytest.mark.parametrize("change", [
    "add: description\ndescription:\n",
    "add: mail\nmail: caf\u00e9@example.com\n",
    "add: createTimestamp\ncreateTimestamp: yesterday\n",
])
def test_invalid_syntax(loaded: Server, person: str, change: str) -> None:
    # Directory String is never empty (RFC 4517 §3.3.6); mail is IA5 (RFC 4524 §2.16).
    # createTimestamp is refused as NO-USER-MODIFICATION before its syntax is
    # looked at (constraintViolation; slapd checks the syntax first and says 21:
    # RFC 4511 does not order the two).
    code, text = (19, "Constraint violation") if "createTimestamp" in change else (
        21, "Invalid syntax")
    assert_fails(modify(loaded, person, change), code, text)


def test_changing_structural_object_class(loaded: Server, person: str) -> None:
    result = modify(loaded, person, "replace: objectClass\nobjectClass: device\n")
    assert result.returncode == 69, result.stderr.decode()


def test_removing_required_attribute(loaded: Server, person: str) -> None:
    assert_fails(modify(loaded, person, "delete: sn\n"), 65, "Object class violation")


def test_missing_entry(loaded: Server) -> None:
    result = modify(loaded, f"uid=nobody,{PEOPLE}", "replace: sn\nsn: x\n")
    assert_fails(result, 32, "No such object")
    assert f"matched DN: {PEOPLE}" in result.stderr.decode()


def test_modify_updates_operational_attributes(loaded: Server, person: str) -> None:
    before = read(loaded, person, "modifyTimestamp", "modifiersName", "entryCSN")
    result = modify(loaded, person, "replace: title\ntitle: Boss\n")
    assert result.returncode == 0, result.stderr.decode()
    after = read(loaded, person, "modifyTimestamp", "modifiersName", "entryCSN")
    assert after["modifiersname"][0].lower() == "cn=admin,dc=example,dc=com"
    assert after["entrycsn"] != before["entrycsn"]
    assert after["modifytimestamp"] >= before["modifytimestamp"]
