"""A replica is read-only (`replication.consumer`, as slapd's `updateref`).

- Add, Delete, Modify and Modify DN are answered with referral (10) to the
  provider, its URL naming the target (RFC 4511 §4.1.10), whoever asks:
  the root DN too. slapd lets through only its `updatedn`, which syncrepl
  itself is; certdir's consumer writes through the writer, never as a
  client, so no client's write is let through.
- Everything else (searches, compares, binds, extended operations) goes on.
"""

from __future__ import annotations

from directory import referral_urls
from directory.operation import Handler, Operation, Outcome
from directory.protocol.messages import AddRequest, DelRequest, ModifyDNRequest, ModifyRequest
from directory.protocol.results import LDAPError, ResultCode

WRITES = (AddRequest, DelRequest, ModifyRequest, ModifyDNRequest)


def overlay(handler: Handler) -> Handler:
    def refer(op: Operation) -> Outcome:
        consumer = op.dsa.config.consumer
        if consumer is None or not isinstance(op.request, WRITES):
            return handler(op)
        uris = referral_urls.superior((consumer.provider.url,), op.target, None)
        raise LDAPError(ResultCode.REFERRAL, "a replica: writes go to the provider",
                        referrals=uris)

    return refer
