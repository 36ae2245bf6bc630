"""The `certdir` command line.

Every failure a user can cause (bad configuration, bad LDIF, schema
violations, a data directory that is not initialised) ends with one line
`certdir: error: ...` naming the problem and exit status 1 — never a
traceback. Usage mistakes exit with 2 (argparse). `certdir access check`
exits 1 for "denied", so its errors exit with 2.

Every command runs with umask 077: whatever it creates in a data directory
(the database and its WAL, keys, certificates, backups) is the owner's alone,
whatever the caller's umask.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from certdir.config import ConfigError, load

EXIT_ERROR = 1

# The command groups whose parsers live beside their code: help, and the
# function that registers the group's subcommands. A command imports its own
# group's module alone, for the CA's and the KMS's code (most of a second of
# CPU) is nothing the others need.
GROUPS = {
    "ca": ("the certificate authority", "certdir.ca_commands:register"),
    "kms": ("the key-management service", "certdir.kms_commands:register"),
    "audit": ("the audit log", "certdir.kms_commands:register_audit"),
    "access": ("access control", "certdir.access_commands:register"),
}


def _positive_int(text: str) -> int:
    value = int(text) if text.isdigit() else 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 1")
    return value


def _init(args: argparse.Namespace) -> None:
    from certdir.init import init

    result = init(args.data_dir, args.suffix, args.listen or [], with_ca=not args.no_ca,
                  with_kms=not args.no_kms, http_listen=args.http_listen,
                  base_url=args.base_url, key_type=args.key_type,
                  storage_url=args.storage_url)
    print(f"certdir initialised in {args.data_dir}")
    print(f"  root DN:       {result['root_dn']}")
    print(f"  root password: {result['password']}   (shown once; also in "
          f"{args.data_dir}/secrets/root-password, mode 0600)")
    print(f"  listening on:  {', '.join(result['listen'])}")
    print(f"  web service:   {', '.join(result['http']) or 'off'}")
    print(f"  TLS trust:     {args.data_dir}/public/ca.pem")
    if result["ca"]:
        print(f"  root CA:       {result['ca']}   (key passphrase in "
              f"{args.data_dir}/secrets/ca-passphrase, mode 0600)")
    if result["kms"]:
        print(f"  KMS:           vault created (passphrase in "
              f"{args.data_dir}/secrets/kms-passphrase, mode 0600)")
    print(f"start it with:   certdir serve --data-dir {args.data_dir}")


def _serve(args: argparse.Namespace) -> None:
    from certdir.service import serve

    config = load(args.data_dir)
    if args.workers is not None:
        config = replace(config, workers=args.workers)
    serve(config)


def _import(args: argparse.Namespace) -> None:
    from certdir.ldif_import import import_ldif

    count = import_ldif(load(args.data_dir), args.file, quiet=args.quiet, jobs=args.jobs)
    print(f"imported {count} records from {args.file}", file=sys.stderr)


def _export(args: argparse.Namespace) -> None:
    from certdir.ldif_export import export_ldif

    export_ldif(load(args.data_dir), args.base, args.operational)


def parser(group: str | None = None) -> argparse.ArgumentParser:
    """The whole command line, with the subcommands of the `group` named
    (the first word of the command); every other group shows its help only."""
    top = argparse.ArgumentParser(prog="certdir", description="LDAP directory with a "
                                  "certificate authority and key management built in")
    commands = top.add_subparsers(dest="command", required=True)

    def data_dir(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data-dir", type=Path, required=True,
                       help="the data directory (holds certdir.yaml)")

    p = commands.add_parser("init", help="create a new data directory")
    data_dir(p)
    p.add_argument("--suffix", required=True, help="naming context, e.g. dc=example,dc=com")
    p.add_argument("--listen", action="append", metavar="URL",
                   help="ldap://host:port or ldaps://host:port (repeatable)")
    p.add_argument("--http-listen", action="append", metavar="URL",
                   help="http://host:port or https://host:port for the web service "
                   "(repeatable; default http://127.0.0.1:8080 and https://127.0.0.1:8443)")
    p.add_argument("--base-url", help="public http:// URL of the CA's certificates, CRLs and "
                   "OCSP, put into every certificate (default: the http --http-listen URL)")
    p.add_argument("--key-type", help="the root CA's key: rsa2048, rsa3072, rsa4096, p256 "
                   "(default), p384 or ed25519 (rsa2048 for GnuPG 2.2 mail clients)")
    p.add_argument("--no-ca", action="store_true", help="no certificate authority")
    p.add_argument("--no-kms", action="store_true", help="no key-management service")
    p.add_argument("--storage-url", metavar="URL", help="postgresql://user[:password]@host:port"
                   "/database for the directory instead of certdir.db (the password goes to "
                   "secrets/storage-password)")
    p.set_defaults(run=_init)

    p = commands.add_parser("serve", help="run the directory server")
    data_dir(p)
    p.add_argument("--workers", type=_positive_int, metavar="N",
                   help="server processes (default: `workers` in certdir.yaml, else 1)")
    p.set_defaults(run=_serve)

    ldif = commands.add_parser("ldif", help="import or export LDIF").add_subparsers(
        dest="ldif_command", required=True)
    p = ldif.add_parser("import", help="import an LDIF file in one transaction")
    data_dir(p)
    p.add_argument("file", type=Path)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--jobs", type=_positive_int, default=0, metavar="N",
                   help="processes preparing entries (default: one per core)")
    p.set_defaults(run=_import)
    p = ldif.add_parser("export", help="write the directory as LDIF to standard output")
    data_dir(p)
    p.add_argument("--base", help="export only this subtree")
    p.add_argument("--operational", action="store_true",
                   help="include operational attributes")
    p.set_defaults(run=_export)

    for name, (text, register) in GROUPS.items():
        p = commands.add_parser(name, help=text)
        if name == group:
            module, function = register.split(":")
            getattr(importlib.import_module(module), function)(p, data_dir)
    return top


def main(argv: list[str] | None = None) -> None:
    os.umask(0o077)
    argv = sys.argv[1:] if argv is None else argv
    args = parser(argv[0] if argv else None).parse_args(argv)
    run: Callable[[argparse.Namespace], None] = args.run
    from ca.errors import CAError
    from certdir.failures import CommandFailed
    from directory.protocol.results import LDAPError
    from kms.errors import KMSError

    try:
        run(args)
    except (ConfigError, CommandFailed, CAError, KMSError) as e:
        sys.exit(f"certdir: error: {e}")
    except LDAPError as e:
        sys.exit(f"certdir: error: {e.message} ({e.code.name.lower()})")
    except FileNotFoundError as e:
        sys.exit(f"certdir: error: {e.filename}: no such file")
    except KeyboardInterrupt:
        sys.exit(EXIT_ERROR)
