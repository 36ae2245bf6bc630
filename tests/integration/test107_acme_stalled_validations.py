"""Scenario 107: validations an attacker's host holds open stall nobody else (the reactor
rule; RFC 8555 §8.2 lets a server validate in the background).

An attacker's account orders `STALLED` names and answers every challenge; its
http-01 host (the test's responder) accepts each validation's GET and never
answers while the scenario runs. With all of them waiting on it:

1. an innocent account's order for another name validates, finalizes and
   downloads its certificate, and the attacker's challenges are all still
   processing when it is done;
2. the directory answers an ldapsearch meanwhile.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from tests.acme_client_base import HoldingHTTP01, csr, dns_names
from tests.integration.acme_client import Client, b64
from tests.integration.acme_site import NAME, acme_site
from tests.integration.conftest import Server

STALLED = [f"stalled{i}.certdir.test" for i in range(8)]
POLL_S = 0.05
WAIT_S = 30.0


@dataclass(frozen=True, slots=True)
class Stalled:
    server: Server
    responder: HoldingHTTP01
    challenges: list[str]  # the attacker's challenge URLs, all processing
    attacker: Client


def _client(server: Server) -> Client:
    client = Client(f"{server.https_url}/acme/directory", server.ca_file)
    client.start()
    assert client.register().status == 201
    return client


def _http_challenge(client: Client, name: str) -> tuple[str, dict[str, Any]]:
    """The order's URL and its one authorization's http-01 challenge."""
    order = client.order(name)
    assert order.status == 201, order.body
    return order.location, client.challenge(order)[1]


@pytest.fixture(scope="module")
def stalled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stalled]:
    held: set[str] = set()
    with acme_site(tmp_path_factory.mktemp("acme-stalled"), names=(NAME, *STALLED),
                   serve=False, read_timeout_s=WAIT_S * 2, total_timeout_s=WAIT_S * 2
                   ) as site, HoldingHTTP01(site.challenges.http_port, held,
                                            WAIT_S * 2) as responder:
        attacker = _client(site.server)
        urls = []
        for name in STALLED:
            _, challenge = _http_challenge(attacker, name)
            held.add(challenge["token"])
            responder.answers[challenge["token"]] = attacker.key_authorization(
                challenge["token"])
            assert attacker.post(challenge["url"], {}).json()["status"] == "processing"
            urls.append(challenge["url"])
        for _ in STALLED:
            assert responder.asked.acquire(timeout=WAIT_S), "a validation never asked"
        yield Stalled(site.server, responder, urls, attacker)


def _statuses(stalled: Stalled) -> list[str]:
    return [stalled.attacker.post(url, None).json()["status"] for url in stalled.challenges]


def test_an_innocent_order_is_issued_while_the_attackers_validations_hang(
        stalled: Stalled) -> None:
    innocent = _client(stalled.server)
    order_url, challenge = _http_challenge(innocent, NAME)
    stalled.responder.answers[challenge["token"]] = innocent.key_authorization(
        challenge["token"])
    assert innocent.post(challenge["url"], {}).status == 200
    order = innocent.post(order_url, None).json()
    for _ in range(int(WAIT_S / POLL_S)):
        if order["status"] != "pending":
            break
        time.sleep(POLL_S)
        order = innocent.post(order_url, None).json()
    assert order["status"] == "ready", order
    key = ec.generate_private_key(ec.SECP256R1())
    assert innocent.post(order["finalize"], {"csr": b64(csr((NAME,), key))}).status == 200
    order = innocent.post(order_url, None).json()
    assert order["status"] == "valid", order
    chain = innocent.post(order["certificate"], None).body
    assert dns_names(x509.load_pem_x509_certificates(chain)[0]) == [NAME]
    assert _statuses(stalled) == ["processing"] * len(STALLED)


def test_the_directory_answers_while_the_attackers_validations_hang(stalled: Stalled) -> None:
    found = stalled.server.tool("ldapsearch", "-b", "", "-s", "base", "(objectClass=*)",
                                "namingContexts", timeout=10)
    assert (found.returncode, _statuses(stalled)) == (0, ["processing"] * len(STALLED))
