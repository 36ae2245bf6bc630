"""Scenario 041: CA certificates and CRLs over HTTP, at the URLs certificates name.

A two-level hierarchy: an offline root (its `ca.base_url` is the issuing
CA's web service, so the URLs in the issuing CA's certificate answer there)
and an issuing CA that serves. curl fetches, openssl parses.

1. Every CA of the chain as `.crt` (DER), `.pem`, `.p7c` (certs-only
   PKCS#7 of the CA and those above it) and `chain.pem`; the issuing CA's
   full and delta CRLs as `.crl` (DER) and `.crl.pem`; each parses with
   openssl and has its content type (RFC 2585 §4.1).
2. A strong ETag with If-None-Match, and Last-Modified with
   If-Modified-Since, answer 304; HEAD gives the headers and no body;
   Cache-Control max-age ends no later than the CRL's nextUpdate.
3. `certdir ca revoke SERIAL` from another process: the next download of
   the CRL lists the serial (served from the database, not a file).
4. Plain http serves them (no redirect, RFC 5280 §4.2.1.13); traversal
   attempts are 404 on https; POST is 405 with Allow.
5. The AIA caIssuers, CRL distribution point and Freshest CRL URLs of an
   issued certificate and of the issuing CA's own certificate all answer
   200: the root's CRLs, installed with `certdir ca install-crl`, are served
   at the root's `.crl` and `-delta.crl` and published into the root's
   directory entry, and `ca verify` then checks the whole path; an older,
   the CA's own or a non-CRL file is refused.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509

from tests.integration.conftest import SUFFIX, Server, make_server

ISSUING = "Example-Issuing-CA"
ROOT = "Example-Root-CA"
ISSUING_NAME = f"cn=Example Issuing CA,{SUFFIX}"
ROOT_ENTRY = f"cn=Example Root CA,cn=CAs,cn=PKI,{SUFFIX}"
PERSON = f"cn=Erin,{SUFFIX}"


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class Site:
    issuing: Server
    root: Server
    tmp: Path
    leaf: Path
    leaf_serial: str
    root_install: subprocess.CompletedProcess[bytes]


def ca(server: Server, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    return server.certdir("ca", args[0], "--data-dir", str(server.data_dir), *args[1:],
                          check=check)


def fetch(url: str, *options: str, server: Server | None = None) -> Answer:
    """curl, not following redirects; `server` gives the CA file for https."""
    trust = ["--cacert", str(server.ca_file)] if server is not None else []
    done = subprocess.run(["curl", "-sS", "--path-as-is", "-i", *trust, *options, url],
                          capture_output=True, check=True, timeout=30)
    head, _, body = done.stdout.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip()
               for name, _, value in (line.partition(":") for line in lines)}
    return Answer(int(status_line.split()[1]), headers, body)


def openssl(*args: str, data: bytes) -> str:
    done = subprocess.run(["openssl", *args], input=data, capture_output=True, check=True)
    return done.stdout.decode()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("downloads")
    issuing = make_server(tmp_path_factory.mktemp("issuing"), "--no-ca")
    root = make_server(tmp_path_factory.mktemp("root"), "--base-url", issuing.http_url)
    ca(issuing, "request-sub", "--name", ISSUING_NAME, "--out", str(tmp / "issuing.csr"))
    ca(root, "sign-sub", "--csr", str(tmp / "issuing.csr"), "--out",
       str(tmp / "issuing.answer"))
    ca(issuing, "install-sub", str(tmp / "issuing.answer"))
    root_install = ca(issuing, "install-crl", str(root.data_dir / "public" / f"{ROOT}.crl"))
    issuing.start()
    ldif = f"dn: {PERSON}\nobjectClass: inetOrgPerson\ncn: Erin\nsn: E\nmail: erin@example.com\n"
    added = issuing.tool("ldapadd", input=ldif.encode())
    assert added.returncode == 0, added.stderr
    subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(tmp / "erin.key"),
                    "-subj", "/CN=erin", "-out", str(tmp / "erin.csr")],
                   check=True, capture_output=True)
    serial = ca(issuing, "issue", "--csr", str(tmp / "erin.csr"), "--profile", "smime-user",
                "--entry", PERSON).stdout.decode().strip()
    leaf = tmp / "erin.pem"
    leaf.write_bytes(ca(issuing, "show", serial, "--pem").stdout)
    yield Site(issuing, root, tmp, leaf, serial, root_install)
    log = issuing.stop()
    assert "Traceback" not in log, log


def url(site: Site, name: str) -> str:
    return f"{site.issuing.http_url}/{name}"


# --- 1. formats -------------------------------------------------------------------------

PARSERS = [
    # (name, openssl command reading the body, text its output holds)
    (f"{ISSUING}.crt", ("x509", "-inform", "DER", "-noout", "-subject"), "Example Issuing CA"),
    (f"{ROOT}.crt", ("x509", "-inform", "DER", "-noout", "-subject"), "Example Root CA"),
    (f"{ISSUING}.pem", ("x509", "-noout", "-subject"), "Example Issuing CA"),
    (f"{ROOT}.pem", ("x509", "-noout", "-subject"), "Example Root CA"),
    (f"{ISSUING}.crl", ("crl", "-inform", "DER", "-noout", "-issuer"), "Example Issuing CA"),
    (f"{ISSUING}-delta.crl", ("crl", "-inform", "DER", "-noout", "-text"), "Delta CRL Indicator"),
    (f"{ISSUING}.crl.pem", ("crl", "-noout", "-issuer"), "Example Issuing CA"),
    (f"{ROOT}.crl", ("crl", "-inform", "DER", "-noout", "-issuer"), "Example Root CA"),
]


@pytest.mark.parametrize(("name", "command", "expected"), PARSERS, ids=[p[0] for p in PARSERS])
def test_each_format_parses(site: Site, name: str, command: tuple[str, ...],
                            expected: str) -> None:
    answer = fetch(url(site, name))
    assert answer.status == 200
    assert expected in openssl(*command, data=answer.body)


@pytest.mark.parametrize(("name", "count"), ((f"{ISSUING}.p7c", 2), (f"{ROOT}.p7c", 1)))
def test_p7c_holds_the_ca_and_those_above(site: Site, name: str, count: int) -> None:
    body = fetch(url(site, name)).body
    printed = openssl("pkcs7", "-inform", "DER", "-print_certs", "-noout", data=body)
    assert printed.count("subject=") == count


def test_chain_pem_holds_both(site: Site) -> None:
    chain = x509.load_pem_x509_certificates(fetch(url(site, "chain.pem")).body)
    assert [c.subject.rfc4514_string() for c in chain] == [
        "CN=Example Issuing CA,DC=example,DC=com", "CN=Example Root CA,DC=example,DC=com"]


CONTENT_TYPES = [
    (f"{ISSUING}.crt", "application/pkix-cert"),
    (f"{ISSUING}.pem", "application/x-pem-file"),
    (f"{ISSUING}.p7c", "application/pkcs7-mime"),
    ("chain.pem", "application/x-pem-file"),
    (f"{ISSUING}.crl", "application/pkix-crl"),
    (f"{ISSUING}-delta.crl", "application/pkix-crl"),
    (f"{ISSUING}.crl.pem", "application/x-pem-file"),
]


@pytest.mark.parametrize(("name", "content_type"), CONTENT_TYPES,
                         ids=[c[0] for c in CONTENT_TYPES])
def test_content_types(site: Site, name: str, content_type: str) -> None:
    assert fetch(url(site, name)).headers["content-type"] == content_type


# --- 2. caching -------------------------------------------------------------------------

@pytest.mark.parametrize("name", (f"{ISSUING}.crt", f"{ISSUING}.crl"))
def test_if_none_match_gives_304(site: Site, name: str) -> None:
    etag = fetch(url(site, name)).headers["etag"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag)
    again = fetch(url(site, name), "-H", f"If-None-Match: {etag}")
    assert (again.status, again.body) == (304, b"")


@pytest.mark.parametrize("name", (f"{ISSUING}.crt", f"{ISSUING}.crl"))
def test_if_modified_since_gives_304(site: Site, name: str) -> None:
    modified = fetch(url(site, name)).headers["last-modified"]
    assert fetch(url(site, name), "-H", f"If-Modified-Since: {modified}").status == 304


def test_older_if_modified_since_gives_the_body(site: Site) -> None:
    first = fetch(url(site, f"{ISSUING}.crl"))
    assert fetch(url(site, f"{ISSUING}.crl"), "-H",
                 "If-Modified-Since: Mon, 01 Jan 2001 00:00:00 GMT").body == first.body


def test_last_modified_is_this_update(site: Site) -> None:
    answer = fetch(url(site, f"{ISSUING}.crl"))
    crl = x509.load_der_x509_crl(answer.body)
    assert email.utils.parsedate_to_datetime(answer.headers["last-modified"]) == \
        crl.last_update_utc


def test_head_gives_headers_without_body(site: Site) -> None:
    full = fetch(url(site, f"{ISSUING}.crl"))
    head = fetch(url(site, f"{ISSUING}.crl"), "-I")
    assert (head.status, head.body, head.headers["content-length"], head.headers["etag"]) == (
        200, b"", str(len(full.body)), full.headers["etag"])


def test_max_age_ends_by_next_update(site: Site) -> None:
    # The time left as of before the request: the server's answer, a moment
    # later, can only leave less.
    asked = dt.datetime.now(dt.UTC)
    answer = fetch(url(site, f"{ISSUING}.crl"))
    crl = x509.load_der_x509_crl(answer.body)
    assert crl.next_update_utc is not None
    left = (crl.next_update_utc - asked).total_seconds()
    match = re.fullmatch(r"public, max-age=(\d+)", answer.headers["cache-control"])
    assert match is not None
    assert 0 < int(match.group(1)) <= left


# --- 3. revocation by another process ------------------------------------------------------

def test_revoke_on_the_cli_is_served_at_once(site: Site) -> None:
    subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(site.tmp / "r.key"),
                    "-subj", "/CN=r", "-out", str(site.tmp / "r.csr")],
                   check=True, capture_output=True)
    serial = ca(site.issuing, "issue", "--csr", str(site.tmp / "r.csr"), "--profile",
                "smime-user", "--entry", PERSON).stdout.decode().strip()
    ca(site.issuing, "revoke", serial, "--reason", "keyCompromise")
    for name in (f"{ISSUING}.crl", f"{ISSUING}-delta.crl"):
        crl = x509.load_der_x509_crl(fetch(url(site, name)).body)
        revoked = crl.get_revoked_certificate_by_serial_number(int(serial, 16))
        assert revoked is not None, name


# --- 4. plain http, traversal, methods -----------------------------------------------------

def test_plain_http_serves_without_redirect(site: Site) -> None:
    answer = fetch(url(site, f"{ISSUING}.crl"))
    assert (answer.status, "location" in answer.headers) == (200, False)


def test_https_serves_the_same(site: Site) -> None:
    plain = fetch(url(site, f"{ISSUING}.crt"))
    secure = fetch(f"{site.issuing.https_url}/{ISSUING}.crt", server=site.issuing)
    assert (secure.status, secure.body) == (200, plain.body)


TRAVERSALS = (
    "/../certdir.yaml", "/%2e%2e/certdir.yaml", "/%2E%2E%2Fcertdir.yaml", "/certdir.yaml",
    "/secrets/root-password", "/ca/key.pem", "/public/ca.pem", "/..%5Csecrets%5Croot-password",
    f"/{ISSUING}.crt%00", f"/{ISSUING}.crt/../../certdir.yaml", f"/{ISSUING}.crl/x",
    "/%00", "/.crl", "/-delta.crl",
)


@pytest.mark.parametrize("path", TRAVERSALS)
def test_traversal_is_404_on_https(site: Site, path: str) -> None:
    answer = fetch(site.issuing.https_url + path, server=site.issuing)
    assert answer.status == 404


def test_unknown_name_on_http_goes_to_https(site: Site) -> None:
    answer = fetch(url(site, "secrets/root-password"))
    assert (answer.status, answer.headers["location"]) == (
        308, f"{site.issuing.https_url}/secrets/root-password")


@pytest.mark.parametrize("method", ("POST", "PUT", "DELETE"))
def test_other_methods_are_405(site: Site, method: str) -> None:
    answer = fetch(url(site, f"{ISSUING}.crl"), "-X", method, "--data", "x")
    assert (answer.status, answer.headers["allow"]) == (405, "GET, HEAD")


# --- 5. the URLs in certificates answer ---------------------------------------------------

def http_urls(certificate: Path) -> list[str]:
    text = subprocess.run(
        ["openssl", "x509", "-in", str(certificate), "-noout", "-ext",
         "authorityInfoAccess,crlDistributionPoints,freshestCRL"],
        capture_output=True, check=True, text=True).stdout
    return re.findall(r"URI:(http://\S+)", text)


def test_leaf_urls_answer(site: Site) -> None:
    urls = http_urls(site.leaf)
    assert sorted(u.rsplit("/", 1)[1] for u in urls) == sorted(
        [f"{ISSUING}.crt", "ocsp", f"{ISSUING}.crl", f"{ISSUING}-delta.crl"])
    statuses = {u: fetch(u).status for u in urls if not u.endswith("/ocsp")}
    assert statuses == {u: 200 for u in urls if not u.endswith("/ocsp")}


def test_issuing_ca_urls_answer(site: Site) -> None:
    certificate = site.tmp / "issuing.pem"
    certificate.write_bytes(fetch(url(site, f"{ISSUING}.pem")).body)
    urls = [u for u in http_urls(certificate) if not u.endswith("/ocsp")]
    assert sorted(u.rsplit("/", 1)[1] for u in urls) == [f"{ROOT}.crl", f"{ROOT}.crt"]
    assert {u: fetch(u).status for u in urls} == {u: 200 for u in urls}


def test_installed_root_crl_is_served_and_published(site: Site) -> None:
    assert site.root_install.stdout.decode().startswith("CRL 1 of CN=Example Root CA")
    installed = (site.root.data_dir / "public" / f"{ROOT}.crl").read_bytes()
    assert fetch(url(site, f"{ROOT}.crl")).body == installed
    found = site.issuing.tool("ldapsearch", "-LLL", "-b", ROOT_ENTRY, "-s", "base",
                              "certificateRevocationList;binary", check=True)
    assert b"certificateRevocationList;binary::" in found.stdout


def test_newer_root_crl_replaces_and_older_is_refused(site: Site) -> None:
    old = site.tmp / "root-old.crl"
    old.write_bytes((site.root.data_dir / "public" / f"{ROOT}.crl").read_bytes())
    ca(site.root, "crl")
    ca(site.issuing, "install-crl", str(site.root.data_dir / "public" / f"{ROOT}.crl"))
    served = x509.load_der_x509_crl(fetch(url(site, f"{ROOT}.crl")).body)
    assert served.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 3
    refused = ca(site.issuing, "install-crl", str(old), check=False)
    assert (refused.returncode, refused.stderr.decode()) == (
        1, "certdir: error: CRL number 1 is not newer than the installed CRL number 3\n")


def test_own_crl_is_refused_by_install_crl(site: Site) -> None:
    own = site.issuing.data_dir / "public" / f"{ISSUING}.crl"
    refused = ca(site.issuing, "install-crl", str(own), check=False)
    assert refused.stderr.decode() == ("certdir: error: this is the signing CA's own CRL; "
                                       "it makes its own (`certdir ca crl`)\n")


def test_not_a_crl_is_refused(site: Site) -> None:
    refused = ca(site.issuing, "install-crl", str(site.leaf), check=False)
    assert refused.stderr.decode() == "certdir: error: not a CRL (PEM or DER)\n"


def test_installed_root_delta_crl_is_served_and_published(site: Site) -> None:
    delta = site.root.data_dir / "public" / f"{ROOT}-delta.crl"
    installed = ca(site.issuing, "install-crl", str(delta))
    assert installed.stdout.decode().startswith("delta CRL ")
    assert fetch(url(site, f"{ROOT}-delta.crl")).body == delta.read_bytes()
    found = site.issuing.tool("ldapsearch", "-LLL", "-b", ROOT_ENTRY, "-s", "base",
                              "deltaRevocationList;binary", check=True)
    assert b"deltaRevocationList;binary::" in found.stdout


def test_ca_verify_checks_the_whole_path_with_the_installed_crl(site: Site) -> None:
    verified = ca(site.issuing, "verify", str(site.leaf), check=False)
    assert (verified.returncode, verified.stdout.decode().count("not revoked")) == (0, 2)
