"""Scenario 106: a challenge left processing by a server killed while it validated
(RFC 8555 §7.1.6: processing ends valid or invalid, never by expiry).

1. A client answers its http-01 challenge; the test's responder takes the
   validation's GET and holds it unanswered. certdir is killed (kill -9)
   while it waits: the challenge is processing in the database.
2. certdir starts again on the same data directory; the responder now
   answers at once. The challenge is validated again at start: it becomes
   valid, its authorization valid, the order ready, and the server's log
   says it resumed the validation.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.acme_client_base import AUTHORIZATION_ENDS, HoldingHTTP01
from tests.integration.acme_client import Client
from tests.integration.acme_site import NAME, acme_site
from tests.integration.conftest import Server, database_rows


@pytest.fixture
def held(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, HoldingHTTP01]]:
    with acme_site(tmp_path_factory.mktemp("acme-restart"), serve=False, read_timeout_s=30,
                   total_timeout_s=60) as site, \
            HoldingHTTP01(site.challenges.http_port) as responder:
        yield site.server, responder


def _status(server: Server, challenge: str) -> str:
    [(status,)] = database_rows(server.data_dir,
                                "SELECT status FROM acme_challenges WHERE id = ?", challenge)
    return str(status)


def test_a_validation_cut_by_kill_9_is_resumed_at_start(held: tuple[Server, HoldingHTTP01]) -> None:
    server, responder = held
    client = Client(f"{server.https_url}/acme/directory", server.ca_file)
    client.start()
    assert client.register().status == 201
    order = client.order(NAME)
    authorization, challenge = client.challenge(order)
    responder.answers[challenge["token"]] = client.key_authorization(challenge["token"])
    assert client.post(challenge["url"], {}).json()["status"] == "processing"
    assert responder.asked.acquire(timeout=20), "the validation never asked"
    server.kill()
    ident = challenge["url"].rsplit("/", 1)[-1]
    assert _status(server, ident) == "processing"
    responder.release.set()
    server.start()
    ended = client.poll(authorization, AUTHORIZATION_ENDS, 0.1, timeout_s=30)
    assert ended.json()["status"] == "valid", ended.body
    assert _status(server, ident) == "valid"
    assert client.post(order.headers["Location"], None).json()["status"] == "ready"
    assert f"ACME challenge {ident} (http-01 of {NAME}) was left processing" in server.log()
