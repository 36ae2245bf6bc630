"""Scenario 064: SASL EXTERNAL with TLS client certificates (issue 10, part 2).

1. The root DSE lists EXTERNAL in supportedSASLMechanisms (RFC 4513 §5.2.3).
2. A tls-client certificate the built-in CA issued for an entry (`certdir ca
   issue --entry`): `ldapwhoami -Y EXTERNAL` over ldaps:// and over StartTLS
   (-ZZ), with LDAPTLS_CERT/LDAPTLS_KEY and LDAPTLS_REQCERT=demand, prints
   dn:<the entry>.
3. The person's S/MIME certificate (smime-user: emailProtection only) binds
   as that person too.
4. After `certdir ca revoke` the certificate gets invalidCredentials (49)
   from the running server; on hold (certificateHold) too, and after `ca
   release` it binds again. Once its entry is deleted, a certificate the CA
   issued for it gets invalidCredentials (49) too.
5. A certificate of a CA the server does not trust (made with openssl): the
   handshake still succeeds and the certificate is ignored: an anonymous
   WhoAmI works, EXTERNAL gets inappropriateAuthentication (48).
6. No client certificate: inappropriateAuthentication (48), over ldaps://
   and over plain LDAP.
7. A partner CA added to `tls.ca_certificate`: its certificate maps by
   rfc822Name to the one entry with that mail, one without a mail address
   by a `sasl.subject` rule; an expired one gets invalidCredentials (49), a
   TLS server certificate (serverAuth only) too.
8. An authzId (RFC 4422 §3.4.1): the certificate's own entry binds; another
   DN, which no proxy rule lets it act as, gets insufficientAccessRights (50).
"""

from __future__ import annotations

import datetime as dt
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import ldap3
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from tests.integration.conftest import SUFFIX, Server, make_server

PEOPLE = ("Alice", "Bob", "Carol", "Dave", "Erin", "Frank", "Gina")
PARTNER = "O=Partner,CN=Partner CA"
NOW = dt.datetime.now(dt.UTC)


def person_dn(cn: str) -> str:
    return f"cn={cn},{SUFFIX}"


def person_ldif(cn: str) -> str:
    return (f"dn: {person_dn(cn)}\nobjectClass: inetOrgPerson\ncn: {cn}\nsn: {cn}\n"
            f"mail: {cn.lower()}@example.com\n")


@dataclass(frozen=True, slots=True)
class Partner:
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate


@dataclass(frozen=True, slots=True)
class World:
    server: Server
    tmp: Path
    partner: Partner


def make_partner() -> Partner:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name.from_rfc4514_string(PARTNER)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=30))
        .not_valid_after(NOW + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                     False), critical=True)
        .sign(key, hashes.SHA256()))
    return Partner(key, certificate)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("sasl-external")
    srv = make_server(tmp)
    partner = make_partner()
    trust = srv.data_dir / "public" / "client-cas.pem"
    trust.write_bytes(srv.ca_file.read_bytes()
                      + partner.certificate.public_bytes(serialization.Encoding.PEM))
    srv.configure("tls", ca_certificate=str(trust))
    srv.configure("sasl", subject=[{"match": r"^CN=([^,]+),OU=Staff,O=Partner$",
                                    "dn": rf"cn=\1,{SUFFIX}"}])
    srv.start()
    done = srv.tool("ldapadd", input="\n".join(map(person_ldif, PEOPLE)).encode())
    assert done.returncode == 0, done.stderr
    yield World(srv, tmp, partner)
    log = srv.stop()
    assert "Traceback" not in log, log


def issue(world: World, name: str, profile: str, entry: str) -> tuple[str, Path, Path]:
    """A certificate of the built-in CA for `entry`: serial, certificate and key files."""
    tmp = world.tmp
    key = tmp / f"{name}.key"
    csr = tmp / f"{name}.csr"
    subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key), "-subj",
                    f"/CN={name}", "-addext", f"subjectAltName=DNS:{name}.example.com",
                    "-out", str(csr)], check=True, capture_output=True)
    server = world.server
    serial = server.certdir("ca", "issue", "--data-dir", str(server.data_dir), "--csr",
                            str(csr), "--profile", profile, "--entry",
                            entry).stdout.decode().strip()
    pem = server.certdir("ca", "show", "--data-dir", str(server.data_dir), "--pem",
                         serial).stdout
    cert = tmp / f"{name}.pem"
    cert.write_bytes(pem)
    return serial, cert, key


def partner_certificate(world: World, name: str, subject: str, *, email: str | None = None,
                        usage: x509.ObjectIdentifier = ExtendedKeyUsageOID.CLIENT_AUTH,
                        expired: bool = False) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    end = NOW - dt.timedelta(days=1) if expired else NOW + dt.timedelta(days=10)
    builder = (
        x509.CertificateBuilder().subject_name(x509.Name.from_rfc4514_string(subject))
        .issuer_name(world.partner.certificate.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=20)).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
    if email is not None:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.RFC822Name(email)]), critical=False)
    certificate = builder.sign(world.partner.key, hashes.SHA256())
    return write_pair(world.tmp, name, certificate, key)


def write_pair(tmp: Path, name: str, certificate: x509.Certificate,
               key: ec.EllipticCurvePrivateKey) -> tuple[Path, Path]:
    cert_file = tmp / f"{name}.pem"
    key_file = tmp / f"{name}.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


def whoami(server: Server, uri: str, cert: Path | None, key: Path | None,
           *args: str) -> subprocess.CompletedProcess[bytes]:
    env = {**server.env(), "LDAPTLS_REQCERT": "demand"}
    if cert is not None and key is not None:
        env |= {"LDAPTLS_CERT": str(cert), "LDAPTLS_KEY": str(key)}
    return subprocess.run(["ldapwhoami", "-H", uri, *args], check=False, capture_output=True,
                          env=env, timeout=60)


def external(server: Server, uri: str, cert: Path | None, key: Path | None,
             *args: str) -> subprocess.CompletedProcess[bytes]:
    start_tls = ("-ZZ",) if uri.startswith("ldap://") else ()
    return whoami(server, uri, cert, key, *start_tls, "-Y", "EXTERNAL", "-Q", *args)


def printed_dn(done: subprocess.CompletedProcess[bytes]) -> str:
    assert done.returncode == 0, done.stderr
    return done.stdout.decode().strip().lower()


def ldap3_external(server: Server, use_ssl: bool, cert: Path | None = None,
                   key: Path | None = None) -> tuple[int, str]:
    """The result code and WhoAmI after a SASL EXTERNAL bind sent whether or not the
    TLS session holds a client certificate (libsasl's EXTERNAL will not start without
    one, so ldapwhoami cannot send it)."""
    tls = ldap3.Tls(ca_certs_file=str(server.ca_file), validate=ssl.CERT_REQUIRED,
                    local_certificate_file=None if cert is None else str(cert),
                    local_private_key_file=None if key is None else str(key))
    target = ldap3.Server("127.0.0.1", port=server.ldaps_port if use_ssl else server.port,
                          use_ssl=use_ssl, tls=tls)
    conn = ldap3.Connection(target, authentication=ldap3.SASL, sasl_mechanism=ldap3.EXTERNAL)
    conn.open()
    conn.bind()
    code: int = conn.result["result"]
    identity = conn.extend.standard.who_am_i()
    conn.unbind()
    return code, identity or ""


def test_root_dse_lists_external(world: World) -> None:
    done = world.server.tool("ldapsearch", "-LLL", "-b", "", "-s", "base", "(objectClass=*)",
                             "supportedSASLMechanisms", bind=False)
    assert done.returncode == 0, done.stderr
    assert "supportedSASLMechanisms: EXTERNAL" in done.stdout.decode()


def test_tls_client_certificate_over_ldaps(world: World) -> None:
    _, cert, key = issue(world, "alice-tls", "tls-client", person_dn("Alice"))
    done = external(world.server, world.server.ldaps_uri, cert, key)
    assert printed_dn(done) == f"dn:{person_dn('Alice')}".lower()


def test_tls_client_certificate_over_starttls(world: World) -> None:
    _, cert, key = issue(world, "alice-starttls", "tls-client", person_dn("Alice"))
    done = external(world.server, world.server.uri, cert, key)
    assert printed_dn(done) == f"dn:{person_dn('Alice')}".lower()


def test_smime_certificate_maps_to_its_holder(world: World) -> None:
    _, cert, key = issue(world, "bob-smime", "smime-user", person_dn("Bob"))
    done = external(world.server, world.server.ldaps_uri, cert, key)
    assert printed_dn(done) == f"dn:{person_dn('Bob')}".lower()


def test_revoked_certificate_is_refused_at_once(world: World) -> None:
    server = world.server
    serial, cert, key = issue(world, "carol-tls", "tls-client", person_dn("Carol"))
    assert printed_dn(external(server, server.ldaps_uri, cert, key)) == \
        f"dn:{person_dn('Carol')}".lower()
    server.certdir("ca", "revoke", "--data-dir", str(server.data_dir), serial,
                   "--reason", "keyCompromise")
    done = external(server, server.ldaps_uri, cert, key)
    assert done.returncode == 49, done.stderr
    assert b"revoked" in done.stderr


def test_held_certificate_is_refused_until_released(world: World) -> None:
    server = world.server
    serial, cert, key = issue(world, "dave-tls", "tls-client", person_dn("Dave"))
    server.certdir("ca", "revoke", "--data-dir", str(server.data_dir), serial,
                   "--reason", "certificateHold")
    held = external(server, server.ldaps_uri, cert, key)
    assert held.returncode == 49, held.stderr
    assert b"on hold" in held.stderr
    server.certdir("ca", "release", "--data-dir", str(server.data_dir), serial)
    assert printed_dn(external(server, server.ldaps_uri, cert, key)) == \
        f"dn:{person_dn('Dave')}".lower()


def test_certificate_of_a_deleted_entry_is_refused(world: World) -> None:
    server = world.server
    _, cert, key = issue(world, "gina-tls", "tls-client", person_dn("Gina"))
    done = server.tool("ldapdelete", person_dn("Gina"))
    assert done.returncode == 0, done.stderr
    refused = external(server, server.ldaps_uri, cert, key)
    assert refused.returncode == 49, refused.stderr


def test_foreign_ca_certificate_is_ignored(world: World) -> None:
    tmp = world.tmp
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(tmp / "foreign-ca.key"),
                    "-out", str(tmp / "foreign-ca.pem"), "-days", "30", "-subj",
                    "/CN=Foreign CA"], check=True, capture_output=True)
    subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(tmp / "foreign.key"),
                    "-subj", "/CN=Alice/emailAddress=alice@example.com",
                    "-addext", "subjectAltName=email:alice@example.com",
                    "-out", str(tmp / "foreign.csr")], check=True, capture_output=True)
    subprocess.run(["openssl", "x509", "-req", "-in", str(tmp / "foreign.csr"), "-CA",
                    str(tmp / "foreign-ca.pem"), "-CAkey", str(tmp / "foreign-ca.key"),
                    "-days", "30", "-copy_extensions", "copy", "-out", str(tmp / "foreign.pem")],
                   check=True, capture_output=True)
    cert, key = tmp / "foreign.pem", tmp / "foreign.key"
    server = world.server
    anonymous = whoami(server, server.ldaps_uri, cert, key, "-x")
    assert anonymous.returncode == 0, anonymous.stderr
    assert anonymous.stdout.decode().strip() == "anonymous"
    assert ldap3_external(server, True, cert, key) == (48, "")
    # The same client with a certificate of the built-in CA: the one above was sent.
    _, trusted, trusted_key = issue(world, "alice-ldap3", "tls-client", person_dn("Alice"))
    code, identity = ldap3_external(server, True, trusted, trusted_key)
    assert (code, identity.lower()) == (0, f"dn:{person_dn('Alice')}".lower())


def test_no_certificate_is_inappropriate_authentication(world: World) -> None:
    assert ldap3_external(world.server, use_ssl=True) == (48, "")
    assert ldap3_external(world.server, use_ssl=False) == (48, "")


def test_partner_certificate_maps_by_mail(world: World) -> None:
    cert, key = partner_certificate(world, "erin-partner", "CN=Someone,O=Partner",
                                    email="erin@example.com")
    done = external(world.server, world.server.ldaps_uri, cert, key)
    assert printed_dn(done) == f"dn:{person_dn('Erin')}".lower()


def test_partner_certificate_maps_by_subject_rule(world: World) -> None:
    cert, key = partner_certificate(world, "frank-partner", "CN=Frank,OU=Staff,O=Partner")
    done = external(world.server, world.server.ldaps_uri, cert, key)
    assert printed_dn(done) == f"dn:{person_dn('Frank')}".lower()


def test_expired_certificate_is_refused(world: World) -> None:
    cert, key = partner_certificate(world, "erin-expired", "CN=Erin,O=Partner",
                                    email="erin@example.com", expired=True)
    done = external(world.server, world.server.ldaps_uri, cert, key)
    assert done.returncode == 49, done.stderr
    assert b"expired" in done.stderr


def test_server_certificate_does_not_authenticate(world: World) -> None:
    cert, key = partner_certificate(world, "erin-server", "CN=erin.example.com,O=Partner",
                                    email="erin@example.com",
                                    usage=ExtendedKeyUsageOID.SERVER_AUTH)
    done = external(world.server, world.server.ldaps_uri, cert, key)
    assert done.returncode == 49, done.stderr


def test_authzid_of_the_certificate_holder(world: World) -> None:
    _, cert, key = issue(world, "alice-authz", "tls-client", person_dn("Alice"))
    server = world.server
    own = external(server, server.ldaps_uri, cert, key, "-X", f"dn:{person_dn('Alice')}")
    assert printed_dn(own) == f"dn:{person_dn('Alice')}".lower()
    other = external(server, server.ldaps_uri, cert, key, "-X", f"dn:{person_dn('Bob')}")
    assert other.returncode == 50, other.stderr
