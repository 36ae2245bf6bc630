"""The directory and newNonce (RFC 8555 §7.1.1, §7.2).

- GET the directory: the URLs of newNonce, newAccount, newOrder,
  revokeCert and keyChange, and `meta` with termsOfService, website and
  caaIdentities when configured, and externalAccountRequired when it is
  true (each left out otherwise). No newAuthz: this
  server has no pre-authorization (§7.4.1).
- newNonce: HEAD is 200, GET is 204 (§7.2), both with `Replay-Nonce` (the
  resource adds one to every answer) and `Cache-Control: no-store`.
"""

from __future__ import annotations

from typing import Any

from ca.acme.calls import Call, Reply

RESOURCES = (("newNonce", "new-nonce"), ("newAccount", "new-account"),
             ("newOrder", "new-order"), ("revokeCert", "revoke-cert"),
             ("keyChange", "key-change"))


async def directory(call: Call) -> Reply:
    config = call.acme.config
    body: dict[str, Any] = {name: call.urls.of(path) for name, path in RESOURCES}
    meta = {name: value for name, value in (("termsOfService", config.terms_of_service),
                                            ("website", config.website),
                                            ("caaIdentities", list(config.caa_identities)),
                                            ("externalAccountRequired",
                                             config.external_account_required))
            if value}
    if meta:
        body["meta"] = meta
    return Reply(body=body)


async def new_nonce_head(call: Call) -> Reply:
    return Reply(200)


async def new_nonce_get(call: Call) -> Reply:
    return Reply(204)
