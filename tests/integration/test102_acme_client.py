"""Scenario 102: a second ACME client (the test's own, tests/integration/acme_client.py)
gets certificates through tls-alpn-01 and with an EdDSA account key, and revokes with
the certificate's own key (RFC 8555 §7.6).

1. An account with an Ed25519 key (EdDSA) orders www.certdir.test; its
   tls-alpn-01 challenge validates against a TLS responder on loopback
   (RFC 8737: acme-tls/1, the acmeIdentifier extension); the order is ready,
   finalize issues, the order is valid with a certificate URL whose chain is
   the certificate (that name, the CSR's key) and certdir's CA.
2. The certificate is revoked by a JWS signed with the certificate's own key
   (a jwk, no account): the CA's record says revoked with the reason given;
   a second revocation, by the ordering account, is alreadyRevoked; a
   certificate this CA did not issue is 404.
3. An account other than the ordering one cannot revoke it (unauthorized).
4. With tls-server's policy module `officer`, a finalized order is
   processing (Retry-After) until `certdir ca approve` issues its request,
   then valid with a certificate that downloads.
5. Denied with `certdir ca deny`, it is invalid with the officer's reason.
6. With terms of service, website and CAA identities configured the
   directory's meta holds them, and a newAccount that does not agree to the
   terms is malformed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import NameOID

from tests.acme_client_base import ChallengeServers
from tests.integration.acme_client import Client, b64, jwk_of
from tests.integration.acme_site import NAME, acme_site
from tests.integration.conftest import Server, database_rows

TERMS = "https://127.0.0.1/terms"


@dataclass(frozen=True, slots=True)
class Site:
    server: Server
    challenges: ChallengeServers

    def client(self, key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | None = None
               ) -> Client:
        client = Client(f"{self.server.https_url}/acme/directory", self.server.ca_file)
        if key is not None:
            client.key = key
        client.start()
        assert client.register().status == 201
        return client


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with acme_site(tmp_path_factory.mktemp("acme-client")) as acme:
        yield Site(acme.server, acme.challenges)


@dataclass(frozen=True, slots=True)
class Issued:
    client: Client
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate
    der: bytes


def _issue(site: Site, client: Client) -> Issued:
    order = client.order(NAME)
    assert order.status == 201, order.body
    [authorization] = order.json()["authorizations"]
    challenge = next(c for c in client.post(authorization, None).json()["challenges"]
                     if c["type"] == "tls-alpn-01")
    site.challenges.answer("tls-alpn-01", NAME, challenge["token"],
                          client.key_authorization(challenge["token"]))
    assert client.post(challenge["url"], {}).status == 200
    deadline = time.monotonic() + 20
    while (status := client.post(authorization, None).json())["status"] != "valid":
        assert status["status"] == "pending" and time.monotonic() < deadline, status
        time.sleep(0.1)
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, NAME)]))
           .add_extension(x509.SubjectAlternativeName([x509.DNSName(NAME)]), critical=False)
           .sign(key, hashes.SHA256()))
    done = client.post(order.json()["finalize"],
                       {"csr": b64(csr.public_bytes(Encoding.DER))}).json()
    assert done["status"] == "valid", done
    chain = client.post(done["certificate"], None)
    assert chain.headers["Content-Type"] == "application/pem-certificate-chain"
    leaf, *issuers = x509.load_pem_x509_certificates(chain.body)
    assert issuers == [x509.load_pem_x509_certificate(site.server.ca_file.read_bytes())]
    assert leaf.extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName) == [NAME]
    spki = leaf.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    assert spki == key.public_key().public_bytes(Encoding.DER,
                                                 PublicFormat.SubjectPublicKeyInfo)
    return Issued(client, key, leaf, leaf.public_bytes(Encoding.DER))


@pytest.fixture(scope="module")
def issued(site: Site) -> Issued:
    return _issue(site, site.client(ed25519.Ed25519PrivateKey.generate()))


def _status(server: Server, certificate: x509.Certificate) -> tuple[str, str | None]:
    [(status, reason)] = database_rows(
        server.data_dir, "SELECT status, reason FROM ca_certificates WHERE serial = ?",
        format(certificate.serial_number, "x"))
    return str(status), reason


def test_eddsa_account_gets_a_certificate_by_tls_alpn_01(site: Site, issued: Issued) -> None:
    assert _status(site.server, issued.certificate) == ("valid", None)


def test_another_account_cannot_revoke(site: Site, issued: Issued) -> None:
    other = site.client()
    answer = other.post(other.directory["revokeCert"], {"certificate": b64(issued.der)})
    assert (answer.status, answer.problem) == (403, "unauthorized")


def test_revoked_with_the_certificate_key(site: Site, issued: Issued) -> None:
    client = site.client()
    url = client.directory["revokeCert"]

    header = {"alg": "ES256", "nonce": client.nonce, "url": url, "jwk": jwk_of(issued.key)}
    answer = client.post(url, {"certificate": b64(issued.der), "reason": 4}, header,
                         key=issued.key)
    assert (answer.status, answer.problem) == (200, "")
    assert _status(site.server, issued.certificate) == ("revoked", "superseded")
    owner = issued.client
    again = owner.post(url, {"certificate": b64(issued.der)})
    assert (again.status, again.problem) == (400, "alreadyRevoked")
    foreign = x509.load_pem_x509_certificate(site.server.ca_file.read_bytes())
    unknown = client.post(url, {"certificate": b64(foreign.public_bytes(Encoding.DER))})
    assert (unknown.status, unknown.problem) == (404, "malformed")


@pytest.fixture(scope="module")
def officer_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The same, but tls-server's policy module is `officer`: requests wait."""
    with acme_site(tmp_path_factory.mktemp("acme-officer"), policy="officer",
                   terms_of_service=TERMS, website="https://127.0.0.1/pki",
                   caa_identities=["pki.certdir.test"]) as acme:
        yield Site(acme.server, acme.challenges)


def _ready_then_finalized(site: Site) -> tuple[Client, dict[str, object]]:
    client = site.client()
    order = client.order(NAME)
    [authorization] = order.json()["authorizations"]
    challenge = next(c for c in client.post(authorization, None).json()["challenges"]
                     if c["type"] == "tls-alpn-01")
    site.challenges.answer("tls-alpn-01", NAME, challenge["token"],
                          client.key_authorization(challenge["token"]))
    client.post(challenge["url"], {})
    deadline = time.monotonic() + 20
    while client.post(authorization, None).json()["status"] != "valid":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
           .add_extension(x509.SubjectAlternativeName([x509.DNSName(NAME)]), critical=False)
           .sign(key, hashes.SHA256()))
    done = client.post(order.json()["finalize"], {"csr": b64(csr.public_bytes(Encoding.DER))})
    assert done.headers["Retry-After"] == "1"
    return client, {**done.json(), "url": done.headers["Location"]}


def _pending_request(server: Server) -> str:
    [(request,)] = database_rows(server.data_dir, "SELECT id FROM ca_requests WHERE "
                                 "status = 'pending' AND profile = 'tls-server'")
    return str(request)


def test_an_order_waits_for_the_officer(officer_site: Site) -> None:
    """4. With the officer policy the finalized order is processing until `certdir ca
    approve` issues its request; then it reads valid and its certificate downloads."""
    client, order = _ready_then_finalized(officer_site)
    assert order["status"] == "processing" and "certificate" not in order
    server = officer_site.server
    server.certdir("ca", "approve", "--data-dir", str(server.data_dir),
                   _pending_request(server))
    now = client.post(str(order["url"]), None).json()
    assert now["status"] == "valid", now
    chain = client.post(now["certificate"], None)
    assert chain.status == 200
    leaf = x509.load_pem_x509_certificates(chain.body)[0]
    assert leaf.extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName) == [NAME]


def test_a_denied_order_is_invalid(officer_site: Site) -> None:
    """5. Denied by an officer, the order reads invalid with the officer's reason."""
    client, order = _ready_then_finalized(officer_site)
    server = officer_site.server
    server.certdir("ca", "deny", "--data-dir", str(server.data_dir),
                   _pending_request(server), "--why", "not this one")
    now = client.post(str(order["url"]), None).json()
    assert now["status"] == "invalid"
    assert "not this one" in now["error"]["detail"]


def test_meta_and_terms_of_service(officer_site: Site) -> None:
    client = Client(f"{officer_site.server.https_url}/acme/directory",
                    officer_site.server.ca_file)
    client.start()
    assert client.directory["meta"] == {"termsOfService": TERMS,
                                        "website": "https://127.0.0.1/pki",
                                        "caaIdentities": ["pki.certdir.test"]}
    answer = client.post(client.directory["newAccount"], {"contact": ["mailto:a@example.com"]})
    assert (answer.status, answer.problem) == (400, "malformed")
    assert TERMS in answer.json()["detail"]
