"""Scenario 044: the web service against hostile HTTP clients (ca.web.site), and its start-up.

- A declared Content-Length over `http.max_body_bytes` is answered 413 as
  soon as the headers are in: the client never sends the body, and still
  gets 413 (not the 408 a server waiting for the body would send); with
  `Expect: 100-continue` no 100 is sent first (RFC 9110 §10.1.1).
- A chunked body is answered 413 once it passes the limit while the client
  keeps sending, and the connection is closed (over TLS too).
- A client sending one byte a second, in its headers or its body, is
  answered 408 after `http.request_seconds`; idle connections (after a
  response, or a TLS connection that never says hello) are closed.
- Malformed requests, HTTP/0.9, the HTTP/2 preface, targets that are not a
  path, non-ASCII bytes, over-long lines, too many or too large headers and
  ambiguous framing each get one exact 4xx and a closed connection.
  Pipelined requests are answered in order; HTTP/1.0 is answered and closed.
- Every response carries the security headers; HSTS only over https.
- Plain http redirects pages (308) to the same path on https, or answers
  404 without an https URL; https speaks TLS 1.2 and 1.3 only, with the
  directory's certificate.
- While an attacker (many slow clients, a 600 MB upload, a chunked flood)
  holds the service, an innocent client redeems a KMS token.
- A web URL that cannot be listened on stops `certdir serve` with one line
  naming it, as an LDAP URL does; https without a tls section is refused.
- None of the refused requests changes anything: the token they carry is
  still pending afterwards, and redeems.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.integration.conftest import (
    CERTDIR,
    SUFFIX,
    Server,
    database_rows,
    make_server,
)
from tests.integration.http_wire import (
    Exchange,
    chunk,
    client_context,
    connect,
    exchange,
    flood,
    poll,
    read_to_close,
    trickle,
)

REQUEST_SECONDS = 3
LIMIT = 64 * 1024
PEOPLE = f"ou=people,{SUFFIX}"
CAROL = f"uid=carol,{PEOPLE}"
CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = {"content-security-policy": CSP, "x-content-type-options": "nosniff",
                    "referrer-policy": "no-referrer", "x-frame-options": "DENY"}
HSTS = {"strict-transport-security": "max-age=31536000"}
FLOOD_CAP = 1000 * LIMIT
PADDING = chunk(b"a" * 4096)


@dataclass
class World:
    server: Server
    form: bytes
    before: tuple[str, int]

    def head(self, length: int | None, *extra: str) -> bytes:
        """Request headers for POST /kms/enroll with this form."""
        framing = ["Transfer-Encoding: chunked"] if length is None else [
            f"Content-Length: {length}"]
        lines = ["POST /kms/enroll HTTP/1.1", "Host: 127.0.0.1",
                 "Content-Type: application/x-www-form-urlencoded", *framing, *extra]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()


def start(server: Server, **http: object) -> Server:
    """Start `server` with these `http:` settings (`start` returns once every port listens)."""
    server.configure("http", **http)
    server.start()
    return server


def stop(server: Server) -> None:
    if server.proc is not None:
        log = server.stop()
        assert "Traceback" not in log, log


def add_carol(server: Server) -> None:
    added = server.tool("ldapadd", input=(
        f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n\n"
        f"dn: {CAROL}\nobjectClass: inetOrgPerson\nuid: carol\ncn: carol\nsn: carol\n"
        "mail: carol@example.com\n\n").encode())
    assert added.returncode == 0, added.stderr


def enrollment_form(server: Server, tmp: Path) -> bytes:
    """The form that would redeem a fresh token for carol."""
    token = server.certdir("kms", "enroll-user", "--mail", "carol@example.com",
                           "--data-dir", str(server.data_dir)).stdout.decode().strip()
    csr = tmp / "carol.csr"
    subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(tmp / "carol.key"),
                    "-subj", "/CN=ignored", "-out", str(csr)], check=True, capture_output=True)
    return urllib.parse.urlencode({"token": token, "csr": csr.read_text(),
                                   "p12_password": "bundle-secret"}).encode()


def kms_state(server: Server) -> tuple[str, int]:
    """The pending tokens as `kms list --tokens` shows them, and the audit log's length."""
    tokens = server.certdir("kms", "list", "--tokens", "--data-dir", str(server.data_dir))
    [(count,)] = database_rows(server.data_dir, "SELECT count(*) FROM kms_audit")
    return tokens.stdout.decode(), int(count)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("http-hostile")
    server = start(make_server(tmp), request_seconds=REQUEST_SECONDS)
    add_carol(server)
    form = enrollment_form(server, tmp)
    yield World(server, form, kms_state(server))
    stop(server)


def https(world: World) -> http.client.HTTPSConnection:
    return http.client.HTTPSConnection("127.0.0.1", world.server.https_port, timeout=30,
                                       context=client_context(world.server))


# --- bodies over the limit -------------------------------------------------------------

def test_declared_oversize_is_refused_before_the_body(world: World) -> None:
    # Only the headers are sent: a server waiting for the body would answer 408.
    answer = exchange(world.server, "https", world.head(600_000_000))
    assert answer.outcome == ((413,), True)


def test_expect_continue_with_oversize_gets_no_100(world: World) -> None:
    answer = exchange(world.server, "https", world.head(600_000_000, "Expect: 100-continue"))
    assert answer.outcome == ((413,), True)


@pytest.mark.parametrize("scheme", ["https", "http"])
def test_chunked_flood_is_refused_once_over_the_limit(world: World, scheme: str) -> None:
    with connect(world.server, scheme) as sock:
        answer = flood(sock, world.head(None) + chunk(world.form + b"&pad="), PADDING,
                       FLOOD_CAP)
    assert answer.outcome == ((413,), True)


def test_declared_oversize_on_plain_http_is_refused_not_redirected(world: World) -> None:
    answer = exchange(world.server, "http", world.head(600_000_000))
    assert answer.outcome == ((413,), True)


# --- slow and idle clients ------------------------------------------------------------

def test_headers_one_byte_a_second_get_408(world: World) -> None:
    with connect(world.server, "https") as sock:
        answer = trickle(sock, world.head(len(world.form)))
    assert answer.outcome == ((408,), True)


def test_body_one_byte_a_second_gets_408(world: World) -> None:
    with connect(world.server, "https") as sock:
        sock.sendall(world.head(len(world.form)))
        answer = trickle(sock, world.form)
    assert answer.outcome == ((408,), True)


def test_idle_connections_are_closed(world: World) -> None:
    # One keep-alive connection after its response, one TCP connection to the
    # https port that never starts TLS: both are closed after the idle timeout.
    with connect(world.server, "https") as answered, \
            socket.create_connection(("127.0.0.1", world.server.https_port)) as silent:
        answered.sendall(b"GET /kms/enroll HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        first = poll(answered, 10.0) or b""
        seconds = 4 * REQUEST_SECONDS + 20.0
        outcome = (Exchange(first, False).statuses,
                   read_to_close(answered, seconds).closed, read_to_close(silent, seconds).closed)
    assert outcome == ((405,), True, True)


# --- malformed and unusual requests ---------------------------------------------------

HOST = b"Host: 127.0.0.1\r\n"
MALFORMED = [
    # (why, scheme, bytes sent, status)
    ("HTTP/2 connection preface", "https", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400),
    ("HTTP/2 preface on plain http", "http", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400),
    ("HTTP/0.9 request line", "https", b"GET /kms/enroll\r\n\r\n", 400),
    ("unknown HTTP version", "https", b"GET / HTTP/1.2\r\n" + HOST + b"\r\n", 400),
    ("TLS record on plain http", "http", b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n",
     400),
    ("method is not a token", "https", b"G(T / HTTP/1.1\r\n" + HOST + b"\r\n", 400),
    ("two spaces in the request line", "https", b"GET  / HTTP/1.1\r\n" + HOST + b"\r\n", 400),
    ("absolute-form target", "http", b"GET http://evil.example/x HTTP/1.1\r\n" + HOST + b"\r\n",
     400),
    ("asterisk target", "http", b"OPTIONS * HTTP/1.1\r\n" + HOST + b"\r\n", 400),
    ("Latin-1 byte in the path", "http", b"GET /caf\xe9 HTTP/1.1\r\n" + HOST + b"\r\n", 400),
    ("byte 0xA9 Twisted lets through", "http", b"GET /\xa9 HTTP/1.1\r\n" + HOST + b"\r\n", 400),
    ("DEL in the path", "https", b"GET /kms/\x7f HTTP/1.1\r\n" + HOST + b"\r\n", 400),
    ("UTF-8 in the path", "https", "GET /kms/é HTTP/1.1\r\n".encode() + HOST + b"\r\n", 400),
    ("HTTP/1.1 without Host", "https", b"GET /kms/enroll HTTP/1.1\r\n\r\n", 400),
    ("two Host headers", "https", b"GET /kms/enroll HTTP/1.1\r\n" + HOST + HOST + b"\r\n", 400),
    ("header without a colon", "https", b"GET / HTTP/1.1\r\n" + HOST + b"oops\r\n\r\n", 400),
    ("NUL in a header value", "https", b"GET / HTTP/1.1\r\n" + HOST + b"X: a\x00b\r\n\r\n", 400),
    ("Content-Length and Transfer-Encoding", "https",
     b"POST /kms/enroll HTTP/1.1\r\n" + HOST
     + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    ("two Content-Lengths", "https", b"POST /kms/enroll HTTP/1.1\r\n" + HOST
     + b"Content-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400),
    ("Content-Length not a number", "https", b"POST /kms/enroll HTTP/1.1\r\n" + HOST
     + b"Content-Length: -1\r\n\r\n", 400),
    ("chunk size not hex", "https", b"POST /kms/enroll HTTP/1.1\r\n" + HOST
     + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n", 400),
    ("request line over 16 KiB", "https", b"GET /" + b"a" * 17000 + b" HTTP/1.1\r\n\r\n", 414),
    ("header line over 16 KiB", "https", b"GET / HTTP/1.1\r\nX: " + b"a" * 17000 + b"\r\n\r\n",
     431),
    ("headers over 16 KiB in all", "https", b"GET / HTTP/1.1\r\n"
     + b"".join(b"X-%d: %s\r\n" % (i, b"a" * 1000) for i in range(20)) + b"\r\n", 400),
    ("501 header lines", "https", b"GET / HTTP/1.1\r\n"
     + b"".join(b"X-%d: a\r\n" % i for i in range(501)) + b"\r\n", 400),
]


@pytest.mark.parametrize("why, scheme, data, status", MALFORMED)
def test_malformed_request_gets_one_answer_and_a_close(world: World, why: str, scheme: str,
                                                       data: bytes, status: int) -> None:
    assert exchange(world.server, scheme, data).outcome == ((status,), True)


def test_pipelined_requests_are_answered_in_order(world: World) -> None:
    requests = (b"GET /kms/enroll HTTP/1.1\r\n" + HOST + b"\r\n"
                + b"GET /nothing-here HTTP/1.1\r\n" + HOST + b"\r\n"
                + b"POST /kms/enroll HTTP/1.1\r\n" + HOST
                + b"Content-Type: application/json\r\nContent-Length: 2\r\n"
                + b"Connection: close\r\n\r\n[]")
    assert exchange(world.server, "https", requests).outcome == ((405, 404, 400), True)


def test_http10_request_is_answered_and_closed(world: World) -> None:
    answer = exchange(world.server, "https", b"GET /kms/enroll HTTP/1.0\r\n\r\n")
    assert (answer.raw[:13], answer.closed) == (b"HTTP/1.0 405 ", True)


# --- headers, redirects, TLS ----------------------------------------------------------

def https_get(world: World, path: str) -> http.client.HTTPResponse:
    """A GET over https, its body read and the connection closed."""
    connection = https(world)
    connection.request("GET", path)
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


def test_https_responses_carry_security_headers_and_hsts(world: World) -> None:
    response = https_get(world, "/kms/enroll")
    wanted = {**SECURITY_HEADERS, **HSTS}
    assert {name: response.headers[name] for name in wanted} == wanted


def test_server_header_names_no_version(world: World) -> None:
    assert https_get(world, "/kms/enroll").headers.get_all("Server") == ["certdir"]


def test_refusals_carry_security_headers_and_hsts(world: World) -> None:
    answer = exchange(world.server, "https", world.head(600_000_000))
    wanted = {**SECURITY_HEADERS, **HSTS}
    assert {name: answer.headers().get(name) for name in wanted} == wanted


def test_plain_http_carries_security_headers_without_hsts(world: World) -> None:
    answer = exchange(world.server, "http", b"GET / HTTP/1.1\r\n" + HOST
                      + b"Connection: close\r\n\r\n")
    names = [*SECURITY_HEADERS, *HSTS]
    assert {name: answer.headers().get(name) for name in names} == {**SECURITY_HEADERS,
                                                                    **dict.fromkeys(HSTS)}


@pytest.mark.parametrize("method, target", [
    ("GET", "/"), ("GET", "/kms/enroll"), ("POST", "/kms/enroll"),
    ("GET", "/certsrv/status?request=12"), ("GET", "/%C3%A9t%C3%A9"), ("HEAD", "//evil.example/x"),
])
def test_plain_http_pages_redirect_to_https(world: World, method: str, target: str) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", world.server.http_port, timeout=30)
    connection.request(method, target, body=b"" if method == "POST" else None)
    response = connection.getresponse()
    response.read()
    connection.close()
    assert (response.status, response.headers["Location"]) == (
        308, world.server.https_url + target)


@pytest.mark.parametrize("version, returncode, said", [
    ("-tls1_3", 0, b"New, TLSv1.3, Cipher is"), ("-tls1_2", 0, b"New, TLSv1.2, Cipher is"),
    ("-tls1_1", 1, b"alert protocol version"), ("-tls1", 1, b"alert protocol version"),
])
def test_https_speaks_tls12_and_newer_only(world: World, version: str, returncode: int,
                                           said: bytes) -> None:
    # SECLEVEL=0 lets OpenSSL 3 offer TLS 1.0/1.1 at all, so a failure is the server's.
    result = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{world.server.https_port}", version,
         "-cipher", "DEFAULT@SECLEVEL=0", "-CAfile", str(world.server.ca_file),
         "-verify_ip", "127.0.0.1", "-verify_return_error"],
        input=b"", capture_output=True, check=False, timeout=30)
    output = result.stdout + result.stderr
    assert (result.returncode, said in output) == (returncode, True), output


def test_https_certificate_is_the_directorys(world: World) -> None:
    # The handshake itself verifies it against public/ca.pem and the 127.0.0.1 IP SAN.
    with connect(world.server, "https") as sock:
        assert isinstance(sock, ssl.SSLSocket)
        served = sock.getpeercert(binary_form=True)
    pem = (world.server.data_dir / "tls" / "server.pem").read_bytes()
    directory = x509.load_pem_x509_certificates(pem)[0]
    assert served == directory.public_bytes(serialization.Encoding.DER)


# --- an innocent client during an attack ----------------------------------------------

@dataclass
class Attack:
    """Attackers on their own threads until `stop` is set, counting their refusals."""

    server: Server
    head: Callable[[int | None], bytes]
    stop: threading.Event
    refused: dict[str, int]

    def run(self, name: str, attempt: Callable[[], Exchange]) -> None:
        while not self.stop.is_set():
            try:
                refused = attempt().outcome == ((413,), True)
            except OSError:
                refused = False
            self.refused[name] += refused

    def upload(self) -> Exchange:
        with connect(self.server, "https") as sock:
            return flood(sock, self.head(600_000_000), b"a" * 4096, FLOOD_CAP, seconds=10)

    def chunked(self) -> Exchange:
        with connect(self.server, "https") as sock:
            return flood(sock, self.head(None), PADDING, FLOOD_CAP, seconds=10)


@pytest.fixture(scope="module")
def patient(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A second server with the default request deadline (30 s), far longer than the test."""
    tmp = tmp_path_factory.mktemp("http-patient")
    server = start(make_server(tmp))
    add_carol(server)
    form = enrollment_form(server, tmp)
    yield World(server, form, kms_state(server))
    stop(server)


def test_innocent_client_is_served_during_an_attack(patient: World) -> None:
    slow = [connect(patient.server, "https") for _ in range(50)]
    attack = Attack(patient.server, patient.head, threading.Event(), {"upload": 0, "chunked": 0})
    threads = [threading.Thread(target=attack.run, args=(name, getattr(attack, name)))
               for name in attack.refused]
    try:
        for sock in slow:
            sock.sendall(b"POST /kms/enroll HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le")
        for thread in threads:
            thread.start()
        # The attack is under way once each attacker has been refused at least once.
        deadline = time.monotonic() + 60
        while min(attack.refused.values()) == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        under_way = min(attack.refused.values()) > 0
        for sock in slow:
            sock.sendall(b"n")
        connection = http.client.HTTPSConnection(
            "127.0.0.1", patient.server.https_port, timeout=60,
            context=client_context(patient.server))
        connection.request("POST", "/kms/enroll", body=patient.form,
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
        response = connection.getresponse()
        bundle_type = response.headers["Content-Type"]
        response.read()
        connection.close()
        # Structural, not timed: every slow client is still connected and unanswered.
        unanswered = sum(poll(sock, 0) is None for sock in slow)
    finally:
        attack.stop.set()
        for thread in threads:
            thread.join(timeout=30)
        for sock in slow:
            sock.close()
    assert (under_way, response.status, bundle_type, unanswered) == (
        True, 200, "application/x-pkcs12", 50)


# --- start-up ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def stopped(tmp_path_factory: pytest.TempPathFactory) -> Server:
    """A data directory whose server is never left running."""
    return make_server(tmp_path_factory.mktemp("http-startup"))


def serve(server: Server, timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*CERTDIR, "serve", "--data-dir", str(server.data_dir)],
                          capture_output=True, env=server.env(), timeout=timeout, check=False)


@pytest.mark.parametrize("which", ["uri", "http_url", "https_url"])
def test_a_port_taken_stops_serve_with_one_line(stopped: Server, which: str) -> None:
    url = getattr(stopped, which)
    port = urllib.parse.urlsplit(url).port
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        result = serve(stopped)
    said = result.stderr.decode().splitlines()
    assert (result.returncode, said, b"Traceback" in result.stdout) == (
        1, [f"certdir: error: cannot listen on {url}: Couldn't listen on 127.0.0.1:{port}: "
            "[Errno 98] Address already in use."], False)


def test_https_without_tls_section_is_refused(stopped: Server) -> None:
    path = stopped.data_dir / "certdir.yaml"
    original = path.read_text()
    settings = yaml.safe_load(original)
    del settings["tls"]
    settings["listen"] = [stopped.uri]
    try:
        path.write_text(yaml.safe_dump(settings))
        result = serve(stopped)
    finally:
        path.write_text(original)
    assert (result.returncode, result.stderr.decode()) == (
        1, f"certdir: error: {path}: http.listen: https:// needs a tls section with certificate "
        "and key\n")


def test_plain_http_without_https_url_is_404(stopped: Server) -> None:
    path = stopped.data_dir / "certdir.yaml"
    original = path.read_text()
    try:
        server = start(stopped, listen=[stopped.http_url])
        try:
            connection = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=30)
            connection.request("GET", "/kms/enroll")
            response = connection.getresponse()
            outcome = (response.status, response.headers["Location"], response.read())
            connection.close()
        finally:
            stop(server)
    finally:
        path.write_text(original)
    assert outcome == (404, None, b"not served over plain http\n")


# --- and nothing changed --------------------------------------------------------------

def test_refused_requests_changed_nothing(world: World) -> None:
    assert kms_state(world.server) == world.before


def test_the_token_they_carried_still_redeems(world: World) -> None:
    connection = https(world)
    connection.request("POST", "/kms/enroll", body=world.form,
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    response = connection.getresponse()
    response.read()
    connection.close()
    assert (response.status, response.headers["Content-Type"]) == (200, "application/x-pkcs12")
