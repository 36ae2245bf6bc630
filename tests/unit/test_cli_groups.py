"""The command line builds the subcommands of the group named alone
(certdir.cli.GROUPS), and imports no other group's code."""

from __future__ import annotations

import subprocess
import sys

import pytest

from certdir.cli import GROUPS, parser


@pytest.mark.parametrize("name", sorted(GROUPS))
def test_the_group_named_has_its_subcommands(name: str) -> None:
    with pytest.raises(SystemExit) as exited:
        parser(name).parse_args([name])
    assert exited.value.code == 2


def test_a_group_not_named_is_listed_without_its_subcommands() -> None:
    assert parser("ldif").parse_args(["ca"]).command == "ca"


def test_a_command_imports_no_other_groups_code() -> None:
    modules = sorted({register.split(":")[0] for _, register in GROUPS.values()})
    probe = ("import sys; from certdir.cli import parser; "
             "parser('ldif').parse_args(['ldif', 'export', '--data-dir', 'd']); "
             f"print([m for m in {modules!r} if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, check=True)
    assert done.stdout.decode().strip() == "[]"
