"""The KMS's settings (the `kms:` section of certdir.yaml, read by certdir.config).

- The KMS passphrase is its own, never the CA's or the root DN's, and never
  in the file: it comes from the environment variable `passphrase_env`
  names, else from `passphrase_file` (the "key disk", movable off the
  machine), else a prompt on a terminal.
- Recovery needs `recovery_approvals` distinct officers among `officers`
  (directory entries), M of N.
- Mail goes through `smtp` when it is set; without it tokens are printed
  for out-of-band hand-over.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class SMTPConfig:
    host: str
    port: int = 587
    starttls: bool = True
    username: str | None = None
    password_file: Path | None = None
    sender: str = "certdir@localhost"
    ca_file: Path | None = None  # trust anchor for the server's certificate (else the system's)


@dataclass(frozen=True, slots=True)
class KMSConfig:
    passphrase_env: str = "CERTDIR_KMS_PASSPHRASE"
    passphrase_file: Path = Path("secrets/kms-passphrase")
    token_lifetime_hours: int = 168
    encryption_key_type: str = "rsa2048"
    officers: tuple[str, ...] = ()
    recovery_approvals: int = 1
    auto_enroll: bool = False
    smtp: SMTPConfig | None = None
    enroll_url: str = "https://127.0.0.1:8443/kms/enroll"
    expiry_warning_days: int = 30
