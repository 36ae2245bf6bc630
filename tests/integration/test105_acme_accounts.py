"""Scenario 105: an account's key change to its own key, the orders list in pages, and
the rate limit of newAccount (RFC 8555 §7.3.5, §7.1.2.1, §6.6).

certdir runs with `ca.acme.orders_per_page: 2` and
`rate_limits.accounts_per_address: LIMIT`; the client is the test's own
(tests/integration/acme_client.py).

1. keyChange to the key the account holds already is 409 with the account's
   own Location (§7.3.5: an account holds the new key), and says so; the
   account keeps its key and still signs.
2. Five orders list as pages of two: each page but the last has a
   `Link: rel="next"` to the next, the pages together are the five orders,
   each once; a cursor that is not a page number is
   malformed.
3. New accounts from one address (the test's, 127.0.0.1) are counted within
   the window: past LIMIT the next newAccount is rateLimited (429) with
   Retry-After, while an existing account's key still finds its account (200).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.integration.acme_client import Client, jwk_of, sign
from tests.integration.acme_site import NAME, acme_site
from tests.integration.conftest import Server, database_rows

LIMIT = 12
NEXT = re.compile(r'<([^>]+)>;rel="next"')


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with acme_site(tmp_path_factory.mktemp("acme-accounts"), serve=False, orders_per_page=2,
                   rate_limits={"accounts_per_address": LIMIT}) as site:
        yield site.server


def _client(server: Server) -> Client:
    client = Client(f"{server.https_url}/acme/directory", server.ca_file)
    client.start()
    assert client.register().status == 201
    return client


def test_key_change_to_the_account_key_is_a_conflict_with_itself(server: Server) -> None:
    client = _client(server)
    url = client.directory["keyChange"]
    inner = sign(client.key, {"alg": "ES256", "jwk": jwk_of(client.key), "url": url},
                 {"account": client.kid, "oldKey": jwk_of(client.key)})
    answer = client.post(url, inner)
    assert (answer.status, answer.problem) == (409, "malformed")
    assert answer.headers["Location"] == client.kid
    assert "this account's key already" in answer.json()["detail"]
    assert client.order(NAME).status == 201


def _links(answer_headers: object) -> list[str]:
    values = answer_headers.get_all("Link") or []  # type: ignore[attr-defined]
    return [m.group(1) for value in values for m in NEXT.finditer(value)]


def test_orders_come_in_pages(server: Server) -> None:
    client = _client(server)
    made = []
    for _ in range(5):
        order = client.order(NAME)
        assert order.status == 201
        made.append(order.headers["Location"])
    assert client.kid is not None
    url: str | None = client.post(client.kid, None).json()["orders"]
    pages = []
    while url is not None:
        answer = client.post(url, None)
        assert answer.status == 200, answer.body
        pages.append(answer.json()["orders"])
        following = _links(answer.headers)
        url = following[0] if following else None
    assert [len(page) for page in pages] == [2, 2, 1]
    assert sorted(order for page in pages for order in page) == sorted(made)


@pytest.mark.parametrize("cursor", ["x", "-1", "1.5"])
def test_a_cursor_not_a_page_number_is_malformed(server: Server, cursor: str) -> None:
    client = _client(server)
    assert client.kid is not None
    answer = client.post(client.post(client.kid, None).json()["orders"] + f"?cursor={cursor}",
                         None)
    assert (answer.status, answer.problem) == (400, "malformed")


def test_new_accounts_per_address_are_rate_limited(server: Server) -> None:
    [(made,)] = database_rows(server.data_dir, "SELECT count(*) FROM acme_new_accounts")
    kept = None
    for _ in range(LIMIT - int(made)):
        kept = _client(server)
    assert kept is not None
    late = Client(f"{server.https_url}/acme/directory", server.ca_file)
    late.start()
    answer = late.post(late.directory["newAccount"], {"termsOfServiceAgreed": True})
    assert (answer.status, answer.problem) == (429, "rateLimited")
    assert int(answer.headers["Retry-After"]) > 0
    again = Client(f"{server.https_url}/acme/directory", server.ca_file, key=kept.key)
    again.start()
    assert again.register().status == 200

