"""One input, one documented outcome: the checks the fuzz targets run (run.py)
and the regression cases replay (tests/unit/test_fuzz_regressions.py).

Each check feeds the bytes to one parser. The parser either returns a value
or raises the one error type its module documents; where the module
promises a round trip, the value survives it. Anything else — another
exception, a failed assertion — is a finding.

- ber: `LDAPConnection.receive_data` then `requests()`; ProtocolError. Every
  request decoded re-encodes to a PDU that decodes to the same request.
- dn: `DN.parse` of the UTF-8 text; LDAPError(invalidDNSyntax). The string
  form of the DN parses to an equal DN with the same string form.
- filter: `filter.parse` of the UTF-8 text; FilterSyntaxError. The RFC 4515
  form parses back to the same filter, and so does its BER encoding.
- ldif: `ldif.parse_bytes` with no base directory; LDIFError. (`attr:<`
  URLs are left out: reading any file is what they are for.) Every content
  record written with `write_entry` parses back to the same record.
- schema: `Schema.load` of the bytes as a schema file; SchemaError.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from directory import ldif
from directory.protocol import filter as filters
from directory.protocol.ber import read_tlv
from directory.protocol.codec import REQUEST_DECODERS, LDAPConnection, decode, encode
from directory.protocol.dn import DN
from directory.protocol.results import LDAPError, ProtocolError, ResultCode
from directory.schema import Schema
from directory.schema_files import SchemaError


def _text(data: bytes) -> str | None:
    """The UTF-8 text the protocol would hand a parser, or None (the codec
    refuses other strings before any parser sees them)."""
    try:
        return data.decode()
    except UnicodeDecodeError:
        return None


def ber(data: bytes) -> None:
    connection = LDAPConnection()
    connection.receive_data(data)
    try:
        messages = list(connection.requests())
    except ProtocolError:
        return
    for message in messages:
        assert decode(encode(message), connection.limits, REQUEST_DECODERS) == message


def dn(data: bytes) -> None:
    text = _text(data)
    if text is None:
        return
    try:
        parsed = DN.parse(text)
    except LDAPError as e:
        assert e.code is ResultCode.INVALID_DN_SYNTAX, e
        return
    again = DN.parse(str(parsed))
    assert (again, str(again)) == (parsed, str(parsed))


def filter_string(data: bytes) -> None:
    text = _text(data)
    if text is None:
        return
    try:
        parsed = filters.parse(text)
    except filters.FilterSyntaxError:
        return
    assert filters.parse(filters.format(parsed)) == parsed
    encoded = filters.to_ber(parsed)
    tag, start, end = read_tlv(encoded, 0, len(encoded))
    assert filters.from_ber(encoded, start, end, tag, 0, filters.FilterLimits()) == parsed


def ldif_records(data: bytes) -> None:
    if b":<" in data:
        return
    try:
        records = ldif.parse_bytes(data)
    except ldif.LDIFError:
        return
    for record in records:
        if record.changetype is None and record.attributes:
            written = ldif.write_entry(record.dn, record.attributes)
            (again,) = ldif.parse_bytes(written)
            assert (again.dn, again.attributes) == (record.dn, record.attributes)


def schema_file(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.schema"
        path.write_bytes(data)
        try:
            Schema.load([path])
        except SchemaError:
            return


TARGETS: dict[str, Callable[[bytes], None]] = {
    "ber": ber, "dn": dn, "filter": filter_string, "ldif": ldif_records, "schema": schema_file,
}
