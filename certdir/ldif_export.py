"""`certdir ldif export` (RFC 2849).

- Export writes every entry (or a subtree), parents before children, with
  user attributes; `--operational` adds the server's operational ones.
"""

from __future__ import annotations

import sys
from typing import BinaryIO

from certdir.config import Config
from certdir.directory_open import offline_directory
from directory.ldif import write_entry
from directory.protocol.dn import DN
from directory.protocol.messages import Scope
from directory.selection import display_name


def export_ldif(config: Config, base: str | None, operational: bool,
                out: BinaryIO = sys.stdout.buffer) -> int:
    count = 0
    with offline_directory(config) as dsa:
        schema = dsa.schema
        base_dn = dsa.parse_dn(base) if base else DN.ROOT
        for entry in dsa.backend.search(base_dn, Scope.SUB, None):
            pairs: list[tuple[str, bytes]] = []
            for key, values in entry.attributes.items():
                at = schema.attribute(key.split(";")[0])
                if at.operational and not operational:
                    continue
                name = display_name(schema, key)
                pairs.extend((name, v) for v in values)
            out.write(write_entry(str(entry.dn), pairs))
            count += 1
    out.flush()
    return count

