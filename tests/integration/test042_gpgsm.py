"""Scenario 042: a mail client validates what certdir issues (issue 9, part 7).

The mail client is gpgsm with dirmngr (GnuPG 2.2, the S/MIME engine of
KMail and Kleopatra), set up as a user would: a private GNUPGHOME whose
dirmngr.conf names certdir as its one LDAP server and nothing else, GnuPG's
defaults otherwise (CRLs checked, fetched from the certificate's CRL
distribution point; no OCSP, as in Kleopatra), the CA certificate imported
and trusted in trustlist.txt.

1. An RSA-2048 CA (`certdir ca init --key-type rsa2048`): gpgsm finds a
   person's S/MIME certificate by mail address over LDAP, imports it, and
   validates it with the CRL dirmngr fetches from the http:// distribution
   point certdir serves: good.
2. A message the person signs with `openssl smime -sign` verifies with
   `gpgsm --verify`: a good signature, fully trusted, CRL checked.
3. After `certdir ca revoke` (which publishes new CRLs) and dirmngr's
   FLUSHCRLS, gpgsm says the certificate has been revoked.
4. A P-256 CA (the default key type): found and imported the same way, but
   dirmngr before GnuPG 2.2.42 / 2.4.0 cannot verify an ECDSA-signed CRL
   (its finish_sig_check wraps every digest as PKCS#1 v1.5, which does not
   fit a 256-bit key: "Provided object is too short"), so validation fails
   with exactly that error while openssl verifies the same CRL.
5. The CRLs served carry no issuing distribution point (the critical
   extension dirmngr rejects), only the CRL number, the AKI and, on the
   delta, deltaCRLIndicator; `openssl verify -crl_check_all -use_deltas`
   with the full CRL from before a revocation and the delta from after it
   says revoked, with the full CRL alone OK.
"""

from __future__ import annotations

import re
import subprocess
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from tests.integration.conftest import SUFFIX, Server, make_server

CA_NAME = f"cn=Example Root CA,{SUFFIX}"
PEOPLE = ("alice", "bob")
GOOD = ["Note: non-critical certificate policy not allowed", "certificate is good"]
REVOKED = ["Note: non-critical certificate policy not allowed",
           "certificate has been revoked", "certificate is bad: Certificate revoked"]
ECDSA_CRL_UNCHECKED = ["Note: non-critical certificate policy not allowed",
                       "checking the CRL failed: Provided object is too short",
                       "certificate is bad: Provided object is too short"]
# dirmngr verifies ECDSA-signed CRLs from these versions on (gnupg commits
# 502d43ac3 and 1307081dc on STABLE-BRANCH-2-2, de87c8e1e and 868dabb40 in 2.4).
ECDSA_CRL_FIXED = (((2, 2, 42), (2, 3, 0)), ((2, 4, 0), (99, 0, 0)))


@dataclass(frozen=True, slots=True)
class GnuPG:
    """A private GNUPGHOME: gpgsm, its gpg-agent (trustlist.txt) and dirmngr."""
    home: Path

    def gpgsm(self, *args: str, input: bytes | None = None) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(["gpgsm", "--homedir", str(self.home), "--batch", *args],
                              input=input, capture_output=True, timeout=120, check=False)
        return subprocess.CompletedProcess(done.args, done.returncode,
                                           done.stdout.decode(errors="replace"),
                                           done.stderr.decode(errors="replace"))

    def validation(self, mail: str) -> list[str]:
        """The bracketed verdict lines of `gpgsm --with-validation --list-keys`."""
        done = self.gpgsm("--with-validation", "--list-keys", mail)
        return re.findall(r"^\s+\[(.*)\]$", done.stdout, re.MULTILINE)

    def flush_crls(self) -> None:
        done = self.gpgsm("--call-dirmngr", "flushcrls")
        assert done.returncode == 0, done.stderr

    def cached_crl_sources(self) -> list[str]:
        """Where each CRL in dirmngr's cache came from (LISTCRLS)."""
        done = self.gpgsm("--call-dirmngr", "listcrls")
        assert done.returncode == 0, done.stderr
        return re.findall(r"^Begin CRL dump \(retrieved via (.*)\)$", done.stdout, re.MULTILINE)

    def stop(self) -> None:
        subprocess.run(["gpgconf", "--homedir", str(self.home), "--kill", "all"],
                       capture_output=True, check=True, timeout=60)


def colon_fingerprint(certificate: x509.Certificate) -> str:
    return ":".join(f"{b:02X}" for b in certificate.fingerprint(hashes.SHA1()))


def mail_client(home: Path, server: Server) -> GnuPG:
    """GnuPG as a Kleopatra user configures it: one LDAP server (host, port,
    base DN), the CA certificate imported and marked trusted."""
    home.mkdir(mode=0o700)
    (home / "dirmngr.conf").write_text(f"ldapserver 127.0.0.1:{server.port}:::{SUFFIX}\n")
    ca = x509.load_pem_x509_certificate(server.ca_file.read_bytes())
    (home / "trustlist.txt").write_text(f"{colon_fingerprint(ca)} S\n")
    gnupg = GnuPG(home)
    done = gnupg.gpgsm("--import", str(server.ca_file))
    assert done.returncode == 0, done.stderr
    return gnupg


@dataclass(frozen=True, slots=True)
class World:
    server: Server
    gnupg: GnuPG
    tmp: Path
    serials: Mapping[str, int]


def person_ldif(uid: str) -> str:
    return (f"dn: uid={uid},{SUFFIX}\nobjectClass: inetOrgPerson\nuid: {uid}\n"
            f"cn: {uid.title()}\nsn: {uid.title()}\nmail: {uid}@example.com\n")


def issue(server: Server, tmp: Path, uid: str) -> int:
    subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(tmp / f"{uid}.key"),
                    "-subj", "/CN=x", "-out", str(tmp / f"{uid}.csr")],
                   check=True, capture_output=True)
    serial = server.certdir("ca", "issue", "--data-dir", str(server.data_dir),
                            "--csr", str(tmp / f"{uid}.csr"), "--profile", "smime-user",
                            "--entry", f"uid={uid},{SUFFIX}").stdout.decode().strip()
    shown = server.certdir("ca", "show", "--data-dir", str(server.data_dir), "--pem", serial)
    (tmp / f"{uid}.pem").write_bytes(shown.stdout)
    return int(serial, 16)


def world(tmp: Path, server: Server) -> Iterator[World]:
    server.start()
    done = server.tool("ldapadd", input="\n".join(map(person_ldif, PEOPLE)).encode())
    assert done.returncode == 0, done.stderr
    serials = {uid: issue(server, tmp, uid) for uid in PEOPLE}
    gnupg = mail_client(tmp / "gnupg", server)
    yield World(server, gnupg, tmp, serials)
    gnupg.stop()
    log = server.stop()
    assert "Traceback" not in log, log


@pytest.fixture(scope="module")
def rsa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("gpgsm-rsa")
    server = make_server(tmp, "--no-ca")
    server.certdir("ca", "init", "--data-dir", str(server.data_dir), "--name", CA_NAME,
                   "--key-type", "rsa2048")
    yield from world(tmp, server)


@pytest.fixture(scope="module")
def p256(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("gpgsm-p256")
    yield from world(tmp, make_server(tmp))


def fetch_over_ldap(gnupg: GnuPG, mail: str) -> list[int]:
    """Look the address up on the LDAP server and import what is found, as
    Kleopatra's "Lookup on Server" does; the serials found."""
    found = gnupg.gpgsm("--with-colons", "--list-external-keys", mail)
    assert found.returncode == 0, found.stderr
    records = [line.split(":") for line in found.stdout.splitlines()]
    fingerprints = [r[9] for r in records if r[0] == "fpr"]
    for fingerprint in fingerprints:
        exported = gnupg.gpgsm("--with-ephemeral-keys", "--armor", "--export", fingerprint)
        imported = gnupg.gpgsm("--import", input=exported.stdout.encode())
        assert imported.returncode == 0, imported.stderr
    return [int(r[7], 16) for r in records if r[0] == "crt"]


def test_rsa_certificate_found_over_ldap_and_good_with_its_crl(rsa: World) -> None:
    assert fetch_over_ldap(rsa.gnupg, "alice@example.com") == [rsa.serials["alice"]]
    assert rsa.gnupg.validation("alice@example.com") == GOOD
    assert rsa.gnupg.cached_crl_sources() == [f"{rsa.server.http_url}/Example-Root-CA.crl"]


def test_rsa_signed_message_verifies(rsa: World) -> None:
    message = rsa.tmp / "message.txt"
    message.write_text("Meet me at the tea party.\n")
    signed = rsa.tmp / "message.p7s"
    subprocess.run(["openssl", "smime", "-sign", "-binary", "-in", str(message),
                    "-signer", str(rsa.tmp / "alice.pem"), "-inkey", str(rsa.tmp / "alice.key"),
                    "-outform", "DER", "-out", str(signed)], check=True, capture_output=True)
    done = rsa.gnupg.gpgsm("--status-fd", "1", "--verify", str(signed), str(message))
    assert done.returncode == 0, done.stderr
    status = [line.split()[1] for line in done.stdout.splitlines()
              if line.startswith("[GNUPG:] ")]
    assert [s for s in status if s in {"GOODSIG", "BADSIG", "ERRSIG", "TRUST_FULLY",
                                       "TRUST_UNDEFINED", "TRUST_NEVER"}] == [
        "GOODSIG", "TRUST_FULLY"], done.stdout + done.stderr


def test_rsa_revoked_after_ca_revoke(rsa: World) -> None:
    gnupg, server = rsa.gnupg, rsa.server
    assert fetch_over_ldap(gnupg, "bob@example.com") == [rsa.serials["bob"]]
    assert gnupg.validation("bob@example.com") == GOOD
    server.certdir("ca", "revoke", "--data-dir", str(server.data_dir),
                   f"{rsa.serials['bob']:x}", "--reason", "keyCompromise")
    gnupg.flush_crls()
    assert gnupg.validation("bob@example.com") == REVOKED


def download(server: Server, name: str) -> bytes:
    with urllib.request.urlopen(f"{server.http_url}/{name}", timeout=30) as answer:
        body: bytes = answer.read()
        return body


def extensions(crl: bytes) -> list[tuple[str, bool]]:
    return [(e.oid.dotted_string, e.critical) for e in x509.load_der_x509_crl(crl).extensions]


def openssl_verify(world: World, uid: str, *crls: bytes) -> tuple[int, list[str]]:
    files = []
    for n, crl in enumerate(crls):
        files += ["-CRLfile", str(world.tmp / f"{uid}-{n}.crl")]
        (world.tmp / f"{uid}-{n}.crl").write_bytes(
            x509.load_der_x509_crl(crl).public_bytes(serialization.Encoding.PEM))
    done = subprocess.run(["openssl", "verify", "-crl_check_all", "-use_deltas", "-CAfile",
                           str(world.server.ca_file), *files, str(world.tmp / f"{uid}.pem")],
                          capture_output=True, text=True, check=False)
    return done.returncode, (done.stdout + done.stderr).splitlines()


def test_crls_carry_no_idp_and_full_and_delta_combine(p256: World) -> None:
    server = p256.server
    full = download(server, "Example-Root-CA.crl")
    number, aki, delta_indicator = ("2.5.29.20", False), ("2.5.29.35", False), ("2.5.29.27", True)
    assert extensions(full) == [number, aki]
    server.certdir("ca", "revoke", "--data-dir", str(server.data_dir),
                   f"{p256.serials['bob']:x}", "--reason", "keyCompromise")
    delta = download(server, "Example-Root-CA-delta.crl")
    assert extensions(delta) == [number, aki, delta_indicator]
    leaf = p256.tmp / "bob.pem"
    assert openssl_verify(p256, "bob", full) == (0, [f"{leaf}: OK"])
    assert openssl_verify(p256, "bob", full, delta) == (2, [
        "CN = bob@example.com", "error 23 at 0 depth lookup: certificate revoked",
        f"error {leaf}: verification failed"])


def dirmngr_version() -> tuple[int, ...]:
    done = subprocess.run(["dirmngr", "--version"], capture_output=True, text=True,
                          check=True, timeout=30)
    match = re.search(r"\(GnuPG\) (\d+)\.(\d+)\.(\d+)", done.stdout)
    assert match is not None, done.stdout
    return tuple(int(part) for part in match.groups())


def test_p256_certificate_found_but_dirmngr_cannot_check_an_ecdsa_crl(p256: World) -> None:
    assert fetch_over_ldap(p256.gnupg, "alice@example.com") == [p256.serials["alice"]]
    version = dirmngr_version()
    fixed = any(low <= version < high for low, high in ECDSA_CRL_FIXED)
    assert p256.gnupg.validation("alice@example.com") == (GOOD if fixed else ECDSA_CRL_UNCHECKED)
    assert len(p256.gnupg.cached_crl_sources()) == (1 if fixed else 0)
    with urllib.request.urlopen(f"{p256.server.http_url}/Example-Root-CA.crl",
                                timeout=30) as answer:
        crl = answer.read()
    done = subprocess.run(["openssl", "crl", "-inform", "DER", "-noout", "-CAfile",
                           str(p256.server.ca_file)], input=crl, capture_output=True,
                          check=False)
    assert (done.returncode, done.stderr.strip()) == (0, b"verify OK")
