"""Who asks: the identity an operation is authorised as.

- The bound DN, or, with the proxied authorization control (RFC 4370),
  the identity the control names once the policy allowed it (`op.authz`).
- Anonymous is the empty DN; the root DN is above every rule.
- `mechanism` is how the session authenticated: "simple", "EXTERNAL" (the
  TLS client certificate, RFC 4422 Appendix A) or "" when anonymous; rules
  may ask for it. `tls_subject` is the client certificate's subject DN, as
  written by RFC 4514, when one was presented.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from directory.operation import Operation
from directory.protocol.dn import DN


@dataclass(init=False, unsafe_hash=True, slots=True)
class Identity:
    dn: Final[DN]
    is_root: Final[bool]
    mechanism: Final[str]
    tls_subject: Final[str]
    peer: Final[str]

    def __init__(
        self,
        dn: DN,
        is_root: bool = False,
        mechanism: str = "",
        tls_subject: str = "",
        peer: str = "",
    ) -> None:
        self.dn = dn
        self.is_root = is_root
        self.mechanism = mechanism
        self.tls_subject = tls_subject
        self.peer = peer

    @property
    def anonymous(self) -> bool:
        return not self.dn and not self.is_root


ANONYMOUS = Identity(DN.ROOT)


def identity_of(op: Operation) -> Identity:
    session = op.session
    if op.authz is not None:
        return Identity(op.authz, op.authz == op.dsa.root_dn, "proxied", session.tls_subject,
                        session.peer)
    return Identity(session.bound, session.is_root, session.mechanism, session.tls_subject,
                    session.peer)
