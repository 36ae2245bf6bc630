"""certdir driven by ldap3 (pure-Python client, synchronous strategy).

- Root bind, add, modify (RFC 4511 §4.6), modify DN (§4.9), compare (§4.10)
  and delete (§4.8) give the result codes and effects the RFC names.
- Paged results (RFC 2696) return every entry exactly once across pages;
  server side sort (RFC 2891) orders by the requested key.
- WhoAmI (RFC 4532) and Password Modify (RFC 3062) work through ldap3's
  standard extensions.
- Server(get_info=ALL) reads the root DSE (RFC 4512 §5.1) and the subschema
  subentry (§4.2) and ldap3 parses every definition without error.
- A size limit (RFC 4511 §4.5.1.5) returns that many entries, then
  sizeLimitExceeded (4).
- userCertificate;binary (RFC 4523 §2.1) round-trips DER unchanged and the
  certificateExactMatch assertion (§2.5) finds its holder by serial and issuer.
- StartTLS (RFC 4511 §4.14) succeeds against the CA in public/ca.pem.
"""

from __future__ import annotations

import datetime
import ssl
from collections.abc import Iterator

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from ldap3 import (
    ALL,
    BASE,
    MODIFY_ADD,
    MODIFY_DELETE,
    MODIFY_REPLACE,
    SUBTREE,
    Connection,
    Server,
    Tls,
)
from ldap3.core.exceptions import LDAPInvalidCredentialsResult
from ldap3.protocol.controls import build_control
from pyasn1.type import namedtype, tag, univ

from tests.integration.conftest import SUFFIX
from tests.integration.conftest import Server as Certdir

PEOPLE = f"ou=ldap3,{SUFFIX}"
SORT_OID = "1.2.840.113556.1.4.473"


class SortKey(univ.Sequence):  # type: ignore[misc]
    """SortKey (RFC 2891 §1.1); ldap3 has no server side sort helper of its own."""

    componentType = namedtype.NamedTypes(
        namedtype.NamedType("attributeType", univ.OctetString()),
        namedtype.DefaultedNamedType("reverseOrder", univ.Boolean(False).subtype(
            implicitTag=tag.Tag(tag.tagClassContext, tag.tagFormatSimple, 1))),
    )


class SortKeyList(univ.SequenceOf):  # type: ignore[misc]
    componentType = SortKey()


def sort_keys_value(*keys: tuple[str, bool]) -> SortKeyList:
    value = SortKeyList()
    for position, (attribute, reverse) in enumerate(keys):
        key = SortKey()
        key["attributeType"] = attribute
        if reverse:
            key["reverseOrder"] = True
        value.setComponentByPosition(position, key)
    return value


def ldap3_server(certdir: Certdir, get_info: str = "NO_INFO") -> Server:
    return Server("127.0.0.1", port=certdir.port, get_info=get_info, connect_timeout=5)


def root_connection(certdir: Certdir, get_info: str = "NO_INFO") -> Connection:
    return Connection(ldap3_server(certdir, get_info), certdir.root_dn, certdir.root_password,
                      auto_bind=True, raise_exceptions=False, receive_timeout=10)


def person(cn: str, **extra: object) -> dict[str, object]:
    return {"objectClass": ["inetOrgPerson"], "cn": cn, "sn": cn.rsplit(maxsplit=1)[-1], **extra}


@pytest.fixture(scope="module")
def conn(server: Certdir) -> Iterator[Connection]:
    connection = root_connection(server)
    assert connection.add(PEOPLE, ["organizationalUnit"], {"ou": "ldap3"}), connection.result
    yield connection
    connection.unbind()


def test_root_bind_is_authenticated(conn: Connection, server: Certdir) -> None:
    assert conn.bound
    assert conn.extend.standard.who_am_i() == f"dn:{server.root_dn}"


def test_wrong_root_password_is_invalid_credentials(server: Certdir) -> None:
    connection = Connection(ldap3_server(server), server.root_dn, "not the password")
    assert not connection.bind()
    assert connection.result["result"] == 49


def test_wrong_password_raises_when_asked_to(server: Certdir) -> None:
    connection = Connection(ldap3_server(server), server.root_dn, "nope",
                            raise_exceptions=True)
    with pytest.raises(LDAPInvalidCredentialsResult):
        connection.bind()


def test_anonymous_who_am_i_is_empty(server: Certdir) -> None:
    connection = Connection(ldap3_server(server), auto_bind=True)
    assert connection.extend.standard.who_am_i() is None
    connection.unbind()


def test_add_then_read_back(conn: Connection) -> None:
    dn = f"cn=Ada Lovelace,{PEOPLE}"
    assert conn.add(dn, attributes=person("Ada Lovelace", mail="ada@example.com")), conn.result
    assert conn.search(dn, "(objectClass=*)", BASE, attributes=["cn", "sn", "mail"])
    entry = conn.entries[0]
    assert entry.entry_dn.lower() == dn.lower()
    assert entry.mail.value == "ada@example.com"
    assert entry.sn.value == "Lovelace"


def test_add_existing_is_entry_already_exists(conn: Connection) -> None:
    dn = f"cn=Twice,{PEOPLE}"
    assert conn.add(dn, attributes=person("Twice"))
    assert not conn.add(dn, attributes=person("Twice"))
    assert conn.result["result"] == 68


def test_add_without_required_attribute_is_object_class_violation(conn: Connection) -> None:
    assert not conn.add(f"cn=No Surname,{PEOPLE}", ["inetOrgPerson"], {"cn": "No Surname"})
    assert conn.result["result"] == 65


def test_paged_search_returns_every_entry_once(conn: Connection) -> None:
    base = f"ou=paged,{PEOPLE}"
    assert conn.add(base, ["organizationalUnit"], {"ou": "paged"}), conn.result
    names = {f"user{n:02d}" for n in range(23)}
    for name in names:
        assert conn.add(f"cn={name},{base}", attributes=person(name)), conn.result
    found = [entry["attributes"]["cn"][0] for entry in conn.extend.standard.paged_search(
        base, "(objectClass=inetOrgPerson)", SUBTREE, attributes=["cn"], paged_size=5,
        generator=True)]
    assert sorted(found) == sorted(names)


def test_paged_search_sends_cookie_until_exhausted(conn: Connection) -> None:
    base = f"ou=pages,{PEOPLE}"
    assert conn.add(base, ["organizationalUnit"], {"ou": "pages"}), conn.result
    for n in range(7):
        assert conn.add(f"cn=p{n},{base}", attributes=person(f"p{n}")), conn.result
    sizes = []
    cookie: bytes | None = None
    while True:
        assert conn.search(base, "(cn=p*)", SUBTREE, attributes=["cn"], paged_size=3,
                           paged_cookie=cookie), conn.result
        sizes.append(len(conn.entries))
        cookie = conn.result["controls"]["1.2.840.113556.1.4.319"]["value"]["cookie"]
        if not cookie:
            break
    assert sizes == [3, 3, 1]


@pytest.mark.parametrize("reverse", [False, True])
def test_server_side_sort(conn: Connection, reverse: bool) -> None:
    base = f"ou=sorted{int(reverse)},{PEOPLE}"
    assert conn.add(base, ["organizationalUnit"], {"ou": f"sorted{int(reverse)}"})
    surnames = ["Mraz", "Abbott", "Zulauf", "Kuhn", "Bode"]
    for sn in surnames:
        assert conn.add(f"cn=X {sn},{base}", attributes=person(f"X {sn}")), conn.result
    control = build_control(SORT_OID, True, sort_keys_value(("sn", reverse)))
    assert conn.search(base, "(objectClass=inetOrgPerson)", SUBTREE, attributes=["sn"],
                       controls=[control]), conn.result
    got = [entry.sn.value for entry in conn.entries]
    assert got == sorted(surnames, reverse=reverse)
    assert conn.result["result"] == 0


def test_modify_add_replace_delete(conn: Connection) -> None:
    dn = f"cn=Grace Hopper,{PEOPLE}"
    assert conn.add(dn, attributes=person("Grace Hopper", mail="grace@example.com"))
    assert conn.modify(dn, {"mail": [(MODIFY_ADD, ["amazing@example.com"])],
                            "title": [(MODIFY_REPLACE, ["Rear Admiral"])],
                            "description": [(MODIFY_ADD, ["COBOL"])]}), conn.result
    assert conn.modify(dn, {"description": [(MODIFY_DELETE, [])]}), conn.result
    conn.search(dn, "(objectClass=*)", BASE, attributes=["mail", "title", "description"])
    entry = conn.entries[0]
    assert sorted(entry.mail.values) == ["amazing@example.com", "grace@example.com"]
    assert entry.title.value == "Rear Admiral"
    assert not conn.response[0]["raw_attributes"].get("description")


def test_modify_missing_value_is_no_such_attribute(conn: Connection) -> None:
    dn = f"cn=Absent Value,{PEOPLE}"
    assert conn.add(dn, attributes=person("Absent Value"))
    assert not conn.modify(dn, {"mail": [(MODIFY_DELETE, ["nobody@example.com"])]})
    assert conn.result["result"] == 16


def test_modify_single_valued_twice_is_constraint_violation(conn: Connection) -> None:
    dn = f"cn=Single,{PEOPLE}"
    assert conn.add(dn, attributes=person("Single"))
    assert not conn.modify(dn, {"preferredLanguage": [(MODIFY_ADD, ["en", "fr"])]})
    assert conn.result["result"] == 19


def test_modify_dn_rename_and_move(conn: Connection) -> None:
    old = f"cn=Old Name,{PEOPLE}"
    target = f"ou=moved,{PEOPLE}"
    assert conn.add(target, ["organizationalUnit"], {"ou": "moved"})
    assert conn.add(old, attributes=person("Old Name"))
    assert conn.modify_dn(old, "cn=New Name", delete_old_dn=True), conn.result
    renamed = f"cn=New Name,{PEOPLE}"
    assert conn.search(renamed, "(objectClass=*)", BASE, attributes=["cn"])
    assert conn.entries[0].cn.values == ["New Name"]
    assert conn.modify_dn(renamed, "cn=New Name", new_superior=target), conn.result
    assert conn.search(f"cn=New Name,{target}", "(objectClass=*)", BASE)
    assert not conn.search(renamed, "(objectClass=*)", BASE)
    assert conn.result["result"] == 32


def test_modify_dn_keeping_old_rdn(conn: Connection) -> None:
    old = f"cn=Keep Me,{PEOPLE}"
    assert conn.add(old, attributes=person("Keep Me"))
    assert conn.modify_dn(old, "cn=Also Me", delete_old_dn=False), conn.result
    conn.search(f"cn=Also Me,{PEOPLE}", "(objectClass=*)", BASE, attributes=["cn"])
    assert sorted(conn.entries[0].cn.values) == ["Also Me", "Keep Me"]


def test_compare(conn: Connection) -> None:
    dn = f"cn=Comparable,{PEOPLE}"
    assert conn.add(dn, attributes=person("Comparable", mail="c@example.com"))
    assert conn.compare(dn, "mail", "C@EXAMPLE.COM") is True
    assert conn.result["result"] == 6
    assert conn.compare(dn, "mail", "d@example.com") is False
    assert conn.result["result"] == 5
    conn.compare(dn, "title", "x")
    assert conn.result["result"] == 16


def test_delete_leaf_and_non_leaf(conn: Connection) -> None:
    parent = f"ou=doomed,{PEOPLE}"
    child = f"cn=Child,{parent}"
    assert conn.add(parent, ["organizationalUnit"], {"ou": "doomed"})
    assert conn.add(child, attributes=person("Child"))
    assert not conn.delete(parent)
    assert conn.result["result"] == 66
    assert conn.delete(child), conn.result
    assert conn.delete(parent), conn.result
    assert not conn.delete(parent)
    assert conn.result["result"] == 32


def test_password_modify_then_user_binds(conn: Connection, server: Certdir) -> None:
    dn = f"cn=Pat Word,{PEOPLE}"
    assert conn.add(dn, attributes=person("Pat Word"))
    assert conn.extend.standard.modify_password(dn, new_password="first secret") is True
    user = Connection(ldap3_server(server), dn, "first secret", auto_bind=True)
    assert user.extend.standard.who_am_i().lower() == f"dn:{dn}".lower()
    generated = user.extend.standard.modify_password(old_password="first secret")
    assert isinstance(generated, str) and generated
    user.unbind()
    again = Connection(ldap3_server(server), dn, generated)
    assert again.bind(), again.result
    again.unbind()
    assert not Connection(ldap3_server(server), dn, "first secret").bind()


def test_user_password_is_not_returned(conn: Connection, server: Certdir) -> None:
    dn = f"cn=Hidden,{PEOPLE}"
    assert conn.add(dn, attributes=person("Hidden", userPassword="s3cret!"))
    user = Connection(ldap3_server(server), dn, "s3cret!", auto_bind=True)
    assert user.search(dn, "(objectClass=*)", BASE, attributes=["*"])
    assert "userPassword" not in user.entries[0].entry_attributes
    user.unbind()


def test_anonymous_write_is_refused(server: Certdir) -> None:
    anonymous = Connection(ldap3_server(server), auto_bind=True)
    assert not anonymous.add(f"cn=Intruder,{PEOPLE}", attributes=person("Intruder"))
    assert anonymous.result["result"] == 50
    anonymous.unbind()


def test_schema_and_root_dse_load(server: Certdir) -> None:
    connection = root_connection(server, ALL)
    info = connection.server.info
    schema = connection.server.schema
    assert info is not None and schema is not None
    assert SUFFIX in [str(context).lower() for context in info.naming_contexts]
    assert "3" in [str(version) for version in info.supported_ldap_versions]
    assert "1.3.6.1.4.1.4203.1.11.3" in [ext[0] for ext in info.supported_extensions]
    assert "1.2.840.113556.1.4.319" in [control[0] for control in info.supported_controls]
    for name in ("inetOrgPerson", "pkiCA", "organizationalUnit", "dcObject", "referral"):
        assert name in schema.object_classes, name
    for name in ("mail", "userCertificate", "cn", "entryUUID", "createTimestamp"):
        assert name in schema.attribute_types, name
    assert schema.object_classes["inetOrgPerson"].name[0] == "inetOrgPerson"
    assert "organizationalPerson" in schema.object_classes["inetOrgPerson"].superior
    assert schema.attribute_types["mail"].syntax == "1.3.6.1.4.1.1466.115.121.1.26"
    connection.unbind()


def test_schema_is_self_consistent(server: Certdir) -> None:
    """Every name a definition refers to is itself defined (RFC 4512 §4.1)."""
    connection = root_connection(server, ALL)
    schema = connection.server.schema
    # ldap3 keys each definition by its first name; a reference may use any.
    attribute_names = {name.lower() for at in schema.attribute_types.values() for name in at.name}
    class_names = {name.lower() for oc in schema.object_classes.values() for name in oc.name}
    syntaxes = set(schema.ldap_syntaxes)
    rules = {name.lower() for name in schema.matching_rules}
    for name, object_class in schema.object_classes.items():
        for attribute in (*object_class.must_contain, *object_class.may_contain):
            assert attribute.lower() in attribute_names, (name, attribute)
        for superior in object_class.superior or ():
            assert superior.lower() in class_names, (name, superior)
    for name, attribute_type in schema.attribute_types.items():
        assert attribute_type.syntax is None or attribute_type.syntax in syntaxes, (
            name, attribute_type.syntax)
        for rule in (*(attribute_type.equality or ()), *(attribute_type.ordering or ()),
                     *(attribute_type.substring or ())):
            assert rule.lower() in rules, (name, rule)
        assert attribute_type.syntax or attribute_type.superior, name
    connection.unbind()


def test_operational_attributes(conn: Connection) -> None:
    dn = f"cn=Stamped,{PEOPLE}"
    assert conn.add(dn, attributes=person("Stamped"))
    assert conn.search(dn, "(objectClass=*)", BASE, attributes=["+"])
    attributes = {name.lower() for name in conn.entries[0].entry_attributes}
    for name in ("createtimestamp", "modifytimestamp", "creatorsname", "entryuuid",
                 "structuralobjectclass", "hassubordinates", "subschemasubentry"):
        assert name in attributes, name


def test_start_tls_with_ca(server: Certdir, conn: Connection) -> None:
    tls = Tls(ca_certs_file=str(server.ca_file), validate=ssl.CERT_REQUIRED,
              version=ssl.PROTOCOL_TLS_CLIENT)
    plain = Server("127.0.0.1", port=server.port, tls=tls, connect_timeout=5)
    connection = Connection(plain, server.root_dn, server.root_password, receive_timeout=10)
    connection.open()
    assert connection.start_tls(), connection.result
    assert connection.tls_started
    assert connection.bind(), connection.result
    assert connection.search(SUFFIX, "(objectClass=*)", BASE, attributes=["dc"])
    assert connection.entries[0].dc.value == "example"
    connection.unbind()


def test_ldaps_with_ca(server: Certdir) -> None:
    tls = Tls(ca_certs_file=str(server.ca_file), validate=ssl.CERT_REQUIRED,
              version=ssl.PROTOCOL_TLS_CLIENT)
    secure = Server("127.0.0.1", port=server.ldaps_port, use_ssl=True, tls=tls,
                    connect_timeout=5)
    connection = Connection(secure, server.root_dn, server.root_password, auto_bind=True)
    assert connection.extend.standard.who_am_i() == f"dn:{server.root_dn}"
    connection.unbind()


def test_size_limit(conn: Connection) -> None:
    base = f"ou=limited,{PEOPLE}"
    assert conn.add(base, ["organizationalUnit"], {"ou": "limited"})
    for n in range(5):
        assert conn.add(f"cn=l{n},{base}", attributes=person(f"l{n}"))
    conn.search(base, "(cn=l*)", SUBTREE, attributes=["cn"], size_limit=2)
    assert conn.result["result"] == 4
    assert len(conn.entries) == 2


def certificate(serial: int, issuer: str) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(serial)
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.DER)


@pytest.mark.parametrize("issuer_form", ['issuer "cn=Test CA"',
                                         'issuer rdnSequence:"cn=Test CA"'])
def test_certificate_binary_and_exact_match(conn: Connection, issuer_form: str) -> None:
    base = f"ou=certs{len(issuer_form)},{PEOPLE}"
    assert conn.add(base, ["organizationalUnit"], {"ou": f"certs{len(issuer_form)}"})
    held, other = certificate(4242, "Test CA"), certificate(4243, "Test CA")
    holder = f"cn=Holder,{base}"
    assert conn.add(holder, attributes=person("Holder", **{"userCertificate;binary": held}))
    assert conn.add(f"cn=Other,{base}", attributes=person("Other", **{
        "userCertificate;binary": other}))
    assert conn.search(holder, "(objectClass=*)", BASE, attributes=["userCertificate;binary"])
    raw = conn.response[0]["raw_attributes"]
    assert [bytes(value) for value in raw["userCertificate;binary"]] == [held]
    assert conn.search(base, f"(userCertificate={{ serialNumber 4242, {issuer_form} }})",
                       SUBTREE, attributes=["1.1"]), conn.result
    assert [entry.entry_dn.lower() for entry in conn.entries] == [holder.lower()]
