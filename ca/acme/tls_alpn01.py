"""tls-alpn-01 validation (RFC 8737; RFC 8738 §6 for IP addresses).

- A TLS handshake (tls_client.py: TLS 1.2 or newer, chain not verified)
  with NAME:PORT, PORT the policy's `tls_alpn01_port` (443), at an address
  resolve.py allowed, with SNI NAME (an ip identifier: its reverse name in
  in-addr.arpa or ip6.arpa, RFC 8738 §6) and ALPN offering "acme-tls/1"
  only (RFC 8737 §3). No application data is sent; the connection closes
  after the handshake.
- The server must negotiate "acme-tls/1", else tls; a failed handshake is
  tls, a refused or silent connection connection (`connect_timeout_s`,
  then `read_timeout_s` for the handshake).
- Its certificate (RFC 8737 §3), else incorrectResponse naming the rule:
  - a subjectAltName of exactly one entry, the identifier: a dNSName
    (an iPAddress for an ip identifier);
  - the acmeIdentifier extension (id-pe-acmeIdentifier,
    1.3.6.1.5.5.7.1.31), critical;
  - whose value is the DER OCTET STRING of the SHA-256 digest of the key
    authorization, 32 bytes, nothing after it.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Callable
from typing import Any

from cryptography import x509
from pyasn1.codec.der import decoder
from pyasn1.error import PyAsn1Error
from pyasn1.type import univ
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import (
    TCP4ClientEndpoint,
    TCP6ClientEndpoint,
    connectProtocol,
    wrapClientTLS,
)
from twisted.internet.interfaces import IHandshakeListener
from twisted.internet.protocol import Protocol, connectionDone
from twisted.python.failure import Failure
from zope.interface import implementer

from ca.acme.identifiers import Identifier
from ca.acme.policy import AcmePolicy
from ca.acme.problems import AcmeProblem
from ca.acme.resolve import addresses
from ca.acme.tls_client import Handshake

ACME_TLS_1 = b"acme-tls/1"
ACME_IDENTIFIER = x509.ObjectIdentifier("1.3.6.1.5.5.7.1.31")


@implementer(IHandshakeListener)
class _Handshaken(Protocol):
    """Fires `done` when the handshake completes, then closes; its error if it fails."""

    def __init__(self) -> None:
        self.done: Deferred[None] = Deferred(lambda _: self._close())

    def _close(self) -> None:
        transport: Any = self.transport
        if transport is not None:
            transport.abortConnection()

    def handshakeCompleted(self) -> None:
        self.done.callback(None)
        transport: Any = self.transport
        transport.loseConnection()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if not self.done.called:
            self.done.errback(reason)


def _server_name(identifier: Identifier) -> str:
    address = identifier.address
    return identifier.value if address is None else address.reverse_pointer


def _san(certificate: x509.Certificate, identifier: Identifier,
         key_authorization: str) -> str | None:
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return "no subjectAltName"
    address = identifier.address
    expected: x509.GeneralName = (x509.DNSName(identifier.value) if address is None
                                  else x509.IPAddress(address))
    if list(names.value) != [expected]:
        return (f"the subjectAltName is {[str(n.value) for n in names.value]}, "
                f"not exactly {identifier.value!r}")
    return None


def _extension(certificate: x509.Certificate) -> x509.Extension[x509.ExtensionType] | None:
    try:
        return certificate.extensions.get_extension_for_oid(ACME_IDENTIFIER)
    except x509.ExtensionNotFound:
        return None


def _present(certificate: x509.Certificate, identifier: Identifier,
             key_authorization: str) -> str | None:
    return None if _extension(certificate) is not None else "no acmeIdentifier extension"


def _critical(certificate: x509.Certificate, identifier: Identifier,
              key_authorization: str) -> str | None:
    extension = _extension(certificate)
    if extension is None or extension.critical:
        return None
    return "the acmeIdentifier extension is not critical"


def _digest(certificate: x509.Certificate, identifier: Identifier,
            key_authorization: str) -> str | None:
    extension = _extension(certificate)
    if extension is None:
        return None
    value = extension.value
    der = value.value if isinstance(value, x509.UnrecognizedExtension) else b""
    try:
        octets, rest = decoder.decode(der, asn1Spec=univ.OctetString())
    except PyAsn1Error:
        rest = b"?"
    if rest:
        return "the acmeIdentifier extension is not one DER OCTET STRING"
    expected = hashlib.sha256(key_authorization.encode("ascii")).digest()
    if bytes(octets) != expected:
        return ("the acmeIdentifier extension is not the SHA-256 digest of the key "
                "authorization")
    return None


# The certificate's rules of RFC 8737 §3, in order: the first broken one is told.
RULES: tuple[Callable[[x509.Certificate, Identifier, str], str | None], ...] = (
    _san, _present, _critical, _digest)


async def _handshake(policy: AcmePolicy, identifier: Identifier, attempt: int) -> Handshake:
    from twisted.internet import reactor

    clock: Any = reactor
    found = await addresses(policy, identifier)
    address = found[attempt % len(found)]
    where = f"{identifier.value} ({address} port {policy.tls_alpn01_port})"
    kind = TCP6ClientEndpoint if isinstance(address, ipaddress.IPv6Address) \
        else TCP4ClientEndpoint
    handshake = Handshake(_server_name(identifier), (ACME_TLS_1,))
    endpoint = wrapClientTLS(handshake, kind(reactor, str(address), policy.tls_alpn01_port,
                                             timeout=policy.connect_timeout_s))
    connecting = connectProtocol(endpoint, _Handshaken())
    connecting.addTimeout(policy.connect_timeout_s, clock)
    try:
        protocol = await connecting
    except Exception as e:
        raise AcmeProblem("connection", f"{where}: {e}") from None
    protocol.done.addTimeout(policy.read_timeout_s, clock)
    try:
        await protocol.done
    except Exception as e:
        raise AcmeProblem("tls", f"{where}: TLS handshake failed: {e}") from None
    return handshake


async def check(policy: AcmePolicy, identifier: Identifier, token: str,
                key_authorization: str, attempt: int) -> None:
    """One tls-alpn-01 validation query; attempt n connects to the nth address (cycling)."""
    handshake = await _handshake(policy, identifier, attempt)
    connection = handshake.connection
    assert connection is not None
    negotiated = connection.get_alpn_proto_negotiated()
    if negotiated != ACME_TLS_1:
        raise AcmeProblem("tls", f"{identifier.value}: the server did not negotiate "
                          f"acme-tls/1 (ALPN: {negotiated!r})")
    certificate = connection.get_peer_certificate(as_cryptography=True)
    if certificate is None:
        raise AcmeProblem("tls", f"{identifier.value}: no certificate")
    for rule in RULES:
        why = rule(certificate, identifier, key_authorization)
        if why is not None:
            raise AcmeProblem("incorrectResponse", f"{identifier.value}: {why}")
