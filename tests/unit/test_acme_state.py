"""ca.acme.nonces, ca.acme.states and ca.acme.store, without a server.

- A nonce issued checks until it expires; one altered, padded, of another
  secret, expired or not base64 at all is badNonce (RFC 8555 §6.5).
- The store, on SQLite and on PostgreSQL: a nonce is spent once (the
  second spend is refused) and pruned after its expiry; the nonce secret
  is whichever front end stored it first; an account key is unique;
  status changes move only from the statuses RFC 8555 §7.1.6 allows, so a
  finalize happens once and a valid order never goes back.
- Deactivating an account ends its pending and ready orders.
- An order's status follows its authorizations: ready when all are valid,
  invalid once one is not valid or pending.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from ca.acme import states
from ca.acme.nonces import Nonces
from ca.acme.problems import AcmeProblem
from ca.acme.store import TABLES, Account, AcmeStore, Authorization, Challenge, Order, new_id
from ca.store import TABLES as CA_TABLES
from directory.backend import Backend
from directory.backend.opening import Storage, open_backend
from directory.schema import Schema
from tests import pg_cluster

SCHEMA = Schema.load([Path(__file__).resolve().parents[2] / "schema"])
NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
SECRET = b"s" * 32


def test_a_nonce_checks_until_it_expires() -> None:
    nonces = Nonces(SECRET, 60)
    nonce = nonces.issue(1000.0)
    assert nonces.check(nonce, 1059.0) == 1060
    with pytest.raises(AcmeProblem) as refused:
        nonces.check(nonce, 1060.0)
    assert refused.value.kind == "badNonce"


def _flip(nonce: str) -> str:
    return nonce[:10] + ("A" if nonce[10] != "A" else "B") + nonce[11:]


BAD: list[tuple[str, object]] = [
    ("altered", _flip),
    ("padded", lambda n: n + "="),
    ("of another secret", lambda n: Nonces(b"t" * 32, 60).issue(1000.0)),
    ("truncated", lambda n: n[:-4]),
    ("not base64", lambda n: "%%%%"),
    ("empty", lambda n: ""),
]


@pytest.mark.parametrize("why, change", BAD, ids=[row[0] for row in BAD])
def test_bad_nonces(why: str, change: object) -> None:
    nonces = Nonces(SECRET, 60)
    assert callable(change)
    with pytest.raises(AcmeProblem) as refused:
        nonces.check(change(nonces.issue(1000.0)), 1001.0)
    assert refused.value.kind == "badNonce"


def test_nonces_are_distinct() -> None:
    nonces = Nonces(SECRET, 60)
    assert len({nonces.issue(1000.0) for _ in range(1000)}) == 1000


@pytest.mark.parametrize("statuses, order", [
    (("valid", "valid"), "ready"),
    (("valid", "pending"), "pending"),
    (("pending",), "pending"),
    (("valid", "invalid"), "invalid"),
    (("deactivated", "pending"), "invalid"),
    (("expired",), "invalid"),
])
def test_order_follows_its_authorizations(statuses: tuple[str, ...], order: str) -> None:
    assert states.order_from(statuses) == order


def test_every_status_named_in_a_machine_is_one_of_its_own() -> None:
    for machine in (states.CHALLENGE, states.AUTHORIZATION, states.ORDER, states.ACCOUNT):
        assert set().union(*machine.values()) <= set(machine)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    tables = CA_TABLES + TABLES
    if request.param == "sqlite":
        url = "sqlite://" + quote(str(tmp_path / "certdir.db"))
    else:
        cluster: pg_cluster.Cluster = request.getfixturevalue("cluster")
        url = cluster.database("acme")
    opened = open_backend(Storage(url, SCHEMA, (), tables, 1000, 1 << 20))
    yield opened
    opened.close()


def test_a_nonce_is_spent_once_and_pruned(backend: Backend) -> None:
    with backend.transaction() as txn:
        store = AcmeStore(txn.records)
        assert store.spend_nonce("n1", 2000, 1000.0)
        assert not store.spend_nonce("n1", 2000, 1000.0)
    with backend.transaction() as txn:
        assert not AcmeStore(txn.records).spend_nonce("n1", 2000, 1500.0)
    with backend.transaction() as txn:
        AcmeStore(txn.records).spend_nonce("n2", 4000, 2500.0)
    with backend.reading() as records:
        assert records.rows("SELECT nonce FROM acme_nonces") == [("n2",)]


def test_the_first_secret_stays(backend: Backend) -> None:
    with backend.transaction() as txn:
        assert AcmeStore(txn.records).keep_secret("nonce", b"a" * 32) == b"a" * 32
    with backend.transaction() as txn:
        assert AcmeStore(txn.records).keep_secret("nonce", b"b" * 32) == b"a" * 32


def _account(thumbprint: str) -> Account:
    return Account(new_id(), thumbprint, "{}", ("mailto:a@example.com",), "valid", NOW)


def test_an_account_key_is_unique(backend: Backend) -> None:
    first, second = _account("t1"), _account("t1")
    with backend.transaction() as txn:
        store = AcmeStore(txn.records)
        assert store.add_account(first)
        assert not store.add_account(second)
        assert store.account_by_key("t1") == first
        other = _account("t2")
        assert store.add_account(other)
        assert not store.change_key(other.id, "t1", "{}")


def _order(backend: Backend) -> Order:
    account = _account(new_id())
    order = Order(new_id(), account.id, "pending", NOW, NOW + dt.timedelta(days=7),
                  (("dns", "www.certdir.test"),), None, None, None)
    authorization = Authorization(new_id(), order.id, "dns", "www.certdir.test", False,
                                  "pending", NOW, order.expires)
    challenge = Challenge(new_id(), authorization.id, "http-01", "token", "pending", None, None)
    with backend.transaction() as txn:
        store = AcmeStore(txn.records)
        store.add_account(account)
        store.add_order(order, (authorization,), (challenge,))
    return order


def test_statuses_move_only_forward(backend: Backend) -> None:
    order = _order(backend)
    with backend.transaction() as txn:
        store = AcmeStore(txn.records)
        [authorization] = store.authorizations(order.id)
        [challenge] = store.challenges(authorization.id)
        assert not store.finalize(order.id, 1, 0xABC)  # pending, not ready
        assert not store.set_challenge_status(challenge.id, "valid", NOW)  # not processing
        assert store.set_challenge_status(challenge.id, "processing")
        assert not store.set_challenge_status(challenge.id, "processing")
        assert store.set_challenge_status(challenge.id, "valid", NOW)
        assert store.set_authorization_status(authorization.id, "valid")
        assert store.set_order_status(order.id, "ready")
        assert store.finalize(order.id, 1, 0xABC)
        assert not store.finalize(order.id, 2, 0xDEF)
        assert not store.set_order_status(order.id, "invalid")
        found = store.order(order.id)
        assert found is not None
        assert (found.status, found.serial, found.request) == ("valid", 0xABC, 1)
        assert store.order_of_serial(0xABC) == found
        challenge_now = store.challenge(challenge.id)
        assert challenge_now is not None and challenge_now.validated == NOW


def test_rate_limit_counts(backend: Backend) -> None:
    order = _order(backend)
    with backend.reading() as records:
        store = AcmeStore(records)
        assert store.orders_since(order.account, NOW) == 1
        assert store.orders_since(order.account, NOW + dt.timedelta(seconds=1)) == 0
        assert store.names_since(("www.certdir.test", "x.certdir.test"), NOW) == {
            "www.certdir.test": 1, "x.certdir.test": 0}


def test_deactivating_an_account_ends_its_open_orders(backend: Backend) -> None:
    order = _order(backend)
    with backend.transaction() as txn:
        store = AcmeStore(txn.records)
        assert store.deactivate_account(order.account)
        assert not store.deactivate_account(order.account)
        ended = store.order(order.id)
        assert ended is not None and ended.status == "invalid"
        assert ended.error is not None and "deactivated" in ended.error["detail"]
