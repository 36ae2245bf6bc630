"""The root DSE (RFC 4512 §5.1) and the subschema subentry (RFC 4512 §4.2).

- The root DSE lists exactly what the server supports: its naming
  context, LDAPv3, the controls of the control registry, the extended
  operations of the extended-operation table, the features of RFC 3674
  it implements, SASL EXTERNAL when TLS can carry client certificates
  (RFC 4513 §5.2.3), and where the subschema is.
- The subschema subentry holds the schema in RFC 4512 §4.1 form, so
  browsers such as Apache Directory Studio and ldap3 can load it.
"""

from __future__ import annotations

from directory.dsa import DSA
from directory.entry import Entry
from directory.ops.extended import EXTENDED
from directory.ops.sasl_external import MECHANISM
from directory.protocol.controls import CONTROLS
from directory.protocol.dn import DN

VENDOR = "certdir"
VERSION = "0.1.0"

FEATURES = (
    "1.3.6.1.1.14",  # Modify-Increment, RFC 4525
    "1.3.6.1.4.1.4203.1.5.1",  # all operational attributes "+", RFC 3673
    "1.3.6.1.4.1.4203.1.5.3",  # absolute true and false filters, RFC 4526
)


def sasl_mechanisms(dsa: DSA) -> tuple[bytes, ...]:
    """EXTERNAL when it is on and a TLS session can hold a client certificate."""
    if dsa.config.sasl.external and dsa.client_cas:
        return (MECHANISM.encode(),)
    return ()


def root_dse(dsa: DSA) -> Entry:
    values: dict[str, tuple[bytes, ...]] = {
        "objectclass": (b"top", b"extensibleObject"),
        "namingcontexts": (str(dsa.suffix).encode(),),
        "subschemasubentry": (str(dsa.subschema_dn).encode(),),
        "supportedldapversion": (b"3",),
        "supportedcontrol": tuple(oid.encode() for oid in sorted(CONTROLS)),
        "supportedextension": tuple(oid.encode()
                                    for oid in sorted({*EXTENDED, *dsa.extensions})),
        "supportedfeatures": tuple(f.encode() for f in FEATURES),
        "supportedsaslmechanisms": sasl_mechanisms(dsa),
        "vendorname": (VENDOR.encode(),),
        "vendorversion": (VERSION.encode(),),
    }
    if dsa.config.default_referrals:
        values["ref"] = tuple(r.encode() for r in dsa.config.default_referrals)
    return Entry(DN.ROOT, {k: v for k, v in values.items() if v})


def subschema(dsa: DSA) -> Entry:
    values = {"objectclass": (b"top", b"subschema", b"extensibleObject"), "cn": (b"Subschema",)}
    for name, items in dsa.schema.subschema().items():
        values[name.lower()] = tuple(items)
    return Entry(dsa.subschema_dn, values)
