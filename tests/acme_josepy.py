"""A second ACME client (RFC 8555), signing with josepy: scenario 103 and bench/acme_bench.py.

It signs independently of the server (no `ca.acme` import) and of the
hostile client of scenarios 101 and 102 (which signs with `cryptography` by
hand), so the server's JWS checks meet a third implementation. What the two
clients share, all but the signing (the https session, answers, CSRs, the
challenge servers), is tests/acme_client_base.py.

- JWS: josepy's own `JWS.sign`, flattened (RFC 8555 §6.2), with the ACME
  protected header members `nonce` and `url` added to josepy's registered
  ones as josepy's Header asks (a subclass), and exactly one of `jwk`
  (newAccount, revokeCert by the certificate's key, keyChange's inner JWS)
  and `kid`. josepy has ES256 and RS256 but no EdDSA (RFC 8037): `JWKOKP`
  and `EdDSA` register the OKP key type and the Ed25519 algorithm with
  josepy's own registries, so all three go through the same `JWS.sign`.
- The `acme` package of PyPI is not used: its current versions (5.x) have
  neither tls-alpn-01 nor keyChange, and the messages are small JSON
  objects written here from the RFC.
- HTTP: a `Client` is a `Session` (one kept-alive connection, one nonce),
  so one thread's; `fork` gives another thread a client of the same
  account with its own connection and nonce.
- `obtain` is the whole of §7.4 for one order: newOrder, each
  authorization's challenge answered by a `Responder`, the order polled
  until ready, finalize with a fresh P-256 CSR, polled until valid, the
  certificate downloaded. Any other turn raises `Refused` with the answer.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from josepy import errors, json_util, jwa, jwk, jws

from tests.acme_client_base import Answer, Refused, Responder, Session, csr


@jwk.JWK.register
class JWKOKP(jwk.JWK):
    """An Ed25519 JWK (RFC 8037 §2): kty OKP, crv Ed25519, x the raw public key."""

    typ = "OKP"
    __slots__ = ("key",)
    cryptography_key_types = (ed25519.Ed25519PublicKey, ed25519.Ed25519PrivateKey)
    required = ("crv", jwk.JWK.type_field_name, "x")

    def fields_to_partial_json(self) -> dict[str, str]:
        key = self.key
        public = key.public_key() if isinstance(key, ed25519.Ed25519PrivateKey) else key
        params = {"crv": "Ed25519", "x": json_util.encode_b64jose(public.public_bytes_raw())}
        if isinstance(key, ed25519.Ed25519PrivateKey):
            params["d"] = json_util.encode_b64jose(key.private_bytes_raw())
        return params

    @classmethod
    def fields_from_json(cls, jobj: Mapping[str, Any]) -> JWKOKP:
        if jobj.get("crv") != "Ed25519":
            raise errors.DeserializationError("only Ed25519 OKP keys")
        if "d" in jobj:
            return cls(key=ed25519.Ed25519PrivateKey.from_private_bytes(
                json_util.decode_b64jose(jobj["d"])))
        return cls(key=ed25519.Ed25519PublicKey.from_public_bytes(
            json_util.decode_b64jose(jobj["x"])))

    def public_key(self) -> JWKOKP:
        key = self.key
        return type(self)(key=key.public_key() if isinstance(key, ed25519.Ed25519PrivateKey)
                          else key)


class _EdDSA(jwa.JWASignature):
    """EdDSA with Ed25519 (RFC 8037 §3.1): the signature is Ed25519's 64 bytes."""

    kty = JWKOKP

    def sign(self, key: ed25519.Ed25519PrivateKey, msg: bytes) -> bytes:
        return key.sign(msg)

    def verify(self, key: ed25519.Ed25519PublicKey, msg: bytes, sig: bytes) -> bool:
        try:
            key.verify(sig, msg)
        except InvalidSignature:
            return False
        return True


EdDSA = jwa.JWASignature.register(_EdDSA("EdDSA"))


class AcmeHeader(jws.Header):
    """josepy's registered header parameters, and ACME's nonce and url (RFC 8555 §6.4, §6.5)."""

    nonce: str | None = json_util.field("nonce", omitempty=True)
    url: str | None = json_util.field("url", omitempty=True)


class AcmeSignature(jws.Signature):
    """josepy's Signature with AcmeHeader (josepy's way: slots and the header field again)."""

    __slots__ = jws.Signature._orig_slots
    header_cls = AcmeHeader
    header: AcmeHeader = json_util.field("header", omitempty=True, default=AcmeHeader(),
                                         decoder=AcmeHeader.from_json)


class AcmeJWS(jws.JWS):
    __slots__ = jws.JWS._orig_slots
    signature_cls = AcmeSignature


PROTECTED = frozenset({"alg", "jwk", "kid", "nonce", "url"})


PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey

# The account keys of RFC 8555 §6.2's algorithms as this client makes them.
GENERATE: Mapping[str, Callable[[], PrivateKey]] = {
    "ES256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "RS256": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
    "EdDSA": ed25519.Ed25519PrivateKey.generate,
}


@dataclass(frozen=True, slots=True)
class Key:
    """A private key and the JWS algorithm it signs with."""

    private: jwk.JWK
    alg: jwa.JWASignature

    @classmethod
    def generate(cls, alg: str) -> Key:
        return cls.of(GENERATE[alg]())

    @classmethod
    def of(cls, private: PrivateKey) -> Key:
        """The Key of a `cryptography` private key (P-256, RSA or Ed25519)."""
        if isinstance(private, ec.EllipticCurvePrivateKey):
            return cls(jwk.JWKEC(key=private), jwa.ES256)
        if isinstance(private, rsa.RSAPrivateKey):
            return cls(jwk.JWKRSA(key=private), jwa.RS256)
        return cls(JWKOKP(key=private), EdDSA)

    @property
    def public(self) -> dict[str, Any]:
        """The public JWK as JSON."""
        made: dict[str, Any] = self.private.public_key().to_json()
        return made

    @property
    def thumbprint(self) -> str:
        """The RFC 7638 thumbprint, base64url: the end of every key authorization."""
        return json_util.encode_b64jose(self.private.thumbprint())

    def sign(self, payload: bytes, url: str, nonce: str | None = None,
             kid: str | None = None) -> dict[str, Any]:
        """The flattened JWS of `payload` for `url`: with `kid`, else with this key's jwk."""
        headers: dict[str, Any] = {"url": url}
        if nonce is not None:
            headers["nonce"] = nonce
        if kid is not None:
            headers["kid"] = kid
        signed = AcmeJWS.sign(payload=payload, key=self.private, alg=self.alg,
                              include_jwk=kid is None, protect=PROTECTED, **headers)
        made: dict[str, Any] = signed.to_json()
        return made


def _payload(payload: Any) -> bytes:
    """None is POST-as-GET's empty payload (§6.3); anything else is JSON."""
    return b"" if payload is None else json.dumps(payload).encode()


@dataclass
class Client(Session):
    """One account's requests, signed with josepy."""

    key: Key = field(default_factory=lambda: Key.generate("ES256"))
    kid: str | None = None

    def fork(self) -> Client:
        """A client of the same account for another thread: its own connection and nonce."""
        other = Client(self.directory_url, self.ca_file, self.key, self.kid,
                       directory=dict(self.directory))
        other.request("HEAD", self.directory["newNonce"])
        return other

    def post(self, url: str, payload: Any, key: Key | None = None) -> Answer:
        """A POST signed with the account (kid), or with `key`'s jwk when given."""
        signer = key or self.key
        kid = None if key is not None else self.kid
        signed = signer.sign(_payload(payload), url, self.nonce, kid)
        return self.request("POST", url, json.dumps(signed).encode())

    def register(self, contact: str = "mailto:admin@example.com") -> Answer:
        """newAccount (§7.3) signed with the jwk; its Location is the kid from then on."""
        answer = self.post(self.directory["newAccount"],
                           {"termsOfServiceAgreed": True, "contact": [contact]}, key=self.key)
        if answer.status in (200, 201):
            self.kid = answer.location
        return answer

    def key_authorization(self, token: str) -> str:
        return f"{token}.{self.key.thumbprint}"

    def key_change(self, new: Key) -> Answer:
        """keyChange (§7.3.5): the inner JWS by the new key (jwk, no nonce), the outer by
        the account; on success this client signs with the new key."""
        url = self.directory["keyChange"]
        inner = new.sign(_payload({"account": self.kid, "oldKey": self.key.public}), url)
        answer = self.post(url, inner)
        if answer.status == 200:
            self.key = new
        return answer


@dataclass(frozen=True, slots=True)
class Issued:
    """One order carried to its certificate; `marks` are time.monotonic() after each step."""

    order: str
    certificate: str
    chain: Answer
    key: ec.EllipticCurvePrivateKey
    marks: tuple[tuple[str, float], ...]


def obtain(client: Client, names: tuple[str, ...], responder: Responder,
           kind: str = "http-01", poll_s: float = 0.1,
           key: ec.EllipticCurvePrivateKey | None = None) -> Issued:
    """newOrder -> challenges -> ready -> finalize -> valid -> certificate (§7.4)."""
    marks = [("start", time.monotonic())]
    ordered = client.order(*names)
    if ordered.status != 201:
        raise Refused("newOrder", ordered)
    order_url = ordered.location
    marks.append(("newOrder", time.monotonic()))
    for authorization in ordered.json()["authorizations"]:
        found = client.post(authorization, None)
        if found.status != 200:
            raise Refused("authorization", found)
        body = found.json()
        challenge = next((c for c in body["challenges"] if c["type"] == kind), None)
        if challenge is None:
            raise Refused(f"no {kind} challenge", found)
        responder.answer(kind, body["identifier"]["value"], challenge["token"],
                         client.key_authorization(challenge["token"]))
        started = client.post(challenge["url"], {})
        if started.status != 200:
            raise Refused("challenge", started)
    ready = client.poll(order_url, frozenset({"ready", "invalid"}), poll_s)
    if ready.status != 200 or ready.json()["status"] != "ready":
        raise Refused("validation", ready)
    marks.append(("validated", time.monotonic()))
    key = key or ec.generate_private_key(ec.SECP256R1())
    finalized = client.post(ready.json()["finalize"],
                            {"csr": json_util.encode_b64jose(csr(names, key))})
    if finalized.status != 200:
        raise Refused("finalize", finalized)
    valid = finalized
    if finalized.json()["status"] != "valid":
        valid = client.poll(order_url, frozenset({"valid", "invalid"}), poll_s)
    if valid.status != 200 or valid.json()["status"] != "valid":
        raise Refused("issuance", valid)
    marks.append(("finalized", time.monotonic()))
    certificate = valid.json()["certificate"]
    chain = client.post(certificate, None)
    if chain.status != 200:
        raise Refused("certificate", chain)
    marks.append(("downloaded", time.monotonic()))
    return Issued(order_url, certificate, chain, key, tuple(marks))
