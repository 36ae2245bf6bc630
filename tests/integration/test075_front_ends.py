"""Scenario 075: two `certdir serve` front ends on one PostgreSQL database
(issue 11 part 2).

The second front end is a copy of the first's data directory (same
storage.url, same secrets) listening on other ports.

1. A write acknowledged by one front end is seen by the next search on the
   other, in both directions, for add, modify, modrdn and delete, by a base
   search (the entry the other front end has just read, so cached there)
   and by a filter search (its indexes).
2. A KMS single-use token redeemed on both front ends at once (`POST
   /kms/enroll` over https): exactly one answer is 200 with a PKCS#12, the
   other 400 "already used", and the entry holds exactly the two
   certificates of the one that won.
3. `certdir ca crl` run on both data directories at once: both succeed,
   and every CRL number (full and delta) is distinct; both front ends
   then serve the newest full CRL over http.
4. Adds on both front ends at once, from several connections each: every
   entry's entryCSN and entryUUID is distinct.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import ldap
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, pkcs12

from tests.integration.conftest import CERTDIR, SUFFIX, Server, make_server
from tests.integration.test035_redemptions_and_writes import (
    P12_PASSWORD,
    Events,
    Redemption,
)
from tests.ports import free_port

pytestmark = pytest.mark.only_on("postgresql", "front ends share a PostgreSQL database")

PEOPLE = f"ou=people,{SUFFIX}"
WRITE_ROUNDS = 40
TOKENS = 4
CRL_ROUNDS = 3
ADDERS = 3
ADDS = 30
ROOT_CRL = "Example-Root-CA.crl"


@dataclass(frozen=True, slots=True)
class Pair:
    first: Server
    second: Server

    @property
    def both(self) -> tuple[Server, Server]:
        return self.first, self.second


def second_front_end(first: Server, tmp: Path) -> Server:
    """A copy of `first`'s data directory on other ports (made before either starts)."""
    second = Server(data_dir=tmp / "second", port=free_port(), ldaps_port=free_port(),
                    http_port=free_port(), https_port=free_port())
    shutil.copytree(first.data_dir, second.data_dir)
    second.configure(listen=[second.uri, second.ldaps_uri])
    second.configure("http", listen=[second.http_url, second.https_url])
    return second


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    tmp = tmp_path_factory.mktemp("front-ends")
    first = make_server(tmp)
    second = second_front_end(first, tmp)
    first.start()
    second.start()
    added = first.tool("ldapadd", input=f"dn: {PEOPLE}\nobjectClass: organizationalUnit\n"
                                        f"ou: people\n".encode())
    assert added.returncode == 0, added.stderr
    yield Pair(first, second)
    logs = [server.stop() for server in (first, second)]
    assert not [log for log in logs if "Traceback" in log], logs


def bound(server: Server) -> ldap.ldapobject.LDAPObject:
    conn = ldap.initialize(server.uri)
    conn.simple_bind_s(server.root_dn, server.root_password)
    return conn


def base_read(conn: ldap.ldapobject.LDAPObject, dn: str) -> list[bytes] | None:
    """The entry's sn values, or None when there is no such entry."""
    try:
        ((_, entry),) = conn.search_s(dn, ldap.SCOPE_BASE, "(objectClass=*)", ["sn"])
    except ldap.NO_SUCH_OBJECT:
        return None
    values: list[bytes] = entry["sn"]
    return values


def filter_read(conn: ldap.ldapobject.LDAPObject, cn: str) -> list[str]:
    """The DNs, lower case, of the entries `(cn=<cn>)` finds under the suffix."""
    return sorted(dn.lower() for dn, _ in conn.search_s(SUFFIX, ldap.SCOPE_SUBTREE,
                                                        f"(cn={cn})", ["1.1"]))


def test_writes_seen_on_the_other_front_end_at_once(pair: Pair) -> None:
    conns = [bound(server) for server in pair.both]
    seen: list[tuple[object, ...]] = []
    expected: list[tuple[object, ...]] = []
    for n in range(WRITE_ROUNDS):
        writer, reader = conns if n % 2 == 0 else conns[::-1]
        cn, moved = f"seen-{n}", f"moved-{n}"
        dn, moved_dn = f"cn={cn},{PEOPLE}", f"cn={moved},{PEOPLE}"
        writer.add_s(dn, [("objectClass", [b"person"]), ("cn", [cn.encode()]),
                          ("sn", [b"added"])])
        seen.append((n, "add", base_read(reader, dn), filter_read(reader, cn)))
        expected.append((n, "add", [b"added"], [dn.lower()]))
        writer.modify_s(dn, [(ldap.MOD_REPLACE, "sn", [b"modified"])])
        seen.append((n, "modify", base_read(reader, dn), filter_read(reader, cn)))
        expected.append((n, "modify", [b"modified"], [dn.lower()]))
        writer.rename_s(dn, f"cn={moved}", delold=1)
        seen.append((n, "modrdn", base_read(reader, dn), base_read(reader, moved_dn),
                     filter_read(reader, moved)))
        expected.append((n, "modrdn", None, [b"modified"], [moved_dn.lower()]))
        writer.delete_s(moved_dn)
        seen.append((n, "delete", base_read(reader, moved_dn), filter_read(reader, moved)))
        expected.append((n, "delete", None, []))
    for conn in conns:
        conn.unbind_s()
    assert [s for s, e in zip(seen, expected, strict=True) if s != e] == []


def enrolled_token(server: Server, uid: str) -> str:
    added = server.tool("ldapadd", input=(
        f"dn: uid={uid},{PEOPLE}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\n"
        f"sn: {uid}\nmail: {uid}@example.com\n").encode())
    assert added.returncode == 0, added.stderr
    token = server.certdir("kms", "enroll-user", "--data-dir", str(server.data_dir), "--mail",
                           f"{uid}@example.com").stdout.decode().strip()
    assert token.startswith("ct-"), token
    return token


def certificates_of(server: Server, dn: str) -> set[bytes]:
    conn = bound(server)
    ((_, entry),) = conn.search_s(dn, ldap.SCOPE_BASE, "(objectClass=*)",
                                  ["userCertificate;binary"])
    conn.unbind_s()
    return set(entry.get("userCertificate;binary", []))


def issued_in(bundle: bytes) -> set[bytes]:
    """The encryption and the signing certificate a PKCS#12 bundle holds (the CA's follow)."""
    opened = pkcs12.load_pkcs12(bundle, P12_PASSWORD.encode())
    assert opened.cert is not None
    return {opened.cert.certificate.public_bytes(Encoding.DER),
            opened.additional_certs[0].certificate.public_bytes(Encoding.DER)}


def test_token_redeemed_on_both_at_once_succeeds_once(pair: Pair) -> None:
    outcomes = []
    for n in range(TOKENS):
        dn = f"uid=twice{n},{PEOPLE}"
        token = enrolled_token(pair.first, f"twice{n}")
        go = threading.Barrier(3)
        redemptions = [Redemption(server, token, go, Events()) for server in pair.both]
        for redemption in redemptions:
            redemption.start()
        go.wait()
        for redemption in redemptions:
            redemption.join()
        statuses = sorted(r.status for r in redemptions)
        won = [r.answer for r in redemptions if r.status == 200]
        lost = [r.answer for r in redemptions if r.status == 400]
        outcomes.append((statuses, [b"already used" in answer for answer in lost],
                         [issued_in(answer) == certificates_of(pair.second, dn)
                          for answer in won]))
    assert outcomes == [([200, 400], [True], [True])] * TOKENS


def crl_numbers(stdout: str) -> list[int]:
    found = re.fullmatch(r"CRL (\d+) \(\d+ revoked\) and delta CRL (\d+) published\n", stdout)
    assert found is not None, stdout
    return [int(found.group(1)), int(found.group(2))]


def test_crls_issued_at_once_get_distinct_numbers(pair: Pair) -> None:
    numbers = []
    for _ in range(CRL_ROUNDS):
        running = [subprocess.Popen([*CERTDIR, "ca", "crl", "--data-dir", str(server.data_dir)],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    env=server.env(), text=True) for server in pair.both]
        for process in running:
            stdout, stderr = process.communicate(timeout=300)
            assert process.returncode == 0, stderr
            numbers += crl_numbers(stdout)
    assert sorted(set(numbers)) == sorted(numbers)


def served_crl_number(server: Server) -> int:
    with urllib.request.urlopen(f"{server.http_url}/{ROOT_CRL}", timeout=60) as response:
        crl = x509.load_der_x509_crl(response.read())
    number: int = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    return number


def test_both_serve_the_newest_crl(pair: Pair) -> None:
    done = pair.second.certdir("ca", "crl", "--data-dir", str(pair.second.data_dir))
    (newest, _) = crl_numbers(done.stdout.decode())
    assert [served_crl_number(server) for server in pair.both] == [newest, newest]


@pytest.fixture(scope="module")
def added_at_once(pair: Pair) -> list[tuple[str, dict[str, list[bytes]]]]:
    """ADDERS connections on each front end add ADDS entries each, all at once;
    the entries with their entryCSN and entryUUID."""
    go = threading.Barrier(2 * ADDERS)
    failures: list[BaseException] = []

    def add(server: Server, name: str) -> None:
        conn = bound(server)
        go.wait()
        try:
            for n in range(ADDS):
                cn = f"csn-{name}-{n}"
                conn.add_s(f"cn={cn},{PEOPLE}", [("objectClass", [b"person"]),
                                                 ("cn", [cn.encode()]), ("sn", [b"csn"])])
        except ldap.LDAPError as e:
            failures.append(e)
        finally:
            conn.unbind_s()

    threads = [threading.Thread(target=add, args=(server, f"{side}{k}"))
               for side, server in enumerate(pair.both) for k in range(ADDERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    conn = bound(pair.first)
    found: list[tuple[str, dict[str, list[bytes]]]] = conn.search_s(
        PEOPLE, ldap.SCOPE_ONELEVEL, "(sn=csn)", ["entryCSN", "entryUUID"])
    conn.unbind_s()
    assert len(found) == 2 * ADDERS * ADDS
    return found


@pytest.mark.parametrize("attribute", ["entryCSN", "entryUUID"])
def test_concurrent_adds_get_distinct_values(
        added_at_once: list[tuple[str, dict[str, list[bytes]]]], attribute: str) -> None:
    values = [value for _, entry in added_at_once for value in entry[attribute]]
    assert (len(values), len(set(values))) == (len(added_at_once), len(added_at_once))
