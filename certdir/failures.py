"""The failures of `certdir` commands that are the user's to fix.

Each is reported by `certdir.cli` as one line, `certdir: error: ...`, and
exit status 1. They share this base so that the command line catches them
without importing the code that raises them (an LDIF import's, an
officer's check), which a command that never runs it has no need of.
"""

from __future__ import annotations


class CommandFailed(Exception):
    """A command could not do what it was asked; the message says why."""
