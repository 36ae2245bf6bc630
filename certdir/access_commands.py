"""`certdir access check`: what the access rules decide, and why (like slapacl).

- Offline: reads the entry (and any group) from the database; no server
  is needed, and a running one is not disturbed.
- `--as` is a DN, `anonymous`, or the root DN (above every rule);
  `--mechanism` and `--tls-subject` say how that identity authenticated,
  for `sasl:` and `tls:` rules. `--attr` is an attribute name or the
  `entry` (default) or `children` pseudo-attribute.
- It prints the rule that decided (its key and its `to`), the `by` clause,
  and the rights as a level name and as `=letters`. With `--level` it adds
  whether that level is allowed.
- Exit status: 0 when allowed (or without `--level`), 1 when denied, 2 on
  any error (one line `certdir: error: ...` naming it; usage errors too).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from certdir.config import ConfigError, load
from certdir.directory_open import offline_directory
from directory.acl.engine import PSEUDO, Decision, RulePolicy
from directory.acl.identity import Identity
from directory.acl.rights import Rights, describe, letters, parse_level
from directory.acl.view import View
from directory.dsa import DSA
from directory.entry import resolve
from directory.protocol.dn import DN
from directory.protocol.results import LDAPError

EXIT_DENIED = 1
EXIT_ERROR = 2


class CheckError(Exception):
    pass


def _explain(policy: RulePolicy, decision: Decision) -> tuple[str, str]:
    if decision.rule is None:
        return "none matched (default deny)", "-"
    rule = policy.rules[decision.rule]
    where = f"{policy.source}[{decision.rule}]"
    if decision.by is None:
        return f"{where} to {rule.what}", "none matched"
    by = rule.by[decision.by]
    return f"{where} to {rule.what}", f"{where}.by[{decision.by}] {by.who} {by.level}"


def _rights(rights: Rights) -> str:
    """`read (=dxcsr)`; a set that is no level, or none, is said once."""
    name = describe(rights)
    return name if name.startswith("=") or not rights else f"{name} ({letters(rights)})"


def _dn(dsa: DSA, text: str, option: str) -> DN:
    try:
        return dsa.parse_dn(text)
    except LDAPError as e:
        raise CheckError(f"{option}: {e.message}") from None


def _attribute(dsa: DSA, name: str) -> str:
    if name.lower() in PSEUDO:
        return name.lower()
    try:
        return resolve(dsa.schema, name).key
    except LDAPError:
        raise CheckError(f"--attr: {name!r}: unknown attribute type") from None


def check(args: argparse.Namespace) -> int:
    wanted = None
    if args.level is not None:
        try:
            wanted = parse_level(args.level)
        except ValueError as e:
            raise CheckError(f"--level: {e}") from None
    with offline_directory(load(args.data_dir)) as dsa:
        policy = dsa.acl
        assert isinstance(policy, RulePolicy)
        attribute = _attribute(dsa, args.attr)
        if args.who.lower() == "anonymous":
            who = Identity(DN.ROOT, tls_subject=args.tls_subject)
        else:
            dn = _dn(dsa, args.who, "--as")
            who = Identity(dn, dn == dsa.root_dn, args.mechanism or "simple", args.tls_subject)
        entry = dsa.backend.get(_dn(dsa, args.dn, "--dn"))
        if entry is None:
            raise CheckError(f"--dn: no entry {args.dn}")
        get = dsa.backend.get
        if who.is_root:
            rights = View(policy, who, get).rights(entry, attribute)
            rule, by = "none (the root DN is above every rule)", "-"
        else:
            decision = policy.decide(who, entry, attribute, get)
            rights = decision.rights
            rule, by = _explain(policy, decision)
    print(f"entry:  {entry.dn}")
    print(f"attr:   {args.attr}")
    print(f"as:     {'anonymous' if who.anonymous else who.dn}")
    print(f"rule:   {rule}")
    print(f"by:     {by}")
    print(f"rights: {_rights(rights)}")
    if wanted is None:
        return 0
    allowed = wanted in rights
    print(f"{args.level}: {'allowed' if allowed else 'denied'}")
    return 0 if allowed else EXIT_DENIED


def _run(args: argparse.Namespace) -> None:
    try:
        status = check(args)
    except (CheckError, ConfigError) as e:
        print(f"certdir: error: {e}", file=sys.stderr)
        status = EXIT_ERROR
    sys.exit(status)


def register(group: argparse.ArgumentParser,
             data_dir: Callable[[argparse.ArgumentParser], None]) -> None:
    access = group.add_subparsers(dest="access_command", required=True)
    p = access.add_parser(
        "check", help="what the access rules decide for one identity, entry and attribute",
        epilog="exit status: 0 allowed (or no --level), 1 denied, 2 error")
    data_dir(p)
    p.add_argument("--as", dest="who", required=True, metavar="DN",
                   help="the identity asking: a DN, `anonymous` or the root DN")
    p.add_argument("--dn", required=True, help="the entry asked about")
    p.add_argument("--attr", default="entry",
                   help="an attribute, or `entry` (default) or `children`")
    p.add_argument("--level", help="a level (read, write, ...) or =letters to test")
    p.add_argument("--mechanism", help="how --as authenticated: simple (default) or a SASL "
                   "mechanism such as EXTERNAL")
    p.add_argument("--tls-subject", default="", metavar="DN",
                   help="the subject DN of the client certificate presented")
    p.set_defaults(run=_run)

