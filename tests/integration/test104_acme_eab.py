"""Scenario 104: external account binding (RFC 8555 §7.3.4) and accounts bound to
directory entries.

certdir runs with `ca.acme.external_account_required: true`, and tls-server
publishing `userCertificate;binary`; binding keys come from `certdir ca
acme-eab create`, the client is the test's own (tests/integration/acme_client.py)
with an HS256 binding made here.

1. The directory's meta says externalAccountRequired; a newAccount without a
   binding is externalAccountRequired.
2. A binding made with a key from `acme-eab create` gets a new account (201),
   and `acme-eab list` shows the key bound; the same key for another account
   is unauthorized (a key binds one account).
3. Broken bindings are refused: a MAC under another key or an unknown key id
   unauthorized; a url other than newAccount's, a payload of another key
   than the account's, a nonce in the binding's header, an alg other than
   HS256 malformed; a key revoked with `acme-eab revoke` unauthorized.
4. The HMAC key is kept sealed: it is in no row of the database and not in
   the server's log.
5. A key made with `--entry DN` binds an account whose certificate (http-01,
   finalize) is recorded for that entry and published into its
   `userCertificate;binary`; an account of a key without an entry gets a
   certificate recorded for no entry, and the entry holds only the first.
6. `--entry` naming no entry fails and makes no key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from tests.acme_client_base import AUTHORIZATION_ENDS, ChallengeServers, csr
from tests.integration.acme_client import Client, b64, jwk_of
from tests.integration.acme_site import NAME, acme_site
from tests.integration.conftest import Server, database_rows

ENTRY = "cn=www,dc=example,dc=com"


@dataclass(frozen=True, slots=True)
class Key:
    kid: str
    hmac_key: bytes


@dataclass(frozen=True, slots=True)
class Site:
    server: Server
    challenges: ChallengeServers

    def client(self) -> Client:
        client = Client(f"{self.server.https_url}/acme/directory", self.server.ca_file)
        client.start()
        return client

    def eab(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        return self.server.certdir("ca", "acme-eab", *args, "--data-dir",
                                   str(self.server.data_dir), check=False)

    def new_key(self, *args: str) -> Key:
        made = self.eab("create", *args)
        assert made.returncode == 0, made.stderr
        lines = dict(line.split(": ", 1) for line in made.stdout.decode().splitlines())
        text = lines["hmac_key"]
        return Key(lines["kid"], base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with acme_site(tmp_path_factory.mktemp("acme-eab"),
                   ca={"profiles": {"tls-server": {"publish": ["userCertificate;binary"]}}},
                   external_account_required=True) as made:
        added = made.server.tool("ldapadd", input=f"dn: {ENTRY}\nobjectClass: "
                                 "applicationProcess\ncn: www\n".encode())
        assert added.returncode == 0, added.stderr
        yield Site(made.server, made.challenges)


def binding(client: Client, key: Key, **header: Any) -> dict[str, str]:
    """An HS256 external account binding of the client's key (RFC 8555 §7.3.4); `header`
    changes its protected header, `jwk` the key it binds."""
    bound = header.pop("jwk", None) or jwk_of(client.key)
    protected = b64(json.dumps({"alg": "HS256", "kid": key.kid,
                                "url": client.directory["newAccount"], **header}).encode())
    payload = b64(json.dumps(bound).encode())
    mac = hmac.new(key.hmac_key, f"{protected}.{payload}".encode(), hashlib.sha256).digest()
    return {"protected": protected, "payload": payload, "signature": b64(mac)}


def register(client: Client, bound: dict[str, str] | None) -> Any:
    payload: dict[str, Any] = {"termsOfServiceAgreed": True}
    if bound is not None:
        payload["externalAccountBinding"] = bound
    answer = client.post(client.directory["newAccount"], payload)
    if answer.status == 201:
        client.kid = answer.headers["Location"]
    return answer


def test_a_binding_is_required(site: Site) -> None:
    client = site.client()
    assert client.directory["meta"] == {"externalAccountRequired": True}
    answer = register(client, None)
    assert (answer.status, answer.problem) == (400, "externalAccountRequired")


def test_a_key_binds_one_account(site: Site) -> None:
    key = site.new_key()
    client = site.client()
    assert register(client, binding(client, key)).status == 201
    listed = site.eab("list").stdout.decode()
    assert key.kid in listed and "bound" in listed
    other = site.client()
    answer = register(other, binding(other, key))
    assert (answer.status, answer.problem) == (403, "unauthorized")


def _broken(site: Site, key: Key, client: Client) -> dict[str, dict[str, str]]:
    stranger = Key(key.kid, b"\1" * 32)
    unknown = Key(b64(b"\2" * 16), key.hmac_key)
    other = jwk_of(ec.generate_private_key(ec.SECP256R1()))
    return {
        "another MAC key": binding(client, stranger),
        "an unknown key id": binding(client, unknown),
        "another url": binding(client, key, url=client.directory["newOrder"]),
        "another account key": binding(client, key, jwk=other),
        "a nonce": binding(client, key, nonce=client.nonce),
        "HS512": binding(client, key, alg="HS512"),
    }


WHY = {"another MAC key": (403, "unauthorized"), "an unknown key id": (403, "unauthorized"),
       "another url": (400, "malformed"), "another account key": (400, "malformed"),
       "a nonce": (400, "malformed"), "HS512": (400, "malformed")}


@pytest.mark.parametrize("case", sorted(WHY))
def test_broken_bindings_are_refused(site: Site, case: str) -> None:
    key = site.new_key()
    client = site.client()
    answer = register(client, _broken(site, key, client)[case])
    assert (answer.status, answer.problem) == WHY[case], answer.body


def test_a_revoked_key_binds_nothing(site: Site) -> None:
    key = site.new_key()
    assert site.eab("revoke", key.kid).returncode == 0
    assert "revoked" in site.eab("list").stdout.decode()
    client = site.client()
    answer = register(client, binding(client, key))
    assert (answer.status, answer.problem) == (403, "unauthorized")


def test_the_hmac_key_is_kept_sealed(site: Site) -> None:
    key = site.new_key()
    [(sealed,)] = database_rows(site.server.data_dir,
                                "SELECT sealed FROM acme_eab_keys WHERE id = ?", key.kid)
    assert key.hmac_key not in bytes(sealed)
    text = base64.urlsafe_b64encode(key.hmac_key).rstrip(b"=").decode()
    assert text not in site.server.log()
    client = site.client()
    assert register(client, binding(client, key)).status == 201
    assert text not in site.server.log()


def _issue(site: Site, client: Client) -> x509.Certificate:
    order = client.order(NAME)
    assert order.status == 201, order.body
    authorization, challenge = client.challenge(order)
    site.challenges.answer("http-01", NAME, challenge["token"],
                           client.key_authorization(challenge["token"]))
    assert client.post(challenge["url"], {}).status == 200
    ended = client.poll(authorization, AUTHORIZATION_ENDS, 0.1, timeout_s=20)
    assert ended.json()["status"] == "valid", ended.body
    key = ec.generate_private_key(ec.SECP256R1())
    done = client.post(order.json()["finalize"], {"csr": b64(csr((NAME,), key))})
    assert done.json()["status"] == "valid", done.body
    leaf, *_ = x509.load_pem_x509_certificates(client.post(done.json()["certificate"],
                                                           None).body)
    return leaf


def _entry_of(server: Server, certificate: x509.Certificate) -> str | None:
    [(entry,)] = database_rows(server.data_dir,
                               "SELECT entry FROM ca_certificates WHERE serial = ?",
                               format(certificate.serial_number, "x"))
    return None if entry is None else str(entry)


def _published(server: Server) -> list[bytes]:
    found = server.tool("ldapsearch", "-LLL", "-o", "ldif-wrap=no", "-b", ENTRY, "-s", "base",
                        "(objectClass=*)", "userCertificate;binary")
    assert found.returncode == 0, found.stderr
    return [base64.b64decode(line.split(b":: ", 1)[1]) for line in found.stdout.splitlines()
            if line.lower().startswith(b"usercertificate;binary::")]


def test_a_bound_account_publishes_into_its_entry(site: Site) -> None:
    bound = site.client()
    assert register(bound, binding(bound, site.new_key("--entry", ENTRY))).status == 201
    certificate = _issue(site, bound)
    assert _entry_of(site.server, certificate) == ENTRY
    unbound = site.client()
    assert register(unbound, binding(unbound, site.new_key())).status == 201
    elsewhere = _issue(site, unbound)
    assert _entry_of(site.server, elsewhere) is None
    assert _published(site.server) == [certificate.public_bytes(Encoding.DER)]


def test_entry_must_exist(site: Site) -> None:
    before = database_rows(site.server.data_dir, "SELECT count(*) FROM acme_eab_keys")
    made = site.eab("create", "--entry", "cn=nobody,dc=example,dc=com")
    assert made.returncode != 0 and b"cn=nobody" in made.stderr
    assert database_rows(site.server.data_dir, "SELECT count(*) FROM acme_eab_keys") == before
