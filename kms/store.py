"""The KMS's tables, in the directory's own database (DESIGN.md, "KMS features").

- Vault, escrowed keys, audit log, tokens and recoveries sit next to the
  entries, so an enrollment's certificates, escrowed key and audit record
  commit with the published entry or not at all.
- Each module owns its tables as a `SCHEMA` of CREATE ... IF NOT EXISTS
  statements; `TABLES` is all of them, which the directory creates when its
  storage is opened (`directory.backend.opening`), never a command.
"""

from __future__ import annotations

from directory.backend import Tables
from kms import audit, escrow, recovery, tokens, vault

TABLES: Tables = (*vault.SCHEMA, *escrow.SCHEMA, *audit.SCHEMA, *tokens.SCHEMA,
                  *recovery.SCHEMA)
