"""`certdir ca ...`: the certificate authority's command line.

- Commands that sign unlock the CA key first (passphrase from the
  environment, the passphrase file or a prompt) and fail with a clear
  message when it is locked.
- Every change runs in one database transaction with what it publishes
  into the directory; public files (CA certificates, CRLs) are written
  after the commit. They work while the server runs: it notices the
  commit and drops its caches.
- approve, deny, revoke and release are officer actions: with `ca.officers`
  configured they need `--officer DN` and that entry's password
  (certdir.officers), and the audit log and the request's decided_by name
  the officer's DN; without officers the local account acts, as
  `local:<user>`.
- Certificates and CRLs are signed before that transaction opens (CRLs
  after the change they list has committed), so the write lock the
  server's writer waits for is held for database writes only.
- `ca acme list|show|deactivate` are the ACME server's accounts and
  orders (`certdir.acme_commands`); deactivate is an officer action.
  `ca acme-eab create|list|revoke` are its external account binding keys;
  create prints the key id and the HMAC key once, on standard output.
- Listings are rich tables; `issue` prints the new certificate's serial
  (hexadecimal) alone on standard output, for scripts.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from rich.console import Console
from rich.table import Table

from ca import hierarchy, issuer_crls, revoke
from ca.acme.jws import b64encode
from ca.authority import Authority, CAFiles, has_ca, load_chain, passphrase, slug, unlock
from ca.backup import BackupSummary, archived_storage, backup, restore
from ca.backup_secrets import Secret, secrets_of
from ca.errors import CAError
from ca.issue import (
    Outcome,
    commit,
    deny_request,
    holder_entry,
    pending_request,
    prepare,
    prepare_approval,
)
from ca.policy import Origin
from ca.profiles import profile
from ca.public import write_crl
from ca.store import IssuedRecord, Store, parse_serial, serial_text
from ca.verify import verify_file
from certdir import acme_commands, officers
from certdir.ca_setup import ca_config, create_root, publish_new_ca, with_new_crls
from certdir.ca_writing import utc_now, writing
from certdir.config import CONFIG_FILE, Config, from_mapping, load
from certdir.directory_open import offline_directory, storage_url
from certdir.storage_url import (
    SCHEME,
    StorageURLError,
    checked,
    connect_url,
    split_password,
    write_password,
)
from directory.files import generate_passphrase_file, write_private
from directory.publisher import DirectoryWriter
from kms import audit

console = Console(width=None if sys.stdout.isatty() else 200)
BACKUP_PASSPHRASE_ENV = "CERTDIR_BACKUP_PASSPHRASE"


def _local() -> str:
    return f"local:{getpass.getuser()}"


def _audit(writer: DirectoryWriter, action: str, subject: str,
           details: dict[str, str | int | None], by: str | None = None) -> None:
    """CA officer actions go to the KMS's hash-chained audit log, under the
    officer's DN or else the local account that ran the command."""
    audit.record(writer.records, by or _local(), action, subject, details, utc_now())


def _actor(config: Config, args: argparse.Namespace) -> str:
    """Who acts: the officer named by --officer, once checked, or the local
    account when `ca.officers` is empty."""
    ca = ca_config(config)
    if args.officer is None:
        if ca.officers:
            raise CAError("this CA has officers (ca.officers): give --officer DN and "
                          "its password")
        return _local()
    if not ca.officers:
        raise CAError("--officer: this CA has no officers (ca.officers is empty); "
                      "leave --officer out to act as the local account")
    with offline_directory(config) as dsa:
        return str(officers.authenticate(dsa, args, ca.officers, "ca.officers"))


def _unlock(config: Config) -> Authority:
    return unlock(ca_config(config), config.data_dir, config.directory.suffix)


# --- commands -------------------------------------------------------------------------

def _add_ca_section(data_dir: Path, name: str, key_type: str | None) -> None:
    """Give a data directory made with `init --no-ca` its `ca` section and a
    generated passphrase file (unless the passphrase comes from the environment)."""
    path = data_dir / CONFIG_FILE
    settings = yaml.safe_load(path.read_text())
    if "ca" in settings:
        raise CAError(f"{path} already has a ca section; edit it instead of giving --name")
    settings["ca"] = {"name": name, **({"key_type": key_type} if key_type else {})}
    ca = ca_config(from_mapping(settings, data_dir))
    generate_passphrase_file(ca.passphrase_file, ca.passphrase_env)
    path.write_text(yaml.safe_dump(settings, sort_keys=False))


def _init(config: Config, args: argparse.Namespace) -> None:
    authority = create_root(config)
    print(f"root CA {authority.certificate.subject.rfc4514_string()} created; "
          f"certificate in {config.data_dir / 'public' / (authority.slug + '.pem')}")


def _request_sub(config: Config, args: argparse.Namespace) -> None:
    ca = ca_config(config)
    args.out.write_bytes(hierarchy.request_sub(ca, config.data_dir, passphrase(ca)))
    print(f"CA request written to {args.out}; have the parent CA sign it "
          "(`certdir ca sign-sub`), then run `certdir ca install-sub`")


def _sign_sub(config: Config, args: argparse.Namespace) -> None:
    authority = _unlock(config)
    now = utc_now()
    prepared = hierarchy.sign_sub(authority, _read(args.csr), args.path_length, now)
    with offline_directory(config) as dsa, writing(dsa, authority) as writer:
        outcome = commit(writer, prepared, now)
        _audit(writer, "ca.sign-sub", str(args.csr), {"path_length": args.path_length})
    assert outcome.certificate is not None
    args.out.write_bytes(hierarchy.answer(authority, outcome.certificate))
    print(f"subordinate CA certificate and chain written to {args.out}")


def _install_sub(config: Config, args: argparse.Namespace) -> None:
    ca = ca_config(config)
    authority = hierarchy.install_sub(ca, config.data_dir, config.directory.suffix,
                                      _read(args.answer), passphrase(ca))
    publish_new_ca(config, authority)
    print(f"subordinate CA {authority.certificate.subject.rfc4514_string()} installed")


def _submitted(config: Config, args: argparse.Namespace, origin: Origin) -> Outcome:
    authority = _unlock(config)
    chosen = profile(authority.config.profiles, args.profile)
    now = utc_now()
    with offline_directory(config) as dsa:
        prepared = prepare(authority, _read(args.csr), chosen, holder_entry(dsa, args.entry),
                           origin, now)
        with writing(dsa, authority) as writer:
            outcome = commit(writer, prepared, now)
            _audit(writer, f"ca.{outcome.decision.value}", args.entry or "(no entry)",
                   {"request": outcome.request, "profile": chosen.name,
                    "serial": None if outcome.certificate is None
                    else serial_text(outcome.certificate.serial_number)})
    return outcome


def _issue(config: Config, args: argparse.Namespace) -> None:
    outcome = _submitted(config, args, Origin.OFFICER)
    assert outcome.certificate is not None
    print(serial_text(outcome.certificate.serial_number))


def _submit(config: Config, args: argparse.Namespace) -> None:
    outcome = _submitted(config, args, Origin.REQUESTER)
    serial = ("" if outcome.certificate is None
              else f", serial {serial_text(outcome.certificate.serial_number)}")
    print(f"request {outcome.request}: {outcome.decision.value} ({outcome.why}){serial}")


def _approve(config: Config, args: argparse.Namespace) -> None:
    actor = _actor(config, args)
    authority = _unlock(config)
    now = utc_now()
    with offline_directory(config) as dsa:
        record, entry = pending_request(dsa, args.request)
        prepared = prepare_approval(authority, record, entry, actor, now)
        with writing(dsa, authority) as writer:
            certificate = commit(writer, prepared, now).certificate
            assert certificate is not None
            _audit(writer, "ca.approved", str(args.request),
                   {"serial": serial_text(certificate.serial_number)}, by=actor)
    print(serial_text(certificate.serial_number))


def _deny(config: Config, args: argparse.Namespace) -> None:
    actor = _actor(config, args)
    with offline_directory(config) as dsa, writing(dsa, None) as writer:
        deny_request(writer, args.request, actor, args.why, utc_now())
        _audit(writer, "ca.denied", str(args.request), {"why": args.why}, by=actor)
    print(f"request {args.request} denied")


def _revoke(config: Config, args: argparse.Namespace) -> None:
    if (args.serial is None) == (args.entry is None):
        raise CAError("give a serial number or --entry DN (one of them)")
    actor = _actor(config, args)
    authority = _unlock(config)
    why = revoke.reason(args.reason)

    def change(writer: DirectoryWriter) -> list[IssuedRecord]:
        if args.serial is not None:
            records = [revoke.revoke(authority, writer, parse_serial(args.serial), why, utc_now())]
        else:
            records = revoke.revoke_holder(authority, writer, args.entry, why, utc_now())
        for record in records:
            _audit(writer, "ca.revoked", record.entry or record.subject,
                   {"serial": serial_text(record.serial), "reason": why.value}, by=actor)
        return records

    records, _ = with_new_crls(config, authority, change)
    for record in records:
        print(f"revoked {serial_text(record.serial)} ({why.value})")


def _release(config: Config, args: argparse.Namespace) -> None:
    actor = _actor(config, args)
    authority = _unlock(config)
    def change(writer: DirectoryWriter) -> IssuedRecord:
        record = revoke.release(authority, writer, parse_serial(args.serial), utc_now())
        _audit(writer, "ca.released", record.entry or record.subject,
               {"serial": serial_text(record.serial)}, by=actor)
        return record

    record, _ = with_new_crls(config, authority, change)
    print(f"released {serial_text(record.serial)} from hold")


def _crl(config: Config, args: argparse.Namespace) -> None:
    _, made = with_new_crls(config, _unlock(config), lambda writer: None)
    number = made.full.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    print(f"CRL {number} ({len(list(made.full))} revoked) and delta CRL {number + 1} "
          f"published")


def _install_crl(config: Config, args: argparse.Namespace) -> None:
    ca_config(config)
    chain = load_chain(CAFiles.of(config.data_dir).chain)
    with offline_directory(config) as dsa, writing(dsa, None) as writer:
        installed = issuer_crls.install(chain, config.directory.suffix, writer,
                                        _read(args.file))
        _audit(writer, "ca.install-crl", installed.issuer.subject.rfc4514_string(),
               {"number": installed.number, "delta": int(installed.delta)})
    stem = slug(installed.issuer) + ("-delta" if installed.delta else "")
    write_crl(config.data_dir / "public", stem, installed.crl)
    print(f"{'delta ' if installed.delta else ''}CRL {installed.number} of "
          f"{installed.issuer.subject.rfc4514_string()} installed")


@contextmanager
def _reading(config: Config) -> Iterator[Store]:
    ca_config(config)
    with offline_directory(config) as dsa, dsa.backend.reading() as records:
        yield Store(records)


def _list(config: Config, args: argparse.Namespace) -> None:
    with _reading(config) as store:
        if args.pending:
            table = Table("request", "created", "profile", "entry", "policy")
            for r in store.requests("pending"):
                table.add_row(str(r.id), f"{r.created:%Y-%m-%d %H:%M}", r.profile,
                              r.entry or "", r.policy)
        else:
            table = Table("serial", "subject", "holder", "profile", "expires", "status")
            for c in store.certificates():
                if args.revoked and c.revoked_at is None:
                    continue
                table.add_row(serial_text(c.serial), c.subject, c.entry or "", c.profile,
                              f"{c.not_after:%Y-%m-%d}",
                              c.status + (f" ({c.reason})" if c.reason else ""))
    console.print(table)


def _show(config: Config, args: argparse.Namespace) -> None:
    with _reading(config) as store:
        record = store.certificate(parse_serial(args.serial))
    if args.pem:
        certificate = x509.load_der_x509_certificate(record.der)
        sys.stdout.write(certificate.public_bytes(Encoding.PEM).decode())
        return
    table = Table(show_header=False)
    for label, value in (
            ("serial", serial_text(record.serial)), ("subject", record.subject),
            ("issuer", record.issuer), ("holder", record.entry or "(none)"),
            ("profile", record.profile), ("not before", f"{record.not_before:%Y-%m-%d %H:%M}Z"),
            ("not after", f"{record.not_after:%Y-%m-%d %H:%M}Z"), ("status", record.status),
            ("revoked", "" if record.revoked_at is None
             else f"{record.revoked_at:%Y-%m-%d %H:%M}Z ({record.reason})")):
        table.add_row(label, value)
    console.print(table)


def _verify(config: Config, args: argparse.Namespace) -> None:
    ok, lines = verify_file(config.data_dir / "public", _read(args.file))
    for line in lines:
        print(line)
    if not ok:
        raise SystemExit(1)


def _status(config: Config, args: argparse.Namespace) -> None:
    ca = ca_config(config)
    if not has_ca(config.data_dir):
        print("no CA installed")
        return
    chain = load_chain(CAFiles.of(config.data_dir).chain)
    with _reading(config) as store:
        counts = {s: sum(1 for _ in store.certificates(status=s))
                  for s in ("valid", "hold", "revoked")}
        pending = sum(1 for _ in store.requests("pending"))
        last = store.last_crl()
    table = Table(show_header=False)
    rows = [("CA", chain[0].subject.rfc4514_string()),
            ("kind", "root" if len(chain) == 1 else f"subordinate (depth {len(chain) - 1})"),
            ("key", ca.key_type), ("expires", f"{chain[0].not_valid_after_utc:%Y-%m-%d}"),
            ("certificates", ", ".join(f"{n} {s}" for s, n in counts.items())),
            ("pending requests", str(pending)),
            ("last CRL", "none" if last is None else
             f"number {last[0]}, next update {last[2]:%Y-%m-%d %H:%M}Z")]
    for label, value in rows:
        table.add_row(label, value)
    console.print(table)


def _acme_list(config: Config, args: argparse.Namespace) -> None:
    ca_config(config)
    for table in acme_commands.list_all(config):
        console.print(table)


def _acme_show(config: Config, args: argparse.Namespace) -> None:
    ca_config(config)
    console.print(acme_commands.show(config, args.id))


def _acme_deactivate(config: Config, args: argparse.Namespace) -> None:
    print(acme_commands.deactivate(config, args.id, _actor(config, args)))


def _eab_create(config: Config, args: argparse.Namespace) -> None:
    authority = _unlock(config)
    kid, key = acme_commands.eab_create(config, authority, args.entry, _actor(config, args))
    print(f"kid: {kid}")
    print(f"hmac_key: {b64encode(key)}")
    print("the HMAC key is shown only now: give both to the ACME client (certbot "
          "--eab-kid, --eab-hmac-key)", file=sys.stderr)


def _eab_list(config: Config, args: argparse.Namespace) -> None:
    ca_config(config)
    console.print(acme_commands.eab_list(config))


def _eab_revoke(config: Config, args: argparse.Namespace) -> None:
    print(acme_commands.eab_revoke(config, args.id, _actor(config, args)))


def _backup_passphrase(args: argparse.Namespace, confirm: bool) -> bytes:
    """From --passphrase-file, $CERTDIR_BACKUP_PASSPHRASE or a prompt (twice when
    choosing one); never empty."""
    if args.passphrase_file is not None:
        chosen = _read(args.passphrase_file).strip()
    elif os.environ.get(BACKUP_PASSPHRASE_ENV):
        chosen = os.environ[BACKUP_PASSPHRASE_ENV].encode()
    elif sys.stdin.isatty():
        chosen = getpass.getpass("backup passphrase: ").encode()
        if confirm and getpass.getpass("again: ").encode() != chosen:
            raise CAError("the two passphrases differ")
    else:
        raise CAError(f"give --passphrase-file or set ${BACKUP_PASSPHRASE_ENV}")
    if not chosen:
        raise CAError("the backup passphrase is empty")
    return chosen


def _print_summary(summary: BackupSummary, path: Path) -> None:
    print(f"{path}: CA {summary.ca_subject or '(none)'}, {summary.certificates} certificates, "
          f"{summary.files} files, {summary.archive_size} bytes")


def _backup(config: Config, args: argparse.Namespace) -> None:
    summary = backup(config.data_dir, storage_url(config),
                     args.out, _backup_passphrase(args, confirm=True))
    _print_summary(summary, args.out)
    print("no passphrase or password is in the archive: keep "
          + ", ".join(secret.what for secret in secrets_of(config.data_dir)) + " separately")


def _option(secret: Secret) -> str:
    return secret.option.replace("-", "_") + "_file"


def _restored_storage(given: str | None, data_dir: Path) -> str:
    """The URL a restored database goes to: `given` (its password then written
    to secrets/, the rest into the restored certdir.yaml), else the storage the
    archived certdir.yaml names."""
    if given is not None:
        try:
            url, password = split_password(given)
            checked(url)
        except StorageURLError as e:
            raise CAError(f"--storage-url: {e}") from None
        if password is not None:
            write_password(data_dir, password)
        path = data_dir / CONFIG_FILE
        settings = yaml.safe_load(path.read_text())
        storage = settings.setdefault("storage", {})
        storage.pop("path", None)
        storage["url"] = url
        path.write_text(yaml.safe_dump(settings, sort_keys=False))
    found = archived_storage(data_dir)
    return connect_url(found, data_dir) if found.startswith(f"{SCHEME}:") else found


def _restore(args: argparse.Namespace) -> None:
    summary = restore(args.archive, args.data_dir, _backup_passphrase(args, confirm=False),
                      lambda data_dir: _restored_storage(args.storage_url, data_dir))
    _print_summary(summary, args.archive)
    print(f"restored into {args.data_dir}")
    for secret in secrets_of(args.data_dir):
        given: Path | None = getattr(args, _option(secret))
        if given is not None:
            write_private(secret.path, _read(given).rstrip(b"\r\n"))
            print(f"{secret.what} written to {secret.path}")
            continue
        instead = f" or set ${secret.env}" if secret.env else ""
        print(f"put {secret.what} back in {secret.path}{instead} "
              f"(or give --{secret.option}-file)")


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise CAError(f"{path}: {e.strerror}") from None


def _path_length(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 0")
    return int(text)


Command = Callable[[Config, argparse.Namespace], None]


def _config(args: argparse.Namespace) -> Config:
    if getattr(args, "name", None):
        _add_ca_section(args.data_dir, args.name, args.key_type)
    elif getattr(args, "key_type", None):
        raise CAError("--key-type goes with --name; otherwise set ca.key_type in certdir.yaml")
    return load(args.data_dir)


def register(group: argparse.ArgumentParser,
             data_dir: Callable[[argparse.ArgumentParser], None]) -> None:
    ca = group.add_subparsers(dest="ca_command", required=True)

    def command(name: str, run: Command, text: str,
                under: argparse._SubParsersAction | None = None,  # type: ignore[type-arg]
                ) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = (under or ca).add_parser(name, help=text)
        data_dir(p)
        p.set_defaults(run=lambda args: run(_config(args), args))
        return p

    def naming(p: argparse.ArgumentParser) -> None:
        p.add_argument("--name", help="the CA's name, e.g. 'cn=Example Issuing CA,o=Example' "
                       "(adds a ca section to certdir.yaml when it has none)")
        p.add_argument("--key-type", help="rsa2048, rsa3072, rsa4096, p256, p384 or ed25519")

    naming(command("init", _init, "create the root CA"))
    p = command("request-sub", _request_sub, "make a subordinate CA's key and request")
    naming(p)
    p.add_argument("--out", type=Path, required=True, help="where to write the request (PEM)")
    p = command("sign-sub", _sign_sub, "sign a subordinate CA's request")
    p.add_argument("--csr", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True, help="the answer: certificate + chain")
    p.add_argument("--path-length", type=_path_length,
                   help="how many CA levels may follow below it")
    p = command("install-sub", _install_sub, "install the parent's answer")
    p.add_argument("answer", type=Path)
    for name, run, text in (("issue", _issue, "issue a certificate now (as an officer)"),
                            ("submit", _submit, "queue a request for its policy to decide")):
        p = command(name, run, text)
        p.add_argument("--csr", type=Path, required=True, help="PKCS#10 request, PEM or DER")
        p.add_argument("--profile", required=True)
        p.add_argument("--entry", help="the holder's directory entry (DN)")
    p = command("approve", _approve, "issue a pending request")
    officers.add_arguments(p, "ca.officers", required=False)
    p.add_argument("request", type=int)
    p = command("deny", _deny, "refuse a pending request")
    officers.add_arguments(p, "ca.officers", required=False)
    p.add_argument("request", type=int)
    p.add_argument("--why", default="denied by an officer")
    p = command("revoke", _revoke, "revoke by serial or every certificate of an entry")
    officers.add_arguments(p, "ca.officers", required=False)
    p.add_argument("serial", nargs="?")
    p.add_argument("--entry", help="revoke every valid certificate of this entry")
    p.add_argument("--reason", default="unspecified", help="RFC 5280 reason, e.g. "
                   "keyCompromise, superseded, certificateHold")
    p = command("release", _release, "take a certificate off hold")
    officers.add_arguments(p, "ca.officers", required=False)
    p.add_argument("serial")
    command("crl", _crl, "issue and publish a full and a delta CRL now")
    p = command("install-crl", _install_crl, "install and publish a CRL of a CA above this one")
    p.add_argument("file", type=Path, help="the parent CA's CRL, PEM or DER")
    p = command("list", _list, "list issued certificates or pending requests")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--revoked", action="store_true")
    which.add_argument("--pending", action="store_true")
    p = command("show", _show, "one certificate and its holder")
    p.add_argument("serial")
    p.add_argument("--pem", action="store_true", help="print the certificate itself (PEM)")
    p = command("verify", _verify, "check a certificate's chain and CRL status")
    p.add_argument("file", type=Path)
    command("status", _status, "the CA at a glance")
    acme = ca.add_parser("acme", help="the ACME server's accounts and orders").add_subparsers(
        dest="acme_command", required=True)
    command("list", _acme_list, "every ACME account and order", acme)
    command("show", _acme_show, "one ACME account or order", acme).add_argument("id")
    p = command("deactivate", _acme_deactivate, "deactivate an ACME account, or end an order",
                acme)
    officers.add_arguments(p, "ca.officers", required=False)
    p.add_argument("id")
    eab = ca.add_parser("acme-eab", help="the ACME server's external account binding keys"
                        ).add_subparsers(dest="eab_command", required=True)
    p = command("create", _eab_create, "make a binding key (shown once)", eab)
    officers.add_arguments(p, "ca.officers", required=False)
    p.add_argument("--entry", help="the directory entry (DN) the account it binds gets "
                   "its certificates for")
    command("list", _eab_list, "every binding key, never the key itself", eab)
    p = command("revoke", _eab_revoke, "stop a binding key from binding an account", eab)
    officers.add_arguments(p, "ca.officers", required=False)
    p.add_argument("id")
    p = command("backup", _backup, "one encrypted archive of CA keys, database and config")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--passphrase-file", type=Path,
                   help=f"the backup passphrase (else ${BACKUP_PASSPHRASE_ENV} or a prompt)")
    p = ca.add_parser("restore", help="restore a backup into an empty data directory")
    data_dir(p)
    p.add_argument("archive", type=Path)
    p.add_argument("--passphrase-file", type=Path,
                   help=f"the backup passphrase (else ${BACKUP_PASSPHRASE_ENV} or a prompt)")
    p.add_argument("--storage-url",
                   help="the empty PostgreSQL database to restore into (its password goes to "
                        "secrets/storage-password, the rest into the restored certdir.yaml); "
                        "else the one the archived certdir.yaml names")
    for option, what in (("ca-passphrase", "the CA key passphrase"),
                         ("kms-passphrase", "the KMS passphrase"),
                         ("root-password", "the root DN's password")):
        p.add_argument(f"--{option}-file", type=Path,
                       help=f"{what}, written into the restored data directory (a backup "
                            "never holds it)")
    p.set_defaults(run=_restore)
