"""ca.acme.jws: the flattened JWS of RFC 8555 §6.2 and JWK thumbprints (RFC 7638).

- The thumbprint of RFC 7638 §3.1's example RSA key is the RFC's.
- A JWS signed with cryptography by ES256 (P-256), RS256 (RSA-2048) and
  EdDSA (Ed25519) parses and verifies with its jwk; with another key, or
  altered, it does not (malformed).
- Every shape RFC 8555 §6.2 forbids gets one exact problem type: the
  table below, each row a change to a good request.
- Thumbprints name a key, not its serialization: member order, extra
  members and whitespace do not change them.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from ca.acme.jws import Jwk, parse
from ca.acme.problems import AcmeProblem

URL = "https://ca.example/acme/new-order"

# RFC 7638 §3.1.
RFC7638_KEY = {
    "kty": "RSA",
    "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_B"
         "JECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0"
         "_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTW"
         "hAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
    "e": "AQAB",
    "alg": "RS256",
    "kid": "2011-04-29",
}
RFC7638_THUMBPRINT = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _int(value: int, size: int) -> str:
    return b64(value.to_bytes(size, "big"))


def _es256() -> tuple[dict[str, str], Callable[[bytes], bytes]]:
    key = ec.generate_private_key(ec.SECP256R1())
    numbers = key.public_key().public_numbers()

    def signer(data: bytes) -> bytes:
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    return {"kty": "EC", "crv": "P-256", "x": _int(numbers.x, 32),
            "y": _int(numbers.y, 32)}, signer


def _rsa(bits: int = 2048) -> tuple[dict[str, str], Callable[[bytes], bytes]]:
    key = rsa.generate_private_key(65537, bits)
    numbers = key.public_key().public_numbers()
    return ({"kty": "RSA", "n": _int(numbers.n, bits // 8), "e": _int(numbers.e, 3)},
            lambda data: key.sign(data, padding.PKCS1v15(), hashes.SHA256()))


def _eddsa() -> tuple[dict[str, str], Callable[[bytes], bytes]]:
    key = ed25519.Ed25519PrivateKey.generate()
    raw = key.public_key().public_bytes_raw()
    return {"kty": "OKP", "crv": "Ed25519", "x": b64(raw)}, key.sign


KEYS: dict[str, Callable[[], tuple[dict[str, str], Callable[[bytes], bytes]]]] = {
    "ES256": _es256, "RS256": _rsa, "EdDSA": _eddsa,
}
ES256_KEY = _es256()


def signed(header: dict[str, Any], payload: bytes = b"{}",
           signer: Callable[[bytes], bytes] = ES256_KEY[1]) -> dict[str, str]:
    protected, body = b64(json.dumps(header).encode()), b64(payload)
    return {"protected": protected, "payload": body,
            "signature": b64(signer(f"{protected}.{body}".encode()))}


def good_header(**changes: Any) -> dict[str, Any]:
    header: dict[str, Any] = {"alg": "ES256", "nonce": "n0nce", "url": URL,
                              "jwk": ES256_KEY[0]}
    header.update(changes)
    return {k: v for k, v in header.items() if v is not None}


def test_rfc7638_thumbprint() -> None:
    assert Jwk.parse({k: v for k, v in RFC7638_KEY.items()
                      if k not in ("alg", "kid")}).thumbprint == RFC7638_THUMBPRINT


def test_thumbprint_ignores_order_and_extra_members() -> None:
    reordered = dict(reversed(list(RFC7638_KEY.items())))
    assert Jwk.parse({k: v for k, v in reordered.items() if k != "kid"}).thumbprint == \
        RFC7638_THUMBPRINT
    assert Jwk.loads(Jwk.parse({"e": "AQAB", "kty": "RSA", "n": RFC7638_KEY["n"]})
                     .canonical).thumbprint == RFC7638_THUMBPRINT


@pytest.mark.parametrize("alg", sorted(KEYS))
def test_each_algorithm_verifies(alg: str) -> None:
    jwk, signer = KEYS[alg]()
    body = json.dumps(signed(good_header(alg=alg, jwk=jwk), signer=signer)).encode()
    jws = parse(body)
    assert jws.jwk is not None
    jws.verify(jws.jwk)
    assert (jws.url, jws.nonce, jws.json()) == (URL, "n0nce", {})


@pytest.mark.parametrize("alg", sorted(KEYS))
def test_another_key_does_not_verify(alg: str) -> None:
    jwk, signer = KEYS[alg]()
    other, _ = KEYS[alg]()
    jws = parse(json.dumps(signed(good_header(alg=alg, jwk=jwk), signer=signer)).encode())
    with pytest.raises(AcmeProblem) as refused:
        jws.verify(Jwk.parse(other))
    assert refused.value.kind == "malformed"


def test_an_altered_payload_does_not_verify() -> None:
    body = signed(good_header())
    body["payload"] = b64(b'{"x": 1}')
    jws = parse(json.dumps(body).encode())
    assert jws.jwk is not None
    with pytest.raises(AcmeProblem) as refused:
        jws.verify(jws.jwk)
    assert refused.value.kind == "malformed"


def test_post_as_get_has_no_payload() -> None:
    jws = parse(json.dumps(signed(good_header(), payload=b"")).encode())
    assert jws.json() is None


def _body(protected: dict[str, Any], **members: Any) -> bytes:
    body: dict[str, Any] = signed(protected)
    body.update(members)
    return json.dumps({k: v for k, v in body.items() if v is not None}).encode()


SMALL_RSA = _rsa(1024)[0]
P384 = ec.generate_private_key(ec.SECP384R1()).public_key().public_numbers()

REFUSED: list[tuple[str, bytes, str]] = [
    # (why, body, problem type)
    ("alg none", _body(good_header(alg="none"), signature=""), "badSignatureAlgorithm"),
    ("a MAC algorithm", _body(good_header(alg="HS256")), "badSignatureAlgorithm"),
    ("an unknown algorithm", _body(good_header(alg="ES512")), "badSignatureAlgorithm"),
    ("jwk and kid", _body(good_header(kid="https://ca.example/acme/account/1")), "malformed"),
    ("neither jwk nor kid", _body(good_header(jwk=None)), "malformed"),
    ("no nonce", _body(good_header(nonce=None)), "badNonce"),
    ("no url", _body(good_header(url=None)), "malformed"),
    ("an unprotected header", _body(good_header(), header={"alg": "ES256"}), "malformed"),
    ("the general serialization", json.dumps({"payload": "", "signatures": []}).encode(),
     "malformed"),
    ("padded base64", _body(good_header(), payload="e30="), "malformed"),
    ("a crit parameter", _body(good_header(crit=["exp"], exp=1)), "malformed"),
    ("an unencoded payload", _body(good_header(b64=False)), "malformed"),
    ("not JSON", b"protected=x", "malformed"),
    ("a JSON array", b"[]", "malformed"),
    ("a P-384 key", _body(good_header(jwk={"kty": "EC", "crv": "P-384",
                                           "x": _int(P384.x, 48), "y": _int(P384.y, 48)})),
     "badPublicKey"),
    ("RSA-1024", _body(good_header(alg="RS256", jwk=SMALL_RSA)), "badPublicKey"),
    ("a private member", _body(good_header(jwk={**ES256_KEY[0], "d": "AAAA"})),
     "badPublicKey"),
    ("an unknown key type", _body(good_header(jwk={"kty": "oct", "k": "AAAA"})),
     "badPublicKey"),
    ("a point off the curve", _body(good_header(jwk={**ES256_KEY[0], "y": ES256_KEY[0]["x"]})),
     "badPublicKey"),
]


@pytest.mark.parametrize("why, body, kind", REFUSED, ids=[row[0] for row in REFUSED])
def test_refused(why: str, body: bytes, kind: str) -> None:
    with pytest.raises(AcmeProblem) as refused:
        parse(body)
    assert refused.value.kind == kind


def test_alg_not_fitting_the_key_is_malformed() -> None:
    jws = parse(_body(good_header(alg="RS256")))
    assert jws.jwk is not None
    with pytest.raises(AcmeProblem) as refused:
        jws.verify(jws.jwk)
    assert refused.value.kind == "malformed"


def test_short_es256_signature_does_not_verify() -> None:
    jws = parse(_body(good_header(), signature=b64(b"\1" * 63)))
    assert jws.jwk is not None
    with pytest.raises(AcmeProblem) as refused:
        jws.verify(jws.jwk)
    assert refused.value.kind == "malformed"


def test_inner_jws_has_no_nonce() -> None:
    with pytest.raises(AcmeProblem) as refused:
        parse(json.loads(_body(good_header())), inner=True)
    assert refused.value.kind == "malformed"
    inner = parse(json.loads(_body(good_header(nonce=None))), inner=True)
    assert inner.nonce is None


def test_bad_signature_algorithm_lists_the_algorithms() -> None:
    with pytest.raises(AcmeProblem) as refused:
        parse(_body(good_header(alg="none"), signature=""))
    assert refused.value.document()["algorithms"] == ["ES256", "EdDSA", "RS256"]
