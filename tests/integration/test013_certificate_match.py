"""Scenario 013: finding certificate holders with certificateExactMatch.

- userCertificate and cACertificate use certificateExactMatch (2.5.13.34) for
  equality; the assertion is the GSER CertificateExactAssertion
  `{ serialNumber N, issuer rdnSequence:"DN" }` (RFC 4523 §2.1, Appendix A);
  the form without `rdnSequence:` is accepted as OpenLDAP does.
- Serial and issuer must both match; the issuer is compared with
  distinguishedNameMatch, so case and spacing of the DN do not matter
  (RFC 4517 §4.2.15).
- The same rule is reachable as an extensible match by name or OID
  (RFC 4511 §4.5.1.7.7).
- Values are returned with the ;binary transfer option unchanged (RFC 4522),
  and a modify naming a certificate value removes exactly that value
  (RFC 4511 §4.6, equality by certificateExactMatch).
"""

from __future__ import annotations

import base64
import datetime
from dataclasses import dataclass

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.integration.conftest import Server
from tests.integration.ldif_compare import by_dn

BASE = "dc=example,dc=com"
PEOPLE = f"ou=people,{BASE}"
ALICE = f"uid=alice,{PEOPLE}"
BOB = f"uid=bob,{PEOPLE}"
CAROL = f"cn=Carol,{PEOPLE}"
CA_ENTRY = f"cn=Test CA,{BASE}"
SHARED_SERIAL = 4660
BOB_SERIAL = 2**70 + 12345


@dataclass(frozen=True, slots=True)
class Issued:
    serial: int
    issuer: str
    der: bytes


def name(*attributes: tuple[x509.ObjectIdentifier, str]) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in attributes])


def issue(subject: x509.Name, issuer: x509.Name, serial: int,
          signer: ec.EllipticCurvePrivateKey, is_ca: bool = False) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1()) if not is_ca else signer
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    cert = (x509.CertificateBuilder()
            .subject_name(subject).issuer_name(issuer).serial_number(serial)
            .public_key(key.public_key())
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
            .sign(signer, hashes.SHA256()))
    return Issued(serial, issuer.rfc4514_string(), cert.public_bytes(serialization.Encoding.DER))


@dataclass(frozen=True, slots=True)
class Pki:
    ca: Issued
    alice: Issued
    bob: Issued
    carol: Issued


@pytest.fixture(scope="module")
def pki(server: Server) -> Pki:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    other_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = name((NameOID.ORGANIZATION_NAME, "Example"), (NameOID.COMMON_NAME, "Test CA"))
    other_name = name((NameOID.ORGANIZATION_NAME, "Other"), (NameOID.COMMON_NAME, "Other CA"))
    pki = Pki(
        ca=issue(ca_name, ca_name, 1, ca_key, is_ca=True),
        alice=issue(name((NameOID.COMMON_NAME, "Alice")), ca_name, SHARED_SERIAL, ca_key),
        bob=issue(name((NameOID.COMMON_NAME, "Bob")), ca_name, BOB_SERIAL, ca_key),
        # Same serial as Alice's, another issuer: only the pair identifies a certificate.
        carol=issue(name((NameOID.COMMON_NAME, "Carol")), other_name, SHARED_SERIAL,
                    other_key),
    )

    def b64(issued: Issued) -> str:
        return base64.b64encode(issued.der).decode()

    ldif = f"""dn: {PEOPLE}
objectClass: organizationalUnit
ou: people

dn: {ALICE}
objectClass: inetOrgPerson
uid: alice
cn: Alice
sn: Liddell
userCertificate;binary:: {b64(pki.alice)}

dn: {BOB}
objectClass: inetOrgPerson
uid: bob
cn: Bob
sn: Builder
userCertificate;binary:: {b64(pki.bob)}

dn: {CAROL}
objectClass: person
objectClass: pkiUser
cn: Carol
sn: Carol
userCertificate;binary:: {b64(pki.carol)}

dn: {CA_ENTRY}
objectClass: applicationProcess
objectClass: pkiCA
cn: Test CA
cACertificate;binary:: {b64(pki.ca)}
"""
    added = server.tool("ldapadd", input=ldif.encode())
    assert added.returncode == 0, added.stderr
    return pki


def holders(server: Server, filter_: str, attribute: str = "uid") -> dict[str, tuple[str, ...]]:
    search = server.tool("ldapsearch", "-LLL", "-b", BASE, filter_, attribute, bind=False)
    assert search.returncode == 0, search.stderr
    return {dn: record.values(attribute) for dn, record in by_dn(search.stdout).items()}


def exact(serial: int, issuer: str, rdn_sequence: bool = True) -> str:
    form = "rdnSequence:" if rdn_sequence else ""
    return f'{{ serialNumber {serial}, issuer {form}"{issuer}" }}'


def test_serial_and_issuer_find_holder(pki: Pki, server: Server) -> None:
    found = holders(server, f"(userCertificate={exact(pki.alice.serial, pki.alice.issuer)})")
    assert list(found) == [ALICE.lower()]


def test_issuer_without_rdn_sequence_choice(pki: Pki, server: Server) -> None:
    assertion = exact(pki.alice.serial, pki.alice.issuer, rdn_sequence=False)
    assert list(holders(server, f"(userCertificate={assertion})")) == [ALICE.lower()]


def test_same_serial_other_issuer_finds_other_holder(pki: Pki, server: Server) -> None:
    found = holders(server, f"(userCertificate={exact(pki.carol.serial, pki.carol.issuer)})")
    assert list(found) == [CAROL.lower()]


def test_large_serial(pki: Pki, server: Server) -> None:
    found = holders(server, f"(userCertificate={exact(pki.bob.serial, pki.bob.issuer)})")
    assert list(found) == [BOB.lower()]


def test_issuer_dn_compared_by_dn_matching(pki: Pki, server: Server) -> None:
    assertion = exact(pki.alice.serial, "cn=TEST CA,  o=example")
    assert list(holders(server, f"(userCertificate={assertion})")) == [ALICE.lower()]


def test_wrong_serial_finds_nobody(pki: Pki, server: Server) -> None:
    assert holders(server, f"(userCertificate={exact(999, pki.alice.issuer)})") == {}


def test_unknown_issuer_finds_nobody(pki: Pki, server: Server) -> None:
    assertion = exact(pki.alice.serial, "cn=Nobody CA,o=Example")
    assert holders(server, f"(userCertificate={assertion})") == {}


def test_extensible_match_by_rule_name(pki: Pki, server: Server) -> None:
    assertion = exact(pki.bob.serial, pki.bob.issuer)
    found = holders(server, f"(userCertificate:certificateExactMatch:={assertion})")
    assert list(found) == [BOB.lower()]


def test_extensible_match_by_rule_oid(pki: Pki, server: Server) -> None:
    assertion = exact(pki.bob.serial, pki.bob.issuer)
    assert list(holders(server, f"(userCertificate:2.5.13.34:={assertion})")) == [BOB.lower()]


def test_combined_with_other_filters(pki: Pki, server: Server) -> None:
    alice = exact(pki.alice.serial, pki.alice.issuer)
    bob = exact(pki.bob.serial, pki.bob.issuer)
    found = holders(server, f"(&(objectClass=inetOrgPerson)(|(userCertificate={alice})"
                            f"(userCertificate={bob})))")
    assert sorted(found) == sorted([ALICE.lower(), BOB.lower()])
    negated = holders(server, f"(&(userCertificate=*)(!(userCertificate={alice})))")
    assert sorted(negated) == sorted([BOB.lower(), CAROL.lower()])


def test_ca_certificate_match(pki: Pki, server: Server) -> None:
    found = holders(server, f"(cACertificate={exact(pki.ca.serial, pki.ca.issuer)})", "cn")
    assert found == {CA_ENTRY.lower(): ("Test CA",)}


def test_certificate_returned_unchanged(pki: Pki, server: Server) -> None:
    assertion = exact(pki.alice.serial, pki.alice.issuer)
    search = server.tool("ldapsearch", "-LLL", "-b", BASE, f"(userCertificate={assertion})",
                         "userCertificate;binary", bind=False)
    assert search.returncode == 0, search.stderr
    values = by_dn(search.stdout)[ALICE.lower()].values("userCertificate;binary")
    assert values == ("::" + base64.b64encode(pki.alice.der).decode(),)


def test_certificate_usable_by_cryptography(pki: Pki, server: Server) -> None:
    search = server.tool("ldapsearch", "-LLL", "-o", "ldif-wrap=no", "-b", BOB, "-s", "base",
                         "userCertificate;binary", bind=False)
    assert search.returncode == 0, search.stderr
    value = by_dn(search.stdout)[BOB.lower()].values("userCertificate;binary")[0]
    cert = x509.load_der_x509_certificate(base64.b64decode(value[2:]))
    assert cert.serial_number == BOB_SERIAL
    assert cert.issuer.rfc4514_string() == pki.bob.issuer


def test_second_certificate_then_delete_one(pki: Pki, server: Server) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    issuer = name((NameOID.COMMON_NAME, "Renewal CA"))
    renewed = issue(name((NameOID.COMMON_NAME, "Alan")), issuer, 77, key)
    alan = f"uid=alan,{PEOPLE}"
    der = base64.b64encode(renewed.der).decode()
    old = base64.b64encode(pki.bob.der).decode()
    added = server.tool("ldapadd", input=(
        f"dn: {alan}\nobjectClass: inetOrgPerson\nuid: alan\ncn: Alan\nsn: Turing\n"
        f"userCertificate;binary:: {old}\nuserCertificate;binary:: {der}\n").encode())
    assert added.returncode == 0, added.stderr
    renewed_filter = f"(userCertificate={exact(77, renewed.issuer)})"
    assert list(holders(server, renewed_filter)) == [alan.lower()]
    bob_filter = f"(userCertificate={exact(pki.bob.serial, pki.bob.issuer)})"
    assert sorted(holders(server, bob_filter)) == sorted([alan.lower(), BOB.lower()])
    removed = server.tool("ldapmodify", input=(
        f"dn: {alan}\nchangetype: modify\ndelete: userCertificate;binary\n"
        f"userCertificate;binary:: {old}\n").encode())
    assert removed.returncode == 0, removed.stderr
    assert list(holders(server, bob_filter)) == [BOB.lower()]
    assert list(holders(server, renewed_filter)) == [alan.lower()]
