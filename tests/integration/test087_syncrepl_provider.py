"""Scenario 087: certdir as a syncrepl provider (RFC 4533).

Consumers are real: python-ldap's `ldap.syncrepl.SyncreplConsumer`, and a
Debian slapd 2.5 configured with a `syncrepl` directive (refreshOnly and
refreshAndPersist), holding slapd's own core, cosine and inetorgperson
schema.

- The root DSE lists 1.3.6.1.4.1.4203.1.9.1.1 in supportedControl.
- refreshOnly without a cookie: every entry in scope, each with its
  entryUUID, and a cookie `rid=NNN,csn=...` that names the client's rid.
- refreshOnly from that cookie: only what changed since, and the deletes
  since as a syncIdSet with refreshDeletes TRUE (the consumer is told of
  them, not left to find them by a present phase).
- refreshAndPersist: after the refresh, adds, modifies, renames (same
  entryUUID, new DN) and deletes reach the consumer as they commit;
  Abandon ends the persist search and the connection serves on; Cancel
  ends it at once, while it waits for commits, with canceled (118), and
  the Cancel then answers success.
- A cookie that is not OpenLDAP's form is protocolError (2).
- slapd as consumer replicates people with userCertificate;binary values,
  then the changes made on certdir; slapd killed with -9 while certdir
  adds, modifies, renames and deletes comes back with its cookie and
  converges. (Either side killed in the middle of a refresh: test099, on
  10,000 entries.)
- What the CA publishes from a process of its own (`certdir ca issue`,
  `ca revoke`: certificates on people, the CA entries with their
  certificate and CRLs) reaches a persist consumer (slapd), within the
  second in which the provider looks for other processes' commits.
- A certdir replica (`replication.consumer`, issue 12 part 4) of this
  provider converges, then follows an add, a modify, a rename and a delete.
- contextCSN on the suffix is the newest entryCSN (one value per server
  id), readable by the root DN and not by anonymous.
"""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Iterator
from pathlib import Path

import ldap
import ldap.ldapobject
import pytest

from tests.integration.conftest import SUFFIX, Server, make_server
from tests.integration.replication import certificate, converge, start_consumer
from tests.integration.sync_client import Replica, memory_replica, poll_until

SYNC = "1.3.6.1.4.1.4203.1.9.1.1"
PEOPLE = f"ou=people,{SUFFIX}"
COUNT = 20


def refresh_only(c: Replica) -> None:
    msgid = c.syncrepl_search(PEOPLE, ldap.SCOPE_SUBTREE, mode="refreshOnly",
                              filterstr="(objectClass=*)", attrlist=["*", "+"])
    while c.syncrepl_poll(msgid=msgid, all=1, timeout=30):
        pass


def person(i: int, extra: str = "") -> str:
    return (f"dn: cn=p{i},{PEOPLE}\nobjectClass: inetOrgPerson\ncn: p{i}\nsn: p{i}\n"
            f"mail: p{i}@example.com\n{extra}\n")


def ldif_add(server: Server, ldif: str) -> None:
    added = server.tool("ldapadd", input=ldif.encode())
    assert added.returncode == 0, added.stderr


@pytest.fixture(scope="module")
def loaded(server: Server) -> Server:
    ldif_add(server, f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n\n"
             + "".join(person(i) for i in range(COUNT)))
    return server


def test_root_dse_lists_the_sync_request_control(server: Server) -> None:
    found = server.tool("ldapsearch", "-b", "", "-s", "base", "+")
    assert f"supportedControl: {SYNC}" in found.stdout.decode()


def test_refresh_only_sends_every_entry_and_a_cookie(loaded: Server) -> None:
    c = memory_replica(loaded)
    refresh_only(c)
    assert c.dns() == {PEOPLE.lower()} | {f"cn=p{i},{PEOPLE}".lower() for i in range(COUNT)}
    assert c.cookie is not None and c.cookie.startswith("csn=")


def test_refresh_from_a_cookie_sends_changes_and_deletes(loaded: Server) -> None:
    first = memory_replica(loaded)
    refresh_only(first)
    uuid_of = {dn.lower(): uuid for uuid, (dn, _) in first.entries.items()}
    ldif_add(loaded, person(100))
    changed = loaded.tool("ldapmodify", input=(
        f"dn: cn=p1,{PEOPLE}\nchangetype: modify\nreplace: mail\nmail: new@example.com\n\n"
        f"dn: cn=p2,{PEOPLE}\nchangetype: delete\n\n").encode())
    assert changed.returncode == 0, changed.stderr
    again = memory_replica(loaded, first.cookie)
    again.entries = dict(first.entries)
    refresh_only(again)
    assert sorted(again.sent) == sorted([f"cn=p100,{PEOPLE}".lower(), f"cn=p1,{PEOPLE}".lower()])
    assert again.deleted == [uuid_of[f"cn=p2,{PEOPLE}".lower()]]
    assert f"cn=p2,{PEOPLE}".lower() not in again.dns()
    assert again.entries[uuid_of[f"cn=p1,{PEOPLE}".lower()]][1]["mail"] == [b"new@example.com"]


def test_a_cookie_not_in_openldap_form_is_a_protocol_error(loaded: Server) -> None:
    c = memory_replica(loaded, "rid=5000")
    with pytest.raises(ldap.PROTOCOL_ERROR):
        refresh_only(c)


def test_persist_sends_adds_modifies_renames_and_deletes(loaded: Server) -> None:
    c = memory_replica(loaded)
    msgid = c.syncrepl_search(PEOPLE, ldap.SCOPE_SUBTREE, mode="refreshAndPersist",
                              filterstr="(objectClass=*)", attrlist=["*", "+"])
    poll_until(c, msgid, lambda: c.refreshed)
    ldif_add(loaded, person(200))
    poll_until(c, msgid, lambda: f"cn=p200,{PEOPLE}".lower() in c.dns())
    uuid = c.uuid_of(f"cn=p200,{PEOPLE}")
    changed = loaded.tool("ldapmodify", input=(
        f"dn: cn=p200,{PEOPLE}\nchangetype: modify\nreplace: mail\nmail: m@example.com\n\n"
        ).encode())
    assert changed.returncode == 0, changed.stderr
    poll_until(c, msgid, lambda: c.entries[uuid][1].get("mail") == [b"m@example.com"])
    renamed = loaded.tool("ldapmodrdn", "-r", f"cn=p200,{PEOPLE}", "cn=p201")
    assert renamed.returncode == 0, renamed.stderr
    poll_until(c, msgid, lambda: c.dn_of(uuid) == f"cn=p201,{PEOPLE}".lower())
    deleted = loaded.tool("ldapdelete", f"cn=p201,{PEOPLE}")
    assert deleted.returncode == 0, deleted.stderr
    poll_until(c, msgid, lambda: uuid not in c.entries)
    c.abandon(msgid)
    assert c.search_s(PEOPLE, ldap.SCOPE_BASE)[0][0].lower() == PEOPLE.lower()



def test_cancel_ends_a_waiting_persist_search(loaded: Server) -> None:
    c = memory_replica(loaded)
    msgid = c.syncrepl_search(PEOPLE, ldap.SCOPE_SUBTREE, mode="refreshAndPersist",
                              filterstr="(objectClass=*)", attrlist=["*", "+"])
    poll_until(c, msgid, lambda: c.refreshed)
    cancel = c.cancel(msgid)
    with pytest.raises(ldap.CANCELLED):
        c.syncrepl_poll(msgid=msgid, all=1, timeout=10)
    assert c.result(cancel, timeout=10)[0] == ldap.RES_EXTENDED


BOOK = 200


def with_certificate(i: int) -> str:
    value = base64.b64encode(certificate(f"p{i}")).decode()
    return person(i, f"userCertificate;binary:: {value}\n")


@pytest.fixture(scope="module")
def book(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A certdir of its own whose address book slapd replicates."""
    server = make_server(tmp_path_factory.mktemp("provider"), "--no-ca")
    server.start()
    ldif_add(server, f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n\n"
             + "".join(with_certificate(i) for i in range(BOOK)))
    yield server
    if server.proc is not None:
        server.stop()


def changes_on(server: Server, tag: str) -> None:
    """An add, a modify, a rename and a delete."""
    ldif_add(server, with_certificate(int(tag)))
    done = server.tool("ldapmodify", input=(
        f"dn: cn=p1,{PEOPLE}\nchangetype: modify\nreplace: mail\nmail: {tag}@example.com\n\n"
        f"dn: cn=p{BOOK - 1 - int(tag) % 50},{PEOPLE}\nchangetype: delete\n\n").encode())
    assert done.returncode == 0, done.stderr
    renamed = server.tool("ldapmodrdn", "-r", f"cn=p{2 + int(tag) % 50},{PEOPLE}",
                          f"cn=q{tag}")
    assert renamed.returncode == 0, renamed.stderr


@pytest.mark.parametrize("kind", ["refreshOnly", "refreshAndPersist"])
def test_slapd_consumer_replicates_and_follows_changes(
        book: Server, kind: str, tmp_path: Path) -> None:
    slapd = start_consumer(tmp_path / "slapd", book, kind)
    try:
        converge(book, slapd)
        changes_on(book, "1001" if kind == "refreshOnly" else "1002")
        converge(book, slapd)
    finally:
        slapd.stop()


def test_context_csn_is_the_newest_entry_csn_and_only_the_root_reads_it(loaded: Server) -> None:
    ldif_add(loaded, person(300))
    root = ldap.initialize(loaded.uri)
    root.simple_bind_s(loaded.root_dn, loaded.root_password)
    [(_, suffix)] = root.search_s(SUFFIX, ldap.SCOPE_BASE, attrlist=["contextCSN"])
    csns = [e[1]["entryCSN"][0] for e in root.search_s(SUFFIX, ldap.SCOPE_SUBTREE,
                                                        attrlist=["entryCSN"])]
    assert suffix["contextCSN"] == [max(csns)]
    anonymous = ldap.initialize(loaded.uri)
    assert anonymous.search_s(SUFFIX, ldap.SCOPE_BASE, attrlist=["contextCSN"]) == [
        (SUFFIX, {})]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    """A certdir with its CA: the CA entries with their certificate and CRLs."""
    tmp = tmp_path_factory.mktemp("pki")
    server = make_server(tmp)
    server.start()
    ldif_add(server, f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n\n"
             + "".join(person(i) for i in range(3)))
    subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-out", str(tmp / "p.key")],
                   check=True, capture_output=True)
    yield server, tmp
    if server.proc is not None:
        server.stop()


def issued(server: Server, tmp: Path, i: int) -> str:
    """`certdir ca issue` (a process of its own writing the database) for person i."""
    csr = tmp / f"p{i}.csr"
    subprocess.run(["openssl", "req", "-new", "-key", str(tmp / "p.key"), "-subj",
                    f"/CN=p{i}", "-addext", f"subjectAltName=email:p{i}@example.com",
                    "-out", str(csr)], check=True, capture_output=True)
    return server.certdir("ca", "issue", "--data-dir", str(server.data_dir), "--csr",
                          str(csr), "--profile", "smime-user", "--entry",
                          f"cn=p{i},{PEOPLE}").stdout.decode().strip()


def test_slapd_replicates_what_the_ca_publishes(pki: tuple[Server, Path],
                                                tmp_path: Path) -> None:
    server, tmp = pki
    first = issued(server, tmp, 0)
    slapd = start_consumer(tmp_path / "slapd", server, "refreshAndPersist")
    try:
        people = converge(server, slapd)
        assert "usercertificate;binary" in people[f"cn=p0,{PEOPLE}".lower()].names()
        issued(server, tmp, 1)
        server.certdir("ca", "revoke", "--data-dir", str(server.data_dir), first,
                       "--reason", "keyCompromise")
        people = converge(server, slapd)
        assert "usercertificate;binary" not in people[f"cn=p0,{PEOPLE}".lower()].names()
        assert "usercertificate;binary" in people[f"cn=p1,{PEOPLE}".lower()].names()
        cas = [dn for dn, entry in people.items()
               if "certificaterevocationlist;binary" in entry.names()]
        assert cas == [f"cn=example root ca,cn=cas,cn=pki,{SUFFIX}"]
    finally:
        slapd.stop()


def test_slapd_killed_comes_back_with_its_cookie_and_converges(
        book: Server, tmp_path: Path) -> None:
    slapd = start_consumer(tmp_path / "slapd", book, "refreshAndPersist")
    try:
        converge(book, slapd)
        slapd.kill()
        changes_on(book, "1004")
        slapd.start()
        converge(book, slapd)
    finally:
        slapd.stop()


def test_a_certdir_replica_of_certdir_converges(book: Server, tmp_path: Path) -> None:
    replica = make_server(tmp_path / "replica", "--no-ca", "--no-kms")
    (replica.data_dir / "provider.pw").write_text(book.root_password + "\n")
    replica.configure("replication", consumer={
        "provider": book.uri, "rid": 9, "bind_dn": book.root_dn,
        "password_file": "provider.pw", "retry": "1 +", "type": "refreshAndPersist"})
    replica.start()
    try:
        converge(book, replica)
        changes_on(book, "1005")
        converge(book, replica)
    finally:
        log = replica.stop()
        assert "Traceback" not in log, log
