"""Scenario 024: certificate requests over LDAP (the CA's extended operation).

- The root DSE lists the operation's OID in supportedExtension.
- A user bound as their own entry asks for an S/MIME certificate: the
  profile's default policy (officer) queues it; `certdir ca approve`
  issues it and it appears on the entry.
- The root DN acts as an officer: its request for a named entry is issued
  at once and the response carries the certificate, which ldapsearch then
  finds on the entry.
- Anonymous clients are refused (insufficientAccessRights), a user may not
  name another entry, a garbage CSR gets unwillingToPerform with the CA's
  reason and a malformed value protocolError; none of them records anything.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from ldap3 import SIMPLE, Connection
from ldap3 import Server as LDAPServer
from pyasn1.codec.ber import decoder, encoder
from pyasn1.type import namedtype, tag, univ

from ca.ldap_request import CERTIFICATE_REQUEST
from tests.integration.conftest import Server, make_server

PEOPLE = "ou=people,dc=example,dc=com"
ALICE = f"uid=alice,{PEOPLE}"
BOB = f"uid=bob,{PEOPLE}"


class RequestValue(univ.Sequence):  # type: ignore[misc]
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("profile", univ.OctetString()),
        namedtype.NamedType("csr", univ.OctetString()),
        namedtype.OptionalNamedType("entry", univ.OctetString().subtype(
            implicitTag=tag.Tag(tag.tagClassContext, tag.tagFormatSimple, 0))))


class ResponseValue(univ.Sequence):  # type: ignore[misc]
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("status", univ.Enumerated()),
        namedtype.NamedType("request", univ.Integer()),
        namedtype.OptionalNamedType("certificate", univ.OctetString().subtype(
            implicitTag=tag.Tag(tag.tagClassContext, tag.tagFormatSimple, 0))))


def csr() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    request = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "anything")])).sign(
            key, hashes.SHA256())
    return request.public_bytes(Encoding.DER)


def value(profile: str, request: bytes, entry: str | None = None) -> bytes:
    v = RequestValue()
    v["profile"] = profile.encode()
    v["csr"] = request
    if entry is not None:
        v["entry"] = entry.encode()
    return bytes(encoder.encode(v))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A running certdir with its CA."""
    srv = make_server(tmp_path_factory.mktemp("certdir"))
    srv.start()
    yield srv
    assert "Traceback" not in srv.stop()


@pytest.fixture(scope="module")
def people(server: Server) -> Iterator[Server]:
    ldif = "".join(
        f"dn: uid={uid},{PEOPLE}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {cn}\n"
        f"sn: {cn.split()[-1]}\nmail: {uid}@example.com\nuserPassword: {uid}-secret\n\n"
        for uid, cn in (("alice", "Alice Liddell"), ("bob", "Bob Dobbs")))
    added = server.tool("ldapadd", input=(
        f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n\n{ldif}").encode())
    assert added.returncode == 0, added.stderr
    yield server


def connect(server: Server, who: str | None = None, password: str | None = None) -> Connection:
    target = LDAPServer("127.0.0.1", port=server.port)
    if who is None:
        return Connection(target, auto_bind=True)
    return Connection(target, user=who, password=password, authentication=SIMPLE,
                      auto_bind=True)


def request(conn: Connection, payload: bytes) -> tuple[dict[str, object], ResponseValue | None]:
    conn.extended(CERTIFICATE_REQUEST, payload)
    result = conn.result
    raw = result.get("responseValue")
    decoded = None if not raw else decoder.decode(raw, asn1Spec=ResponseValue())[0]
    return result, decoded


def pending(server: Server) -> str:
    return server.certdir("ca", "list", "--data-dir", str(server.data_dir),
                          "--pending").stdout.decode()


def certificates_of(server: Server, dn: str) -> list[bytes]:
    conn = connect(server, server.root_dn, server.root_password)
    conn.search(dn, "(objectClass=*)", attributes=["userCertificate;binary"])
    values = conn.entries[0].entry_attributes_as_dict.get("userCertificate;binary", [])
    return list(values)


def test_root_dse_lists_the_operation(people: Server) -> None:
    conn = connect(people)
    conn.search("", "(objectClass=*)", search_scope="BASE",
                attributes=["supportedExtension"])
    assert CERTIFICATE_REQUEST in conn.entries[0].supportedExtension.values


def test_user_request_waits_for_an_officer(people: Server) -> None:
    conn = connect(people, ALICE, "alice-secret")
    result, response = request(conn, value("smime-user", csr()))
    assert result["result"] == 0, result
    assert response is not None and int(response["status"]) == 1
    assert not response["certificate"].isValue
    number = str(int(response["request"]))
    assert number in pending(people)
    approved = people.certdir("ca", "approve", "--data-dir", str(people.data_dir), number)
    serial = approved.stdout.decode().strip()
    (der,) = certificates_of(people, ALICE)
    assert format(x509.load_der_x509_certificate(der).serial_number, "x") == serial


def test_root_request_is_issued_at_once(people: Server) -> None:
    conn = connect(people, people.root_dn, people.root_password)
    result, response = request(conn, value("smime-user", csr(), BOB))
    assert result["result"] == 0, result
    assert response is not None and int(response["status"]) == 0
    certificate = x509.load_der_x509_certificate(bytes(response["certificate"]))
    assert certificate.extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value.get_values_for_type(x509.RFC822Name) == [
            "bob@example.com"]
    assert certificates_of(people, BOB) == [certificate.public_bytes(Encoding.DER)]


@pytest.mark.parametrize("who, payload, code, words", [
    ("anonymous", value("smime-user", b"x"), 50, "bind"),
    ("alice", value("smime-user", b"x", BOB), 50, "own entry"),
    ("alice", value("smime-user", b"garbage"), 53, "PKCS#10"),
    ("alice", value("no-such-profile", b"x"), 53, "profile"),
    ("alice", b"\x30\x03\x02\x01\x05", 2, "certificate request"),
])
def test_refusals_record_nothing(people: Server, who: str, payload: bytes, code: int,
                                 words: str) -> None:
    before = pending(people)
    conn = connect(people) if who == "anonymous" else connect(people, ALICE, "alice-secret")
    result, _ = request(conn, payload)
    assert result["result"] == code, result
    assert words.lower() in str(result["message"]).lower(), result
    assert pending(people) == before
