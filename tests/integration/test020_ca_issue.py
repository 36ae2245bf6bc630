"""Scenario 020: the CA issues into the directory, revokes out of it, and signs CRLs.

1. A smime-user certificate for an entry added with ldapadd (request made
   with `openssl req`) is returned by ldapsearch as userCertificate;binary,
   the entry gains objectClass pkiUser (RFC 4523 §3.3), the RFC 4523 §2.1
   certificateExactMatch assertion finds the holder, `ca show` prints the
   holder's DN; public/chain.pem with the public CRL file verifies it.
2. Every profile with every request key it allows (RSA-2048, P-256, P-384,
   Ed25519) gives a certificate `openssl verify -x509_strict -crl_check_all`
   accepts against public/ca.pem and the published CRL, with pkilint
   (CA/B Forum S/MIME BR for S/MIME profiles, RFC 5280 otherwise) reporting
   no error; smime-encryption refuses Ed25519 (a signature-only key).
3. Issued certificates carry AKI/SKI, AIA and CRL distribution points naming
   an HTTP URL and the ldap:// URL of the CA entry (issue 4, part 2), and a
   159-bit random positive serial.
4. Revocation (RFC 5280 §5.3.1 reasons): the certificate leaves the holder's
   userCertificate;binary and userSMIMECertificate, the RFC 4523 assertion
   no longer finds the holder, the CRL read over LDAP from the CA entry (and
   the public/ file) lists the serial with its reason, `openssl verify` with
   it says "certificate revoked" and `ca verify` says REVOKED; the delta CRL
   carries deltaCRLIndicator (RFC 5280 §5.2.4); both CRLs pass pkilint's CRL
   linter.
5. certificateHold then `ca release` puts the certificate back on the entry.
6. A certificate from another CA already on the entry survives issue and
   revoke untouched.
7. The CA entry (RFC 4523 §3.2 pkiCA, §3.4 cRLDistributionPoint) holds the
   CA certificate (same as public/) and the full, authority and delta CRLs,
   each signed by that certificate's key.
8. The directory's own TLS certificate verifies with public/ca.pem under
   LDAPTLS_REQCERT=demand, over StartTLS (-ZZ) and ldaps://.
"""

from __future__ import annotations

import base64
import datetime
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import ExtensionOID, NameOID

from tests.integration.conftest import SUFFIX, Server, make_server
from tests.integration.ldif_compare import by_dn
from tests.pki.lint import lint, openssl_verify

CA_NAME = "cn=Example Root CA,dc=example,dc=com"
CA_ENTRY = f"cn=Example Root CA,cn=CAs,cn=PKI,{SUFFIX}"
LINT_CRL = Path(sys.executable).parent / "lint_crl"

REQUEST_KEYS: dict[str, tuple[str, ...]] = {
    "rsa2048": ("-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"),
    "p256": ("-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"),
    "p384": ("-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"),
    "ed25519": ("-algorithm", "ED25519"),
}
SMIME_PROFILES = frozenset({"smime-user", "smime-signing", "smime-encryption"})
PROFILES = ("smime-user", "smime-signing", "smime-encryption", "tls-server", "tls-client",
            "ocsp-signing")
REFUSED = frozenset({("smime-encryption", "ed25519")})


@dataclass(frozen=True, slots=True)
class World:
    server: Server
    tmp: Path


PEOPLE = ("Alice", "Finder", "Ext", "Revoked", "Held", "Foreign",
          *(f"{profile}-{key}" for profile in sorted(SMIME_PROFILES) for key in REQUEST_KEYS))


def person_dn(cn: str) -> str:
    return f"cn={cn},{SUFFIX}"


def person_ldif(cn: str) -> str:
    return (f"dn: {person_dn(cn)}\nobjectClass: inetOrgPerson\ncn: {cn}\nsn: {cn}\n"
            f"mail: {cn.lower()}@example.com\n")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One server whose people are added with one ldapadd (a bind costs an Argon2
    verification), and one request key per type, reused by every request."""
    tmp = tmp_path_factory.mktemp("ca-issue")
    for key, args in REQUEST_KEYS.items():
        subprocess.run(["openssl", "genpkey", *args, "-out", str(tmp / f"{key}.key")],
                       check=True, capture_output=True)
    # A public name in the AIA/CDP URLs, as a deployment linted against the CA/Browser
    # Forum requirements has (pkilint rejects internal names such as 127.0.0.1).
    srv = make_server(tmp, "--base-url", "http://pki.example.com")
    srv.start()
    done = srv.tool("ldapadd", input="\n".join(map(person_ldif, PEOPLE)).encode())
    assert done.returncode == 0, done.stderr
    yield World(srv, tmp)
    log = srv.stop()
    assert "Traceback" not in log, log


def make_csr(tmp: Path, name: str, key: str = "p256") -> Path:
    csr = tmp / f"{name}.csr"
    subprocess.run(["openssl", "req", "-new", "-key", str(tmp / f"{key}.key"),
                    "-subj", f"/CN={name}", "-addext", f"subjectAltName=DNS:{name}.example.com",
                    "-out", str(csr)], check=True, capture_output=True)
    return csr


def issue(server: Server, csr: Path, profile: str, entry: str | None = None) -> str:
    args = ["ca", "issue", "--data-dir", str(server.data_dir), "--csr", str(csr),
            "--profile", profile]
    if entry is not None:
        args += ["--entry", entry]
    return server.certdir(*args).stdout.decode().strip()


def ldap_values(server: Server, dn: str, attribute: str) -> list[bytes]:
    done = server.tool("ldapsearch", "-LLL", "-b", dn, "-s", "base", "(objectClass=*)",
                       attribute, bind=False)
    assert done.returncode == 0, done.stderr
    record = by_dn(done.stdout)[dn.lower()]
    return [base64.b64decode(value[2:]) if value.startswith("::") else value.encode()
            for value in record.values(attribute.lower())]


def entry_serials(server: Server, dn: str) -> set[int]:
    return {x509.load_der_x509_certificate(der).serial_number
            for der in ldap_values(server, dn, "userCertificate;binary")}


def stored_certificate(server: Server, serial: str) -> x509.Certificate:
    shown = server.certdir("ca", "show", "--data-dir", str(server.data_dir), "--pem", serial)
    return x509.load_pem_x509_certificate(shown.stdout)


def crl_from_ldap(server: Server, attribute: str) -> x509.CertificateRevocationList:
    (der,) = ldap_values(server, CA_ENTRY, attribute)
    return x509.load_der_x509_crl(der)


def write_pem(path: Path, item: x509.Certificate | x509.CertificateRevocationList) -> Path:
    path.write_bytes(item.public_bytes(serialization.Encoding.PEM))
    return path


def verify(world: World, cert: x509.Certificate, crl: x509.CertificateRevocationList,
           name: str) -> tuple[int, str]:
    leaf = write_pem(world.tmp / f"{name}.pem", cert)
    crl_file = write_pem(world.tmp / f"{name}.crl.pem", crl)
    return openssl_verify(leaf, (world.server.ca_file,), crl_file)


def test_issue_publishes_to_the_entry(world: World) -> None:
    server = world.server
    dn = person_dn("Alice")
    serial = issue(server, make_csr(world.tmp, "alice"), "smime-user", dn)
    assert int(serial, 16) in entry_serials(server, dn)
    classes = {v.decode().lower() for v in ldap_values(server, dn, "objectClass")}
    assert "pkiuser" in classes
    (smime,) = ldap_values(server, dn, "userSMIMECertificate")
    assert [c.serial_number for c in pkcs7.load_der_pkcs7_certificates(smime)] == [
        int(serial, 16)]


def holders(server: Server, serial: str) -> list[str]:
    assertion = f'(userCertificate={{serialNumber {int(serial, 16)}, issuer "{CA_NAME}"}})'
    done = server.tool("ldapsearch", "-LLL", "-b", SUFFIX, assertion, "1.1", bind=False)
    assert done.returncode == 0, done.stderr
    return list(by_dn(done.stdout))


def ca_verify(server: Server, pem: Path) -> subprocess.CompletedProcess[bytes]:
    return server.certdir("ca", "verify", "--data-dir", str(server.data_dir), str(pem),
                          check=False)


def test_rfc4523_assertion_finds_the_holder(world: World) -> None:
    server = world.server
    dn = person_dn("Finder")
    serial = issue(server, make_csr(world.tmp, "finder"), "smime-signing", dn)
    assert holders(server, serial) == [dn.lower()]
    shown = server.certdir("ca", "show", "--data-dir", str(server.data_dir), serial)
    assert dn in shown.stdout.decode()


def test_public_chain_and_crl_files_verify(world: World) -> None:
    server = world.server
    public = server.data_dir / "public"
    leaf = write_pem(world.tmp / "public.pem", stored_certificate(
        server, issue(server, make_csr(world.tmp, "public"), "smime-user", person_dn("Alice"))))
    code, output = openssl_verify(leaf, (public / "chain.pem",),
                                  public / "Example-Root-CA.crl.pem")
    assert code == 0, output
    assert x509.load_der_x509_crl((public / "Example-Root-CA.crl").read_bytes()) == \
        x509.load_pem_x509_crl((public / "Example-Root-CA.crl.pem").read_bytes())
    checked = ca_verify(server, leaf)
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize("key", tuple(REQUEST_KEYS))
@pytest.mark.parametrize("profile", PROFILES)
def test_every_profile_verifies_and_lints(world: World, profile: str, key: str) -> None:
    server = world.server
    name = f"{profile}-{key}"
    csr = make_csr(world.tmp, name, key)
    entry = person_dn(name) if profile in SMIME_PROFILES else None
    if (profile, key) in REFUSED:
        done = server.certdir("ca", "issue", "--data-dir", str(server.data_dir), "--csr",
                              str(csr), "--profile", profile, "--entry", person_dn(name),
                              check=False)
        assert done.returncode == 1
        assert done.stderr.decode().startswith("certdir: error: ")
        return
    serial = issue(server, csr, profile, entry)
    cert = stored_certificate(server, serial)
    code, output = verify(world, cert, crl_from_ldap(server, "certificateRevocationList;binary"),
                          name)
    assert code == 0, output
    assert lint(cert, "smime" if profile in SMIME_PROFILES else "rfc5280") == []


@pytest.mark.parametrize("profile, schemes", [
    # The S/MIME BR (§7.1.2.3 b) allow only http:// distribution points.
    ("smime-user", {"http"}),
    ("tls-client", {"http", "ldap"}),
])
def test_certificate_extensions_and_serial(world: World, profile: str,
                                           schemes: set[str]) -> None:
    server = world.server
    dn = person_dn("Ext")
    serial = issue(server, make_csr(world.tmp, "ext"), profile,
                   dn if profile.startswith("smime") else None)
    cert = stored_certificate(server, serial)
    assert 0 < cert.serial_number < 2**159
    for oid in (ExtensionOID.AUTHORITY_KEY_IDENTIFIER, ExtensionOID.SUBJECT_KEY_IDENTIFIER,
                ExtensionOID.AUTHORITY_INFORMATION_ACCESS):
        cert.extensions.get_extension_for_oid(oid)
    points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    uris = [name.value for point in points for name in point.full_name or ()
            if isinstance(name, x509.UniformResourceIdentifier)]
    assert {uri.split(":", 1)[0] for uri in uris} == schemes, uris
    assert all("cn=CAs,cn=PKI" in uri for uri in uris if uri.startswith("ldap://")), uris


def test_revoke_removes_and_lists(world: World) -> None:
    server = world.server
    dn = person_dn("Revoked")
    serial = issue(server, make_csr(world.tmp, "revoked"), "smime-user", dn)
    cert = stored_certificate(server, serial)
    server.certdir("ca", "revoke", "--data-dir", str(server.data_dir), serial,
                   "--reason", "keyCompromise")
    assert int(serial, 16) not in entry_serials(server, dn)
    assert ldap_values(server, dn, "userSMIMECertificate") == []
    crl = crl_from_ldap(server, "certificateRevocationList;binary")
    revoked = crl.get_revoked_certificate_by_serial_number(int(serial, 16))
    assert revoked is not None
    reason = revoked.extensions.get_extension_for_class(x509.CRLReason).value.reason
    assert reason == x509.ReasonFlags.key_compromise
    code, output = verify(world, cert, crl, "revoked")
    assert code == 2
    assert "certificate revoked" in output
    assert holders(server, serial) == []
    public_crl = x509.load_der_x509_crl(
        (server.data_dir / "public" / "Example-Root-CA.crl").read_bytes())
    assert public_crl.get_revoked_certificate_by_serial_number(int(serial, 16)) is not None
    checked = ca_verify(server, world.tmp / "revoked.pem")
    assert checked.returncode == 1
    assert "REVOKED" in checked.stdout.decode()


def test_delta_crl_and_crl_lint(world: World) -> None:
    server = world.server
    server.certdir("ca", "crl", "--data-dir", str(server.data_dir))
    full = crl_from_ldap(server, "certificateRevocationList;binary")
    delta = crl_from_ldap(server, "deltaRevocationList;binary")
    indicator = delta.extensions.get_extension_for_class(x509.DeltaCRLIndicator).value
    number = full.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    assert indicator.crl_number <= number
    for name, crl in (("full", full), ("delta", delta)):
        path = world.tmp / f"lint-{name}.crl"
        path.write_bytes(crl.public_bytes(serialization.Encoding.DER))
        done = subprocess.run([str(LINT_CRL), "lint", "-t", "CRL", "-p", "PKIX", "-s", "ERROR",
                               "--document-format", "DER", str(path)],
                              capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stdout + done.stderr


def test_hold_and_release(world: World) -> None:
    server = world.server
    dn = person_dn("Held")
    serial = issue(server, make_csr(world.tmp, "held"), "smime-user", dn)
    server.certdir("ca", "revoke", "--data-dir", str(server.data_dir), serial,
                   "--reason", "certificateHold")
    assert int(serial, 16) not in entry_serials(server, dn)
    revoked = crl_from_ldap(server, "certificateRevocationList;binary") \
        .get_revoked_certificate_by_serial_number(int(serial, 16))
    assert revoked is not None
    assert revoked.extensions.get_extension_for_class(x509.CRLReason).value.reason == \
        x509.ReasonFlags.certificate_hold
    server.certdir("ca", "release", "--data-dir", str(server.data_dir), serial)
    assert int(serial, 16) in entry_serials(server, dn)
    server.certdir("ca", "crl", "--data-dir", str(server.data_dir))
    crl = crl_from_ldap(server, "certificateRevocationList;binary")
    assert crl.get_revoked_certificate_by_serial_number(int(serial, 16)) is None


def foreign_certificate(common_name: str) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=30))
            .sign(key, hashes.SHA256()))


def test_foreign_certificate_untouched(world: World) -> None:
    server = world.server
    dn = person_dn("Foreign")
    other = foreign_certificate("Other CA")
    der = other.public_bytes(serialization.Encoding.DER)
    ldif = (f"dn: {dn}\nchangetype: modify\nadd: userCertificate;binary\n"
            f"userCertificate;binary:: {base64.b64encode(der).decode()}\n")
    done = server.tool("ldapmodify", input=ldif.encode())
    assert done.returncode == 0, done.stderr
    serial = issue(server, make_csr(world.tmp, "foreign"), "smime-user", dn)
    assert entry_serials(server, dn) == {other.serial_number, int(serial, 16)}
    server.certdir("ca", "revoke", "--data-dir", str(server.data_dir), serial,
                   "--reason", "superseded")
    assert ldap_values(server, dn, "userCertificate;binary") == [der]


@pytest.mark.parametrize("how", ("starttls", "ldaps"))
def test_directory_tls_certificate_verifies(world: World, how: str) -> None:
    server = world.server
    env = {**server.env(), "LDAPTLS_CACERT": str(server.ca_file), "LDAPTLS_REQCERT": "demand"}
    uri, extra = (server.uri, ["-ZZ"]) if how == "starttls" else (server.ldaps_uri, [])
    done = subprocess.run(["ldapsearch", "-H", uri, *extra, "-x", "-LLL", "-b", SUFFIX, "-s",
                           "base", "(objectClass=*)", "1.1"],
                          capture_output=True, env=env, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert f"dn: {SUFFIX}" in done.stdout.decode()


def test_ca_entry_holds_certificate_and_crls(world: World) -> None:
    server = world.server
    classes = {v.decode().lower() for v in ldap_values(server, CA_ENTRY, "objectClass")}
    assert {"pkica", "crldistributionpoint"} <= classes
    (ca_der,) = ldap_values(server, CA_ENTRY, "cACertificate;binary")
    assert ca_der == (server.data_dir / "public" / "Example-Root-CA.crt").read_bytes()
    ca_cert = x509.load_der_x509_certificate(ca_der)
    for attribute in ("certificateRevocationList;binary", "authorityRevocationList;binary",
                      "deltaRevocationList;binary"):
        crl = crl_from_ldap(server, attribute)
        assert crl.is_signature_valid(ca_cert.public_key()), attribute  # type: ignore[arg-type]
