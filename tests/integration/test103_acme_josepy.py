"""Scenario 103: a second, independent ACME client, on josepy (tests/acme_josepy.py).

certdir is the ACME scenarios' (tests/integration/acme_site.py): each name
ordered here under `.certdir.test` resolving to 127.0.0.1, http-01 and
tls-alpn-01 validated on ports of the test's, where the shared challenge
servers answer; the `acme` policy module issues tls-server.

1. An account of each algorithm RFC 8555 §6.2 names here, ES256 (P-256),
   RS256 (RSA-2048) and EdDSA (Ed25519), gets a certificate for its name.
2. tls-alpn-01 (RFC 8737): the test's TLS server answers with ALPN
   "acme-tls/1" and the certificate for the SNI name (one SAN, the
   critical acmeIdentifier extension holding SHA-256 of the key
   authorization); certdir's validation shakes hands there and the order
   is issued. A certificate whose acmeIdentifier holds the digest of
   another key authorization makes the challenge invalid,
   incorrectResponse (RFC 8737 §3), and its order invalid.
3. keyChange (§7.3.5) moves the account to a new key: newAccount with the
   old key and onlyReturnExisting is then accountDoesNotExist (ops/account.py),
   the old key signing with the account's kid is malformed (its signature
   does not verify with the account's key, resource.py), the new key finds
   the account and gets a certificate. A keyChange to a key another account
   holds is 409 with that account's Location, and changes nothing.
4. The account's orders URL (§7.1.2.1) lists exactly the orders it made.
5. The certificate (§7.4.2) is application/pem-certificate-chain: the leaf,
   then the CA's chain, which `openssl verify -CAfile` (certdir's CA as the
   only trust anchor) accepts for a TLS server.
6. revokeCert (§7.6): an account other than the ordering one cannot revoke
   a certificate (unauthorized), and a certificate this CA did not issue
   is 404. Signed with the certificate's own key (a jwk, no account),
   reason keyCompromise, it revokes: the CA's record says revoked,
   keyCompromise, and `openssl ocsp` answers revoked, keyCompromise;
   revoking it again, by the ordering account, is alreadyRevoked.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from josepy import json_util

from tests.acme_client_base import ACME_TLS_1, dns_names
from tests.acme_josepy import Client, Issued, Key, obtain
from tests.integration.acme_site import AcmeSite, acme_site
from tests.integration.conftest import database_rows

ALGORITHMS = ("ES256", "RS256", "EdDSA")
LABELS = (*(alg.lower() for alg in ALGORITHMS), "alpn", "forged", "rolled", "held", "list1",
          "list2", "chain", "revoked")
PEM_CHAIN = "application/pem-certificate-chain"


def name(label: str) -> str:
    return f"{label}.certdir.test"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AcmeSite]:
    with acme_site(tmp_path_factory.mktemp("acme-josepy"),
                   names=[name(label) for label in LABELS]) as made:
        yield made


def account(site: AcmeSite, alg: str = "ES256") -> Client:
    """A new account with a key of `alg`."""
    client = Client(site.directory_url, site.server.ca_file, Key.generate(alg))
    client.start()
    made = client.register()
    assert made.status == 201, made.body
    return client


def openssl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["openssl", *args], capture_output=True, text=True, check=False,
                          timeout=30)


def _leaf(issued: Issued) -> x509.Certificate:
    return x509.load_pem_x509_certificates(issued.chain.body)[0]


def _der(issued: Issued) -> str:
    return json_util.encode_b64jose(_leaf(issued).public_bytes(Encoding.DER))


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_an_account_of_each_algorithm_gets_a_certificate(site: AcmeSite, alg: str) -> None:
    issued = obtain(account(site, alg), (name(alg.lower()),), site.challenges)
    assert dns_names(_leaf(issued)) == [name(alg.lower())]


def test_tls_alpn_01_validates_and_issues(site: AcmeSite) -> None:
    issued = obtain(account(site), (name("alpn"),), site.challenges, kind="tls-alpn-01")
    assert (dns_names(_leaf(issued)), (name("alpn"), ACME_TLS_1) in site.challenges.handshakes
            ) == ([name("alpn")], True)


def test_tls_alpn_01_with_another_digest_is_incorrect_response(site: AcmeSite) -> None:
    client = account(site)
    order = client.order(name("forged"))
    [authorization] = order.json()["authorizations"]
    challenge = next(c for c in client.post(authorization, None).json()["challenges"]
                     if c["type"] == "tls-alpn-01")
    site.challenges.answer("tls-alpn-01", name("forged"), challenge["token"],
                           client.key_authorization("another-token"))
    client.post(challenge["url"], {})
    ended = client.poll(order.location, frozenset({"ready", "invalid"}), 0.05)
    error = client.post(challenge["url"], None).json()["error"]
    assert (ended.json()["status"], error["type"]) == (
        "invalid", "urn:ietf:params:acme:error:incorrectResponse")


@dataclass(frozen=True, slots=True)
class Rolled:
    client: Client
    old: Key


@pytest.fixture(scope="module")
def rolled(site: AcmeSite) -> Rolled:
    """An ES256 account whose key changed to a new Ed25519 key."""
    client = account(site)
    old = client.key
    changed = client.key_change(Key.generate("EdDSA"))
    assert changed.status == 200, changed.body
    return Rolled(client, old)


def test_after_key_change_the_old_key_has_no_account(rolled: Rolled) -> None:
    client = rolled.client
    found = client.post(client.directory["newAccount"], {"onlyReturnExisting": True},
                        key=rolled.old)
    assert (found.status, found.problem) == (400, "accountDoesNotExist")


def test_after_key_change_the_old_key_cannot_sign_for_the_account(rolled: Rolled) -> None:
    client = rolled.client
    assert client.kid is not None
    signed = rolled.old.sign(b"", client.kid, client.nonce, client.kid)
    answer = client.request("POST", client.kid, json.dumps(signed).encode())
    assert (answer.status, answer.problem) == (400, "malformed")


def test_after_key_change_the_new_key_finds_the_account(rolled: Rolled) -> None:
    client = rolled.client
    found = client.post(client.directory["newAccount"], {"onlyReturnExisting": True},
                        key=client.key)
    assert (found.status, found.location) == (200, client.kid)


def test_after_key_change_the_new_key_gets_a_certificate(site: AcmeSite,
                                                         rolled: Rolled) -> None:
    issued = obtain(rolled.client, (name("rolled"),), site.challenges)
    assert dns_names(_leaf(issued)) == [name("rolled")]


def test_key_change_to_a_key_another_account_holds_is_409(site: AcmeSite) -> None:
    client, other = account(site), account(site, "RS256")
    before = client.key
    refused = client.key_change(other.key)
    assert (refused.status, refused.location, client.key, client.order(name("held")).status
            ) == (409, other.kid, before, 201)


def test_the_orders_list_names_the_orders_made(site: AcmeSite) -> None:
    client = account(site)
    made = {client.order(name(label)).location for label in ("list1", "list2")}
    assert client.kid is not None
    listed = client.post(client.post(client.kid, None).json()["orders"], None)
    assert set(listed.json()["orders"]) == made


@pytest.fixture(scope="module")
def issued(site: AcmeSite) -> Issued:
    return obtain(account(site), (name("chain"),), site.challenges)


def test_the_download_is_the_leaf_and_the_ca_chain(site: AcmeSite, issued: Issued) -> None:
    chain = x509.load_pem_x509_certificates(issued.chain.body)
    ca = x509.load_pem_x509_certificates(site.server.ca_file.read_bytes())
    assert (issued.chain.headers["Content-Type"], dns_names(chain[0]), chain[1:]) == (
        PEM_CHAIN, [name("chain")], ca)


def test_openssl_verifies_the_chain(site: AcmeSite, issued: Issued) -> None:
    leaf, *rest = x509.load_pem_x509_certificates(issued.chain.body)
    (site.tmp / "leaf.pem").write_bytes(leaf.public_bytes(Encoding.PEM))
    (site.tmp / "rest.pem").write_bytes(b"".join(c.public_bytes(Encoding.PEM) for c in rest))
    done = openssl("verify", "-CAfile", str(site.server.ca_file), "-untrusted",
                   str(site.tmp / "rest.pem"), "-purpose", "sslserver",
                   str(site.tmp / "leaf.pem"))
    assert (done.returncode, done.stdout.strip()) == (0, f"{site.tmp / 'leaf.pem'}: OK"), \
        done.stderr


def test_another_account_cannot_revoke(site: AcmeSite, issued: Issued) -> None:
    other = account(site)
    answer = other.post(other.directory["revokeCert"], {"certificate": _der(issued)})
    assert (answer.status, answer.problem) == (403, "unauthorized")


def test_a_certificate_not_issued_here_is_404(site: AcmeSite) -> None:
    client = account(site)
    foreign = x509.load_pem_x509_certificate(site.server.ca_file.read_bytes())
    answer = client.post(client.directory["revokeCert"], {
        "certificate": json_util.encode_b64jose(foreign.public_bytes(Encoding.DER))})
    assert (answer.status, answer.problem) == (404, "malformed")


@dataclass(frozen=True, slots=True)
class Revoked:
    client: Client
    issued: Issued


@pytest.fixture(scope="module")
def revoked(site: AcmeSite) -> Revoked:
    """A certificate revoked by revokeCert signed with its own key (jwk), keyCompromise."""
    client = account(site)
    made = Revoked(client, obtain(client, (name("revoked"),), site.challenges))
    answer = client.post(client.directory["revokeCert"],
                         {"certificate": _der(made.issued), "reason": 1},
                         key=Key.of(made.issued.key))
    assert answer.status == 200, answer.body
    return made


def test_revocation_with_the_certificates_key_is_recorded(site: AcmeSite,
                                                          revoked: Revoked) -> None:
    rows = database_rows(site.server.data_dir,
                         "SELECT status, reason FROM ca_certificates WHERE serial = ?",
                         format(_leaf(revoked.issued).serial_number, "x"))
    assert rows == [("revoked", "keyCompromise")]


def test_revocation_with_the_certificates_key_is_answered_by_ocsp(site: AcmeSite,
                                                                  revoked: Revoked) -> None:
    path = site.tmp / "revoked.pem"
    path.write_bytes(_leaf(revoked.issued).public_bytes(Encoding.PEM))
    ca = str(site.server.ca_file)
    ocsp = openssl("ocsp", "-issuer", ca, "-cert", str(path), "-url",
                   f"{site.server.http_url}/ocsp", "-CAfile", ca)
    assert (f"{path}: revoked" in ocsp.stdout, "Reason: keyCompromise" in ocsp.stdout) == (
        True, True), ocsp.stdout + ocsp.stderr


def test_revoking_again_is_already_revoked(revoked: Revoked) -> None:
    owner = revoked.client
    again = owner.post(owner.directory["revokeCert"], {"certificate": _der(revoked.issued)})
    assert (again.status, again.problem) == (400, "alreadyRevoked")
