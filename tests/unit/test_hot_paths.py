"""Behaviour pins for code rewritten for speed (issue 11 part 4).

- `certdir ldif import` cuts the file where the first blank line after
  each piece's size starts, LF or CRLF, whichever comes first (the cuts
  the import made before it stopped scanning for CRLF past the first LF
  blank line).
"""

from __future__ import annotations

import mmap
from pathlib import Path

import pytest

from certdir import ldif_import

BOUNDARY_CASES = [
    # (description, file bytes, piece size, the pieces: each ends where a blank line starts)
    ("LF records", b"dn: a\n\ndn: b\n\ndn: c\n", 2,
     [b"dn: a\n", b"\ndn: b\n", b"\ndn: c\n"]),
    ("CRLF records", b"dn: a\r\n\r\ndn: b\r\n\r\ndn: c\r\n", 2,
     [b"dn: a\r\n", b"\r\ndn: b\r\n", b"\r\ndn: c\r\n"]),
    ("CRLF before LF", b"dn: a\r\n\r\ndn: b\n\ndn: c\n", 2,
     [b"dn: a\r\n", b"\r\ndn: b\n", b"\ndn: c\n"]),
    ("LF before CRLF", b"dn: a\n\ndn: b\r\n\r\ndn: c\n", 2,
     [b"dn: a\n", b"\ndn: b\r\n", b"\r\ndn: c\n"]),
    ("no blank line", b"dn: a\nsn: b\n", 2, [b"dn: a\nsn: b\n"]),
    ("one piece", b"dn: a\n\ndn: b\n", 1 << 20, [b"dn: a\n\ndn: b\n"]),
]


@pytest.mark.parametrize("why, data, size, pieces", BOUNDARY_CASES)
def test_ldif_pieces_end_at_blank_lines(why: str, data: bytes, size: int, pieces: list[bytes],
                                        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ldif_import, "PIECE_BYTES", size)
    path = tmp_path / "in.ldif"
    path.write_bytes(data)
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        found = [piece for _, piece in ldif_import._pieces(mapped)]
    assert found == pieces
