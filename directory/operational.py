"""Operational attributes the server maintains (RFC 4512 §3.4, RFC 4530).

- On add: createTimestamp, creatorsName, modifyTimestamp, modifiersName,
  entryUUID, entryCSN and structuralObjectClass are set by the server.
- On every change: modifyTimestamp, modifiersName and entryCSN.
- Computed when read, never stored: hasSubordinates, subschemaSubentry,
  and on the suffix entry contextCSN (`directory.replication.context`).
- Clients may not supply or change any of them: they are
  NO-USER-MODIFICATION in the schema and the operations refuse them.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from directory.csn import generalized_time
from directory.entry import Entry
from directory.protocol.dn import DN
from directory.replication import context

if TYPE_CHECKING:
    from directory.dsa import DSA

Attributes = dict[str, tuple[bytes, ...]]

COMPUTED = ("hassubordinates", "subschemasubentry", "contextcsn")
NEW_ENTRY = ("createtimestamp", "creatorsname", "modifytimestamp", "modifiersname",
             "entryuuid", "entrycsn", "structuralobjectclass")


def stamp_new(dsa: DSA, attributes: Attributes, actor: DN, structural: str,
              entry_uuid: bytes | None = None) -> None:
    """Give a new entry its operational attributes; its entryUUID may have
    been made beforehand (`new_uuid`, by an LDIF import's worker process)."""
    csn = dsa.csn.next(dsa.now())
    stamp = generalized_time(csn)
    who = str(actor).encode()
    attributes.update(zip(NEW_ENTRY, (
        (stamp,), (who,), (stamp,), (who,), (entry_uuid or new_uuid(),), (csn.encode(),),
        (structural.encode(),)), strict=True))


def new_uuid() -> bytes:
    """A new entry's entryUUID (RFC 4530): random, so made in any order. A
    version 4 UUID (RFC 4122, section 4.4) in its string form, made from
    the random bytes directly: `uuid.uuid4` builds an object first, which
    cost an import a twentieth of its worker time."""
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40
    raw[8] = raw[8] & 0x3F | 0x80
    text = raw.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}".encode()


def stamp_modified(dsa: DSA, attributes: Attributes, actor: DN) -> None:
    csn = dsa.csn.next(dsa.now())
    attributes["modifytimestamp"] = (generalized_time(csn),)
    attributes["modifiersname"] = (str(actor).encode(),)
    attributes["entrycsn"] = (csn.encode(),)


def computed(dsa: DSA, entry: Entry) -> Attributes:
    has_children = dsa.backend.has_children(entry.dn)
    found: Attributes = {
        "hassubordinates": (b"TRUE" if has_children else b"FALSE",),
        "subschemasubentry": (str(dsa.subschema_dn).encode(),),
    }
    if entry.dn == dsa.suffix:
        with dsa.backend.reading() as records:
            csns = context.values(records)
        if csns:
            found["contextcsn"] = csns
    return found
