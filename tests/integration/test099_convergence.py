"""Scenario 099: syncrepl (RFC 4533) between certdir and slapd converges on
10,000 people with certificates (issue 12, Tests and checks).

Each direction has one provider holding the suffix entry, ou=staff and
ou=people with 10,000 inetOrgPerson entries, each with a
userCertificate;binary. The two sides are compared on their whole content:
the user attributes and the operational ones the provider sets (entryUUID,
entryCSN, creatorsName, modifiersName, the timestamps).

A batch is 100 adds, 100 modifies, 100 renames (half of them to ou=staff)
and 100 deletes, on the last people of the 10,000 (a refresh killed early
has not sent them); each kill below comes with a batch and the delete of
one of the people the consumer got before it.
Every refresh of the 10,000 takes tens of seconds, so the cases share them:

- certdir provider, slapd consumer (refreshAndPersist): certdir killed with
  -9 while a fresh slapd is in its refresh (slapd holds some entries, not
  all), started again: slapd converges on the 10,000, then on a batch.
- slapd killed with -9 in its refresh: started again on its database, it
  converges.
- slapd provider, certdir consumer (`replication.consumer`,
  refreshAndPersist): slapd killed with -9 while a fresh certdir is in its
  refresh (batches committed, no cookie yet), started again: certdir
  retries on its schedule, converges on the 10,000 and stores its cookie,
  then converges on a batch and the delete of a person it got before the
  kill.
- certdir killed with -9 in its refresh (batches committed, no cookie):
  started again it converges and stores its cookie: the person deleted
  meanwhile, which it had committed, goes too (its refresh without a cookie
  is the provider's whole content, though slapd ends it with refreshDelete).

test087 and test088 hold the smaller cases: refreshOnly, a consumer killed
after it converged resuming from its cookie, a provider restarted, and
test088 a consumer killed in its refresh of entries none of which is
deleted meanwhile.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tests.integration.conftest import SUFFIX, Server, database_rows, make_server
from tests.integration.ldif_compare import Record
from tests.integration.replication import (
    Side,
    certificate,
    contents,
    converge,
    replica,
    start_consumer,
    start_provider,
)
from tests.integration.slapd import Slapd

PEOPLE = 10_000
BATCH = 100
ROUNDS = 3
ENTRIES = PEOPLE + 3  # and the suffix entry, ou=people and ou=staff
CONVERGE_S = 180
RENAMED = f"cn=renamed {PEOPLE - 3 * BATCH + BATCH + 1:05d},ou=staff,{SUFFIX}"
DELETED = f"cn=person {PEOPLE - BATCH:05d},ou=people,{SUFFIX}"  # by round 0
KEY = ec.generate_private_key(ec.SECP256R1())


def dn(n: int) -> str:
    return f"cn=Person {n:05d},ou=people,{SUFFIX}"


def person(n: int) -> str:
    value = base64.b64encode(certificate(f"Person {n:05d}", KEY)).decode()
    return (f"dn: {dn(n)}\nobjectClass: inetOrgPerson\ncn: Person {n:05d}\nsn: {n:05d}\n"
            f"mail: person{n}@example.com\nuserCertificate;binary:: {value}\n\n")


@pytest.fixture(scope="session")
def people() -> str:
    """ou=people with the 10,000, and ou=staff (certificates signed by one key)."""
    return (f"dn: ou=people,{SUFFIX}\nobjectClass: organizationalUnit\nou: people\n\n"
            f"dn: ou=staff,{SUFFIX}\nobjectClass: organizationalUnit\nou: staff\n\n"
            + "".join(person(n) for n in range(PEOPLE)))


def touched(round_: int) -> range:
    """The people round `round_` modifies, renames and deletes: the last of
    the 10,000, which a refresh killed early has not sent."""
    return range(PEOPLE - (round_ + 1) * 3 * BATCH, PEOPLE - round_ * 3 * BATCH)


def batch(round_: int) -> str:
    """Round `round_`'s adds, modifies, renames and deletes, on people no
    other round touches."""
    first = touched(round_).start
    adds = [f"dn: cn=Added {round_}-{j:03d},ou=people,{SUFFIX}\nchangetype: add\n"
            f"objectClass: inetOrgPerson\ncn: Added {round_}-{j:03d}\nsn: Added\n"
            f"userCertificate;binary:: "
            f"{base64.b64encode(certificate(f'Added {round_}-{j}', KEY)).decode()}\n"
            for j in range(BATCH)]
    modifies = [f"dn: {dn(first + j)}\nchangetype: modify\nreplace: mail\n"
                f"mail: changed{first + j}@example.com\n-\nadd: description\n"
                f"description: round {round_}\n" for j in range(BATCH)]
    renames = [f"dn: {dn(first + BATCH + j)}\nchangetype: modrdn\n"
               f"newrdn: cn=Renamed {first + BATCH + j:05d}\ndeleteoldrdn: 1\n"
               + (f"newsuperior: ou=staff,{SUFFIX}\n" if j % 2 else "") for j in range(BATCH)]
    deletes = [f"dn: {dn(first + 2 * BATCH + j)}\nchangetype: delete\n" for j in range(BATCH)]
    return "\n".join(adds + modifies + renames + deletes)


def change(side: Side, ldif: str) -> None:
    """`ldif`'s changes, one at a time: a batch's 401 take minutes under load,
    more while the side serves a refresh of 10,000."""
    done = side.tool("ldapmodify", input=ldif.encode(), timeout=3 * CONVERGE_S)
    assert done.returncode == 0, done.stderr.decode()


def changes_and_a_delete(side: Side, round_: int, held: list[str]) -> None:
    """Round `round_` and a delete of the first person of `held` no round touches."""
    rounds = {dn(n).lower() for r in range(ROUNDS) for n in touched(r)}
    gone = min(d for d in map(str.lower, held) if d.startswith("cn=person ")
               and d not in rounds)
    change(side, batch(round_) + f"\ndn: {gone}\nchangetype: delete\n")


def converged(provider: Side, consumer: Side) -> dict[str, Record]:
    """The provider, which does not change meanwhile, read once; the consumer
    polled on DNs and entryCSNs until it holds the same, failing (with what
    differs) only once what it holds stopped changing for CONVERGE_S: under
    load a refresh of 10,000 takes minutes, but a consumer that converges
    changes all along. A read of 10,000 entries takes a while and costs the servers'
    CPU, so polls are spaced by a few times that; then both are compared on
    everything."""
    expected = contents(provider, ("entryCSN",))
    held: dict[str, Record] | None = None
    changed = time.monotonic()
    while True:
        read = time.monotonic()
        now = contents(consumer, ("entryCSN",))
        if now == expected:
            return converge(provider, consumer)
        if now != held:
            held, changed = now, time.monotonic()
        elif time.monotonic() - changed > CONVERGE_S:
            converge(provider, consumer, ("entryCSN",), seconds=0)  # says what differs
        time.sleep(max(1.0, 3 * (time.monotonic() - read)))


def wait_for(done: Callable[[], bool], what: str, *sides: Side,
             progress: Callable[[], object] | None = None) -> None:
    """Until `done`: within CONVERGE_S, or with `progress`, until what it
    reads stayed the same for CONVERGE_S; on failure the logs of `sides`
    say why."""
    last = progress() if progress else None
    deadline = time.monotonic() + CONVERGE_S
    while not done():
        if progress is not None and (now := progress()) != last:
            last, deadline = now, time.monotonic() + CONVERGE_S
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {type(side).__name__}:\n{side.log()[-3000:]}"
                             for side in sides)
            raise AssertionError(f"{what} within {CONVERGE_S} s\n{logs}")
        time.sleep(0.2)


def stopped(server: Server) -> None:
    log = server.stop()
    assert "Traceback" not in log, log[-3000:]


@pytest.fixture(scope="module")
def book(tmp_path_factory: pytest.TempPathFactory, people: str) -> Iterator[Server]:
    """certdir providing the 10,000 (`certdir ldif import` before it serves)."""
    tmp = tmp_path_factory.mktemp("book")
    server = make_server(tmp, "--no-ca")
    (tmp / "people.ldif").write_text(people)
    server.certdir("ldif", "import", "--data-dir", str(server.data_dir), "--quiet",
                   str(tmp / "people.ldif"))
    server.start()
    yield server
    if server.proc is not None:
        stopped(server)


def first_people(slapd: Slapd, provider: Server) -> None:
    """Return as soon as slapd's database holds a person of the refresh, read
    with slapcat beside it: slapd answers no search while it applies a
    refresh (measured: the first answer came 2 s in, 8,053 of the 10,003
    applied), so a search would notice only at the end, when a kill meant
    for the middle comes too late."""
    wait_for(lambda: any(d.lower().startswith("cn=person ") for d in slapd.held()),
             "slapd got no person", slapd, provider)


def test_slapd_converges_after_certdir_is_killed_in_its_refresh_then_on_a_batch(
        book: Server, tmp_path: Path) -> None:
    before = len(contents(book, ("1.1",)))  # ENTRIES, but for the other tests' deletes
    slapd = start_consumer(tmp_path / "slapd", book, "refreshAndPersist")
    try:
        first_people(slapd, book)
        book.kill()
        try:
            got = list(contents(slapd, ("1.1",)))
            assert 0 < len(got) < before
        finally:
            book.start()
        changes_and_a_delete(book, 1, got)
        held = converged(book, slapd)
        assert (len(held), len(held[dn(4242).lower()].values("userCertificate;binary"))) == (
            before - 1, 1)
        change(book, batch(0))
        held = converged(book, slapd)
        assert (len(held), RENAMED in held, DELETED in held) == (before - 1, True, False)
    finally:
        slapd.stop()


def test_slapd_killed_in_its_refresh_comes_back_and_converges(
        book: Server, tmp_path: Path) -> None:
    slapd = start_consumer(tmp_path / "slapd", book, "refreshAndPersist")
    try:
        first_people(slapd, book)
        slapd.kill()
        got = slapd.held()
        assert 0 < len(got) < ENTRIES
        changes_and_a_delete(book, 2, got)
        slapd.start()
        converged(book, slapd)
    finally:
        slapd.stop()


@pytest.fixture(scope="module")
def directory(tmp_path_factory: pytest.TempPathFactory, people: str) -> Iterator[Slapd]:
    """slapd providing the 10,000."""
    slapd = start_provider(tmp_path_factory.mktemp("directory") / "slapd", (
        f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: example\n"
        f"dc: example\n\n") + people)
    yield slapd
    slapd.stop()


def stored(consumer: Server) -> list[str]:
    """The DNs of the provider's entries the consumer has committed."""
    return [row[0] for row in database_rows(consumer.data_dir, "SELECT dn FROM sync_entries")]


def committed(consumer: Server) -> int:
    """How many of the provider's entries the consumer has committed."""
    return int(database_rows(consumer.data_dir, "SELECT count(*) FROM sync_entries")[0][0])


def cookies(consumer: Server) -> list[tuple[int]]:
    return database_rows(consumer.data_dir, "SELECT rid FROM sync_cookies")


def test_certdir_killed_in_its_refresh_converges(directory: Slapd, tmp_path: Path) -> None:
    consumer = replica(tmp_path, directory, type="refreshAndPersist")
    consumer.start()
    try:
        wait_for(lambda: any(d.lower().startswith("cn=person ") for d in stored(consumer)),
                 "certdir committed no person", consumer, directory)
        consumer.kill()
        got = stored(consumer)
        # Killed in the middle: some batches committed, no cookie yet.
        assert (0 < len(got) < ENTRIES, cookies(consumer)) == (True, [])
        changes_and_a_delete(directory, 2, got)
        consumer.start()
        # The cookie commits with the last of the refresh: compared once then.
        wait_for(lambda: cookies(consumer) == [(7,)], "the refresh stored no cookie",
                 consumer, directory, progress=lambda: committed(consumer))
        converge(directory, consumer, seconds=0)
    finally:
        if consumer.proc is not None:  # a failure between the kill and the restart
            stopped(consumer)


def test_certdir_converges_after_slapd_is_killed_in_its_refresh_then_on_a_batch(
        directory: Slapd, tmp_path: Path) -> None:
    before = len(contents(directory, ("1.1",)))  # ENTRIES, but for the other tests' deletes
    consumer = replica(tmp_path, directory, type="refreshAndPersist")
    consumer.start()
    try:
        wait_for(lambda: any(d.lower().startswith("cn=person ") for d in stored(consumer)),
                 "certdir committed no person", consumer, directory)
        directory.kill()
        got = stored(consumer)
        assert (0 < len(got) < before, cookies(consumer)) == (True, [])
        directory.start()
        # Changes only once the refresh is done: one made during a refresh
        # without a cookie meets the gap test_certdir_killed_in_its_refresh pins.
        wait_for(lambda: cookies(consumer) == [(7,)], "the refresh stored no cookie",
                 consumer, directory, progress=lambda: committed(consumer))
        assert len(converged(directory, consumer)) == before
        changes_and_a_delete(directory, 0, got)
        held = converged(directory, consumer)
        assert (len(held), RENAMED in held, DELETED in held) == (before - 1, True, False)
    finally:
        stopped(consumer)
