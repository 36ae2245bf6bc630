"""A replica is read-only (`replication.consumer`, as slapd's `updateref`).

- Add, Delete, Modify, Modify DN and Password Modify (RFC 3062) are
  answered with referral (10) to the provider, whoever asks: the root DN
  too. slapd lets through only its `updatedn`, which syncrepl itself is;
  certdir's consumer writes through the writer, never as a client, so no
  client's write is let through.
- The referral names the target as the default referral does (RFC 4511
  §4.1.10); Password Modify's names the provider alone, its target being
  inside the request.
- Everything else (searches, compares, binds, other extended operations)
  goes on, and so does every write on a multi-provider node
  (`multi_provider`): its peer takes what it is sent as its own writes.
"""

from __future__ import annotations

from directory import referral_urls
from directory.operation import Handler, Operation, Outcome
from directory.ops.extended import PASSWORD_MODIFY
from directory.protocol.messages import (
    AddRequest,
    DelRequest,
    ExtendedRequest,
    ModifyDNRequest,
    ModifyRequest,
)
from directory.protocol.results import LDAPError, ResultCode

WRITES = (AddRequest, DelRequest, ModifyRequest, ModifyDNRequest)


def overlay(handler: Handler) -> Handler:
    def refer(op: Operation) -> Outcome:
        consumer = op.dsa.config.consumer
        if consumer is None or consumer.multi_provider:
            return handler(op)
        request = op.request
        if isinstance(request, WRITES):
            uris = referral_urls.superior((consumer.provider.url,), op.target, None)
        elif isinstance(request, ExtendedRequest) and request.name == PASSWORD_MODIFY:
            uris = (consumer.provider.url,)
        else:
            return handler(op)
        raise LDAPError(ResultCode.REFERRAL, "a replica: writes go to the provider",
                        referrals=uris)

    return refer
