"""The client side of one LDAP session, without I/O (RFC 4511 §4.1.1).

- Requests are numbered from 1 in the order they are sent; `request`
  returns the message id it gave and the bytes to write.
- `responses()` yields every complete response buffered so far, decoded
  with the response decoders only (an IntermediateResponse included, which
  syncrepl's Sync Info messages are); a PDU larger than `Limits.max_pdu`,
  or one that is not an LDAPMessage, raises ProtocolError. Message id 0 is
  an unsolicited notification (RFC 4511 §4.4) and is yielded as well.
"""

from __future__ import annotations

from collections.abc import Iterator

from directory.protocol.codec import RESPONSE_DECODERS, Limits, decode, encode, next_pdu
from directory.protocol.messages import MAX_INT, Control, LDAPMessage, Request

_LIMITS = Limits()


class LDAPClientConnection:
    def __init__(self, limits: Limits = _LIMITS) -> None:
        self.limits = limits
        self._buffer = bytearray()
        self._next_id = 1

    def request(self, op: Request, controls: tuple[Control, ...] = ()) -> tuple[int, bytes]:
        message_id = self._next_id
        self._next_id = self._next_id % MAX_INT + 1
        return message_id, encode(LDAPMessage(message_id, op, controls))

    def receive_data(self, data: bytes) -> None:
        self._buffer += data

    def responses(self) -> Iterator[LDAPMessage]:
        while (pdu := next_pdu(self._buffer, self.limits.max_pdu)) is not None:
            yield decode(pdu, self.limits, RESPONSE_DECODERS)
