"""Scenario 009: size and time limits (RFC 4511 §4.5.1.4, §4.5.1.5).

- A client sizeLimit (ldapsearch -z N) returns N entries, then
  sizeLimitExceeded (4); a limit equal to the number of matches is not exceeded.
- The server's limits.size caps searches by anyone but the root DN, which is
  exempt; the smaller of the client and server limits applies.
- A client timeLimit (ldapsearch -l) that is not reached changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import Server, make_server

DATA = Path(__file__).parent.parent / "data" / "integration"
PEOPLE = "ou=people,dc=example,dc=com"
PERSONS = "(objectClass=inetOrgPerson)"
PERSON_COUNT = 12
SERVER_SIZE_LIMIT = 5
USER_DN = f"uid=user01,{PEOPLE}"
USER_PASSWORD = "limits-user-secret"


def dns(output: bytes) -> list[str]:
    return [line[4:] for line in output.decode().splitlines() if line.startswith("dn: ")]


def result_line(output: bytes) -> str:
    return next(line for line in output.decode().splitlines() if line.startswith("result: "))


def load_people(server: Server) -> None:
    added = server.tool("ldapadd", "-f", str(DATA / "009_people.ldif"))
    assert added.returncode == 0, added.stderr
    password = server.tool("ldappasswd", "-s", USER_PASSWORD, USER_DN)
    assert password.returncode == 0, password.stderr


@pytest.fixture(scope="module")
def people(server: Server) -> Server:
    load_people(server)
    return server


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server restarted with limits.size lowered below the number of persons."""
    srv = make_server(tmp_path_factory.mktemp("certdir-limited"))
    srv.configure("limits", size=SERVER_SIZE_LIMIT)
    srv.start()
    load_people(srv)
    yield srv
    log = srv.stop()
    assert "Traceback" not in log, log


def test_client_size_limit_returns_that_many_then_4(people: Server) -> None:
    search = people.tool("ldapsearch", "-LLL", "-z", "3", "-b", PEOPLE, PERSONS, "1.1")
    assert search.returncode == 4, search.stderr
    assert len(dns(search.stdout)) == 3
    assert b"Size limit exceeded" in search.stderr + search.stdout


def test_client_size_limit_result_line(people: Server) -> None:
    search = people.tool("ldapsearch", "-z", "3", "-b", PEOPLE, PERSONS, "1.1", bind=False)
    assert search.returncode == 4
    assert result_line(search.stdout) == "result: 4 Size limit exceeded"
    assert "# numEntries: 3" in search.stdout.decode()


def test_client_size_limit_equal_to_matches_is_not_exceeded(people: Server) -> None:
    search = people.tool("ldapsearch", "-LLL", "-z", str(PERSON_COUNT), "-b", PEOPLE,
                         PERSONS, "1.1", bind=False)
    assert search.returncode == 0, search.stderr
    assert len(dns(search.stdout)) == PERSON_COUNT


def test_client_size_limit_applies_to_anonymous(people: Server) -> None:
    search = people.tool("ldapsearch", "-LLL", "-z", "1", "-b", PEOPLE, PERSONS, "1.1",
                         bind=False)
    assert search.returncode == 4
    assert len(dns(search.stdout)) == 1


def test_client_size_limit_above_matches(people: Server) -> None:
    search = people.tool("ldapsearch", "-LLL", "-z", "100", "-b", PEOPLE, "(uid=user0*)",
                         "uid", bind=False)
    assert search.returncode == 0, search.stderr
    assert sorted(dns(search.stdout)) == [f"uid=user0{i},{PEOPLE}" for i in range(1, 10)]


def test_time_limit_not_reached_changes_nothing(people: Server) -> None:
    search = people.tool("ldapsearch", "-LLL", "-l", "5", "-b", PEOPLE, PERSONS, "1.1",
                         bind=False)
    assert search.returncode == 0, search.stderr
    assert len(dns(search.stdout)) == PERSON_COUNT


def test_server_size_limit_caps_anonymous(limited: Server) -> None:
    search = limited.tool("ldapsearch", "-LLL", "-b", PEOPLE, PERSONS, "1.1", bind=False)
    assert search.returncode == 4, search.stderr
    assert len(dns(search.stdout)) == SERVER_SIZE_LIMIT


def test_server_size_limit_caps_authenticated_user(limited: Server) -> None:
    search = limited.tool("ldapsearch", "-LLL", "-D", USER_DN, "-w", USER_PASSWORD,
                          "-b", PEOPLE, PERSONS, "1.1", bind=False)
    assert search.returncode == 4, search.stderr
    assert len(dns(search.stdout)) == SERVER_SIZE_LIMIT


def test_server_size_limit_beats_larger_client_limit(limited: Server) -> None:
    search = limited.tool("ldapsearch", "-LLL", "-z", "10", "-b", PEOPLE, PERSONS, "1.1",
                          bind=False)
    assert search.returncode == 4
    assert len(dns(search.stdout)) == SERVER_SIZE_LIMIT


def test_smaller_client_limit_beats_server_limit(limited: Server) -> None:
    search = limited.tool("ldapsearch", "-LLL", "-z", "2", "-b", PEOPLE, PERSONS, "1.1",
                          bind=False)
    assert search.returncode == 4
    assert len(dns(search.stdout)) == 2


def test_server_size_limit_not_hit_by_fewer_matches(limited: Server) -> None:
    search = limited.tool("ldapsearch", "-LLL", "-b", PEOPLE, "(uid=user1*)", "1.1",
                          bind=False)
    assert search.returncode == 0, search.stderr
    assert len(dns(search.stdout)) == 3


def test_root_dn_is_exempt_from_server_size_limit(limited: Server) -> None:
    search = limited.tool("ldapsearch", "-LLL", "-b", PEOPLE, PERSONS, "1.1")
    assert search.returncode == 0, search.stderr
    assert len(dns(search.stdout)) == PERSON_COUNT
