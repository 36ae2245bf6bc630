"""Scenario 102: an order under an officer's policy, and the directory's meta
(RFC 8555 §7.1.1, §7.3, §7.4), through the test's own client
(tests/integration/acme_client.py, signing with `cryptography` by hand).

certdir is the ACME scenarios' (tests/integration/acme_site.py) with
tls-server's policy module `officer`, so a finalized order's request waits
in the CA's queue, and with terms of service, a website and CAA identities
configured. Each order validates by http-01 at the test's server.

1. A finalized order is processing, with Retry-After and no certificate,
   while its request waits for an officer.
2. Approved with `certdir ca approve`, it reads valid, with a certificate
   that downloads for the ordered name.
3. Denied with `certdir ca deny`, it reads invalid with the officer's reason.
4. The directory's meta holds the terms of service, the website and the
   CAA identities.
5. A newAccount that does not agree to the terms is malformed, naming them.

Issuance through tls-alpn-01, accounts of each algorithm and revocation
are scenario 103's (the josepy client).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from tests.acme_client_base import AUTHORIZATION_ENDS, Answer, csr, dns_names
from tests.integration.acme_client import Client, b64
from tests.integration.acme_site import NAME, AcmeSite, acme_site
from tests.integration.conftest import database_rows

TERMS = "https://127.0.0.1/terms"
WEBSITE = "https://127.0.0.1/pki"
CAA = "pki.certdir.test"
POLL_S = 0.05


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AcmeSite]:
    with acme_site(tmp_path_factory.mktemp("acme-officer"), policy="officer",
                   terms_of_service=TERMS, website=WEBSITE, caa_identities=[CAA]) as made:
        yield made


def _client(site: AcmeSite) -> Client:
    client = Client(site.directory_url, site.server.ca_file)
    client.start()
    return client


@dataclass(frozen=True, slots=True)
class Finalized:
    client: Client
    url: str
    answer: Answer

    def request(self, site: AcmeSite) -> str:
        """The id of the CA request the order's finalize made."""
        [(request,)] = database_rows(site.server.data_dir,
                                     "SELECT request FROM acme_orders WHERE id = ?",
                                     self.url.rsplit("/", 1)[1])
        return str(request)

    def now(self) -> Answer:
        return self.client.post(self.url, None)


def _finalized(site: AcmeSite) -> Finalized:
    """An order for NAME, validated by http-01 and finalized."""
    client = _client(site)
    assert client.register().status == 201
    order = client.order(NAME)
    authorization, challenge = client.challenge(order)
    site.challenges.answer("http-01", NAME, challenge["token"],
                           client.key_authorization(challenge["token"]))
    client.post(challenge["url"], {})
    ended = client.poll(authorization, AUTHORIZATION_ENDS, POLL_S, timeout_s=20)
    assert ended.json()["status"] == "valid", ended.body
    key = ec.generate_private_key(ec.SECP256R1())
    done = client.post(order.json()["finalize"], {"csr": b64(csr((NAME,), key))})
    return Finalized(client, order.location, done)


def test_a_finalized_order_waits_for_the_officer(site: AcmeSite) -> None:
    finalized = _finalized(site)
    order = finalized.answer.json()
    assert (order["status"], "certificate" in order, finalized.answer.headers["Retry-After"]
            ) == ("processing", False, "1")


def test_an_approved_order_is_valid_with_its_certificate(site: AcmeSite) -> None:
    finalized = _finalized(site)
    server = site.server
    server.certdir("ca", "approve", "--data-dir", str(server.data_dir),
                   finalized.request(site))
    now = finalized.now().json()
    assert now["status"] == "valid", now
    chain = finalized.client.post(now["certificate"], None)
    assert dns_names(x509.load_pem_x509_certificates(chain.body)[0]) == [NAME]


def test_a_denied_order_is_invalid_with_the_reason(site: AcmeSite) -> None:
    finalized = _finalized(site)
    server = site.server
    server.certdir("ca", "deny", "--data-dir", str(server.data_dir),
                   finalized.request(site), "--why", "not this one")
    now = finalized.now().json()
    assert (now["status"], "not this one" in now["error"]["detail"]) == ("invalid", True)


def test_the_directory_meta(site: AcmeSite) -> None:
    assert _client(site).directory["meta"] == {"termsOfService": TERMS, "website": WEBSITE,
                                               "caaIdentities": [CAA]}


def test_an_account_not_agreeing_to_the_terms_is_malformed(site: AcmeSite) -> None:
    client = _client(site)
    answer = client.post(client.directory["newAccount"], {"contact": ["mailto:a@example.com"]})
    assert (answer.status, answer.problem, TERMS in answer.json()["detail"]) == (
        400, "malformed", True)
