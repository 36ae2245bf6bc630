"""Scenario 086: chaining of referral objects (issue 12 part 2, what slapo-chain does).

certdir holds a referral object ou=remote whose `ref` names a slapd that
holds that subtree.

- Without chasing, a subtree search returns the continuation reference
  (RFC 4511 §4.5.3) and a search based below the referral object the
  referral (10) (RFC 3296 §5.2, pinned in test012).
- With the chaining behavior control asking for chaining
  (draft-sermersheim-ldap-chaining, `ldapsearch -e chaining`), certdir
  follows both itself and returns slapd's entries instead; the same with
  `referral.chase: true` and no control. `referralsRequired` on such a
  server gets the references back.
- Followed entries pass our own filter and access: userPassword is neither
  returned nor testable.
- A referral naming a server that does not answer is returned as it was.
- A chased search carries the control asking for referrals: the server it
  reaches never chains it again.

The filters name `l`, which certdir does not index: under an indexed filter
a subtree search drops the continuation reference today (issue 12 part 5),
whatever chaining does.
"""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import SUFFIX, Server, make_server
from tests.integration.ldif_compare import parse
from tests.integration.slapd import Slapd, start_slapd
from tests.integration.test085_referral_list import PAT_CERT, person, stopped, suffix_entry
from tests.ports import free_port

REMOTE = f"ou=remote,{SUFFIX}"
DEAD = f"ou=dead,{SUFFIX}"
RITA = f"cn=Rita Remote,{REMOTE}"

SLAPD_LDIF = (
    suffix_entry(SUFFIX)
    + f"dn: {REMOTE}\nobjectClass: organizationalUnit\nou: remote\n\n"
    + person(RITA, "Rita Remote", "Remote", "rita@example.com", "l: Rome",
             "userCertificate;binary:: " + base64.b64encode(PAT_CERT).decode(),
             "userPassword: rita-secret")
    + person(f"cn=Rob Remote,{REMOTE}", "Rob Remote", "Remote", "rob@example.com", "l: Oslo"))


def local_tree(slapd: Slapd) -> str:
    return (f"dn: ou=people,{SUFFIX}\nobjectClass: organizationalUnit\nou: people\n\n"
            + person(f"cn=Lee Local,ou=people,{SUFFIX}", "Lee Local", "Local",
                     "lee@example.com", "l: Oslo")
            + f"dn: {REMOTE}\nobjectClass: referral\nobjectClass: extensibleObject\n"
              f"ou: remote\nref: ldap://127.0.0.1:{slapd.port}/{REMOTE}\n\n"
            + f"dn: {DEAD}\nobjectClass: referral\nobjectClass: extensibleObject\n"
              f"ou: dead\nref: ldap://127.0.0.1:{free_port()}/{DEAD}\n\n")


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    slapd = start_slapd(tmp_path_factory.mktemp("remote"), SUFFIX, SLAPD_LDIF)
    yield slapd
    slapd.stop()


def certdir(tmp: Path, slapd: Slapd, **referral: object) -> Server:
    server = make_server(tmp, "--no-ca")
    if referral:
        server.configure("referral", **referral)
    server.start()
    server.tool("ldapadd", input=local_tree(slapd).encode(), check=True)
    return server


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory, remote: Slapd) -> Iterator[Server]:
    server = certdir(tmp_path_factory.mktemp("plain"), remote)
    yield server
    stopped(server)


@pytest.fixture(scope="module")
def chasing(tmp_path_factory: pytest.TempPathFactory, remote: Slapd) -> Iterator[Server]:
    server = certdir(tmp_path_factory.mktemp("chasing"), remote, chase=True)
    yield server
    stopped(server)


def search(server: Server, base: str, filter_: str, *args: str
           ) -> subprocess.CompletedProcess[bytes]:
    """ldapsearch without -LLL, which would leave the references out."""
    return server.tool("ldapsearch", "-b", base, *args, filter_, "cn", bind=False)


def found(done: subprocess.CompletedProcess[bytes]) -> tuple[int, set[str], set[str]]:
    """Result code, entry DNs and reference URLs."""
    text = done.stdout.decode()
    refs = {line[5:] for line in text.splitlines() if line.startswith("ref: ")}
    return done.returncode, {r.dn.lower() for r in parse(text) if not r.dn.startswith(
        "ref: ")}, refs


def test_without_chasing_the_reference_is_returned(plain: Server, remote: Slapd) -> None:
    assert found(search(plain, SUFFIX, "(l=Oslo)")) == (
        0, {f"cn=lee local,ou=people,{SUFFIX}"},
        {f"ldap://127.0.0.1:{remote.port}/{REMOTE}??sub",
         f"ldap://127.0.0.1:{dead_port(plain)}/{DEAD}??sub"})


def dead_port(server: Server) -> int:
    done = server.tool("ldapsearch", "-LLL", "-M", "-b", DEAD, "-s", "base",
                       "(objectClass=*)", "ref", bind=False)
    url = parse(done.stdout)[0].values("ref")[0]
    return int(url.split("/")[2].split(":")[1])


def test_the_control_chases_continuation_references(plain: Server, remote: Slapd) -> None:
    assert found(search(plain, SUFFIX, "(l=Oslo)", "-e", "chaining=chainingPreferred")) == (
        0, {f"cn=lee local,ou=people,{SUFFIX}", f"cn=rob remote,{REMOTE}".lower()},
        {f"ldap://127.0.0.1:{dead_port(plain)}/{DEAD}??sub"})


def test_the_control_chases_a_referral_answering_the_base(plain: Server) -> None:
    assert found(search(plain, RITA, "(objectClass=*)", "-s", "base", "-e",
                        "chaining=chainingRequired")) == (0, {RITA.lower()}, set())


def test_chase_true_follows_referrals_without_the_control(chasing: Server) -> None:
    assert found(search(chasing, SUFFIX, "(l=Rome)")) == (
        0, {RITA.lower()}, {f"ldap://127.0.0.1:{dead_port(chasing)}/{DEAD}??sub"})


def test_referrals_required_gets_the_references(chasing: Server, remote: Slapd) -> None:
    assert found(search(chasing, SUFFIX, "(l=Rome)", "-e",
                        "chaining=referralsRequired")) == (
        0, set(), {f"ldap://127.0.0.1:{remote.port}/{REMOTE}??sub",
                   f"ldap://127.0.0.1:{dead_port(chasing)}/{DEAD}??sub"})


def test_a_referral_nobody_answers_is_returned(chasing: Server) -> None:
    done = search(chasing, f"cn=x,{DEAD}", "(objectClass=*)")
    assert (done.returncode, f"ldap://127.0.0.1:{dead_port(chasing)}/cn=x,{DEAD}"
            in done.stdout.decode()) == (10, True)


def test_followed_entries_pass_our_access_rules(chasing: Server) -> None:
    read = chasing.tool("ldapsearch", "-LLL", "-b", SUFFIX, "(l=Rome)", "*",
                        bind=False)
    tested = search(chasing, RITA, "(userPassword=*)", "-s", "base")
    names = [record.names() for record in parse(read.stdout)]
    assert (read.returncode, len(names), names[0] >= {"mail", "cn", "usercertificate;binary"},
            "userpassword" in names[0], found(tested)) == (
        0, 1, True, False, (0, set(), set()))


def test_a_chased_search_is_not_chased_again(tmp_path: Path, remote: Slapd) -> None:
    """Two chasing certdirs whose referral objects name each other: one hop each."""
    one = make_server(tmp_path / "one", "--no-ca")
    two = make_server(tmp_path / "two", "--no-ca")
    for server in (one, two):
        server.configure("referral", chase=True)
        server.start()
    loop = f"ou=loop,{SUFFIX}"
    for server, other in ((one, two), (two, one)):
        server.tool("ldapadd", check=True, input=(
            f"dn: {loop}\nobjectClass: referral\nobjectClass: extensibleObject\nou: loop\n"
            f"ref: {other.uri}/{loop}\n\n").encode())
    try:
        done = search(one, loop, "(cn=x)")
        logs = (one.stop(), two.stop())
    finally:
        for server in (one, two):
            if server.proc is not None:
                server.stop()
    assert (done.returncode, f"{two.uri}/{loop}" in done.stdout.decode()) == (10, True)
    assert [log.count('filter="(cn=x)"') for log in logs] == [1, 1]
