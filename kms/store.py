"""The KMS's tables, in the directory's own database (DESIGN.md, "KMS features").

- Vault, escrowed keys, audit log, tokens and recoveries sit next to the
  entries, so an enrollment's certificates, escrowed key and audit record
  commit with the published entry or not at all.
- Each module owns its tables as a `SCHEMA` of CREATE ... IF NOT EXISTS
  statements; `create` runs them one by one in the caller's transaction and
  never commits (executescript would commit the caller's work).
"""

from __future__ import annotations

import sqlite3

from kms import audit, escrow, recovery, tokens, vault

SCHEMAS: tuple[tuple[str, ...], ...] = (
    vault.SCHEMA, escrow.SCHEMA, audit.SCHEMA, tokens.SCHEMA, recovery.SCHEMA,
)


def create(conn: sqlite3.Connection) -> None:
    for schema in SCHEMAS:
        for statement in schema:
            conn.execute(statement)
