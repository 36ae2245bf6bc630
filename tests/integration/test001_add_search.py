"""Scenario 001: add an address book with ldapadd and read it back with ldapsearch.

- ldapadd of ten inetOrgPerson entries (RFC 2798), each carrying a
  certificate as userCertificate;binary (RFC 4523 §2.1, RFC 4522), succeeds.
- Search scopes base, one, sub and children (subordinates,
  draft-sermersheim-ldap-subordinate-scope) select the right entries.
- Attribute selection (RFC 4511 §4.5.1.8): a list returns just those, `*`
  all user attributes, `+` operational ones, `1.1` none; typesOnly (-A)
  returns names without values.
- Language tags (RFC 3866) are attribute subtypes: requesting or
  filtering on the base type covers tagged values, a tag narrows.
"""

from __future__ import annotations

import base64
import datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.integration.conftest import Server
from tests.integration.ldif_compare import assert_same_ldif, by_dn, parse

DATA = Path(__file__).parents[1] / "data" / "integration"
PEOPLE = "ou=people,dc=example,dc=com"
UIDS = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy")
OPERATIONAL = ("createTimestamp", "modifyTimestamp", "creatorsName", "modifiersName",
               "entryUUID", "structuralObjectClass", "hasSubordinates", "subschemaSubentry")


def certificate(common_name: str) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    start = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(start + datetime.timedelta(days=365))
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.DER)


@pytest.fixture(scope="module")
def certificates() -> dict[str, bytes]:
    return {uid: certificate(uid) for uid in UIDS}


@pytest.fixture(scope="module")
def book(server: Server, certificates: dict[str, bytes]) -> Server:
    records = (DATA / "001_people.ldif").read_text().strip().split("\n\n")
    with_certs = [
        record + "\nuserCertificate;binary:: " + base64.b64encode(certificates[uid]).decode()
        if (uid := record.partition(",")[0].removeprefix("dn: uid=")) in certificates
        else record
        for record in records
    ]
    added = server.tool("ldapadd", input="\n\n".join(with_certs).encode() + b"\n")
    assert added.returncode == 0, added.stderr.decode()
    assert added.stdout.decode().count("adding new entry") == 11
    return server


def search(server: Server, base: str, scope: str, *args: str) -> str:
    # Anonymous: reading is open to anyone, and it spares a password hash per call.
    result = server.tool("ldapsearch", "-LLL", "-b", base, "-s", scope, *args, bind=False)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


def dns(ldif: str) -> set[str]:
    return {record.dn.lower() for record in parse(ldif)}


def uid_dn(uid: str) -> str:
    return f"uid={uid},{PEOPLE}"


def test_subtree_search_returns_the_book(book: Server) -> None:
    out = search(book, PEOPLE, "sub", "(objectClass=*)", "cn", "mail", "telephoneNumber")
    assert_same_ldif(out, DATA / "001_expected_sub.ldif")


def test_scopes_select_the_right_entries(book: Server) -> None:
    people = {uid_dn(uid) for uid in UIDS}
    assert dns(search(book, PEOPLE, "base", "(objectClass=*)", "1.1")) == {PEOPLE}
    assert dns(search(book, PEOPLE, "one", "(objectClass=*)", "1.1")) == people
    assert dns(search(book, PEOPLE, "sub", "(objectClass=*)", "1.1")) == people | {PEOPLE}
    assert dns(search(book, PEOPLE, "children", "(objectClass=*)", "1.1")) == people
    suffix_children = dns(search(book, "dc=example,dc=com", "children", "(objectClass=*)", "1.1"))
    assert suffix_children == people | {PEOPLE}
    assert dns(search(book, uid_dn("alice"), "one", "(objectClass=*)", "1.1")) == set()
    assert dns(search(book, uid_dn("alice"), "children", "(objectClass=*)", "1.1")) == set()


def test_base_search_of_one_person(book: Server) -> None:
    out = search(book, uid_dn("carol"), "base", "(objectClass=*)", "sn", "givenName")
    assert_same_ldif(out, f"dn: {uid_dn('carol')}\nsn: Clark\ngivenName: Carol\n")


def test_star_returns_user_attributes_and_certificate(
        book: Server, certificates: dict[str, bytes]) -> None:
    out = search(book, uid_dn("dave"), "base", "(objectClass=*)", "*")
    entry = by_dn(out)[uid_dn("dave")]
    assert entry.names() == {"objectclass", "uid", "cn", "sn", "givenname", "mail",
                             "telephonenumber", "usercertificate;binary"}
    assert set(entry.values("objectClass")) == {
        "top", "person", "organizationalPerson", "inetOrgPerson"}
    (cert,) = entry.values("userCertificate;binary")
    assert base64.b64decode(cert.removeprefix("::")) == certificates["dave"]


def test_certificate_without_binary_option_is_the_same_value(
        book: Server, certificates: dict[str, bytes]) -> None:
    # RFC 4523 §2.1: userCertificate is requested and transferred with ;binary,
    # and a request for the bare type returns the same stored value.
    out = search(book, uid_dn("erin"), "base", "(objectClass=*)", "userCertificate")
    (cert,) = [value for name, value in parse(out)[0].attributes
               if name.startswith("usercertificate")]
    assert base64.b64decode(cert.removeprefix("::")) == certificates["erin"]


def test_plus_returns_operational_attributes_only(book: Server) -> None:
    out = search(book, uid_dn("frank"), "base", "(objectClass=*)", "+")
    entry = by_dn(out)[uid_dn("frank")]
    assert {name.lower() for name in OPERATIONAL} <= entry.names()
    assert not entry.names() & {"cn", "objectclass", "mail", "uid"}
    assert entry.values("structuralObjectClass") == ("inetOrgPerson",)
    assert entry.values("hasSubordinates") == ("FALSE",)
    assert entry.values("creatorsName")[0].lower() == "cn=admin,dc=example,dc=com"
    assert entry.values("subschemaSubentry")[0].lower() == "cn=subschema"


def test_star_and_plus_together(book: Server) -> None:
    out = search(book, PEOPLE, "base", "(objectClass=*)", "*", "+")
    entry = by_dn(out)[PEOPLE]
    assert {"ou", "objectclass", "description", "entryuuid", "createtimestamp"} <= entry.names()
    assert entry.values("hasSubordinates") == ("TRUE",)


def test_no_attributes_with_1_1(book: Server) -> None:
    out = search(book, PEOPLE, "sub", "(mail=*)", "1.1")
    assert all(record.attributes == () for record in parse(out))
    assert len(parse(out)) == 10


def test_types_only(book: Server) -> None:
    out = search(book, uid_dn("grace"), "base", "-A", "(objectClass=*)", "cn", "mail")
    assert_same_ldif(out, f"dn: {uid_dn('grace')}\ncn:\nmail:\n")


def test_unknown_attribute_in_list_is_ignored(book: Server) -> None:
    # RFC 4511 §4.5.1.8: attribute descriptions that are not recognised are ignored.
    out = search(book, uid_dn("heidi"), "base", "(objectClass=*)", "mail", "noSuchAttr")
    assert_same_ldif(out, f"dn: {uid_dn('heidi')}\nmail: heidi@example.com\n")


def test_search_below_missing_base_is_no_such_object(book: Server) -> None:
    result = book.tool("ldapsearch", "-LLL", "-b", f"uid=nobody,{PEOPLE}", "-s", "base")
    assert result.returncode == 32
    assert "No such object" in result.stderr.decode() + result.stdout.decode()
    assert f"Matched DN: {PEOPLE}" in result.stderr.decode() + result.stdout.decode()


def test_types_only_with_star(book: Server) -> None:
    out = search(book, uid_dn("ivan"), "base", "-A", "(objectClass=*)", "*")
    entry = by_dn(out)[uid_dn("ivan")]
    assert {"cn", "mail", "usercertificate;binary"} <= entry.names()
    assert set(entry.values("cn")) == {""}
    assert set(entry.values("userCertificate;binary")) == {""}


def test_suffix_has_subordinates(book: Server) -> None:
    out = search(book, "dc=example,dc=com", "base", "(objectClass=*)", "hasSubordinates", "dc")
    assert_same_ldif(out, "dn: dc=example,dc=com\ndc: example\nhasSubordinates: TRUE\n")


@pytest.mark.parametrize("search_filter", ["(userCertificate;binary=*)", "(userCertificate=*)"])
def test_certificate_presence_filter(book: Server, search_filter: str) -> None:
    assert len(parse(search(book, PEOPLE, "sub", search_filter, "1.1"))) == len(UIDS)


def test_language_tagged_values(book: Server) -> None:
    # RFC 4512 §2.5: `description` covers its tagged subtypes; a tag narrows.
    alice = uid_dn("alice")
    out = search(book, alice, "base", "(objectClass=*)", "description")
    assert_same_ldif(out, f"dn: {alice}\ndescription: hello\ndescription;lang-fr: bonjour\n")
    out = search(book, alice, "base", "(objectClass=*)", "description;lang-fr")
    assert_same_ldif(out, f"dn: {alice}\ndescription;lang-fr: bonjour\n")


def test_language_tagged_values_in_filters(book: Server) -> None:
    alice = uid_dn("alice")
    for search_filter in ("(description;lang-fr=bonjour)", "(description=bonjour)"):
        assert dns(search(book, PEOPLE, "sub", search_filter, "1.1")) == {alice}
    assert dns(search(book, PEOPLE, "sub", "(description;lang-fr=hello)", "1.1")) == set()


def test_base_dn_in_another_spelling(book: Server) -> None:
    out = search(book, "OU=People, DC=Example, DC=Com", "one", "(uid=judy)", "1.1")
    assert dns(out) == {uid_dn("judy")}
