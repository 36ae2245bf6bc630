"""The ACME server's settings (`ca.acme` of certdir.yaml, read by certdir.config).

- The ACME resources are served when `ca.acme` is present; which
  identifiers may be ordered, how they validate and which profile issues
  are the identifier policy (`ca.acme.policy.AcmePolicy`, its keys parsed
  by `policy_from`).
- `terms_of_service`, `website` and `caa_identities` are the directory's
  `meta` (RFC 8555 §7.1.1), left out when unset; with terms of service a
  newAccount must agree to them (`termsOfServiceAgreed`).
- Rate limits (`rate_limits`) count within a sliding window of
  `window_minutes`: new orders per account, new authorizations per
  identifier value (whoever asks), so one account cannot flood the CA
  nor many accounts one name, and new accounts per client address, so
  one client cannot fill the accounts table. Over a limit is rateLimited
  (429) with Retry-After (RFC 8555 §6.6).
- `external_account_required`: a newAccount must carry an external
  account binding made with `certdir ca acme-eab create` (RFC 8555
  §7.3.4; the directory's meta says `externalAccountRequired`).
- An account's orders list (§7.1.2.1) holds `orders_per_page` orders, and
  a `Link: rel="next"` to the rest.
- Nonces live `nonce_minutes`; orders and their authorizations expire
  `order_days` after they were made.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ca.acme.policy import AcmePolicy


@dataclass(frozen=True, slots=True)
class RateLimits:
    window_minutes: int = 60
    orders_per_account: int = 300
    orders_per_identifier: int = 50
    accounts_per_address: int = 100


@dataclass(frozen=True, slots=True)
class AcmeConfig:
    policy: AcmePolicy
    terms_of_service: str | None = None
    website: str | None = None
    caa_identities: tuple[str, ...] = ()
    limits: RateLimits = field(default_factory=RateLimits)
    nonce_minutes: int = 60
    order_days: int = 7
    external_account_required: bool = False
    orders_per_page: int = 100
