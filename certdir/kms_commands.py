"""`certdir kms ...` and `certdir audit verify`: the key-management service's command line.

- Every command that touches keys unlocks the KMS vault with its own
  passphrase (environment, passphrase file or prompt) and fails clearly
  when it is locked or wrong; enrollment and recovery also unlock the CA.
- Each command is one database transaction with what it publishes and the
  audit records it writes: a refusal changes nothing. Keys are generated,
  certificates signed and PKCS#12 sealed before that transaction opens or
  after it commits (`enroll`, `recover`): it holds the storage's write lock,
  which the server's writer waits for.
- Officers act under their own directory entry: `--officer DN` and that
  entry's password, checked against its userPassword before the
  transaction (certdir.officers); only the DNs in `kms.officers` may act.
- `kms enroll --url https://...` redeems over the network, verifying the
  server against `--ca-file`, else the `--data-dir`'s CA certificates
  (public/ca.pem), else the system trust store.
- Tokens are printed when no SMTP server is configured (`enroll-user`), or
  written to a CSV file for out-of-band hand-over (`enroll-bulk --out`).
- `audit verify` checks the hash chain and, with the vault unlocked, its
  anchor (kms.audit: truncation, a rewritten head); it prints the head so a
  copy can be kept elsewhere. `kms init` anchors a new log; `audit anchor`
  anchors a log written by a certdir before anchoring, once it verifies.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import getpass
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from ca import revoke as ca_revoke
from ca.authority import Authority, unlock
from ca.store import Store, serial_text
from certdir import officers
from certdir.ca_setup import with_new_crls
from certdir.config import CONFIG_FILE, Config, from_mapping, load
from certdir.directory_open import offline_directory
from directory.backend import Records
from directory.dsa import DSA
from directory.files import generate_passphrase_file, write_private
from directory.predicates import compile_filter
from directory.protocol.filter import Filter
from directory.protocol.filter import parse as parse_filter
from directory.protocol.messages import Scope
from directory.publisher import DirectoryWriter
from directory.resolved_filter import resolve_filter
from directory.search_plan import plan
from kms import audit, enrollment, escrow, recovery, tokens
from kms.config import KMSConfig
from kms.errors import KMSError
from kms.vault import Vault, secret_from

console = Console(width=None if sys.stdout.isatty() else 200)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def kms_config(config: Config) -> KMSConfig:
    if config.kms is None:
        raise KMSError("no `kms` section in certdir.yaml; run `certdir kms init`")
    return config.kms


@dataclass
class Session:
    """One transaction of the directory, acting as the root DN."""
    config: Config
    dsa: DSA
    writer: DirectoryWriter

    def vault(self) -> Vault:
        return Vault.unlock(self.writer.records, secret_from(kms_config(self.config)))

    def authority(self) -> Authority:
        return _authority(self.config)


def _authority(config: Config) -> Authority:
    if config.ca is None:
        raise KMSError("this data directory has no CA to issue certificates")
    return unlock(config.ca, config.data_dir, config.directory.suffix)


@contextmanager
def _session(config: Config) -> Iterator[Session]:
    kms_config(config)
    with offline_directory(config) as dsa, dsa.backend.transaction() as txn:
        yield Session(config, dsa, DirectoryWriter(dsa, txn, dsa.root_dn))


def _officer(config: Config, args: argparse.Namespace) -> str:
    """The officer's DN, once their directory password checks out."""
    with offline_directory(config) as dsa:
        return str(officers.authenticate(dsa, args, kms_config(config).officers,
                                         "kms.officers"))


# --- vault ----------------------------------------------------------------------------

def initialise(config: Config) -> None:
    """Create the vault (used by `certdir init` and `kms init`)."""
    with _session(config) as session:
        vault = Vault.create(session.writer.records, secret_from(kms_config(config)), _now())
        audit.anchor(session.writer.records, vault)
        audit.record(session.writer.records, str(session.dsa.root_dn), "kms.init", "vault", {},
                     _now())


def _add_kms_section(data_dir: Path) -> Config:
    path = data_dir / CONFIG_FILE
    settings = yaml.safe_load(path.read_text())
    if "kms" not in settings:
        settings["kms"] = {}
        path.write_text(yaml.safe_dump(settings, sort_keys=False))
    config = from_mapping(settings, data_dir)
    kms = kms_config(config)
    generate_passphrase_file(kms.passphrase_file, kms.passphrase_env)
    return config


def _init(args: argparse.Namespace) -> None:
    initialise(_add_kms_section(args.data_dir))
    print("KMS initialised; its passphrase is in secrets/kms-passphrase (mode 0600) unless "
          "given in the environment")


def _status(config: Config, args: argparse.Namespace) -> None:
    with _session(config) as session:
        vault = session.vault()
        records = session.writer.records
        problems = audit.verify(records, vault)
        rows = [("vault", "unlocked with the configured passphrase"),
                ("escrowed keys", str(len(escrow.find(records)))),
                ("pending tokens", str(len(tokens.pending(records)))),
                ("officers", ", ".join(kms_config(config).officers) or "(none)"),
                ("recovery approvals", str(kms_config(config).recovery_approvals)),
                ("audit log", "intact" if not problems else f"{len(problems)} problems")]
    table = Table(show_header=False)
    for label, value in rows:
        table.add_row(label, value)
    console.print(table)


def _change_passphrase(config: Config, args: argparse.Namespace) -> None:
    kms = kms_config(config)
    new = (args.new_passphrase_file.read_bytes().strip() if args.new_passphrase_file
           else getpass.getpass("new KMS passphrase: ").encode())
    with _session(config) as session:
        session.vault().change_secret(session.writer.records, new)
        audit.record(session.writer.records, str(session.dsa.root_dn), "passphrase.changed",
                     "vault", {}, _now())
    if kms.passphrase_file.exists() and not os.environ.get(kms.passphrase_env):
        write_private(kms.passphrase_file, new)
        print(f"passphrase changed; {kms.passphrase_file} holds the new one")
    else:
        print("passphrase changed")


# --- enrollment -----------------------------------------------------------------------

def _filter(text: str) -> Filter:
    try:
        return parse_filter(text)
    except ValueError as e:
        raise KMSError(f"bad filter {text!r}: {e}") from None


def _by_mail(session: Session, mail: str) -> str:
    dsa = session.dsa
    query = plan(dsa.backend.indexed, resolve_filter(dsa.schema, _filter(f"(mail={mail})")),
                 dsa.backend.estimate)
    found = [e for e in dsa.backend.search(dsa.suffix, Scope.SUB, query)
             if any(v.decode().lower() == mail.lower() for v in e.get("mail"))]
    if len(found) != 1:
        raise KMSError(f"{len(found)} entries have mail {mail}; give --dn instead")
    return str(found[0].dn)


@dataclass(frozen=True)
class Issued:
    dn: str
    name: str
    mail: str
    token: str


def _issue_token(session: Session, dn: str) -> Issued:
    token = enrollment.enroll_user(session.writer, kms_config(session.config), dn,
                                   str(session.dsa.root_dn), _now())
    entry = session.writer.require(session.dsa.parse_dn(dn))
    name = (entry.first("cn") or entry.first("mail") or b"").decode()
    return Issued(str(entry.dn), name, (entry.first("mail") or b"").decode(), token)


def _mail(config: KMSConfig, issued: list[Issued]) -> dict[str, str | None]:
    """Mail each token (after the commit); per mail address, None or why not."""
    # Twisted's SMTP client installs the default reactor when imported: only here,
    # never in `certdir serve`, which runs on the asyncio reactor.
    from kms.notify import send_all, token_message

    assert config.smtp is not None
    expires = _now() + dt.timedelta(hours=config.token_lifetime_hours)
    messages = [(i.mail, token_message(config.smtp.sender, i.mail, i.name, i.token, expires,
                                       config.enroll_url)) for i in issued]
    return dict(send_all(config.smtp, messages, config.smtp.ca_file))


def _enroll_user(config: Config, args: argparse.Namespace) -> None:
    with _session(config) as session:
        issued = _issue_token(session, args.dn or _by_mail(session, args.mail))
    kms = kms_config(config)
    if kms.smtp is None:
        print(issued.token)
        return
    failure = _mail(kms, [issued])[issued.mail]
    if failure is not None:
        raise KMSError(f"token issued but not mailed: {failure}; run enroll-user again to "
                       "issue and mail a new one")
    print(f"token mailed to {issued.mail}")


def _enroll_bulk(config: Config, args: argparse.Namespace) -> None:
    kms = kms_config(config)
    issued: list[Issued] = []
    skipped: list[str] = []
    with _session(config) as session:
        dsa = session.dsa
        wanted = resolve_filter(dsa.schema, _filter(args.filter))
        matches = compile_filter(dsa.schema, wanted)
        candidates = [e for e in dsa.backend.search(dsa.parse_dn(args.base), Scope.SUB,
                                                     plan(dsa.backend.indexed, wanted,
                                                          dsa.backend.estimate))
                      if matches(e) is True]
        with Progress(console=Console(stderr=True)) as progress:
            task = progress.add_task("issuing tokens", total=len(candidates))
            for entry in candidates:
                if entry.first("mail") is None:
                    skipped.append(str(entry.dn))
                else:
                    issued.append(_issue_token(session, str(entry.dn)))
                progress.advance(task)
    failures = _mail(kms, issued) if kms.smtp is not None else {}
    undelivered = [i for i in issued if kms.smtp is None or failures.get(i.mail)]
    if undelivered:
        with args.out.open("w", newline="") as f:
            os.chmod(args.out, 0o600)
            writer = csv.writer(f)
            writer.writerow(("dn", "mail", "token"))
            writer.writerows((i.dn, i.mail, i.token) for i in undelivered)
    table = Table("entries", "tokens issued", "mailed", "skipped (no mail)",
                  "tokens to hand over")
    table.add_row(str(len(candidates)), str(len(issued)), str(len(issued) - len(undelivered)),
                  str(len(skipped)), f"{len(undelivered)} in {args.out}" if undelivered else "0")
    console.print(table)


def _enroll(args: argparse.Namespace) -> None:
    password = args.p12_password_file.read_bytes().strip()
    csr = args.csr.read_bytes()
    if args.url:
        from kms.web import post_enrollment

        bundle = post_enrollment(args.url, args.token, csr, password, _trust_anchor(args))
    else:
        if args.data_dir is None:
            raise KMSError("give --url of the KMS or --data-dir of its data directory")
        config = load(args.data_dir)
        kms = kms_config(config)
        with offline_directory(config) as dsa:
            with dsa.backend.reading() as records:
                vault = Vault.unlock(records, secret_from(kms))
            done = enrollment.redeem_offline(_authority(config), dsa, vault, kms, args.token,
                                             csr, password, _now())
        bundle = done.pkcs12
    write_private(args.out, bundle)
    print(f"PKCS#12 written to {args.out}")


def _trust_anchor(args: argparse.Namespace) -> Path | None:
    """--ca-file, else the data directory's CA certificates, else the system store."""
    if args.ca_file is not None or args.data_dir is None:
        anchor: Path | None = args.ca_file
        return anchor
    return Path(args.data_dir) / "public" / "ca.pem"


# --- recovery and revocation ----------------------------------------------------------

def _recover_request(config: Config, args: argparse.Namespace) -> None:
    kms = kms_config(config)
    officer = _officer(config, args)
    with _session(config) as session:
        records = session.writer.records
        if args.serial is not None:
            found = escrow.find(records, serial=int(args.serial, 16))
        else:
            found = escrow.find(records, owner=str(session.dsa.parse_dn(args.entry)))
        if not found:
            raise KMSError("no escrowed key matches")
        number = recovery.request(records, officer, found[-1].id, _now(), kms.officers)
    print(f"recovery {number} of escrowed key #{found[-1].id} (serial "
          f"{serial_text(found[-1].serial)}) needs {kms.recovery_approvals} approval(s)")


def _recover_approve(config: Config, args: argparse.Namespace) -> None:
    kms = kms_config(config)
    officer = _officer(config, args)
    with _session(config) as session:
        token = recovery.approve(session.writer.records, args.recovery, officer,
                                 _now(), kms.officers, kms.recovery_approvals,
                                 dt.timedelta(hours=kms.token_lifetime_hours))
    print(token if token else f"approval recorded; recovery {args.recovery} needs more")


def _recover(config: Config, args: argparse.Namespace) -> None:
    password = args.p12_password_file.read_bytes().strip()
    with _session(config) as session:
        records = session.writer.records
        certificate = Store(records).certificate(int(args.serial, 16))
        recovered = recovery.redeem(records, session.vault(), args.token, password,
                                    certificate.der, _now())
    write_private(args.out, recovery.seal(recovered, password))
    print(f"recovered key and certificate written to {args.out}")


def _revoke(config: Config, args: argparse.Namespace) -> None:
    why = ca_revoke.reason(args.reason)
    with _session(config) as session:
        dn = args.user if "=" in args.user else _by_mail(session, args.user)
        authority = session.authority()
        actor = str(session.dsa.root_dn)

    def change(writer: DirectoryWriter) -> list[str]:
        records = ca_revoke.revoke_holder(authority, writer, dn, why, _now())
        serials = [serial_text(r.serial) for r in records]
        audit.record(writer.records, actor, "revoked", dn,
                     {"reason": why.value, "serials": ",".join(serials)}, _now())
        return serials

    serials, _ = with_new_crls(config, authority, change)
    for serial in serials:
        print(f"revoked {serial} ({why.value}); escrowed keys are kept for recovery")


def _list(config: Config, args: argparse.Namespace) -> None:
    kms = kms_config(config)
    with _session(config) as session:
        records = session.writer.records
        if args.tokens:
            table = Table("entry", "kind", "created", "expires")
            for t in tokens.pending(records):
                table.add_row(t.entry, t.kind, f"{t.created:%Y-%m-%d %H:%M}",
                              f"{t.expires:%Y-%m-%d %H:%M}")
        else:
            horizon = _now() + dt.timedelta(days=kms.expiry_warning_days)
            table = Table("entry", "profile", "serial", "expires", "escrowed")
            escrowed = {r.serial for r in escrow.find(records)}
            for c in Store(records).certificates(status="valid"):
                if c.profile not in (enrollment.SIGNING_PROFILE, enrollment.ENCRYPTION_PROFILE):
                    continue
                if args.expiring and c.not_after > horizon:
                    continue
                table.add_row(c.entry or "", c.profile, serial_text(c.serial),
                              f"{c.not_after:%Y-%m-%d}", "yes" if c.serial in escrowed else "")
    console.print(table)


def _vault_of(config: Config, records: Records) -> Vault | None:
    """The unlocked vault, or None in a data directory without a KMS (whose
    audit log, CA actions only, cannot be anchored)."""
    if config.kms is None or records.row("SELECT 1 FROM kms_vault") is None:
        return None
    return Vault.unlock(records, secret_from(config.kms))


def _audit_verify(args: argparse.Namespace) -> None:
    config = load(args.data_dir)
    with offline_directory(config) as dsa, dsa.backend.reading() as records:
        vault = _vault_of(config, records)
        problems = audit.verify(records, vault)
        counted = records.row("SELECT count(*) FROM kms_audit")
        head = records.row("SELECT seq, hash FROM kms_audit_head")
    count = 0 if counted is None else counted[0]
    for problem in problems:
        print(problem)
    if problems:
        raise KMSError(f"the audit log was altered: {len(problems)} problem(s)")
    anchored = "anchored" if vault else "not anchored: no KMS vault here"
    print(f"audit log intact: {count} records ({anchored})")
    if head:
        print(f"head: record {head[0]}, hash {head[1]} (keep a copy elsewhere to detect a "
              "rollback)")


def _audit_anchor(config: Config, args: argparse.Namespace) -> None:
    with _session(config) as session:
        records = session.writer.records
        vault = session.vault()
        problems = audit.verify(records)
        if problems:
            raise KMSError(f"the audit log has {len(problems)} problem(s); "
                           "`certdir audit verify` lists them; it was not anchored")
        start = audit.anchor(records, vault)
        audit.record(records, str(session.dsa.root_dn), "audit.anchored", "audit log",
                     {"start": start}, _now())
    print(f"audit log anchored from record {start} on")


Command = Callable[[Config, argparse.Namespace], None]


def register(group: argparse.ArgumentParser,
             data_dir: Callable[[argparse.ArgumentParser], None]) -> None:
    kms = group.add_subparsers(dest="kms_command", required=True)

    def command(name: str, run: Command, text: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = kms.add_parser(name, help=text)
        data_dir(p)
        p.set_defaults(run=lambda args: run(load(args.data_dir), args))
        return p

    p = kms.add_parser("init", help="create the KMS vault")
    data_dir(p)
    p.set_defaults(run=_init)
    command("status", _status, "the KMS at a glance")
    p = command("change-passphrase", _change_passphrase, "re-wrap the master key")
    p.add_argument("--new-passphrase-file", type=Path)
    p = command("enroll-user", _enroll_user, "a one-time enrollment token for one person")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--mail")
    who.add_argument("--dn")
    p = command("enroll-bulk", _enroll_bulk, "tokens for every person under a base")
    p.add_argument("--base", required=True)
    p.add_argument("--filter", default="(&(objectClass=inetOrgPerson)(mail=*))")
    p.add_argument("--out", type=Path, required=True,
                   help="CSV (mode 0600) of dn, mail, token for tokens not mailed")
    p = kms.add_parser("enroll", help="redeem a token: signing CSR in, PKCS#12 out")
    p.add_argument("--data-dir", type=Path)
    p.add_argument("--url", help="the KMS's https enrollment URL instead of a data directory")
    p.add_argument("--ca-file", type=Path,
                   help="CA certificates to verify the KMS at --url (default: the data "
                        "directory's public/ca.pem with --data-dir, else the system store)")
    p.add_argument("--token", required=True)
    p.add_argument("--csr", type=Path, required=True, help="PKCS#10 for your signing key")
    p.add_argument("--p12-password-file", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(run=_enroll)
    p = command("recover-request", _recover_request, "open a key recovery (officer)")
    officers.add_arguments(p, "kms.officers", required=True)
    key = p.add_mutually_exclusive_group(required=True)
    key.add_argument("--serial", help="the encryption certificate's serial (hex)")
    key.add_argument("--entry", help="the key owner's DN (their newest escrowed key)")
    p = command("recover-approve", _recover_approve, "approve a recovery (officer)")
    officers.add_arguments(p, "kms.officers", required=True)
    p.add_argument("recovery", type=int)
    p = command("recover", _recover, "redeem a recovery token: the escrowed key as PKCS#12")
    p.add_argument("--token", required=True)
    p.add_argument("--serial", required=True, help="the encryption certificate's serial (hex)")
    p.add_argument("--p12-password-file", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p = command("revoke", _revoke, "revoke a person's certificates; escrowed keys are kept")
    p.add_argument("user", help="DN or mail address")
    p.add_argument("--reason", default="unspecified")
    p = command("list", _list, "enrolled people (or pending tokens, expiring certificates)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--tokens", action="store_true")
    which.add_argument("--expiring", action="store_true")


def register_audit(group: argparse.ArgumentParser,
                   data_dir: Callable[[argparse.ArgumentParser], None]) -> None:
    audit_parser = group.add_subparsers(dest="audit_command", required=True)
    p = audit_parser.add_parser("verify", help="check the hash chain of the audit log and, "
                                "with the KMS vault, its anchor")
    data_dir(p)
    p.set_defaults(run=_audit_verify)
    p = audit_parser.add_parser("anchor", help="anchor a log written before anchoring existed")
    data_dir(p)
    p.set_defaults(run=lambda args: _audit_anchor(load(args.data_dir), args))
