"""External account binding (ca.acme.eab, RFC 8555 §7.3.4): the seal and the binding's rules."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from ca.acme import eab
from ca.acme.jws import Jwk, b64encode
from ca.acme.problems import AcmeProblem

URL = "https://127.0.0.1/acme/new-account"
ACCOUNT = ec.generate_private_key(ec.SECP256R1())
KID, KEY = eab.new_key()


def _jwk(key: ec.EllipticCurvePrivateKey) -> dict[str, str]:
    numbers = key.public_key().public_numbers()
    return {"kty": "EC", "crv": "P-256", "x": b64encode(numbers.x.to_bytes(32, "big")),
            "y": b64encode(numbers.y.to_bytes(32, "big"))}


def _binding(header: dict[str, Any], payload: object, key: bytes = KEY) -> dict[str, str]:
    protected = b64encode(json.dumps(header).encode())
    body = b64encode(json.dumps(payload).encode())
    mac = hmac.new(key, f"{protected}.{body}".encode(), hashlib.sha256).digest()
    return {"protected": protected, "payload": body, "signature": b64encode(mac)}


GOOD = {"alg": "HS256", "kid": KID, "url": URL}
OTHER = _jwk(ec.generate_private_key(ec.SECP256R1()))

CASES = [
    # (why, binding, problem kind)
    ("a nonce", _binding({**GOOD, "nonce": "n"}, _jwk(ACCOUNT)), "malformed"),
    ("a jwk in the header", _binding({**GOOD, "jwk": _jwk(ACCOUNT)}, _jwk(ACCOUNT)),
     "malformed"),
    ("no kid", _binding({"alg": "HS256", "url": URL}, _jwk(ACCOUNT)), "malformed"),
    ("alg ES256", _binding({**GOOD, "alg": "ES256"}, _jwk(ACCOUNT)), "malformed"),
    ("another url", _binding({**GOOD, "url": URL + "x"}, _jwk(ACCOUNT)), "malformed"),
    ("another key bound", _binding(GOOD, OTHER), "malformed"),
    ("a payload not a JWK", _binding(GOOD, {"kty": "none"}), "malformed"),
    ("not flattened", {"signatures": []}, "malformed"),
]


@pytest.mark.parametrize("why, binding, kind", CASES, ids=[c[0] for c in CASES])
def test_refused(why: str, binding: object, kind: str) -> None:
    with pytest.raises(AcmeProblem) as refused:
        eab.parse(binding, URL, Jwk.parse(_jwk(ACCOUNT)))
    assert refused.value.kind == kind


def test_a_good_binding_verifies_under_its_key_only() -> None:
    parsed = eab.parse(_binding(GOOD, _jwk(ACCOUNT)), URL, Jwk.parse(_jwk(ACCOUNT)))
    assert parsed.kid == KID
    parsed.verify(KEY)
    with pytest.raises(AcmeProblem) as refused:
        parsed.verify(b"\0" * eab.KEY_BYTES)
    assert refused.value.kind == "unauthorized"


def test_sealed_keys_open_under_their_ca_key_and_id_only() -> None:
    ca_key = ed25519.Ed25519PrivateKey.generate()
    sealed = eab.Seal.of(ca_key).seal(KID, KEY)
    assert KEY not in sealed
    assert eab.Seal.of(ca_key).open(KID, sealed) == KEY
    for seal, kid in ((eab.Seal.of(ed25519.Ed25519PrivateKey.generate()), KID),
                      (eab.Seal.of(ca_key), KID + "x")):
        with pytest.raises(AcmeProblem):
            seal.open(kid, sealed)
