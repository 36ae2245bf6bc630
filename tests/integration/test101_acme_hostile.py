"""Scenario 101: certdir's ACME server against a hostile client (RFC 8555 §6, §7).

A client of the test's own (tests/integration/acme_client.py, signing with
`cryptography` alone) breaks one rule per case and gets one exact answer:

0. The directory names the five resources (and no meta: none is
   configured); newNonce is 200 to HEAD and 204 to GET, both with a
   Replay-Nonce, `Cache-Control: no-store` and the index Link (§7.2).

1. A nonce used twice is badNonce (400), a nonce never issued too; an
   answer always carries a fresh Replay-Nonce.
2. `alg: none` and HS256 are badSignatureAlgorithm, with the
   `algorithms` list (§6.2).
3. A protected `url` other than the URL posted to is unauthorized (403, §6.4).
4. jwk and kid together is malformed; a kid of no account is
   accountDoesNotExist; a signature that does not verify malformed.
5. A body over `http.max_body_bytes` is 413 before the resource runs; a
   body that is not application/jose+json is 415 malformed.
6. A finalize before the order's authorizations validated is orderNotReady
   (403); once http-01 validated, a CSR naming a name the order does not
   hold is badCSR, and so is one lacking an ordered name.
7. A name outside `ca.acme.allowed` is rejectedIdentifier with a
   subproblem naming it; another account reading the order is unauthorized.
8. A deactivated account can sign nothing more (unauthorized), whether it
   deactivated itself or `certdir ca acme deactivate` did; an order that
   command ends reads invalid. (keyChange is scenario 103's, the josepy
   client's.)
9. Rate limits: past `orders_per_identifier` orders of one name, and past
   `orders_per_account` orders of one account, within the window, a new
   order is rateLimited (429) with Retry-After.

After every case nothing was issued: the CA's certificates and requests
are as before the module's first request.
"""

from __future__ import annotations

import http.client
import json
import ssl
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tests.acme_client_base import AUTHORIZATION_ENDS, ChallengeServers, csr
from tests.integration.acme_client import Client, b64, jwk_of, sign
from tests.integration.acme_site import NAME, OTHER, acme_site
from tests.integration.conftest import Server, database_rows

LIMIT = 10


@dataclass(frozen=True, slots=True)
class Site:
    server: Server
    challenges: ChallengeServers
    issued: tuple[int, int]

    def client(self) -> Client:
        client = Client(f"{self.server.https_url}/acme/directory", self.server.ca_file)
        client.start()
        return client


def _issued(server: Server) -> tuple[int, int]:
    [(certificates,)] = database_rows(server.data_dir, "SELECT count(*) FROM ca_certificates")
    [(requests,)] = database_rows(server.data_dir, "SELECT count(*) FROM ca_requests")
    return int(certificates), int(requests)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with acme_site(tmp_path_factory.mktemp("acme-hostile"), rate_limits={
            "orders_per_account": LIMIT + 2, "orders_per_identifier": LIMIT}) as acme:
        server = acme.server
        # The delegated OCSP responder's certificate is issued at start: count after it.
        server.logged("OCSP responder certificate", timeout=30)
        yield Site(server, acme.challenges, _issued(server))


@pytest.fixture
def client(site: Site) -> Iterator[Client]:
    made = site.client()
    made.register()
    yield made
    assert _issued(site.server) == site.issued, "a refused request issued something"


def test_the_directory_names_the_five_resources(site: Site) -> None:
    assert set(site.client().directory) == {"newNonce", "newAccount", "newOrder", "revokeCert",
                                            "keyChange"}


@pytest.mark.parametrize("method, status", [("HEAD", 200), ("GET", 204)])
def test_new_nonce(site: Site, method: str, status: int) -> None:
    client = site.client()
    answer = client.request(method, client.directory["newNonce"])
    assert (answer.status, bool(answer.headers["Replay-Nonce"]),
            answer.headers["Cache-Control"], answer.headers["Link"]) == (
        status, True, "no-store", f'<{site.server.https_url}/acme/directory>;rel="index"')


def test_new_nonce_by_put_is_405(site: Site) -> None:
    client = site.client()
    posted = client.request("PUT", client.directory["newNonce"], b"")
    assert (posted.status, posted.problem) == (405, "malformed")


def test_a_replayed_nonce_is_bad_nonce(site: Site) -> None:
    client = site.client()
    spent = client.nonce
    first = client.register()
    assert first.status == 201
    again = client.post(client.directory["newOrder"], {"identifiers": [
        {"type": "dns", "value": NAME}]}, client.header(client.directory["newOrder"],
                                                         nonce=spent))
    assert (again.status, again.problem) == (400, "badNonce")
    assert again.headers["Replay-Nonce"] not in (spent, None)


def test_a_nonce_never_issued_is_bad_nonce(client: Client) -> None:
    url = client.directory["newOrder"]
    answer = client.post(url, {"identifiers": [{"type": "dns", "value": NAME}]},
                         client.header(url, nonce=b64(b"\0" * 40)))
    assert (answer.status, answer.problem) == (400, "badNonce")


@pytest.mark.parametrize("alg", ["none", "HS256"])
def test_unaccepted_algorithms(client: Client, alg: str) -> None:
    url = client.directory["newOrder"]
    signed = sign(client.key, client.header(url, alg=alg), {"identifiers": []})
    if alg == "none":
        signed["signature"] = ""
    answer = client.request("POST", url, json.dumps(signed).encode())
    assert (answer.status, answer.problem) == (400, "badSignatureAlgorithm")
    assert set(answer.json()["algorithms"]) == {"ES256", "RS256", "EdDSA"}


def test_url_not_the_one_posted_to_is_unauthorized(client: Client) -> None:
    answer = client.post(client.directory["newOrder"],
                         {"identifiers": [{"type": "dns", "value": NAME}]},
                         client.header(client.directory["revokeCert"]))
    assert (answer.status, answer.problem) == (403, "unauthorized")


def test_jwk_and_kid_together_are_malformed(client: Client) -> None:
    url = client.directory["newOrder"]
    answer = client.post(url, {"identifiers": [{"type": "dns", "value": NAME}]},
                         client.header(url, jwk=jwk_of(client.key)))
    assert (answer.status, answer.problem) == (400, "malformed")


def test_unknown_kid_is_account_does_not_exist(client: Client) -> None:
    url = client.directory["newOrder"]
    assert client.kid is not None
    answer = client.post(url, {"identifiers": [{"type": "dns", "value": NAME}]},
                         client.header(url, kid=client.kid[:-4] + "AAAA"))
    assert (answer.status, answer.problem) == (400, "accountDoesNotExist")


def test_another_key_signing_is_malformed(client: Client) -> None:
    url = client.directory["newOrder"]
    answer = client.post(url, {"identifiers": [{"type": "dns", "value": NAME}]},
                         key=ec.generate_private_key(ec.SECP256R1()))
    assert (answer.status, answer.problem) == (400, "malformed")
    assert "does not verify" in answer.json()["detail"]


def test_body_over_the_limit_is_413(site: Site, client: Client) -> None:
    url = client.directory["newOrder"]
    parts = url.split("/", 3)
    host, port = parts[2].split(":")
    context = ssl.create_default_context(cafile=str(site.server.ca_file))
    connection = http.client.HTTPSConnection(host, int(port), context=context, timeout=30)
    connection.request("POST", "/" + parts[3], body=b"{" + b" " * (70 * 1024) + b"}",
                       headers={"Content-Type": "application/jose+json"})
    assert connection.getresponse().status == 413
    connection.close()


def test_other_content_type_is_415(client: Client) -> None:
    url = client.directory["newOrder"]
    signed = sign(client.key, client.header(url), {"identifiers": []})
    answer = client.request("POST", url, json.dumps(signed).encode(), "application/json")
    assert (answer.status, answer.problem) == (415, "malformed")


def test_a_name_outside_the_policy_is_rejected(client: Client) -> None:
    answer = client.order(NAME, "www.example.org")
    assert (answer.status, answer.problem) == (400, "rejectedIdentifier")
    [sub] = answer.json()["subproblems"]
    assert sub["identifier"] == {"type": "dns", "value": "www.example.org"}


def test_finalize_before_validation_is_order_not_ready(client: Client) -> None:
    order = client.order(NAME)
    assert order.status == 201, order.body
    answer = client.post(order.json()["finalize"], {"csr": _csr(NAME)})
    assert (answer.status, answer.problem) == (403, "orderNotReady")


def test_another_account_cannot_read_the_order(site: Site, client: Client) -> None:
    order = client.order(NAME)
    other = site.client()
    other.register()
    answer = other.post(order.headers["Location"], None)
    assert (answer.status, answer.problem) == (403, "unauthorized")


def _csr(*names: str) -> str:
    return b64(csr(names, ec.generate_private_key(ec.SECP256R1())))


def _validated(site: Site, client: Client, name: str) -> dict[str, str]:
    """A new order for `name` whose http-01 challenge validated: the order."""
    order = client.order(name)
    assert order.status == 201, order.body
    authorization, challenge = client.challenge(order)
    site.challenges.answer("http-01", name, challenge["token"],
                           client.key_authorization(challenge["token"]))
    started = client.post(challenge["url"], {})
    assert started.status == 200, started.body
    assert f'<{authorization}>;rel="up"' in started.headers.get_all("Link", [])
    ended = client.poll(authorization, AUTHORIZATION_ENDS, 0.05, timeout_s=20)
    assert ended.json()["status"] == "valid", ended.body
    ready = client.post(order.headers["Location"], None).json()
    assert ready["status"] == "ready", ready
    return dict(ready)


@pytest.mark.parametrize("names", [(NAME, OTHER), (OTHER,)])
def test_csr_with_other_names_is_bad_csr(site: Site, client: Client,
                                         names: tuple[str, ...]) -> None:
    order = _validated(site, client, NAME)
    answer = client.post(order["finalize"], {"csr": _csr(*names)})
    assert (answer.status, answer.problem) == (400, "badCSR")
    assert OTHER in answer.json()["detail"]


def test_a_deactivated_account_signs_nothing(client: Client) -> None:
    assert client.kid is not None
    gone = client.post(client.kid, {"status": "deactivated"})
    assert (gone.status, gone.json()["status"]) == (200, "deactivated")
    answer = client.order(NAME)
    assert (answer.status, answer.problem) == (403, "unauthorized")


def _deactivate(server: Server, url: str) -> str:
    """`certdir ca acme deactivate` of the account or order at `url`: what it said (the
    id after `--`: it may start with "-")."""
    return server.certdir("ca", "acme", "deactivate", "--data-dir", str(server.data_dir),
                          "--", url.rsplit("/", 1)[1]).stdout.decode()


def test_the_cli_makes_an_order_invalid(site: Site, client: Client) -> None:
    order = client.order(NAME).location
    said = _deactivate(site.server, order)
    assert ("made invalid" in said, client.post(order, None).json()["status"]) == (
        True, "invalid"), said


def test_an_account_the_cli_deactivated_signs_nothing(site: Site, client: Client) -> None:
    assert client.kid is not None
    said = _deactivate(site.server, client.kid)
    answer = client.order(NAME)
    assert ("deactivated" in said, answer.status, answer.problem) == (
        True, 403, "unauthorized"), said


def test_orders_of_one_name_are_rate_limited(site: Site) -> None:
    clients = [site.client() for _ in range(2)]
    for client in clients:
        client.register()
    for i in range(LIMIT):
        assert clients[i % 2].order("limited.certdir.test").status == 201
    answer = clients[0].order("limited.certdir.test")
    assert (answer.status, answer.problem) == (429, "rateLimited")
    assert int(answer.headers["Retry-After"]) > 0


def test_orders_of_one_account_are_rate_limited(client: Client) -> None:
    for i in range(LIMIT + 2):
        assert client.order(f"n{i}.certdir.test").status == 201
    answer = client.order("one-more.certdir.test")
    assert (answer.status, answer.problem) == (429, "rateLimited")
