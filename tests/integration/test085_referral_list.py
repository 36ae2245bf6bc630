"""Scenario 085: the referral list (issue 12 part 1), against real slapd peers.

- A person held only by a slapd of the list is found through certdir as a
  mail client looks them up, `(mail=…)` with `userCertificate;binary`,
  their certificate intact; a person certdir holds itself is answered here
  and the peers are not asked.
- A peer's namespace maps onto ours (`map`): slapd's dc=partner,dc=org
  entries come back under ou=partner,dc=example,dc=com.
- `mode: first` returns the first peer's answer that holds entries, in the
  list's order; `mode: merge` every peer's; `mode: refer` continuation
  references (RFC 4511 §4.5.3) to the peers, with their base and scope.
- Our own rules apply to the peers' entries: access (userPassword is never
  read, nor tested by a filter), the size limit (sizeLimitExceeded, 4).
- A dead peer (nothing listens) and a black-holed one (accepts, never
  answers) cost one timeout at most over several searches: the black hole
  sees one connection, the searches after the first skip both at once.
- Two certdirs listing each other (one through StartTLS with the other's CA,
  one bound with a password file) answer a search neither holds, each
  seeing it once: a chained search is never chained again. The client's
  own bind never reaches the peer.
- A bad `referral.list` value stops `certdir serve` with a message naming
  the key.
"""

from __future__ import annotations

import base64
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ldap
import pytest

from tests.integration.conftest import CERTDIR, SUFFIX, Server, make_server
from tests.integration.ldif_compare import by_dn, parse
from tests.integration.replication import certificate
from tests.integration.slapd import Slapd, start_slapd
from tests.ports import free_port

PARTNER = "dc=partner,dc=org"
MAPPED = f"ou=partner,{SUFFIX}"
TIMEOUT_S = 2

PAT_CERT = certificate("Pat Peer")


def person(dn: str, cn: str, sn: str, mail: str, *extra: str) -> str:
    return "\n".join([f"dn: {dn}", "objectClass: inetOrgPerson", f"cn: {cn}", f"sn: {sn}",
                      f"mail: {mail}", *extra]) + "\n\n"


def suffix_entry(suffix: str) -> str:
    name = suffix.split(",", maxsplit=1)[0].split("=")[1]
    return (f"dn: {suffix}\nobjectClass: dcObject\nobjectClass: organization\n"
            f"o: {name}\ndc: {name}\n\n")


PARTNER_LDIF = (
    suffix_entry(SUFFIX)
    + f"dn: ou=people,{SUFFIX}\nobjectClass: organizationalUnit\nou: people\n\n"
    + person(f"cn=Pat Peer,ou=people,{SUFFIX}", "Pat Peer", "Peer", "pat@example.com",
             "userCertificate;binary:: " + base64.b64encode(PAT_CERT).decode(),
             "userPassword: pat-secret")
    + person(f"cn=Both Remote,ou=people,{SUFFIX}", "Both Remote", "Remote", "both@example.com")
    + person(f"cn=Sam Shared,ou=people,{SUFFIX}", "Sam Shared", "Shared", "sam@example.com"))

MAPPED_LDIF = (
    suffix_entry(PARTNER)
    + person(f"cn=Quinn,{PARTNER}", "Quinn", "Quinn", "quinn@partner.org")
    + person(f"cn=Sue Shared,{PARTNER}", "Sue Shared", "Shared", "sue@partner.org"))

LOCAL_LDIF = (
    f"dn: ou=people,{SUFFIX}\nobjectClass: organizationalUnit\nou: people\n\n"
    + person(f"cn=Both Local,ou=people,{SUFFIX}", "Both Local", "Local", "both@example.com"))


class BlackHole:
    """A TCP port that accepts connections and never answers; counts them."""

    def __init__(self) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.accepted = 0
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.socket.accept()
            except OSError:
                return
            self.accepted += 1
            self.held.append(conn)

    def close(self) -> None:
        self.socket.close()
        for conn in self.held:
            conn.close()


def peer(url: str, **extra: Any) -> dict[str, Any]:
    return {"url": url, "timeout_s": TIMEOUT_S, **extra}


def certdir_with(tmp: Path, peers: list[dict[str, Any]], mode: str = "first",
                 ldif: str = LOCAL_LDIF, **settings: Any) -> Server:
    server = make_server(tmp, "--no-ca")
    server.configure("referral", mode=mode, list=peers, **settings)
    server.start()
    if ldif:
        server.tool("ldapadd", input=ldif.encode(), check=True)
    return server


def stopped(server: Server) -> None:
    log = server.stop()
    assert "Traceback" not in log, log


@pytest.fixture(scope="module")
def partner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    slapd = start_slapd(tmp_path_factory.mktemp("partner"), SUFFIX, PARTNER_LDIF)
    yield slapd
    slapd.stop()


@pytest.fixture(scope="module")
def mapped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    slapd = start_slapd(tmp_path_factory.mktemp("mapped"), PARTNER, MAPPED_LDIF)
    yield slapd
    slapd.stop()


def _peers(partner: Slapd, mapped: Slapd) -> list[dict[str, Any]]:
    return [peer(partner.suffix_url), peer(mapped.suffix_url, map={PARTNER: MAPPED})]


@pytest.fixture(scope="module")
def first(tmp_path_factory: pytest.TempPathFactory, partner: Slapd,
          mapped: Slapd) -> Iterator[Server]:
    server = certdir_with(tmp_path_factory.mktemp("first"), _peers(partner, mapped))
    yield server
    stopped(server)


@pytest.fixture(scope="module")
def merge(tmp_path_factory: pytest.TempPathFactory, partner: Slapd,
          mapped: Slapd) -> Iterator[Server]:
    server = certdir_with(tmp_path_factory.mktemp("merge"), _peers(partner, mapped), "merge")
    yield server
    stopped(server)


def search(server: Server, filter_: str, *attributes: str, base: str = SUFFIX,
           options: tuple[str, ...] = ()) -> subprocess.CompletedProcess[bytes]:
    return server.tool("ldapsearch", "-LLL", *options, "-b", base, filter_, *attributes,
                       bind=False)


def dns(done: subprocess.CompletedProcess[bytes]) -> set[str]:
    return {record.dn.lower() for record in parse(done.stdout) if record.dn.startswith(
        ("cn=", "ou=", "dc="))}


def test_mail_lookup_finds_the_peer_person_and_certificate(first: Server) -> None:
    client = ldap.initialize(first.uri)
    client.simple_bind_s("", "")
    found = client.search_s(SUFFIX, ldap.SCOPE_SUBTREE, "(mail=pat@example.com)",
                            ["userCertificate;binary", "mail"])
    client.unbind_s()
    assert [(dn, attrs.get("userCertificate;binary"), attrs.get("mail"))
            for dn, attrs in found] == [
        (f"cn=Pat Peer,ou=people,{SUFFIX}", [PAT_CERT], [b"pat@example.com"])]


def test_a_local_entry_is_answered_here(first: Server) -> None:
    done = search(first, "(mail=both@example.com)", "cn")
    assert (done.returncode, dns(done)) == (0, {f"cn=both local,ou=people,{SUFFIX}"})


def test_a_mapped_peer_entry_comes_back_under_our_dn(first: Server) -> None:
    done = search(first, "(mail=quinn@partner.org)", "mail")
    assert (done.returncode, by_dn(done.stdout)[f"cn=quinn,{MAPPED}"].values("mail")) == (
        0, ("quinn@partner.org",))


def test_a_base_only_on_the_peer_is_searched_there(first: Server) -> None:
    done = search(first, "(objectClass=*)", "cn", base=f"cn=Quinn,{MAPPED}",
                  options=("-s", "base"))
    assert (done.returncode, dns(done)) == (0, {f"cn=quinn,{MAPPED}"})


def test_first_takes_the_first_peer_with_entries(first: Server) -> None:
    done = search(first, "(sn=Shared)", "cn")
    assert (done.returncode, dns(done)) == (0, {f"cn=sam shared,ou=people,{SUFFIX}"})


def test_merge_takes_every_peer(merge: Server) -> None:
    done = search(merge, "(sn=Shared)", "cn")
    assert (done.returncode, dns(done)) == (0, {f"cn=sam shared,ou=people,{SUFFIX}",
                                                f"cn=sue shared,{MAPPED}"})


def test_our_size_limit_applies_to_peer_entries(merge: Server) -> None:
    done = search(merge, "(sn=Shared)", "cn", options=("-z", "1"))
    assert (done.returncode, len(dns(done))) == (4, 1)


def test_user_password_is_neither_read_nor_tested(first: Server) -> None:
    read = search(first, "(mail=pat@example.com)", "*")
    tested = search(first, "(userPassword=*)", "cn")
    assert (read.returncode, "userpassword" in by_dn(read.stdout)[
        f"cn=pat peer,ou=people,{SUFFIX}"].names(), tested.returncode, dns(tested)) == (
        0, False, 0, set())


def test_a_miss_everywhere_is_success_without_entries(first: Server) -> None:
    done = search(first, "(mail=nobody@example.com)", "cn")
    assert (done.returncode, done.stdout) == (0, b"")


def test_outside_suffix_chains_bases_outside_the_naming_context(
        tmp_path: Path, first: Server, mapped: Slapd) -> None:
    server = certdir_with(tmp_path, [peer(mapped.suffix_url)], outside_suffix=True)
    try:
        outside = search(server, "(mail=quinn@partner.org)", "cn", base=PARTNER)
    finally:
        stopped(server)
    inside_only = search(first, "(mail=quinn@partner.org)", "cn", base=PARTNER)
    assert (outside.returncode, dns(outside), inside_only.returncode) == (
        0, {f"cn=quinn,{PARTNER}"}, 32)


def test_refer_returns_continuation_references(tmp_path: Path, partner: Slapd,
                                               mapped: Slapd) -> None:
    server = certdir_with(tmp_path, _peers(partner, mapped), "refer")
    try:
        done = server.tool("ldapsearch", "-b", SUFFIX, "(mail=pat@example.com)", "cn",
                           bind=False)
    finally:
        stopped(server)
    # ldapsearch prints references only without -LLL.
    refs = {line[5:] for line in done.stdout.decode().splitlines() if line.startswith("ref: ")}
    assert (done.returncode, refs) == (0, {
        f"ldap://127.0.0.1:{partner.port}/{SUFFIX}??sub",
        f"ldap://127.0.0.1:{mapped.port}/{PARTNER}??sub"})


def test_dead_and_black_holed_peers_cost_one_timeout(tmp_path: Path, partner: Slapd) -> None:
    hole = BlackHole()
    peers = [peer(f"ldap://127.0.0.1:{free_port()}/{SUFFIX}"),
             peer(f"ldap://127.0.0.1:{hole.port}/{SUFFIX}"), peer(partner.suffix_url)]
    server = certdir_with(tmp_path, peers, cache={"positive_s": 0, "negative_s": 0})
    try:
        started = time.monotonic()
        answers = [search(server, "(mail=pat@example.com)", "cn") for _ in range(5)]
        elapsed = time.monotonic() - started
    finally:
        stopped(server)
        hole.close()
    assert [(a.returncode, dns(a)) for a in answers] == [
        (0, {f"cn=pat peer,ou=people,{SUFFIX}"})] * 5
    assert (hole.accepted, elapsed < 2 * TIMEOUT_S) == (1, True)


def test_two_certdirs_listing_each_other_do_not_loop(tmp_path: Path) -> None:
    """one asks two through StartTLS, anonymously; two asks one over ldaps://,
    bound as one's root DN with a password file; each checks the other's
    certificate against the other's CA."""
    one = make_server(tmp_path / "one", "--no-ca")
    two = make_server(tmp_path / "two", "--no-ca")
    (two.data_dir / "secrets" / "one-password").write_text(one.root_password)
    shutil.copy(two.ca_file, one.data_dir / "two-ca.pem")
    shutil.copy(one.ca_file, two.data_dir / "one-ca.pem")
    one.configure("referral", list=[peer(f"{two.uri}/{SUFFIX}", starttls=True,
                                         ca_file="two-ca.pem")])
    two.configure("referral", list=[peer(f"{one.ldaps_uri}/{SUFFIX}", bind_dn=one.root_dn,
                                         password_file="secrets/one-password",
                                         ca_file="one-ca.pem")])
    one.start()
    two.start()
    try:
        # The client of one binds as one's root DN: two never sees that bind.
        answers = (one.tool("ldapsearch", "-LLL", "-b", SUFFIX, "(mail=loop1@example.com)",
                            "cn"),
                   search(two, "(mail=loop2@example.com)", "cn"))
        logs = (one.stop(), two.stop())
    finally:
        for server in (one, two):
            if server.proc is not None:
                server.stop()
    assert [(done.returncode, done.stdout) for done in answers] == [(0, b""), (0, b"")]
    assert [(log.count("(mail=loop1@example.com)"), log.count("(mail=loop2@example.com)"))
            for log in logs] == [(1, 1), (1, 1)]
    assert (f'BIND dn="{one.root_dn}" method=128 result=0' in logs[0],
            f'BIND dn="{one.root_dn}"' in logs[1]) == (True, False)
    assert ["Traceback" in log or "referral list:" in log for log in logs] == [False, False]


def test_a_bad_peer_setting_is_named(tmp_path: Path) -> None:
    server = make_server(tmp_path, "--no-ca")
    server.configure("referral", list=[{"url": f"ldap://127.0.0.1:1/{SUFFIX}",
                                        "timeout_s": 0}])
    config = server.data_dir / "certdir.yaml"
    done = subprocess.run([*CERTDIR, "serve", "--data-dir", str(server.data_dir)],
                          capture_output=True, text=True, check=False, timeout=60)
    assert (done.returncode, done.stderr) == (
        1, f"certdir: error: {config}: referral.list[0].timeout_s: 0 is not allowed "
           "(seconds, above 0 and at most 300)\n")

