"""Scenario 035: token redemptions do not hold up the directory's other writes
(issue 9, part 5, the reactor rule), with a real server, https and python-ldap.

1. An attacker and an innocent client at once: ten redemptions (`POST
   /kms/enroll` over https, the server verified against public/ca.pem) are
   sent, every byte of each, before the innocent client starts; its five
   modifies, one after the other, all complete before the last redemption
   answers, and every redemption answers 200.
   Why this order holds, without any timing threshold: a modify needs only
   the single writer. A redemption now needs its key generated, two
   certificates signed and its PKCS#12 sealed (PBKDF2, 600,000 rounds) on
   the pools before its short commit; ten of them need several rounds of
   that work. Before part 5 all of it ran inside the writer's transaction,
   so a modify queued behind the ten redemptions answered after them.
2. One token redeemed twice at once: exactly one answer is 200 with a
   PKCS#12, the other 400 "already used"; the entry holds exactly the two
   certificates of the one that won.
"""

from __future__ import annotations

import csv
import http.client
import itertools
import ssl
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field

import ldap
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, pkcs12

from tests.integration.conftest import SUFFIX, Server, make_server

PEOPLE = f"ou=people,{SUFFIX}"
REDEMPTIONS = 10
MODIFIES = 5
INNOCENT = f"uid=innocent,{PEOPLE}"
TWICE = f"uid=person{REDEMPTIONS},{PEOPLE}"
P12_PASSWORD = "p12-secret"


@dataclass
class World:
    server: Server
    tokens: dict[str, str]  # DN, lower case -> token


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("redemptions")
    server = make_server(tmp)
    server.start()
    people = "".join(
        f"dn: uid={uid},{PEOPLE}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\n"
        f"sn: {uid}\nmail: {uid}@example.com\n\n"
        for uid in [f"person{n}" for n in range(REDEMPTIONS + 1)])
    added = server.tool("ldapadd", input=(
        f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n\n"
        f"dn: {INNOCENT}\nobjectClass: inetOrgPerson\nuid: innocent\ncn: innocent\n"
        f"sn: innocent\n\n{people}").encode())
    assert added.returncode == 0, added.stderr
    out = tmp / "tokens.csv"
    server.certdir("kms", "enroll-bulk", "--data-dir", str(server.data_dir), "--base", PEOPLE,
                   "--out", str(out))
    with out.open(newline="") as f:
        tokens = {row["dn"].lower(): row["token"] for row in csv.DictReader(f)}
    yield World(server, tokens)
    if server.proc is not None:
        assert "Traceback" not in server.stop()


def signing_csr() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    return x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).sign(
        key, hashes.SHA256()).public_bytes(Encoding.PEM)


@dataclass
class Events:
    """When things finished, as places in one sequence (an order, not a time)."""
    lock: threading.Lock = field(default_factory=threading.Lock)
    counter: Iterator[int] = field(default_factory=itertools.count)

    def next(self) -> int:
        with self.lock:
            return next(self.counter)


class Redemption(threading.Thread):
    """One POST /kms/enroll: connected first, sent on `go`, answered later."""

    def __init__(self, server: Server, token: str, go: threading.Barrier,
                 events: Events) -> None:
        super().__init__()
        self.server, self.go, self.events = server, go, events
        self.body = urllib.parse.urlencode({"token": token, "csr": signing_csr(),
                                            "p12_password": P12_PASSWORD}).encode()
        self.sent = threading.Event()
        self.status = 0
        self.answer = b""
        self.done_at = -1

    def run(self) -> None:
        context = ssl.create_default_context(cafile=self.server.ca_file)
        conn = http.client.HTTPSConnection("127.0.0.1", self.server.https_port,
                                           context=context, timeout=300)
        try:
            conn.connect()
            self.go.wait()
            conn.request("POST", "/kms/enroll", self.body,
                         {"Content-Type": "application/x-www-form-urlencoded"})
            self.sent.set()
            response = conn.getresponse()
            self.answer = response.read()
            self.status = response.status
            self.done_at = self.events.next()
        finally:
            self.sent.set()
            conn.close()


def innocent(server: Server) -> ldap.ldapobject.LDAPObject:
    conn = ldap.initialize(server.uri)
    conn.simple_bind_s(server.root_dn, server.root_password)
    return conn


def redeem_at_once(server: Server, tokens: list[str], events: Events) -> list[Redemption]:
    go = threading.Barrier(len(tokens) + 1)
    redemptions = [Redemption(server, token, go, events) for token in tokens]
    for redemption in redemptions:
        redemption.start()
    go.wait()
    for redemption in redemptions:
        redemption.sent.wait()
    return redemptions


def test_modifies_complete_before_the_redemptions(world: World) -> None:
    server = world.server
    conn = innocent(server)
    events = Events()
    tokens = [world.tokens[f"uid=person{n},{PEOPLE}".lower()] for n in range(REDEMPTIONS)]
    redemptions = redeem_at_once(server, tokens, events)
    modified_at = []
    for n in range(MODIFIES):
        conn.modify_s(INNOCENT, [(ldap.MOD_REPLACE, "description", [f"write {n}".encode()])])
        modified_at.append(events.next())
    for redemption in redemptions:
        redemption.join()
    conn.unbind_s()
    assert [r.status for r in redemptions] == [200] * REDEMPTIONS
    assert max(modified_at) < max(r.done_at for r in redemptions)


def test_one_token_redeemed_twice_at_once(world: World) -> None:
    server = world.server
    token = world.tokens[TWICE.lower()]
    twice = redeem_at_once(server, [token, token], Events())
    for redemption in twice:
        redemption.join()
    assert sorted(r.status for r in twice) == [200, 400]
    (won,) = [r for r in twice if r.status == 200]
    (lost,) = [r for r in twice if r.status == 400]
    assert b"already used" in lost.answer
    opened = pkcs12.load_pkcs12(won.answer, P12_PASSWORD.encode())
    assert opened.cert is not None
    issued = {opened.cert.certificate.public_bytes(Encoding.DER),
              opened.additional_certs[0].certificate.public_bytes(Encoding.DER)}
    conn = innocent(server)
    ((_, entry),) = conn.search_s(TWICE, ldap.SCOPE_BASE, "(objectClass=*)",
                                  ["userCertificate;binary"])
    conn.unbind_s()
    assert set(entry["userCertificate;binary"]) == issued
