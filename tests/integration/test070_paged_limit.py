"""Scenario 070: the size limit holds across the pages of a paged search (RFC 2696).

- A paged search is one search (RFC 4511 §4.5.1.4): `limits.size` (500)
  counts the entries of every page, so an anonymous client paging through
  3,000 entries gets 500, and the page that reaches the limit while entries
  remain ends with sizeLimitExceeded (4) and an empty cookie, as slapd does.
- The client's own sizeLimit counts the same way; the root DN is not bound by
  the server's limit and pages through everything.
"""

from __future__ import annotations

from collections.abc import Iterator

import ldap
import pytest
from ldap.controls import SimplePagedResultsControl

from tests.integration.conftest import Server, make_server
from tests.integration.test069_connection_limits import ENTRIES, PEOPLE, SIZE_LIMIT, load_people

PERSONS = "(objectClass=inetOrgPerson)"
PAGE = 100
# The paged results control value of a search that ended: size 0, empty cookie.
EMPTY_COOKIE = bytes.fromhex("30050201000400")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = make_server(tmp_path_factory.mktemp("certdir-paged"), "--no-ca")
    srv.configure("limits", size=SIZE_LIMIT)
    load_people(srv)
    srv.start()
    yield srv
    log = srv.stop()
    assert "Traceback" not in log, log


def dns(output: bytes) -> list[str]:
    return [line[4:] for line in output.decode().splitlines() if line.startswith("dn: ")]


def page_through(conn: ldap.ldapobject.LDAPObject) -> tuple[int, str]:
    """Entries a python-ldap client gets paging PAGE at a time, and how it ended
    (each entry read as it comes, so none is lost when the last page fails)."""
    control = SimplePagedResultsControl(True, size=PAGE, cookie=b"")
    count = 0
    while True:
        msgid = conn.search_ext(PEOPLE, ldap.SCOPE_ONELEVEL, PERSONS, ["1.1"],
                                serverctrls=[control])
        while True:
            try:
                kind, found, _, controls = conn.result3(msgid, all=0)
            except ldap.SIZELIMIT_EXCEEDED as e:
                ended = [SimplePagedResultsControl.controlType, 0, EMPTY_COOKIE]
                assert [list(c) for c in e.args[0]["ctrls"]] == [ended]
                return count, "sizeLimitExceeded"
            if kind == ldap.RES_SEARCH_RESULT:
                break
            count += len(found)
        cookie = next(c.cookie for c in controls
                      if c.controlType == SimplePagedResultsControl.controlType)
        if not cookie:
            return count, "success"
        control.cookie = cookie


def test_ldapsearch_anonymous_paging_stops_at_the_size_limit(server: Server) -> None:
    search = server.tool("ldapsearch", "-LLL", "-E", f"pr={PAGE}/noprompt", "-b", PEOPLE,
                         PERSONS, "1.1", bind=False)
    assert search.returncode == 4, search.stderr
    assert len(dns(search.stdout)) == SIZE_LIMIT


def test_python_ldap_anonymous_paging_gets_exactly_the_size_limit(server: Server) -> None:
    conn = ldap.initialize(server.uri)
    assert page_through(conn) == (SIZE_LIMIT, "sizeLimitExceeded")
    conn.unbind_s()


def test_client_size_limit_counts_over_pages(server: Server) -> None:
    search = server.tool("ldapsearch", "-LLL", "-z", "250", "-E", f"pr={PAGE}/noprompt",
                         "-b", PEOPLE, PERSONS, "1.1", bind=False)
    assert search.returncode == 4, search.stderr
    assert len(dns(search.stdout)) == 250


def test_root_pages_through_everything(server: Server) -> None:
    search = server.tool("ldapsearch", "-LLL", "-E", f"pr={PAGE}/noprompt", "-b", PEOPLE,
                         PERSONS, "1.1")
    assert search.returncode == 0, search.stderr
    assert len(dns(search.stdout)) == ENTRIES
