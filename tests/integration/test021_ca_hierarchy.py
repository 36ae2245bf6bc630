"""Scenario 021: a three-level hierarchy built across separate data directories.

1. root -> policy CA (pathLenConstraint 1) -> issuing CA, each in its own
   data directory; the root and the policy CA are never served (offline
   signing with `ca sign-sub`, RFC 5280 §4.2.1.9 path lengths checked).
2. An S/MIME certificate from the issuing CA passes `openssl verify
   -x509_strict -crl_check_all` with the chain and every level's CRL
   (RFC 5280 §6.3: each certificate on the path has its CRL).
3. pkilint's RFC 5280 linter finds no error in any CA certificate; the leaf
   passes the CA/B Forum S/MIME BR linter.
4. The issuing CA's public/chain.pem holds all three certificates, and
   `ca status` reports depth 2.
5. install-sub with another CA's answer is refused with one clear error line.
6. Path length (RFC 5280 §4.2.1.9): `ca sign-sub` refuses, with one error
   line naming the constraint and the CA and recording nothing, below the
   issuing CA (pathLenConstraint 0), a --path-length the policy CA's
   constraint does not allow, and below a "rogue" CA whose parent leaves no
   room. The rogue CA's certificate is built here with cryptography and the
   issuing CA's key, as a careless foreign parent would; a leaf it issues is
   refused by `openssl verify` (`path length constraint exceeded`) and by
   `certdir ca verify`, which names both CAs whose constraint it exceeds.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from tests.integration.conftest import SUFFIX, Server, database_rows, make_server
from tests.pki.lint import lint, openssl_verify

POLICY_NAME = f"cn=Example Policy CA,{SUFFIX}"
ISSUING_NAME = f"cn=Example Issuing CA,{SUFFIX}"
ROGUE_NAME = f"cn=Example Rogue CA,{SUFFIX}"
SLUGS = ("Example-Issuing-CA", "Example-Policy-CA", "Example-Root-CA")


@dataclass(frozen=True, slots=True)
class Hierarchy:
    root: Server
    policy: Server
    issuing: Server
    rogue: Server
    tmp: Path
    wrong_answer: subprocess.CompletedProcess[bytes]

    def public(self, server: Server, name: str) -> Path:
        return server.data_dir / "public" / name


def ca(server: Server, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    return server.certdir("ca", args[0], "--data-dir", str(server.data_dir), *args[1:],
                          check=check)


def public_base_url(server: Server) -> None:
    """A public name in the AIA/CDP URLs, as a deployment linted against the CA/Browser
    Forum requirements has (pkilint rejects internal names such as 127.0.0.1)."""
    server.configure("ca", base_url="http://pki.example.com")


@pytest.fixture(scope="module")
def hierarchy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hierarchy]:
    tmp = tmp_path_factory.mktemp("ca-hierarchy")
    root = make_server(tmp_path_factory.mktemp("root"), "--base-url", "http://pki.example.com")
    policy = make_server(tmp_path_factory.mktemp("policy"), "--no-ca")
    issuing = make_server(tmp_path_factory.mktemp("issuing"), "--no-ca")
    ca(policy, "request-sub", "--name", POLICY_NAME, "--out", str(tmp / "policy.csr"))
    public_base_url(policy)
    ca(root, "sign-sub", "--csr", str(tmp / "policy.csr"), "--path-length", "1",
       "--out", str(tmp / "policy.answer"))
    ca(policy, "install-sub", str(tmp / "policy.answer"))
    ca(issuing, "request-sub", "--name", ISSUING_NAME, "--key-type", "rsa3072",
       "--out", str(tmp / "issuing.csr"))
    public_base_url(issuing)
    ca(policy, "sign-sub", "--csr", str(tmp / "issuing.csr"), "--out",
       str(tmp / "issuing.answer"))
    wrong = ca(issuing, "install-sub", str(tmp / "policy.answer"), check=False)
    ca(issuing, "install-sub", str(tmp / "issuing.answer"))
    rogue = make_server(tmp_path_factory.mktemp("rogue"), "--no-ca")
    ca(rogue, "request-sub", "--name", ROGUE_NAME, "--out", str(tmp / "rogue.csr"))
    (tmp / "rogue.answer").write_bytes(sign_rogue(issuing, (tmp / "rogue.csr").read_bytes()))
    ca(rogue, "install-sub", str(tmp / "rogue.answer"))
    issuing.start()
    yield Hierarchy(root, policy, issuing, rogue, tmp, wrong)
    log = issuing.stop()
    assert "Traceback" not in log, log


def sign_rogue(parent: Server, csr_pem: bytes) -> bytes:
    """A CA certificate without pathLenConstraint below `parent`, signed with the
    parent's key directly (what `ca sign-sub` refuses to do), then the parent's chain."""
    key = serialization.load_pem_private_key(
        (parent.data_dir / "ca" / "key.pem").read_bytes(),
        (parent.data_dir / "secrets" / "ca-passphrase").read_bytes())
    assert isinstance(key, RSAPrivateKey)
    chain = x509.load_pem_x509_certificates((parent.data_dir / "ca" / "chain.pem").read_bytes())
    csr = x509.load_pem_x509_csr(csr_pem)
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(csr.subject).issuer_name(chain[0].subject)
        .public_key(csr.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                     key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, key_cert_sign=True, crl_sign=True,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(csr.public_key()),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
            chain[0].extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value),
            critical=False)
        .sign(key, hashes.SHA256()))
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (certificate, *chain))


def ca_certificate(hierarchy: Hierarchy, slug: str) -> x509.Certificate:
    path = hierarchy.public(hierarchy.issuing, f"{slug}.crt")
    return x509.load_der_x509_certificate(path.read_bytes())


def issue_smime(hierarchy: Hierarchy) -> Path:
    server, tmp = hierarchy.issuing, hierarchy.tmp
    dn = f"cn=Dora,{SUFFIX}"
    ldif = f"dn: {dn}\nobjectClass: inetOrgPerson\ncn: Dora\nsn: D\nmail: dora@example.com\n"
    added = server.tool("ldapadd", input=ldif.encode())
    assert added.returncode == 0, added.stderr
    subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(tmp / "dora.key"),
                    "-subj", "/CN=dora", "-out", str(tmp / "dora.csr")],
                   check=True, capture_output=True)
    serial = ca(server, "issue", "--csr", str(tmp / "dora.csr"), "--profile", "smime-user",
                "--entry", dn).stdout.decode().strip()
    shown = ca(server, "show", serial).stdout.decode()
    assert dn in shown
    [(der,)] = database_rows(server.data_dir, "SELECT der FROM ca_certificates WHERE serial = ?",
                             serial)
    leaf = tmp / "dora.pem"
    leaf.write_bytes(x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM))
    return leaf


def test_leaf_verifies_with_every_crl(hierarchy: Hierarchy) -> None:
    leaf = issue_smime(hierarchy)
    crls = hierarchy.tmp / "all.crl.pem"
    crls.write_bytes(b"".join(
        hierarchy.public(server, f"{slug}.crl.pem").read_bytes()
        for server, slug in zip((hierarchy.issuing, hierarchy.policy, hierarchy.root), SLUGS,
                                strict=True)))
    chain = tuple(hierarchy.public(hierarchy.issuing, f"{slug}.pem") for slug in SLUGS)
    code, output = openssl_verify(leaf, chain, crls)
    assert code == 0, output
    cert = x509.load_pem_x509_certificate(leaf.read_bytes())
    assert cert.issuer.rfc4514_string().lower() == ISSUING_NAME.lower()
    assert lint(cert, "smime") == []


@pytest.mark.parametrize("slug", SLUGS)
def test_ca_certificates_lint(hierarchy: Hierarchy, slug: str) -> None:
    assert lint(ca_certificate(hierarchy, slug), "rfc5280") == []


@pytest.mark.parametrize(("slug", "path_length"),
                         (("Example-Policy-CA", 1), ("Example-Issuing-CA", 0)))
def test_path_lengths(hierarchy: Hierarchy, slug: str, path_length: int) -> None:
    constraints = ca_certificate(hierarchy, slug).extensions \
        .get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca
    assert constraints.path_length == path_length


def test_chain_file_holds_all_three(hierarchy: Hierarchy) -> None:
    chain = x509.load_pem_x509_certificates(
        hierarchy.public(hierarchy.issuing, "chain.pem").read_bytes())
    subjects = {cert.subject.rfc4514_string().lower() for cert in chain}
    assert subjects == {ISSUING_NAME.lower(), POLICY_NAME.lower(),
                        f"cn=Example Root CA,{SUFFIX}".lower()}


def test_status_reports_depth_two(hierarchy: Hierarchy) -> None:
    assert "depth 2" in ca(hierarchy.issuing, "status").stdout.decode()


def test_wrong_answer_refused(hierarchy: Hierarchy) -> None:
    wrong = hierarchy.wrong_answer
    assert wrong.returncode == 1
    stderr = wrong.stderr.decode()
    assert stderr.startswith("certdir: error: ")
    assert stderr.count("\n") == 1
    assert "Traceback" not in stderr


def records(server: Server) -> tuple[int, int]:
    """How many certificates the CA recorded, and how many audit records exist."""
    [(certificates, audited)] = database_rows(
        server.data_dir,
        "SELECT (SELECT count(*) FROM ca_certificates), (SELECT count(*) FROM kms_audit)")
    return certificates, audited


def ca_csr(tmp: Path, name: str, *extra: str) -> Path:
    path = tmp / f"{name}.csr"
    subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(tmp / f"{name}.key"),
                    "-subj", f"/CN={name}", *extra, "-out", str(path)],
                   check=True, capture_output=True)
    return path


ISSUING_DN = "CN=Example Issuing CA,DC=example,DC=com"
POLICY_DN = "CN=Example Policy CA,DC=example,DC=com"
ROGUE_DN = "CN=Example Rogue CA,DC=example,DC=com"
SIGN_SUB_REFUSALS = (
    ("issuing", (), f"cannot sign a subordinate CA: {ISSUING_DN} has pathLenConstraint 0, "
     "so no CA may be signed below it (RFC 5280 §4.2.1.9)"),
    ("policy", ("--path-length", "1"), "cannot sign a subordinate CA with path length 1 "
     f"(--path-length): pathLenConstraint 1 of {POLICY_DN} allows at most 0 here "
     "(RFC 5280 §4.2.1.9)"),
    ("rogue", (), f"cannot sign a subordinate CA: {ISSUING_DN} has pathLenConstraint 0, "
     f"which leaves no room for a CA below {ROGUE_DN} (RFC 5280 §4.2.1.9)"),
)


@pytest.mark.parametrize(("signer", "extra", "says"), SIGN_SUB_REFUSALS)
def test_sign_sub_refuses_what_path_length_forbids(hierarchy: Hierarchy, signer: str,
                                                   extra: tuple[str, ...], says: str) -> None:
    server: Server = getattr(hierarchy, signer)
    before = records(server)
    out = hierarchy.tmp / f"refused-{signer}.answer"
    done = ca(server, "sign-sub", "--csr", str(ca_csr(hierarchy.tmp, f"below-{signer}")),
              *extra, "--out", str(out), check=False)
    assert (done.returncode, done.stderr.decode()) == (1, f"certdir: error: {says}\n")
    assert records(server) == before
    assert not out.exists()


def test_sign_sub_within_path_length_still_works(hierarchy: Hierarchy) -> None:
    out = hierarchy.tmp / "allowed.answer"
    ca(hierarchy.policy, "sign-sub", "--csr", str(ca_csr(hierarchy.tmp, "allowed")),
       "--path-length", "0", "--out", str(out))
    issued = x509.load_pem_x509_certificates(out.read_bytes())[0]
    assert issued.extensions.get_extension_for_class(x509.BasicConstraints).value \
        .path_length == 0


def test_leaf_below_rogue_fails_path_length_like_openssl(hierarchy: Hierarchy) -> None:
    rogue, tmp = hierarchy.rogue, hierarchy.tmp
    csr = ca_csr(tmp, "rogue-leaf", "-addext", "subjectAltName=DNS:rogue.example.com")
    serial = ca(rogue, "issue", "--csr", str(csr), "--profile", "tls-client") \
        .stdout.decode().strip()
    leaf = tmp / "rogue-leaf.pem"
    leaf.write_bytes(ca(rogue, "show", serial, "--pem").stdout)
    public = rogue.data_dir / "public"
    chain = (public / "Example-Rogue-CA.pem", *(public / f"{slug}.pem" for slug in SLUGS))
    code, output = openssl_verify(leaf, chain)
    assert code == 2, output
    assert "path length constraint exceeded" in output
    # The parents' CRLs next to the rogue's own, so revocation is no reason to refuse.
    for server, slug in zip((hierarchy.issuing, hierarchy.policy, hierarchy.root), SLUGS,
                            strict=True):
        shutil.copy(hierarchy.public(server, f"{slug}.crl"), public / f"{slug}.crl")
    checked = ca(rogue, "verify", str(leaf), check=False)
    lines = checked.stdout.decode().splitlines()
    assert checked.returncode == 1
    assert [line for line in lines if line.startswith("path length")] == [
        f"path length constraint exceeded: {name} has pathLenConstraint {limit}, and "
        f"{below} CA certificate(s) follow it on this path (RFC 5280 §6.1.4 (l), (m))"
        for name, limit, below in ((ISSUING_DN, 0, 1), (POLICY_DN, 1, 2))]
    assert [line.split(": ")[1].split(" (")[0] for line in lines
            if line.startswith("revocation")] == ["not revoked"] * 4
