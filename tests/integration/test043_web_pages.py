"""Scenario 043: the Certificate Server pages over real https.

1. Public: the home page and the CA page (every CA of public/chain.pem with
   its SHA-256 fingerprint, its downloads and CRLs), "find a person's
   certificate" by mail address (another CA's certificate on the entry is
   listed and downloads byte for byte), all in one layout (lang, one h1).
2. Login: a wrong password and an unknown person get the same answer;
   after 5 failures the account is answered 429 with Retry-After, even
   with the right password.
3. Request flow: a person logs in, uploads a CSR made by `openssl req`,
   gets a request number (pending); an officer approves it; the person
   downloads the certificate (`openssl x509` reads it) and ldapsearch
   sees it on the entry; the audit log names the officer's DN. Deny flow:
   the person sees "denied" with the officer's reason. A bad CSR, an RSA
   1024 key and a key type the profile refuses are 400 and nothing is
   recorded; another person's request is 404.
4. Officer: hold, release and revoke (by mail address) through the pages
   change the entry and the CRL on the CA entry and in public/.
5. Safety: non-officer -> 403; forged or missing CSRF -> 403 and nothing
   changed; a wrong or logged-out session cookie -> the login page;
   cookies carry HttpOnly, Secure, SameSite=Strict; the CSP header is on
   every page; no password or CSRF token ever appears in a URL or a
   Location; form data in a query string is 400; an oversized form is 413.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import html.parser
import http.client
import re
import ssl
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.integration.conftest import SUFFIX, Server, database_rows, make_server

OFFICER = f"cn=Olga Officer,{SUFFIX}"
PEOPLE = {
    "alice": ("Alice Example", "alice@example.com"),
    "bob": ("Bob Example", "bob@example.com"),
    "carol": ("Carol Example", "carol@example.com"),
    "olga": ("Olga Officer", "olga@example.com"),
}
PASSWORD = {name: f"pw-{name}-{uuid.uuid4().hex[:8]}" for name in PEOPLE}
COOKIE = "__Host-certdir"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
PROBLEM = re.compile(r'<p class="problem" role="alert">([^<]*)</p>')


def dn(name: str) -> str:
    return f"cn={PEOPLE[name][0]},{SUFFIX}"


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode()

    def header(self, name: str) -> str:
        return self.headers.get(name, "")


@dataclass
class Browser:
    """A client with one cookie, that records every URL and Location it saw."""
    server: Server
    cookie: str | None = None
    urls: list[str] = field(default_factory=list)
    set_cookies: list[str] = field(default_factory=list)

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> Answer:
        context = ssl.create_default_context(cafile=str(self.server.ca_file))
        conn = http.client.HTTPSConnection("127.0.0.1", self.server.https_port,
                                           context=context, timeout=60)
        sent = dict(headers or {})
        if self.cookie is not None:
            sent["Cookie"] = f"{COOKIE}={self.cookie}"
        conn.request(method, path, body=body, headers=sent)
        response = conn.getresponse()
        answer = Answer(response.status, response.headers, response.read())
        conn.close()
        self.urls += [path, answer.header("Location")]
        for line in response.headers.get_all("Set-Cookie") or []:
            self.set_cookies.append(line)
            name, _, rest = line.partition("=")
            if name == COOKIE:
                value = rest.split(";")[0]
                self.cookie = value or None
        return answer

    def get(self, path: str) -> Answer:
        return self.request("GET", path)

    def csrf(self, path: str) -> str:
        match = CSRF.search(self.get(path).text)
        assert match is not None, f"no CSRF token on {path}"
        return match.group(1)

    def post(self, path: str, fields: dict[str, str], csrf_from: str | None = None) -> Answer:
        if csrf_from is not None:
            fields = {"csrf": self.csrf(csrf_from), **fields}
        return self.request("POST", path, urlencode(fields).encode(),
                            {"Content-Type": "application/x-www-form-urlencoded"})

    def upload(self, path: str, fields: dict[str, str], files: dict[str, bytes],
               csrf_from: str) -> Answer:
        boundary = uuid.uuid4().hex
        parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n'
                 f'{v}\r\n'.encode() for k, v in {"csrf": self.csrf(csrf_from), **fields}.items()]
        parts += [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"; '
                  f'filename="{k}.csr"\r\nContent-Type: application/octet-stream\r\n\r\n'
                  .encode() + v + b"\r\n" for k, v in files.items()]
        body = b"".join(parts) + f"--{boundary}--\r\n".encode()
        return self.request("POST", path, body,
                            {"Content-Type": f"multipart/form-data; boundary={boundary}"})

    def login(self, name: str, password: str | None = None) -> Answer:
        return self.post("/login", {"name": name, "password": password or PASSWORD[name],
                                    "next": "/requests"}, csrf_from="/login")


@dataclass(frozen=True, slots=True)
class World:
    server: Server
    tmp: Path
    foreign: x509.Certificate
    browsers: list[Browser]

    def browser(self) -> Browser:
        b = Browser(self.server)
        self.browsers.append(b)
        return b

    def logged_in(self, name: str, as_dn: bool = False) -> Browser:
        b = self.browser()
        answer = b.login(dn(name) if as_dn else PEOPLE[name][1], PASSWORD[name])
        assert answer.status == 303, answer.text
        return b


def _foreign_certificate(mail: str) -> x509.Certificate:
    """A certificate from another CA, as a national ID card would put on the entry."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name.from_rfc4514_string("CN=Other Nation ID CA,O=Elsewhere")
    now = dt.datetime.now(dt.UTC)
    return (x509.CertificateBuilder().subject_name(
        x509.Name.from_rfc4514_string("CN=Alice ID,O=Elsewhere")).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256()))


def _ldif(foreign: x509.Certificate) -> bytes:
    blocks = []
    for name, (cn, mail) in PEOPLE.items():
        block = (f"dn: {dn(name)}\nobjectClass: inetOrgPerson\ncn: {cn}\n"
                 f"sn: {cn.split()[1]}\nmail: {mail}\nuserPassword: {PASSWORD[name]}\n")
        if name == "alice":
            value = base64.b64encode(foreign.public_bytes(serialization.Encoding.DER)).decode()
            block += f"userCertificate;binary:: {value}\n"
        blocks.append(block)
    return "\n".join(blocks).encode()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("web-pages")
    server = make_server(tmp)
    server.configure("ca", officers=[OFFICER], web_profiles=["smime-user", "smime-encryption"])
    server.start()
    foreign = _foreign_certificate(PEOPLE["alice"][1])
    added = server.tool("ldapadd", input=_ldif(foreign))
    assert added.returncode == 0, added.stderr
    w = World(server, tmp, foreign, [])
    yield w
    log = server.stop()
    assert "Traceback" not in log, log


def openssl_csr(tmp: Path, name: str, *key: str) -> bytes:
    out = tmp / f"{name}.csr"
    subprocess.run(["openssl", "req", "-new", "-newkey", *key, "-nodes", "-keyout",
                    str(tmp / f"{name}.key"), "-subj", f"/CN={name}", "-out", str(out)],
                   check=True, capture_output=True)
    return out.read_bytes()


P256 = ("ec", "-pkeyopt", "ec_paramgen_curve:P-256")


def submit(world: World, browser: Browser, name: str, profile: str = "smime-user",
           key: tuple[str, ...] = P256) -> Answer:
    csr = openssl_csr(world.tmp, name, *key)
    return browser.upload("/request", {"profile": profile}, {"csr_file": csr}, "/request")


def request_number(answer: Answer) -> int:
    match = re.fullmatch(r"/requests/(\d+)", answer.header("Location"))
    assert match is not None, (answer.status, answer.header("Location"), answer.text)
    return int(match.group(1))


def entry_certificates(world: World, who: str) -> list[bytes]:
    out = world.server.tool("ldapsearch", "-LLL", "-b", dn(who), "-s", "base",
                            "(objectClass=*)", "userCertificate;binary", check=True)
    text = out.stdout.decode().replace("\n ", "")
    return [base64.b64decode(v) for v in re.findall(r"userCertificate;binary:: (\S+)", text)]


def issuing_cn(world: World) -> str:
    """The common name of the issuing CA, first in the published chain."""
    chain = x509.load_pem_x509_certificates((world.server.data_dir / "public" / "chain.pem")
                                            .read_bytes())
    cn = chain[0].subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
    assert isinstance(cn, str)
    return cn


def crl_entries(world: World) -> dict[int, x509.ReasonFlags | None]:
    """The serials (and reasons) of the full CRL on the CA entry, read over LDAP."""
    cn = issuing_cn(world)
    out = world.server.tool("ldapsearch", "-LLL", "-b", f"cn={cn},cn=CAs,cn=PKI,{SUFFIX}",
                            "-s", "base", "(objectClass=*)", "certificateRevocationList;binary",
                            check=True)
    text = out.stdout.decode().replace("\n ", "")
    (value,) = re.findall(r"certificateRevocationList;binary:: (\S+)", text)
    found: dict[int, x509.ReasonFlags | None] = {}
    for revoked in x509.load_der_x509_crl(base64.b64decode(value)):
        try:
            found[revoked.serial_number] = revoked.extensions.get_extension_for_class(
                x509.CRLReason).value.reason
        except x509.ExtensionNotFound:
            found[revoked.serial_number] = None
    return found


def public_crl_serials(world: World) -> set[int]:
    cn = issuing_cn(world)
    crl = (world.server.data_dir / "public" / f"{cn.replace(' ', '-')}.crl").read_bytes()
    return {r.serial_number for r in x509.load_der_x509_crl(crl)}


def http_crl_serials(world: World) -> set[int]:
    """The full CRL as relying parties fetch it: plain http, the CDP URL."""
    cn = issuing_cn(world)
    conn = http.client.HTTPConnection("127.0.0.1", world.server.http_port, timeout=30)
    conn.request("GET", f"/{cn.replace(' ', '-')}.crl")
    body = conn.getresponse().read()
    conn.close()
    return {r.serial_number for r in x509.load_der_x509_crl(body)}


def issued_for(world: World, who: str) -> tuple[int, x509.Certificate]:
    """A request by `who`, approved by the officer: (request number, certificate)."""
    person = world.logged_in(who)
    number = request_number(submit(world, person, f"{who}-{uuid.uuid4().hex[:6]}"))
    officer = world.logged_in("olga")
    approved = officer.post("/officer/approve", {"request": str(number)}, csrf_from="/officer")
    assert approved.status == 303, approved.text
    pem = person.get(f"/requests/{number}/certificate.pem")
    return number, x509.load_pem_x509_certificate(pem.body)


class Accessibility(html.parser.HTMLParser):
    """What the layout promises: lang, one h1, headings in order, a label for every
    field, no script and no inline style."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self.levels: list[int] = []
        self.fields: list[str] = []
        self.labels: set[str] = set()
        self.lang = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "html":
            self.lang = a.get("lang") or ""
        if tag == "script" or "style" in a or any(k.startswith("on") for k in a):
            self.problems.append(f"script or inline style: <{tag}>")
        if re.fullmatch(r"h[1-6]", tag):
            level = int(tag[1])
            if self.levels and level > max(self.levels) + 1:
                self.problems.append(f"<{tag}> after h{max(self.levels)}")
            self.levels.append(level)
        if tag in ("input", "select", "textarea") and a.get("type") not in ("hidden", "submit"):
            self.fields.append(a.get("id") or "(no id)")
        if tag == "label":
            self.labels.add(a.get("for") or "")

    def verdict(self) -> list[str]:
        unlabelled = [f for f in self.fields if f not in self.labels]
        return [*self.problems, *(f"field {f} has no label" for f in unlabelled),
                *([] if self.lang == "en" else ["no lang"]),
                *([] if self.levels.count(1) == 1 else [f"{self.levels.count(1)} h1"])]


PAGES = {
    "anonymous": ("/", "/ca", "/people", "/people?mail=alice%40example.com", "/login",
                  "/people/x", "/requests"),
    "bob": ("/", "/request", "/requests", "/requests/999999"),
    "olga": ("/officer", "/requests"),
}


@pytest.mark.parametrize("who", sorted(PAGES))
def test_pages_accessible(world: World, who: str) -> None:
    browser = world.browser() if who == "anonymous" else world.logged_in(who)
    problems = {}
    for path in PAGES[who]:
        answer = browser.get(path)
        if answer.status == 303:
            continue
        checker = Accessibility()
        checker.feed(answer.text)
        if checker.verdict():
            problems[path] = checker.verdict()
    assert problems == {}


# --- 1. public pages ---------------------------------------------------------------------

def test_home_page_layout(world: World) -> None:
    page = world.browser().get("/")
    assert (page.status, page.text.count("<h1>"), '<html lang="en">' in page.text,
            "<script" in page.text, "style=" in page.text) == (200, 1, True, False, False)


def test_csp_header(world: World) -> None:
    assert "default-src 'none'" in world.browser().get("/ca").header("Content-Security-Policy")


def test_style_sheet(world: World) -> None:
    sheet = world.browser().get("/static/style.css")
    assert (sheet.status, sheet.header("Content-Type")) == (200, "text/css; charset=utf-8")


def test_ca_page_lists_every_ca(world: World) -> None:
    page = world.browser().get("/ca").text
    chain = x509.load_pem_x509_certificates((world.server.data_dir / "public" / "chain.pem")
                                            .read_bytes())
    missing = []
    for ca in chain:
        cn = ca.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
        slug = re.sub(r"[^A-Za-z0-9]+", "-", str(cn)).strip("-")
        fingerprint = ca.fingerprint(hashes.SHA256()).hex(":").upper()
        wanted = [fingerprint, f'href="/{slug}.crt"', f'href="/{slug}.pem"',
                  f'href="/{slug}.p7c"', 'href="/chain.pem"']
        missing += [w for w in wanted if w not in page]
    assert missing == []


def test_ca_page_links_answer(world: World) -> None:
    """Every download the CA page links to is served (ca.web.downloads)."""
    browser = world.browser()
    links = re.findall(r'href="(/[^"]+\.(?:crt|pem|p7c|crl))"', browser.get("/ca").text)
    statuses = {link: browser.get(link).status for link in links}
    assert (len(statuses) >= 6, {s for s in statuses.values()}) == (True, {200})


def test_ca_page_names_crls_with_next_update(world: World) -> None:
    page = world.browser().get("/ca").text
    assert len(re.findall(r"CRL, next update \d{4}-\d\d-\d\d \d\d:\d\d UTC", page)) == 2


def test_find_person_lists_foreign_certificate(world: World) -> None:
    page = world.browser().get("/people?mail=alice%40example.com")
    foreign = world.foreign
    assert (page.status, "CN=Other Nation ID CA,O=Elsewhere" in page.text,
            format(foreign.serial_number, "x") in page.text) == (200, True, True)


def test_find_person_download_is_the_value(world: World) -> None:
    """The DER link on the page, followed."""
    der = world.foreign.public_bytes(serialization.Encoding.DER)
    digest = hashlib.sha256(der).hexdigest()
    browser = world.browser()
    links = re.findall(rf'href="(/people/[^"]+/{digest}\.crt)"',
                       browser.get("/people?mail=alice%40example.com").text)
    answer = browser.get(links[0])
    printed = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-issuer"],
                             input=answer.body, capture_output=True, check=True)
    assert (answer.status, answer.header("Content-Type"), answer.body,
            b"Other Nation ID CA" in printed.stdout) == (200, "application/pkix-cert", der, True)


def test_find_person_escapes_markup(world: World) -> None:
    """A name from the directory is text on the page, never markup (autoescaping)."""
    ldif = (f"dn: uid=mallory,{SUFFIX}\nobjectClass: inetOrgPerson\nuid: mallory\n"
            "cn: <script>alert(1)</script>\nsn: M\nmail: mallory@example.com\n")
    added = world.server.tool("ldapadd", input=ldif.encode())
    page = world.browser().get("/people?mail=mallory%40example.com").text
    assert (added.returncode, "<script" in page, "&lt;script&gt;alert(1)&lt;/script&gt;" in page) \
        == (0, False, True)


def test_find_nobody(world: World) -> None:
    page = world.browser().get("/people?mail=nobody%40example.com")
    assert (page.status, "Nobody with that mail address" in page.text) == (200, True)


def test_find_person_pem(world: World) -> None:
    pem = world.foreign.public_bytes(serialization.Encoding.PEM)
    digest = hashlib.sha256(world.foreign.public_bytes(serialization.Encoding.DER)).hexdigest()
    answer = world.browser().get(f"/people/alice%40example.com/{digest}.pem")
    assert (answer.status, answer.body) == (200, pem)


def test_find_person_unknown_download_404(world: World) -> None:
    assert world.browser().get(f"/people/alice@example.com/{'0' * 64}.crt").status == 404


def test_find_person_traversal_404(world: World) -> None:
    assert world.browser().get("/people/..%2f..%2fcertdir.yaml/x.crt").status == 404


# --- 2. login --------------------------------------------------------------------------

def test_wrong_password_same_as_unknown_person(world: World) -> None:
    wrong = world.browser().login("bob@example.com", "not the password")
    unknown = world.browser().login("nobody@example.com", "not the password")
    unknown_dn = world.browser().login(f"cn=Nobody,{SUFFIX}", "not the password")
    answers = {(a.status, tuple(PROBLEM.findall(a.text))) for a in (wrong, unknown, unknown_dn)}
    assert answers == {(403, ("invalid credentials",))}


def test_login_by_dn(world: World) -> None:
    browser = world.logged_in("bob", as_dn=True)
    assert f"Logged in as {dn('bob')}" in browser.get("/requests").text


def test_backoff_after_failures(world: World) -> None:
    browser = world.browser()
    failures = [browser.login("carol@example.com", "wrong").status for _ in range(5)]
    locked = browser.login("carol@example.com", PASSWORD["carol"])
    assert (failures, locked.status, int(locked.header("Retry-After")) > 0) \
        == ([403] * 5, 429, True)


def test_cookie_attributes(world: World) -> None:
    browser = world.logged_in("bob")
    line = browser.set_cookies[-1]
    attributes = sorted(a.strip().lower() for a in line.split(";")[1:])
    assert (line.startswith(COOKIE + "="), attributes) == (
        True, ["httponly", "max-age=1800", "path=/", "samesite=strict", "secure"])


def test_login_page_returns_to_next(world: World) -> None:
    browser = world.browser()
    answer = browser.post("/login", {"name": PEOPLE["bob"][1], "password": PASSWORD["bob"],
                                     "next": "/request"}, csrf_from="/login?next=/request")
    assert (answer.status, answer.header("Location")) == (303, "/request")


def test_login_next_to_another_site_refused(world: World) -> None:
    browser = world.browser()
    answer = browser.post("/login", {"name": PEOPLE["bob"][1], "password": PASSWORD["bob"],
                                     "next": "//evil.example/"}, csrf_from="/login")
    assert (answer.status, answer.header("Location")) == (303, "/requests")


# --- 3. requests -------------------------------------------------------------------------

def test_request_flow(world: World) -> None:
    alice = world.logged_in("alice")
    submitted = submit(world, alice, "alice-flow")
    number = request_number(submitted)
    pending = alice.get(f"/requests/{number}").text
    olga = world.logged_in("olga")
    queue = olga.get("/officer").text
    approved = olga.post("/officer/approve", {"request": str(number)}, csrf_from="/officer")
    pem = alice.get(f"/requests/{number}/certificate.pem")
    der = alice.get(f"/requests/{number}/certificate.crt")
    read = subprocess.run(["openssl", "x509", "-noout", "-subject", "-email"], input=pem.body,
                          capture_output=True, check=True).stdout.decode()
    on_entry = entry_certificates(world, "alice")
    assert ("<dd>pending</dd>" in pending, f"Approve request {number}" in queue,
            approved.status, approved.header("Location"), "alice@example.com" in read,
            der.body in on_entry, len(on_entry)) == (True, True, 303, "/officer", True, True, 2)


def test_request_listed_as_issued(world: World) -> None:
    number, _ = issued_for(world, "bob")
    page = world.logged_in("bob").get("/requests").text
    row = re.search(rf'<td><a href="/requests/{number}">{number}</a></td>.*?</tr>', page, re.S)
    assert row is not None and "<td>issued</td>" in row.group(0)


def test_approval_audited_with_officer_dn(world: World) -> None:
    number, _ = issued_for(world, "bob")
    actors = [row[0] for row in database_rows(
        world.server.data_dir,
        "SELECT actor FROM kms_audit WHERE action='ca.approved' AND subject=?", str(number))]
    assert actors == [OFFICER]


def test_deny_flow(world: World) -> None:
    bob = world.logged_in("bob")
    number = request_number(submit(world, bob, "bob-deny"))
    olga = world.logged_in("olga")
    denied = olga.post("/officer/deny", {"request": str(number), "why": "no such project"},
                       csrf_from="/officer")
    page = bob.get(f"/requests/{number}").text
    assert (denied.status, "<dd>denied</dd>" in page, "no such project" in page,
            bob.get(f"/requests/{number}/certificate.pem").status) == (303, True, True, 404)


def test_deny_needs_a_reason(world: World) -> None:
    number = request_number(submit(world, world.logged_in("bob"), "bob-deny2"))
    answer = world.logged_in("olga").post("/officer/deny", {"request": str(number), "why": ""},
                                          csrf_from="/officer")
    assert answer.status == 400


def _request_count(world: World, who: str) -> int:
    return world.logged_in(who).get("/requests").text.count('<a href="/requests/')


@pytest.mark.parametrize("why, profile, csr, problem", [
    ("not a CSR", "smime-user", b"hello", "not a PKCS#10 request (PEM or DER)"),
    ("RSA 1024", "smime-user", None, "RSA 1024-bit keys are refused; at least 2048 bits"),
])
def test_bad_csr_400_nothing_recorded(world: World, why: str, profile: str,
                                      csr: bytes | None, problem: str) -> None:
    bob = world.logged_in("bob")
    count = _request_count(world, "bob")
    data = csr if csr is not None else openssl_csr(world.tmp, "rsa1024", "rsa:1024")
    answer = bob.upload("/request", {"profile": profile}, {"csr_file": data}, "/request")
    assert (answer.status, PROBLEM.findall(answer.text), _request_count(world, "bob")) \
        == (400, [problem], count)


def test_refused_key_type_400(world: World) -> None:
    bob = world.logged_in("bob")
    count = _request_count(world, "bob")
    answer = submit(world, bob, "bob-ed", profile="smime-encryption", key=("ed25519",))
    assert (answer.status, len(PROBLEM.findall(answer.text)), _request_count(world, "bob")) \
        == (400, 1, count)


def test_profile_not_offered_400(world: World) -> None:
    answer = submit(world, world.logged_in("bob"), "bob-tls", profile="tls-server")
    assert answer.status == 400


def test_pasted_csr(world: World) -> None:
    bob = world.logged_in("bob")
    csr = openssl_csr(world.tmp, "bob-pasted", *P256).decode()
    answer = bob.upload("/request", {"profile": "smime-user", "csr": csr}, {}, "/request")
    assert answer.status == 303 and request_number(answer) > 0


def test_another_persons_request_404(world: World) -> None:
    number = request_number(submit(world, world.logged_in("alice"), "alice-private"))
    bob = world.logged_in("bob")
    assert (bob.get(f"/requests/{number}").status,
            bob.get(f"/requests/{number}/certificate.crt").status) == (404, 404)


# --- 4. officer: hold, release, revoke -----------------------------------------------------

def test_hold_and_release(world: World) -> None:
    _, certificate = issued_for(world, "bob")
    der = certificate.public_bytes(serialization.Encoding.DER)
    serial = format(certificate.serial_number, "x")
    olga = world.logged_in("olga")
    held = olga.post("/officer/hold", {"serial": serial}, csrf_from="/officer")
    on_hold = (der in entry_certificates(world, "bob"), crl_entries(world).get(
        certificate.serial_number), certificate.serial_number in public_crl_serials(world),
        certificate.serial_number in http_crl_serials(world))
    released = olga.post("/officer/release", {"serial": serial}, csrf_from="/officer")
    after = (der in entry_certificates(world, "bob"),
             certificate.serial_number in crl_entries(world),
             certificate.serial_number in public_crl_serials(world),
             certificate.serial_number in http_crl_serials(world))
    assert (held.status, on_hold, released.status, after) == (
        303, (False, x509.ReasonFlags.certificate_hold, True, True), 303,
        (True, False, False, False))


def test_revoke_by_mail(world: World) -> None:
    _, certificate = issued_for(world, "alice")
    olga = world.logged_in("olga")
    revoked = olga.post("/officer/revoke", {"holder": "alice@example.com",
                                            "reason": "keyCompromise"}, csrf_from="/officer")
    remaining = entry_certificates(world, "alice")
    foreign = world.foreign.public_bytes(serialization.Encoding.DER)
    assert (revoked.status, crl_entries(world).get(certificate.serial_number),
            remaining) == (303, x509.ReasonFlags.key_compromise, [foreign])


def test_revoke_unknown_serial_400(world: World) -> None:
    answer = world.logged_in("olga").post("/officer/revoke", {"serial": "abc123",
                                                              "reason": "keyCompromise"},
                                          csrf_from="/officer")
    assert answer.status == 400


def test_recent_issuance_listed(world: World) -> None:
    _, certificate = issued_for(world, "bob")
    page = world.logged_in("olga").get("/officer").text
    assert f"<code>{format(certificate.serial_number, 'x')}</code>" in page


# --- 5. safety ---------------------------------------------------------------------------

def test_non_officer_403(world: World) -> None:
    bob = world.logged_in("bob")
    token = bob.csrf("/request")
    posted = bob.post("/officer/approve", {"csrf": token, "request": "1"})
    assert (bob.get("/officer").status, posted.status) == (403, 403)


@pytest.mark.parametrize("why, token", [("forged", "x" * 43), ("missing", None)])
def test_csrf_refused_nothing_changed(world: World, why: str, token: str | None) -> None:
    number = request_number(submit(world, world.logged_in("bob"), f"bob-csrf-{why}"))
    olga = world.logged_in("olga")
    fields = {"request": str(number), "why": "forged"}
    if token is not None:
        fields["csrf"] = token
    answer = olga.post("/officer/deny", fields)
    page = world.logged_in("bob").get(f"/requests/{number}").text
    assert (answer.status, "<dd>pending</dd>" in page) == (403, True)


def test_login_without_csrf_403(world: World) -> None:
    answer = world.browser().post("/login", {"name": PEOPLE["bob"][1],
                                             "password": PASSWORD["bob"]})
    assert answer.status == 403


def test_wrong_session_cookie_goes_to_login(world: World) -> None:
    browser = world.browser()
    browser.cookie = "A" * 43
    answer = browser.get("/requests")
    assert (answer.status, answer.header("Location")) == (303, "/login?next=/requests")


def test_logged_out_cookie_goes_to_login(world: World) -> None:
    browser = world.logged_in("bob")
    old = browser.cookie
    logout = browser.post("/logout", {}, csrf_from="/requests")
    browser.cookie = old
    answer = browser.get("/requests")
    assert (logout.status, answer.status, answer.header("Location")) \
        == (303, 303, "/login?next=/requests")


def test_form_in_query_string_400(world: World) -> None:
    browser = Browser(world.server)  # not checked by test_zz_no_secret_in_any_url
    token = browser.csrf("/login")
    answer = browser.request("POST", f"/login?password=x&csrf={token}", b"",
                             {"Content-Type": "application/x-www-form-urlencoded"})
    assert answer.status == 400


def test_oversized_form_413(world: World) -> None:
    browser = world.browser()
    body = b"csr=" + b"A" * (65 * 1024)
    answer = browser.request("POST", "/request", body,
                             {"Content-Type": "application/x-www-form-urlencoded"})
    assert answer.status == 413


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_unknown_path_404_in_layout(world: World, method: str) -> None:
    answer = world.browser().request(method, "/no/such/page", b"",
                                     {"Content-Type": "application/x-www-form-urlencoded"})
    assert (answer.status, PROBLEM.findall(answer.text)) == (404, ["There is no such page."])


def test_get_logout_405_with_allow(world: World) -> None:
    answer = world.browser().get("/logout")
    assert (answer.status, answer.header("Allow")) == (405, "POST")


def test_error_page_in_layout(world: World) -> None:
    answer = world.logged_in("bob").get("/requests/999999")
    assert (answer.status, answer.text.count("<h1>Not Found</h1>"), "Traceback" in answer.text,
            PROBLEM.findall(answer.text)) == (404, 1, False, ["There is no such request."])


@pytest.mark.parametrize("path", ["/login", "/requests/1", "/officer", "/people?mail=a%40b"])
def test_plain_http_redirects_pages(world: World, path: str) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", world.server.http_port, timeout=30)
    conn.request("GET", path)
    response = conn.getresponse()
    response.read()
    assert (response.status, response.getheader("Location")) == (
        308, world.server.https_url + path)


def test_zy_every_officer_action_audited(world: World) -> None:
    """Runs after the officer tests: the audit log holds each of their actions under the
    officer's DN, submissions under the person's, and its hash chain verifies."""
    rows = database_rows(world.server.data_dir,
                         "SELECT action, actor FROM kms_audit WHERE action LIKE 'ca.%'")
    officer = {a for a, actor in rows if actor == OFFICER}
    requesters = {actor for a, actor in rows if a == "ca.pending"}
    verified = world.server.certdir("audit", "verify", "--data-dir",
                                    str(world.server.data_dir))
    assert (officer, requesters, verified.stdout.decode().startswith("audit log intact")) == (
        {"ca.approved", "ca.denied", "ca.revoked", "ca.released"},
        {dn("alice"), dn("bob")}, True)


def test_zz_no_secret_in_any_url(world: World) -> None:
    """Runs last: every URL requested and every Location seen in this module."""
    secrets = list(PASSWORD.values())
    seen = [u for b in world.browsers for u in b.urls if u]
    leaks = [u for u in seen if "csrf=" in u or any(s in u for s in secrets)
             or "password" in u]
    assert (len(seen) > 50, leaks) == (True, [])
