"""Writing and generating secrets: files created with mode 0600 from the first byte, so a
secret is never readable by others even for an instant."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)


def generate_secret(path: Path, length: int = 24) -> str:
    """A new random secret (`length` random bytes, URL-safe text), written to
    `path` with mode 0600 and no trailing newline, so tools that send a file's
    bytes as they are (`ldapwhoami -y`) send the secret alone; never a default."""
    secret = secrets.token_urlsafe(length)
    write_private(path, secret.encode())
    return secret


def generate_passphrase_file(path: Path, env: str) -> None:
    """A generated passphrase in `path`, unless the environment variable
    `env` supplies one or the file already holds one."""
    if not os.environ.get(env) and not path.exists():
        generate_secret(path)
