"""The servers validation is tested against, each on a loopback port of its own.

- `challenge_site`: twisted.web answering /.well-known/acme-challenge/TOKEN
  as each case needs (the key authorization, a wrong body, a huge one,
  redirects good and bad, silence), recording each request's path and Host;
  `https_site` the same over TLS, `not_tls_server` plain HTTP to a TLS client.
- `alpn_server`: a TLS server presenting a certificate made here with
  cryptography, negotiating acme-tls/1 when asked to (RFC 8737 §3).
- `dns_server`: twisted.names' authoritative server for one zone in memory,
  over UDP.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from OpenSSL import SSL
from twisted.internet import reactor as installed_reactor
from twisted.internet.interfaces import IOpenSSLServerConnectionCreator
from twisted.internet.protocol import Factory, Protocol
from twisted.names import authority, common, dns, server
from twisted.protocols.tls import TLSMemoryBIOProtocol
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request, Site
from zope.interface import implementer

# The asyncio reactor pytest-twisted installed; its interfaces are not declared.
reactor: Any = installed_reactor

THUMBPRINT = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"
ACME_TLS_1 = b"acme-tls/1"
ACME_IDENTIFIER = x509.ObjectIdentifier("1.3.6.1.5.5.7.1.31")


def key_authorization(token: str) -> str:
    return f"{token}.{THUMBPRINT}"


class Challenges(Resource):
    """/.well-known/acme-challenge/TOKEN: `answers` maps a token to what it does."""

    isLeaf = True

    def __init__(self, answers: Mapping[str, Callable[[Request], bytes | int]]) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # unannotated in Twisted
        self.answers = answers
        self.seen: list[tuple[str, bytes | None]] = []

    def render_GET(self, request: Request) -> bytes | int:
        path = request.path.decode()
        self.seen.append((path, request.getHeader(b"host")))
        token = path.removeprefix("/.well-known/acme-challenge/")
        answer = self.answers.get(token)
        if answer is None:
            request.setResponseCode(404)
            return b"no such challenge\n"
        return answer(request)


def redirect(location: str) -> Callable[[Request], bytes]:
    def answer(request: Request) -> bytes:
        request.setResponseCode(302)
        request.setHeader(b"location", location.encode())
        return b""
    return answer


def status(code: int) -> Callable[[Request], bytes]:
    def answer(request: Request) -> bytes:
        request.setResponseCode(code)
        return b"not the key authorization\n"
    return answer


def body(content: bytes) -> Callable[[Request], bytes]:
    return lambda request: content


def silence(request: Request) -> int:
    return NOT_DONE_YET


def _site(challenges: Challenges) -> Site:
    root = Resource()
    well_known = Resource()
    root.putChild(b".well-known", well_known)
    well_known.putChild(b"acme-challenge", challenges)
    return Site(root)


def challenge_site(challenges: Challenges, interface: str = "127.0.0.1") -> Any:
    """twisted.web serving `challenges` on `interface` at a port of its own."""
    return reactor.listenTCP(0, _site(challenges), interface=interface)


def acme_identifier(value: bytes) -> bytes:
    """The DER of the acmeIdentifier extension's value, an OCTET STRING, built by hand."""
    return bytes([0x04, len(value)]) + value


def alpn_certificate(names: Sequence[x509.GeneralName], extension: bytes | None,
                     critical: bool = True) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A self-signed certificate for tls-alpn-01 with these SANs and acmeIdentifier value."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "acme-tls/1 test")])
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5))
               .not_valid_after(now + dt.timedelta(days=1)))
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    if extension is not None:
        builder = builder.add_extension(x509.UnrecognizedExtension(ACME_IDENTIFIER, extension),
                                        critical=critical)
    return builder.sign(key, hashes.SHA256()), key


def digest(key_authorization: str) -> bytes:
    return hashlib.sha256(key_authorization.encode()).digest()


@implementer(IOpenSSLServerConnectionCreator)
class _Server:
    """Each connection of an `alpn_server`, on its one context; the SNI names it hears."""

    def __init__(self, context: SSL.Context) -> None:
        self.context = context
        self.server_names: list[bytes | None] = []
        context.set_tlsext_servername_callback(
            lambda connection: self.server_names.append(connection.get_servername()))

    def serverConnectionForTLS(self, tlsProtocol: TLSMemoryBIOProtocol) -> SSL.Connection:
        return SSL.Connection(self.context, None)


@dataclass(frozen=True)
class TLSServer:
    listening: Any
    server_names: list[bytes | None]

    @property
    def port(self) -> int:
        port: int = self.listening.getHost().port
        return port


def _tls_server(factory: Any, certificate: x509.Certificate,
                key: ec.EllipticCurvePrivateKey, alpn: bool) -> TLSServer:
    context = SSL.Context(SSL.TLS_SERVER_METHOD)
    context.set_min_proto_version(SSL.TLS1_2_VERSION)
    context.use_certificate(certificate)
    context.use_privatekey(key)
    if alpn:
        def choose(connection: SSL.Connection, offered: list[bytes]) -> Any:
            return ACME_TLS_1 if ACME_TLS_1 in offered else SSL.NO_OVERLAPPING_PROTOCOLS
        context.set_alpn_select_callback(choose)
    creator = _Server(context)
    listening = reactor.listenSSL(0, factory, creator, interface="127.0.0.1")
    return TLSServer(listening, creator.server_names)


def alpn_server(certificate: x509.Certificate, key: ec.EllipticCurvePrivateKey,
                alpn: bool = True) -> TLSServer:
    """A TLS server on 127.0.0.1 presenting `certificate`, acme-tls/1 chosen when offered."""
    # acme-tls/1 carries no application data (RFC 8737 §3): nothing is served.
    return _tls_server(Factory.forProtocol(Protocol), certificate, key, alpn)


def https_site(challenges: Challenges, name: str) -> TLSServer:
    """twisted.web serving `challenges` over TLS on 127.0.0.1, self-signed for `name`."""
    certificate, key = alpn_certificate([x509.DNSName(name)], None)
    return _tls_server(_site(challenges), certificate, key, alpn=False)


class _NotTLS(Protocol):
    def connectionMade(self) -> None:
        transport: Any = self.transport
        transport.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        transport.loseConnection()


def not_tls_server() -> Any:
    """Answers a TLS client hello with plain HTTP, on 127.0.0.1 at a port of its own."""
    return reactor.listenTCP(0, Factory.forProtocol(_NotTLS), interface="127.0.0.1")


class Zone(authority.FileAuthority):
    """One zone's records in memory, served with authority."""

    def __init__(self, origin: bytes, records: Mapping[bytes, list[Any]]) -> None:
        common.ResolverBase.__init__(self)
        soa = dns.Record_SOA(mname=b"ns." + origin, rname=b"hostmaster." + origin,
                             serial=1, refresh=60, retry=60, expire=60, minimum=5)
        served: dict[bytes, list[Any]] = {name.lower(): list(values)
                                          for name, values in records.items()}
        served.setdefault(origin, []).append(soa)
        self.soa: Any = (origin, soa)
        self.records: Any = served
        self._cache: dict[Any, Any] = {}


def dns_server(zone: Zone) -> Any:
    """twisted.names answering for `zone` over UDP on 127.0.0.1, at a port of its own."""
    factory = server.DNSServerFactory(authorities=[zone])
    return reactor.listenUDP(0, dns.DNSDatagramProtocol(factory), interface="127.0.0.1")


def ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)
