"""Values of DN syntax as certdir stores them: in the form slapd stores them.

- A value of DN syntax (RFC 4517 §3.3.9), or the DN of a Name And Optional
  UID value (§3.3.21, the `#'0101'B` after it kept as given), a client
  adds is stored with each attribute type by the first name the schema
  gives it (`OU=` and `organizationalUnitName=` become `ou=`, `userid=`
  and `0.9.2342.19200300.100.1.1=` become `uid=`) and with no spaces
  around `,`, `+` and `=`, as slapd's dnPretty writes it, so both return
  `member: cn=Bjorn Jensen,ou=Information Technology Division,...` for
  OpenLDAP's test data (tests/integration/test093_openldap_search.py).
- AVA values are escaped as slapd escapes them, within RFC 4514 §2.4: each
  of `"\\=+,;<>`, NUL, a leading and a trailing space as a backslash and
  two upper-case hex digits (`cn=c\\2Cm`), anything else (UTF-8 too) as it
  is. A DN with an AVA whose value starts with `#` (given in `#hex` form,
  or escaped), or a value that does not parse as a DN, is kept as given
  (schema checking refuses the latter).
- Matching is unaffected: DN values compare by distinguishedNameMatch,
  which normalises both sides alike.
"""

from __future__ import annotations

import re

from directory.protocol.dn import DN
from directory.protocol.results import LDAPError
from directory.schema import AttributeType, Schema

DN_SYNTAX = "1.3.6.1.4.1.1466.115.121.1.12"
NAME_AND_OPTIONAL_UID = "1.3.6.1.4.1.1466.115.121.1.34"
_OPTIONAL_UID = re.compile(rb"#'[01]*'B\Z")
_ESCAPED = re.compile(r'["\\=+,;<>\x00]|^ | $')


def stored_value(schema: Schema, at: AttributeType, value: bytes) -> bytes:
    """`value` of `at` as certdir keeps it (see the module docstring)."""
    if at.syntax == DN_SYNTAX:
        return _pretty(schema, value)
    if at.syntax == NAME_AND_OPTIONAL_UID:
        uid = _OPTIONAL_UID.search(value)
        if uid is None:
            return _pretty(schema, value)
        return _pretty(schema, value[:uid.start()]) + uid.group()
    return value


def _pretty(schema: Schema, value: bytes) -> bytes:
    try:
        dn = DN.parse(value.decode(), schema)
    except (UnicodeDecodeError, LDAPError):
        return value
    avas = [ava for rdn in dn.rdns for ava in rdn.avas]
    if any(ava.value.startswith("#") for ava in avas):
        return value
    return ",".join(
        "+".join(f"{schema.attribute(ava.key).name}={_escape(ava.value)}" for ava in rdn.avas)
        for rdn in dn.rdns).encode()


def _escape(value: str) -> str:
    return _ESCAPED.sub(lambda special: f"\\{ord(special.group()):02X}", value)
