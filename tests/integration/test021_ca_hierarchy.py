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
"""

from __future__ import annotations

import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.integration.conftest import SUFFIX, Server, make_server
from tests.pki.lint import lint, openssl_verify

POLICY_NAME = f"cn=Example Policy CA,{SUFFIX}"
ISSUING_NAME = f"cn=Example Issuing CA,{SUFFIX}"
SLUGS = ("Example-Issuing-CA", "Example-Policy-CA", "Example-Root-CA")


@dataclass(frozen=True, slots=True)
class Hierarchy:
    root: Server
    policy: Server
    issuing: Server
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
    path = server.data_dir / "certdir.yaml"
    settings = yaml.safe_load(path.read_text())
    settings["ca"]["base_url"] = "http://pki.example.com"
    path.write_text(yaml.safe_dump(settings, sort_keys=False))


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
    issuing.start()
    yield Hierarchy(root, policy, issuing, tmp, wrong)
    log = issuing.stop()
    assert "Traceback" not in log, log


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
    uri = f"file:{server.data_dir / 'certdir.db'}?mode=ro"
    with sqlite3.connect(uri, uri=True) as db:
        (der,) = db.execute("SELECT der FROM ca_certificates WHERE serial = ?",
                            (serial,)).fetchone()
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
