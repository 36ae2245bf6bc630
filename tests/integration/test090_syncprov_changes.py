"""Scenario 090: what the syncrepl provider tells of entries that leave a
search's content, and of a cookie it cannot follow (RFC 4533 §3.3, §3.4).

Consumers are real: python-ldap's `ldap.syncrepl.SyncreplConsumer` and a
Debian slapd 2.5 with a `syncrepl` directive for one subtree and a filter.

- refreshAndPersist for `(description=keep)` under ou=people: a modify
  that makes the filter false reaches the consumer as a Sync State delete
  of that entryUUID, and the modify that makes it true again as the entry;
  a rename out of ou=people is a delete; a rename within it is the entry
  under its new DN, and no delete; an entry added outside the filter is
  not told of at all.
- refreshOnly from a cookie: an entry modified out of the filter and one
  renamed out of the base come in the syncIdSet with refreshDeletes TRUE,
  next to the deletes; an entry still in the content that changed comes as
  an entry, and is not in the syncIdSet.
- With a delete log of two (`replication.delete_log: 2`), a cookie older
  than what it dropped: reloadHint FALSE (python-ldap's default) is
  e-syncRefreshRequired (4096) with no entries; reloadHint TRUE is a
  present phase (refreshDeletes FALSE) after which the consumer holds what
  the provider does.
- slapd replicating ou=people for `(description=keep)` (refreshAndPersist)
  drops the entry that a modify took out of the filter and the one renamed
  out of ou=people; stopped, then started again after more of both, it
  converges from its cookie.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import ldap
import ldap.ldapobject
import pytest
from ldap.syncrepl import SyncRequestControl

from tests.integration.conftest import SUFFIX, Server, make_server
from tests.integration.slapd import Slapd, start_slapd
from tests.integration.sync_client import Replica, memory_replica, poll_until

PEOPLE = f"ou=people,{SUFFIX}"
OTHERS = f"ou=others,{SUFFIX}"
KEEP = "(description=keep)"
E_SYNC_REFRESH_REQUIRED = 4096


def dn(name: str, under: str = PEOPLE) -> str:
    return f"cn={name},{under}"


def person(name: str, description: str = "keep") -> str:
    return (f"dn: {dn(name)}\nobjectClass: inetOrgPerson\ncn: {name}\nsn: {name}\n"
            f"description: {description}\n\n")


def change(server: Server, ldif: str) -> None:
    done = server.tool("ldapmodify", "-a", input=ldif.encode())
    assert done.returncode == 0, done.stderr


def describe(name: str, description: str) -> str:
    return (f"dn: {dn(name)}\nchangetype: modify\nreplace: description\n"
            f"description: {description}\n\n")


def move_out(name: str) -> str:
    return f"dn: {dn(name)}\nchangetype: modrdn\nnewrdn: cn={name}\ndeleteoldrdn: 1\n" \
           f"newsuperior: {OTHERS}\n\n"


def delete(name: str) -> str:
    return f"dn: {dn(name)}\nchangetype: delete\n\n"


def tree(names: list[str]) -> str:
    return (f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n\n"
            f"dn: {OTHERS}\nobjectClass: organizationalUnit\nou: others\n\n"
            + "".join(person(n) for n in names))


def refresh_only(c: Replica, reload_hint: bool = False) -> None:
    request = SyncRequestControl(cookie=c.cookie, mode="refreshOnly", reloadHint=reload_hint)
    # What `syncrepl_search` sets before it sends its own request, which
    # cannot carry reloadHint.
    c._SyncreplConsumer__refreshDone = False
    msgid = c.search_ext(PEOPLE, ldap.SCOPE_SUBTREE, KEEP, ["*", "+"], serverctrls=[request])
    while c.syncrepl_poll(msgid=msgid, all=1, timeout=30):
        pass


def entry_csn(server: Server, name: str) -> str:
    found = server.tool("ldapsearch", "-LLL", "-b", name, "-s", "base", "(objectClass=*)",
                        "entryCSN")
    return next(line.split(": ", 1)[1] for line in found.stdout.decode().splitlines()
                if line.startswith("entryCSN: "))


def cookie_csn(c: Replica) -> str:
    """The cookie's CSN (one server id here), "" before there is one."""
    fields = dict(part.split("=", 1) for part in (c.cookie or "").split(",") if "=" in part)
    return fields.get("csn", "")


@pytest.fixture
def provider(tmp_path: Path) -> Iterator[Server]:
    server = make_server(tmp_path, "--no-ca")
    server.start()
    yield server
    server.stop()


def test_persist_tells_entries_leaving_the_content_as_deletes(provider: Server) -> None:
    change(provider, tree(["a", "b", "c"]))
    c = memory_replica(provider)
    msgid = c.syncrepl_search(PEOPLE, ldap.SCOPE_SUBTREE, mode="refreshAndPersist",
                              filterstr=KEEP, attrlist=["*", "+"])
    poll_until(c, msgid, lambda: c.refreshed)
    a, b, cc = c.uuid_of(dn("a")), c.uuid_of(dn("b")), c.uuid_of(dn("c"))
    change(provider, describe("a", "drop"))
    poll_until(c, msgid, lambda: a not in c.entries)
    assert c.deleted == [a]
    change(provider, describe("a", "keep"))
    poll_until(c, msgid, lambda: c.dn_of(a) == dn("a").lower())
    change(provider, move_out("b"))
    poll_until(c, msgid, lambda: b not in c.entries)
    assert c.deleted == [a, b]
    change(provider, f"dn: {dn('c')}\nchangetype: modrdn\nnewrdn: cn=c2\ndeleteoldrdn: 0\n\n")
    poll_until(c, msgid, lambda: c.dn_of(cc) == dn("c2").lower())
    # The pass whose cookie covers this modify has seen the add before it.
    change(provider, person("e", "drop") + describe("a", "keep"))
    stamp = entry_csn(provider, dn("a"))
    poll_until(c, msgid, lambda: cookie_csn(c) >= stamp)
    assert c.deleted == [a, b]
    # Added, sent and dropped within a second: its timestamps are equal.
    change(provider, person("f"))
    poll_until(c, msgid, lambda: dn("f").lower() in c.dns())
    f = c.uuid_of(dn("f"))
    change(provider, describe("f", "drop"))
    poll_until(c, msgid, lambda: f not in c.entries)
    assert c.deleted == [a, b, f]
    c.abandon(msgid)


def test_refresh_from_a_cookie_sends_what_left_the_content_in_the_id_set(
        provider: Server) -> None:
    change(provider, tree(["a", "b", "c", "d"]))
    first = memory_replica(provider)
    refresh_only(first)
    uuids = {name: first.uuid_of(dn(name)) for name in "abcd"}
    change(provider, describe("a", "drop") + move_out("b") + describe("c", "keep")
           + delete("d"))
    again = memory_replica(provider, first.cookie)
    again.entries = dict(first.entries)
    refresh_only(again)
    assert again.sent == [dn("c").lower()]
    assert sorted(again.deleted) == sorted([uuids["a"], uuids["b"], uuids["d"]])
    assert again.refresh_deletes is True
    assert sorted(again.dns()) == [dn("c").lower()]


@pytest.fixture
def short_log(tmp_path: Path) -> Iterator[Server]:
    server = make_server(tmp_path, "--no-ca")
    server.configure("replication", delete_log=2)
    server.start()
    yield server
    server.stop()


def stale_cookie(server: Server) -> tuple[Replica, str]:
    """A consumer's copy and cookie from before four deletes (the log keeps two)."""
    change(server, tree(["a", "b", "c", "d", "e", "f"]))
    first = memory_replica(server)
    refresh_only(first)
    assert first.cookie is not None
    change(server, "".join(delete(n) for n in "abcd"))
    return first, first.cookie


def test_a_stale_cookie_without_reload_hint_is_refresh_required(short_log: Server) -> None:
    _, cookie = stale_cookie(short_log)
    again = memory_replica(short_log, cookie)
    with pytest.raises(ldap.LDAPError) as refused:
        refresh_only(again)
    assert refused.value.args[0]["result"] == E_SYNC_REFRESH_REQUIRED
    assert again.sent == []


def test_a_stale_cookie_with_reload_hint_is_a_present_phase(short_log: Server) -> None:
    first, cookie = stale_cookie(short_log)
    again = memory_replica(short_log, cookie)
    again.entries = dict(first.entries)
    refresh_only(again, reload_hint=True)
    assert again.refresh_deletes is False
    assert again.deleted == []
    assert sorted(again.dns()) == [dn("e").lower(), dn("f").lower()]


def replica(work: Path, provider: Server) -> Slapd:
    """slapd replicating ou=people for `KEEP` from `provider` (refreshAndPersist)."""
    return start_slapd(work, SUFFIX, database_lines=(
        "index entryUUID eq\n"
        f"syncrepl rid=002 provider={provider.uri} type=refreshAndPersist\n"
        f'  searchbase="{PEOPLE}" filter="{KEEP}" bindmethod=simple\n'
        f'  binddn="{provider.root_dn}" credentials={provider.root_password}\n'
        '  retry="1 +" timeout=5'))


def listed(found: subprocess.CompletedProcess[bytes]) -> set[str]:
    """The DNs an `ldapsearch -LLL` printed."""
    return {line[4:].lower() for line in found.stdout.decode().splitlines()
            if line.startswith("dn: ")}


def people(slapd: Slapd) -> set[str]:
    return listed(slapd.tool("ldapsearch", "-LLL", "-b", PEOPLE, "-s", "one",
                             "(objectClass=inetOrgPerson)", "1.1"))


def kept(server: Server) -> set[str]:
    return listed(server.tool("ldapsearch", "-LLL", "-b", PEOPLE, "-s", "one", KEEP, "1.1"))


def holds(slapd: Slapd, server: Server) -> None:
    deadline = time.monotonic() + 60
    while people(slapd) != kept(server):
        assert time.monotonic() < deadline, (
            f"slapd holds {sorted(people(slapd))}, certdir {sorted(kept(server))}\n"
            + slapd.log()[-2000:])
        time.sleep(0.5)


def test_slapd_drops_what_leaves_its_filter_or_base(provider: Server, tmp_path: Path) -> None:
    change(provider, tree([f"p{i}" for i in range(6)]))
    slapd = replica(tmp_path / "slapd", provider)
    try:
        holds(slapd, provider)
        assert len(people(slapd)) == 6
        change(provider, describe("p0", "drop") + move_out("p1"))
        holds(slapd, provider)
        assert people(slapd) == {dn(f"p{i}").lower() for i in range(2, 6)}
        slapd.stop()
        change(provider, describe("p2", "drop") + move_out("p3") + describe("p0", "keep"))
        slapd.start()
        holds(slapd, provider)
        assert people(slapd) == {dn("p0").lower(), dn("p4").lower(), dn("p5").lower()}
    finally:
        slapd.stop()
