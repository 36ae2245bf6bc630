"""Scenario 089: two certdirs in multi-provider mode (issue 12 part 4), each
the provider and the refreshAndPersist consumer of the other
(`replication.consumer.multi_provider`, distinct `replication.server_id`s).

- Both take writes (an add on a replica would be referral, 10): what is
  added or modified on either reaches the other, and both hold the same
  entries, operational attributes included (`*` and `+`; contextCSN apart,
  whose value for a node's own server id may be a CSN no entry carries).
  Each node's contextCSN has a value for both server ids.
- The suffix each `certdir init` made (two entryUUIDs for one DN) becomes
  one entry: the newer takes the older over.
- Renames and deletes on either node reach the other, of entries made on
  it or on its peer; the peer names them by entryUUID, also entries made
  here that it never sent back (its consumer refused meanwhile).
- A partition: node A stopped, an entry modified on B; B stopped, the
  same entry modified on A (later), another entry modified on A alone; A
  stopped, then B and A started again: they converge on A's later modify
  (the newer entryCSN wins, as in OpenLDAP's multi-provider, though A is
  sent B's older one) and B's change elsewhere stays.
  Each node's refresh after its restart resumes from its stored cookie: it
  is sent the few entries that changed, not every entry again.
- Two nodes given one server id: the first change stamped by the peer
  with it is refused (a CSN of this node's server id it never issued),
  with a message naming `replication.server_id`.
- A multi-provider node without a server id, or with one past 4095, or a
  `multi_provider` that is not a boolean, stops `certdir serve` (exit 1)
  with a message naming the key.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import CERTDIR, SUFFIX, Server, make_server
from tests.integration.ldif_compare import Record, by_dn

PEOPLE = f"ou=people,{SUFFIX}"
CONVERGE_S = 60
SERVER_IDS = {"a": 1, "b": 2001}
REFRESHED = re.compile(r"refresh from \S+ done: (\d+) entries sent in full")
# Entries made before the partition: a resume sends far fewer.
BOOK = 20


def person(name: str, extra: str = "") -> str:
    return (f"dn: cn={name},{PEOPLE}\nobjectClass: inetOrgPerson\ncn: {name}\nsn: {name}\n"
            f"mail: {name}@example.com\n{extra}\n")


def ldif(server: Server, tool: str, text: str) -> None:
    done = server.tool(tool, input=text.encode())
    assert done.returncode == 0, done.stderr.decode()


def modify(server: Server, name: str, description: str) -> None:
    ldif(server, "ldapmodify", f"dn: cn={name},{PEOPLE}\nchangetype: modify\n"
         f"replace: description\ndescription: {description}\n")


def node(tmp: Path, name: str) -> Server:
    return make_server(tmp / name, "--no-ca", "--no-kms")


def link(server: Server, peer: Server, name: str, **settings: Any) -> None:
    """`server` a multi-provider node consuming from `peer`."""
    (server.data_dir / "peer.pw").write_text(peer.root_password + "\n")
    server.configure("replication", server_id=SERVER_IDS[name], consumer={
        "provider": peer.uri, "rid": SERVER_IDS[name] % 1000, "bind_dn": peer.root_dn,
        "password_file": "peer.pw", "retry": "1 +", "type": "refreshAndPersist",
        "multi_provider": True, **settings})


def contents(server: Server) -> dict[str, Record]:
    done = server.tool("ldapsearch", "-LLL", "-b", SUFFIX, "(objectClass=*)", "*", "+")
    assert done.returncode == 0, done.stderr.decode()
    return {dn: Record(record.dn, tuple(a for a in record.attributes if a[0] != "contextcsn"))
            for dn, record in by_dn(done.stdout).items()}


def converged(a: Server, b: Server) -> dict[str, Record]:
    """Wait until both nodes hold the same entries; those entries."""
    deadline = time.monotonic() + CONVERGE_S
    while True:
        held_a, held_b = contents(a), contents(b)
        if held_a == held_b:
            return held_a
        if time.monotonic() > deadline:
            differ = [dn for dn in held_a if dn in held_b and held_a[dn] != held_b[dn]][:3]
            pytest.fail(f"not converged: only on A {sorted(set(held_a) - set(held_b))[:5]}, "
                        f"only on B {sorted(set(held_b) - set(held_a))[:5]}, differing "
                        f"{[(held_a[d], held_b[d]) for d in differ]}\n"
                        f"A: {a.log()[-2000:]}\nB: {b.log()[-2000:]}")
        time.sleep(0.3)


def until(server: Server, check: str, *args: str) -> None:
    """Wait until `check` is in what the search with `args` prints on `server`."""
    deadline = time.monotonic() + CONVERGE_S
    while check not in server.tool("ldapsearch", "-LLL", *args).stdout.decode():
        assert time.monotonic() < deadline, f"{check!r} never seen\n{server.log()[-3000:]}"
        time.sleep(0.3)


def context_sids(server: Server) -> set[int]:
    """The server ids of the suffix's contextCSN values."""
    done = server.tool("ldapsearch", "-LLL", "-b", SUFFIX, "-s", "base", "contextCSN")
    return {int(csn.split("#")[2], 16) for csn in by_dn(done.stdout)[SUFFIX.lower()]
            .values("contextCSN")}


def dns(held: dict[str, Record]) -> set[str]:
    return {record.dn.lower() for record in held.values()}


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Server]]:
    tmp = tmp_path_factory.mktemp("multi")
    a, b = node(tmp, "a"), node(tmp, "b")
    link(a, b, "a")
    link(b, a, "b")
    a.start()
    b.start()
    ldif(a, "ldapadd", f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n\n"
         + "".join(person(f"a{i}") for i in range(BOOK // 2)))
    ldif(b, "ldapadd", "".join(person(f"b{i}") for i in range(BOOK // 2)))
    yield a, b
    for server in (a, b):
        if server.proc is not None:
            log = server.stop()
            assert "Traceback" not in log, log[-3000:]


def test_writes_on_either_node_reach_the_other(pair: tuple[Server, Server]) -> None:
    a, b = pair
    held = converged(a, b)
    assert {f"cn=a{i},{PEOPLE}".lower() for i in range(BOOK // 2)} <= dns(held)
    assert {f"cn=b{i},{PEOPLE}".lower() for i in range(BOOK // 2)} <= dns(held)
    suffix = held[SUFFIX.lower()]
    assert len(suffix.values("entryUUID")) == 1
    modify(b, "a1", "changed on b")
    modify(a, "b1", "changed on a")
    until(a, "changed on b", "-b", f"cn=a1,{PEOPLE}", "description")
    held = converged(a, b)
    assert held[f"cn=b1,{PEOPLE}".lower()].values("description") == ("changed on a",)
    assert held[f"cn=a1,{PEOPLE}".lower()].values("description") == ("changed on b",)
    for server in (a, b):
        assert {SERVER_IDS["a"], SERVER_IDS["b"]} <= context_sids(server)


def test_renames_and_deletes_on_either_node_reach_the_other(
        pair: tuple[Server, Server]) -> None:
    a, b = pair
    converged(a, b)
    before = contents(a)[f"cn=a2,{PEOPLE}".lower()].values("entryUUID")
    ldif(b, "ldapmodify", f"dn: cn=a2,{PEOPLE}\nchangetype: modrdn\nnewrdn: cn=moved a2\n"
         "deleteoldrdn: 1\n\n"
         f"dn: cn=a3,{PEOPLE}\nchangetype: delete\n\n")
    ldif(a, "ldapmodify", f"dn: cn=b2,{PEOPLE}\nchangetype: modrdn\nnewrdn: cn=moved b2\n"
         "deleteoldrdn: 1\n\n"
         f"dn: cn=b3,{PEOPLE}\nchangetype: delete\n\n"
         f"dn: cn=a4,{PEOPLE}\nchangetype: delete\n\n")
    until(a, "moved a2", "-b", PEOPLE, "(cn=moved a2)", "cn")
    until(b, "moved b2", "-b", PEOPLE, "(cn=moved b2)", "cn")
    held = converged(a, b)
    names = dns(held)
    assert {f"cn=moved a2,{PEOPLE}".lower(), f"cn=moved b2,{PEOPLE}".lower()} <= names
    gone = {f"cn={n},{PEOPLE}".lower() for n in ("a2", "a3", "a4", "b2", "b3")}
    assert names.isdisjoint(gone), sorted(names & gone)
    assert held[f"cn=moved a2,{PEOPLE}".lower()].values("entryUUID") == before


def test_conflicting_modifies_converge_on_the_newer_after_a_partition(
        pair: tuple[Server, Server]) -> None:
    a, b = pair
    converged(a, b)
    a.stop()
    modify(b, "a5", "written on b")
    modify(b, "b5", "only b wrote this")
    b.stop()
    a.start()
    modify(a, "a5", "written on a later")
    modify(a, "a6", "only a wrote this")
    a.stop()
    # B first, so A's refresh from B most likely sees B's older a5 before
    # B has taken A's: A keeps its own, the newer.
    b.start()
    a.start()
    until(b, "written on a later", "-b", f"cn=a5,{PEOPLE}", "description")
    until(a, "only b wrote this", "-b", f"cn=b5,{PEOPLE}", "description")
    held = converged(a, b)
    assert held[f"cn=a5,{PEOPLE}".lower()].values("description") == ("written on a later",)
    assert held[f"cn=a6,{PEOPLE}".lower()].values("description") == ("only a wrote this",)
    assert held[f"cn=b5,{PEOPLE}".lower()].values("description") == ("only b wrote this",)
    for server in (a, b):
        sent = [int(n) for n in REFRESHED.findall(server.log())]
        assert sent and sent[-1] < BOOK // 2, (sent, server.log()[-3000:])


def test_the_peer_names_entries_made_here_by_entryuuid(pair: tuple[Server, Server]) -> None:
    """A's consumer refused by B (a wrong password) while A adds two entries
    that B replicates: A never hears them back from B, so they are not
    entries A replicated from B; B renames one and deletes the other, and A,
    let in again, finds both by entryUUID."""
    a, b = pair
    converged(a, b)
    a.stop()
    (a.data_dir / "peer.pw").write_text("not the password\n")
    a.start()
    ldif(a, "ldapadd", person("a-made-1") + person("a-made-2"))
    until(b, "a-made-2", "-b", PEOPLE, "(cn=a-made-2)", "cn")
    made = contents(b)[f"cn=a-made-1,{PEOPLE}".lower()].values("entryUUID")
    ldif(b, "ldapmodify", f"dn: cn=a-made-1,{PEOPLE}\nchangetype: modrdn\n"
         "newrdn: cn=renamed on b\ndeleteoldrdn: 1\n\n"
         f"dn: cn=a-made-2,{PEOPLE}\nchangetype: delete\n\n")
    assert "a-made-1" in a.tool("ldapsearch", "-LLL", "-b", PEOPLE, "(cn=a-made-1)",
                                "cn").stdout.decode()
    a.stop()
    (a.data_dir / "peer.pw").write_text(b.root_password + "\n")
    a.start()
    until(a, "renamed on b", "-b", PEOPLE, "(cn=renamed on b)", "cn")
    held = converged(a, b)
    assert held[f"cn=renamed on b,{PEOPLE}".lower()].values("entryUUID") == made
    assert not {f"cn=a-made-1,{PEOPLE}".lower(), f"cn=a-made-2,{PEOPLE}".lower()} & dns(held)


def test_a_peer_with_the_same_server_id_is_refused(tmp_path: Path) -> None:
    a, b = node(tmp_path, "a"), node(tmp_path, "b")
    link(a, b, "a")
    link(b, a, "a")
    a.start()
    b.start()
    try:
        ldif(b, "ldapadd", f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n")
        log = a.logged("the peer has the same replication.server_id", timeout=CONVERGE_S)
        assert (f"an entry stamped with this node's server id {SERVER_IDS['a']} and a CSN it "
                "never issued") in log
        assert PEOPLE not in a.tool("ldapsearch", "-LLL", "-b", SUFFIX, "(ou=people)",
                                    "1.1").stdout.decode()
    finally:
        for server in (a, b):
            log = server.stop()
            assert "Traceback" not in log, log[-3000:]


BAD: tuple[tuple[dict[str, int | str], str], ...] = (
    ({}, "replication.server_id: a multi-provider node (replication.consumer.multi_provider)"
         " needs a server id from 1 to 4095, distinct from its peer's"),
    ({"server_id": 4096}, "replication.server_id: 4096 is not allowed (from 0 to 4095)"),
    ({"server_id": 1, "multi_provider": "yes"},
     "replication.consumer.multi_provider: expected true or false, got 'yes'"),
)


@pytest.mark.parametrize(("setting", "message"), BAD)
def test_a_bad_multi_provider_config_is_refused(tmp_path: Path, setting: dict[str, Any],
                                                message: str) -> None:
    server = node(tmp_path, "bad")
    (server.data_dir / "peer.pw").write_text("secret\n")
    consumer = {"provider": "ldap://127.0.0.1:1", "rid": 1, "bind_dn": f"cn=admin,{SUFFIX}",
                "password_file": "peer.pw", "multi_provider": setting.get("multi_provider", True)}
    server.configure("replication", consumer=consumer,
                     **{k: v for k, v in setting.items() if k == "server_id"})
    done = subprocess.run([*CERTDIR, "serve", "--data-dir", str(server.data_dir)],
                          capture_output=True, timeout=60, check=False)
    assert done.returncode == 1, done.stderr
    assert message in done.stderr.decode(), done.stderr.decode()
