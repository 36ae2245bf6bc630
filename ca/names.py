"""A CA's name, as `ca.name` spells it in certdir.yaml.

- RFC 4514 string form (`cn=Example Root CA,o=Example`), attribute types
  matched without regard to case as LDAP does (RFC 4512 §2.5).
- Only the RFC 4514 §3 types and the few RFC 5280 names a CA carries are
  known; any other type is an error naming the ones that are.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.x509.oid import NameOID

from ca.errors import CAError

_NAME_OIDS = {name.lower(): oid for name, oid in (
    ("CN", NameOID.COMMON_NAME), ("O", NameOID.ORGANIZATION_NAME),
    ("OU", NameOID.ORGANIZATIONAL_UNIT_NAME), ("C", NameOID.COUNTRY_NAME),
    ("L", NameOID.LOCALITY_NAME), ("ST", NameOID.STATE_OR_PROVINCE_NAME),
    ("STREET", NameOID.STREET_ADDRESS), ("DC", NameOID.DOMAIN_COMPONENT),
    ("UID", NameOID.USER_ID), ("serialNumber", NameOID.SERIAL_NUMBER),
    ("emailAddress", NameOID.EMAIL_ADDRESS))}


def ca_subject(text: str) -> x509.Name:
    """A CA name from its RFC 4514 string, e.g. `cn=Example Root CA,o=Example`."""
    try:
        return x509.Name.from_rfc4514_string(text, _NAME_OIDS)
    except ValueError:
        raise CAError(f"ca.name: {text!r} is not a distinguished name with known "
                      "attribute types (" + ", ".join(sorted(_NAME_OIDS)) + ")") from None
