"""The CA's settings (the `ca:` section of certdir.yaml, read by certdir.config).

- The CA key's passphrase never appears in the file: it comes from the
  environment variable `passphrase_env` names, else from `passphrase_file`
  (the "key disk": the administrator may keep it off the machine and put
  it back to start), else from a prompt when there is a terminal.
- `acme` is the ACME server's settings (`ca.acme.config`), None when
  `ca.acme` is absent: ACME issues nothing unless configured.
- Policies map a profile to the policy module that decides its requests
  (`ca.policy.POLICIES`); a profile without an entry needs an officer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ca.acme.config import AcmeConfig
from ca.profiles import Profile


@dataclass(frozen=True, slots=True)
class CRLConfig:
    validity_hours: int = 168
    delta_hours: int = 24
    interval_minutes: int = 60


@dataclass(frozen=True, slots=True)
class OCSPConfig:
    """The OCSP responder (RFC 6960): who signs, and for how long answers hold."""
    signer: str = "delegated"        # "delegated" (an ocsp-signing certificate) or "ca"
    response_hours: int = 24         # nextUpdate of a response
    responder_days: int = 30         # validity of the delegated responder's certificate
    renew_days: int = 7              # renew it this close to expiry


@dataclass(frozen=True, slots=True)
class CAConfig:
    name: str
    key_type: str
    validity_days: int
    passphrase_file: Path
    passphrase_env: str
    base_url: str
    ldap_url: str
    profiles: Mapping[str, Profile]
    policies: Mapping[str, str]
    crl: CRLConfig = field(default_factory=CRLConfig)
    tls_renew_days: int = 30
    # Profiles a person may request on the web pages (their policy still decides).
    web_profiles: tuple[str, ...] = ("smime-user",)
    # CA officers: directory entries who approve, deny and revoke with their own password.
    officers: tuple[str, ...] = ()
    ocsp: OCSPConfig = field(default_factory=OCSPConfig)
    # The ACME server (`ca.acme`), served under /acme/ of the https site when set.
    acme: AcmeConfig | None = None
