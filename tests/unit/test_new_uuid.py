"""entryUUIDs made for new entries (RFC 4530): random version 4 UUIDs (RFC 4122)."""

from __future__ import annotations

import uuid

from directory.operational import new_uuid


def test_new_uuids_are_random_version_4_uuids_in_their_string_form() -> None:
    made = [new_uuid() for _ in range(2000)]
    for value in made:
        parsed = uuid.UUID(value.decode())
        assert (parsed.version, parsed.variant) == (4, uuid.RFC_4122)
        assert str(parsed).encode() == value
    assert len(set(made)) == len(made)
