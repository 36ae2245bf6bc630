"""A plain twisted.web site on the asyncio reactor answering every POST with one fixed
body (an OCSP response read from a file): the most any twisted.web responder can do on
this machine, which `ocsp_bench.py` reports beside certdir's figures.

Usage: fixed_site.py PORT RESPONSE_FILE
"""
from __future__ import annotations

import sys
from pathlib import Path

from twisted.internet import asyncioreactor


def main() -> int:
    port, body = int(sys.argv[1]), Path(sys.argv[2]).read_bytes()
    asyncioreactor.install()
    from twisted.internet import reactor
    from twisted.web.resource import Resource
    from twisted.web.server import Request, Site

    class Fixed(Resource):
        isLeaf = True

        def render_POST(self, request: Request) -> bytes:
            request.setHeader(b"Content-Type", b"application/ocsp-response")
            return body

    site = Site(Fixed())  # type: ignore[no-untyped-call]
    # Twisted declares listenTCP's factory as ServerFactory[_ProtoWithFactory], which
    # its own Site (a ServerFactory[_GenericHTTPChannelProtocol]) is not.
    reactor.listenTCP(port, site, interface="127.0.0.1")  # type: ignore[arg-type]
    reactor.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
