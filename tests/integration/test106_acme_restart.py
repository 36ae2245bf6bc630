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

import http.server
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.acme_client import Client
from tests.integration.acme_site import NAME, acme_site
from tests.integration.conftest import Server, database_rows


class Held:
    """http-01 on 127.0.0.1:`port` that holds each answer until `release` is set."""

    def __init__(self, port: int) -> None:
        self.answers: dict[str, str] = {}
        self.asked = threading.Event()
        self.release = threading.Event()
        held = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                held.asked.set()
                held.release.wait(60)
                body = held.answers.get(self.path.rsplit("/", 1)[-1], "").encode()
                try:
                    self.send_response(200 if body else 404)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    return  # the server that asked was killed meanwhile

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True

    def __enter__(self) -> Held:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def held(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Held]]:
    with acme_site(tmp_path_factory.mktemp("acme-restart"), serve=False, read_timeout_s=30,
                   total_timeout_s=60) as site, Held(site.challenges.http_port) as responder:
        yield site.server, responder


def _status(server: Server, challenge: str) -> str:
    [(status,)] = database_rows(server.data_dir,
                                "SELECT status FROM acme_challenges WHERE id = ?", challenge)
    return str(status)


def test_a_validation_cut_by_kill_9_is_resumed_at_start(held: tuple[Server, Held]) -> None:
    server, responder = held
    client = Client(f"{server.https_url}/acme/directory", server.ca_file)
    client.start()
    assert client.register().status == 201
    order = client.order(NAME)
    [authorization] = order.json()["authorizations"]
    challenge = next(c for c in client.post(authorization, None).json()["challenges"]
                     if c["type"] == "http-01")
    responder.answers[challenge["token"]] = client.key_authorization(challenge["token"])
    assert client.post(challenge["url"], {}).json()["status"] == "processing"
    assert responder.asked.wait(20), "the validation never asked"
    server.kill()
    ident = challenge["url"].rsplit("/", 1)[-1]
    assert _status(server, ident) == "processing"
    responder.release.set()
    server.start()
    deadline = time.monotonic() + 30
    while (found := client.post(authorization, None).json())["status"] != "valid":
        assert found["status"] == "pending" and time.monotonic() < deadline, found
        time.sleep(0.1)
    assert _status(server, ident) == "valid"
    assert client.post(order.headers["Location"], None).json()["status"] == "ready"
    assert f"ACME challenge {ident} (http-01 of {NAME}) was left processing" in server.log()
