"""Scenario 006: ldapcompare (RFC 4511 §4.10).

- compareTrue (6) when a value matches under the attribute's equality rule
  (caseIgnoreIA5Match for mail, telephoneNumberMatch, caseIgnoreMatch with
  insignificant spaces), compareFalse (5) otherwise; ldapcompare prints
  TRUE / FALSE and exits with the code; other results are printed as
  `Compare Result: <name> (<code>)` and UNDEFINED on stdout.
- The attribute absent from the entry: noSuchAttribute (16); an unknown
  attribute type: undefinedAttributeType (17) (or 16); an attribute with no
  equality rule: inappropriateMatching (18); a missing entry: noSuchObject
  (32) with matchedDN.
- A base64 assertion value (`attr::b64`) is the same value.
- Compare is a read: an anonymous client may do it.
"""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import pytest

from tests.integration.conftest import Server

DATA = Path(__file__).parents[1] / "data" / "integration"
PEOPLE = "ou=people,dc=example,dc=com"
ALICE = f"uid=alice,{PEOPLE}"


@pytest.fixture(scope="module")
def loaded(server: Server) -> Server:
    added = server.tool("ldapadd", input=(DATA / "006_entries.ldif").read_bytes())
    assert added.returncode == 0, added.stderr.decode()
    return server


def compare(server: Server, dn: str, assertion: str,
            bind: bool = True) -> subprocess.CompletedProcess[bytes]:
    return server.tool("ldapcompare", dn, assertion, bind=bind)


@pytest.mark.parametrize("assertion", [
    "mail:alice@example.com",
    "mail:ALICE@Example.COM",
    "cn:Ally",
    "cn:alice   ADAMS",
    "telephoneNumber:+15550101",
    "uid:alice",
    "sn:adams",
    "objectClass:PERSON",
    "objectClass:2.5.6.6",
])
def test_true(loaded: Server, assertion: str) -> None:
    result = compare(loaded, ALICE, assertion)
    assert result.returncode == 6, result.stderr.decode()
    assert result.stdout.decode().strip() == "TRUE"


@pytest.mark.parametrize("assertion", [
    "mail:bob@example.com",
    "cn:Alice",
    "telephoneNumber:+15550102",
])
def test_false(loaded: Server, assertion: str) -> None:
    result = compare(loaded, ALICE, assertion)
    assert result.returncode == 5, result.stderr.decode()
    assert result.stdout.decode().strip() == "FALSE"


def test_base64_assertion_value(loaded: Server) -> None:
    value = base64.b64encode(b"Alice Adams").decode()
    assert compare(loaded, ALICE, f"cn::{value}").returncode == 6


def test_attribute_absent_from_entry(loaded: Server) -> None:
    result = compare(loaded, ALICE, "title:Engineer")
    assert result.returncode == 16
    assert result.stdout.decode().split("\n")[0] == "Compare Result: No such attribute (16)"
    assert result.stdout.decode().strip().endswith("UNDEFINED")


def test_undefined_attribute_type(loaded: Server) -> None:
    assert compare(loaded, ALICE, "fooBarBaz:x").returncode == 17


def test_attribute_without_equality_rule(loaded: Server) -> None:
    result = compare(loaded, ALICE, "jpegPhoto:x")
    assert result.returncode == 18
    assert "Compare Result: Inappropriate matching (18)" in result.stdout.decode()


def test_missing_entry(loaded: Server) -> None:
    result = compare(loaded, f"uid=bob,{PEOPLE}", "uid:bob")
    assert result.returncode == 32
    stdout = result.stdout.decode()
    assert "Compare Result: No such object (32)" in stdout
    assert f"Matched DN: {PEOPLE}" in stdout


def test_anonymous_compare(loaded: Server) -> None:
    assert compare(loaded, ALICE, "mail:alice@example.com", bind=False).returncode == 6
    assert compare(loaded, ALICE, "mail:bob@example.com", bind=False).returncode == 5


def test_compare_follows_modify(loaded: Server) -> None:
    ldif = f"dn: {ALICE}\nchangetype: modify\nreplace: mail\nmail: a.adams@example.com\n"
    assert loaded.tool("ldapmodify", input=ldif.encode()).returncode == 0
    assert compare(loaded, ALICE, "mail:a.adams@example.com").returncode == 6
    assert compare(loaded, ALICE, "mail:alice@example.com").returncode == 5
