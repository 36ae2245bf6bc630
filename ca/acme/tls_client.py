"""The TLS client side of validation: a handshake that proves nothing by itself.

- TLS 1.2 or newer (RFC 8737 §4 asks it of tls-alpn-01; http-01's
  redirects to https get the same).
- The peer's chain is not verified: a tls-alpn-01 certificate is
  self-signed by design (RFC 8737 §3), and behind an http-01 redirect the
  key authorization in the body is the proof, not the certificate.
- SNI is sent for a name, never for an IP address literal (RFC 6066 §3);
  tls-alpn-01 sends an address's reverse name instead (RFC 8738 §6).
- ALPN offers exactly the protocols given (tls-alpn-01: "acme-tls/1" only).
- The connection made is kept (`connection`) so the caller reads the
  negotiated protocol and the peer's certificate from it.
"""

from __future__ import annotations

from OpenSSL import SSL
from twisted.internet.interfaces import IOpenSSLClientConnectionCreator
from twisted.protocols.tls import TLSMemoryBIOProtocol
from zope.interface import implementer


@implementer(IOpenSSLClientConnectionCreator)
class Handshake:
    """Makes the one client connection of a validation's TLS handshake."""

    def __init__(self, server_name: str | None, protocols: tuple[bytes, ...] = ()) -> None:
        self.server_name = server_name
        self.protocols = protocols
        self.connection: SSL.Connection | None = None

    def clientConnectionForTLS(self, tlsProtocol: TLSMemoryBIOProtocol) -> SSL.Connection:
        context = SSL.Context(SSL.TLS_CLIENT_METHOD)
        context.set_min_proto_version(SSL.TLS1_2_VERSION)
        context.set_verify(SSL.VERIFY_NONE)
        if self.protocols:
            context.set_alpn_protos(list(self.protocols))
        connection = SSL.Connection(context, None)
        if self.server_name is not None:
            connection.set_tlsext_host_name(self.server_name.encode("ascii"))
        self.connection = connection
        return connection
