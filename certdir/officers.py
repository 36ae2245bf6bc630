"""Officers on the command line: a directory entry acting with its own password.

- `--officer DN` names the entry. Its password comes from `--password-file`
  (surrounding whitespace stripped), else `$CERTDIR_OFFICER_PASSWORD`, else
  a prompt on a terminal; with none of them the command fails before it
  changes anything.
- The DN must be one of the configured officers (compared as DNs, RFC 4517
  §4.2.15 distinguishedNameMatch), the entry must exist, and the password
  must verify against one of its userPassword values (RFC 4519 §2.41), as a
  simple bind checks it. The check runs before the command's transaction:
  Argon2 never holds the writer.
- Every refusal is one `OfficerError` naming the problem.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from certdir.failures import CommandFailed
from directory import passwords
from directory.dsa import DSA
from directory.protocol.dn import DN
from directory.protocol.results import LDAPError

PASSWORD_ENV = "CERTDIR_OFFICER_PASSWORD"


class OfficerError(CommandFailed):
    """The officer named is not one, or could not prove it."""


def add_arguments(parser: argparse.ArgumentParser, setting: str, required: bool) -> None:
    parser.add_argument("--officer", metavar="DN", required=required,
                        help=f"your directory entry (one of {setting})")
    parser.add_argument("--password-file", type=Path, help=f"your password (else "
                        f"${PASSWORD_ENV}, else a prompt)")


def _password(args: argparse.Namespace, dn: DN) -> bytes:
    if args.password_file is not None:
        try:
            return Path(args.password_file).read_bytes().strip()
        except OSError as e:
            raise OfficerError(f"{args.password_file}: {e.strerror}") from None
    if os.environ.get(PASSWORD_ENV):
        return os.environ[PASSWORD_ENV].encode()
    if sys.stdin.isatty():
        return getpass.getpass(f"password of {dn}: ").encode()
    raise OfficerError(f"give --password-file or set ${PASSWORD_ENV}: the password of {dn}")


def _parse(dsa: DSA, text: str, what: str) -> DN:
    try:
        return dsa.parse_dn(text)
    except LDAPError as e:
        raise OfficerError(f"{what}: {text!r} is not a DN ({e.message})") from None


def authenticate(dsa: DSA, args: argparse.Namespace, officers: Sequence[str],
                 setting: str) -> DN:
    """The officer's DN, once it is among `officers` (the configuration's
    `setting`) and its password checks out."""
    dn = _parse(dsa, args.officer, "--officer")
    if dn not in {_parse(dsa, name, setting) for name in officers}:
        raise OfficerError(f"{dn} is not one of the officers in {setting}")
    entry = dsa.backend.get(dn)
    if entry is None:
        raise OfficerError(f"{dn} is in {setting} but has no entry in the directory")
    secret = _password(args, dn)
    if not any(passwords.verify(stored, secret) for stored in entry.get("userpassword")):
        raise OfficerError(f"wrong password for {dn}")
    return dn
