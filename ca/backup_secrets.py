"""The secrets a backup leaves out, and where a restored data directory wants them.

- A backup never holds a passphrase or password in clear: not the CA key's
  passphrase (ca/key.pem is encrypted under it), not the KMS passphrase (the
  vault's master key is wrapped under it), not the root DN's password
  (certdir.yaml keeps only its hash). Were any of them inside, the backup's
  own passphrase would open everything; the CA key and the vault would be
  as safe as the least safe copy of the archive.
- Every file under secrets/ is left out (the folder holds nothing else by
  design), and so are the passphrase files that certdir.yaml names
  elsewhere (`ca.passphrase_file`, `kms.passphrase_file`).
- After a restore the operator supplies each one: a file given to `ca
  restore` (--ca-passphrase-file, --kms-passphrase-file, --root-password-file)
  is written into place with mode 0600; for the others restore says which
  file to put back or which environment variable to set.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

CONFIG_FILE = "certdir.yaml"
SECRETS_FOLDER = "secrets"


@dataclass(frozen=True, slots=True)
class Secret:
    option: str        # the `ca restore` option that supplies it ("ca-passphrase")
    what: str          # what it is, for the operator
    path: Path         # where the data directory's configuration expects it
    env: str | None    # the environment variable that may replace the file


def _section(settings: object, name: str) -> dict[str, object] | None:
    section = settings.get(name) if isinstance(settings, dict) else None
    return section if isinstance(section, dict) else None


def _setting(section: dict[str, object], key: str, default: str) -> str:
    value = section.get(key, default)
    return value if isinstance(value, str) else default


def secrets_of(data_dir: Path) -> tuple[Secret, ...]:
    """The passphrases and the root password this data directory's
    configuration uses (a section it lacks has none)."""
    settings = yaml.safe_load((data_dir / CONFIG_FILE).read_text())
    found = [Secret("root-password", "the root DN's password (certdir.yaml has only its hash)",
                    data_dir / SECRETS_FOLDER / "root-password", None)]
    for name, what, env in (("ca", "the CA key passphrase", "CERTDIR_CA_PASSPHRASE"),
                            ("kms", "the KMS passphrase", "CERTDIR_KMS_PASSPHRASE")):
        section = _section(settings, name)
        if section is not None:
            found.append(Secret(f"{name}-passphrase", what, data_dir / _setting(
                section, "passphrase_file", f"{SECRETS_FOLDER}/{name}-passphrase"),
                _setting(section, "passphrase_env", env)))
    return tuple(found)


def left_out(data_dir: Path) -> frozenset[Path]:
    """Resolved paths a backup must not take: secrets/* and the named passphrase files."""
    folder = data_dir / SECRETS_FOLDER
    inside = {path for path in folder.rglob("*") if path.is_file()} if folder.is_dir() else set()
    return frozenset(path.resolve() for path in {*inside, *(s.path for s in secrets_of(data_dir))})
