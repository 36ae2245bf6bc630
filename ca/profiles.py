"""Certificate profiles: data from the `ca.profiles` config, validated at load.

- Built-in profiles (`BUILTIN`): smime-user, smime-signing, smime-encryption,
  tls-server, tls-client, sub-ca, ocsp-signing. The YAML value maps profile
  names to fields; a built-in name overrides only the fields given, a new name
  must give every required field (`_REQUIRED`).
- Key usages are `x509.KeyUsage` field names (RFC 5280 §4.2.1.3); extended key
  usages are names from `EXTENDED_KEY_USAGES` (RFC 5280 §4.2.1.12, RFC 6960
  §4.2.2.2); SAN sources are "mail" (rfc822Name from the entry's `mail`),
  "dns" (dNSName from the request) and "ip" (iPAddress from the request).
- A profile lists usages for every key family it allows; the builder keeps
  the ones the subject's key can perform (keyEncipherment for RSA,
  keyAgreement for ECDSA, neither for Ed25519).
- The subject comes from a template in `SUBJECT_TEMPLATES` (see
  `ca.builder`): "mailbox", "individual", "dns" or "request".
- Validity limits: S/MIME at most 825 days (S/MIME BR §6.3.2), TLS server at
  most 398 days (CA/Browser Forum BR §6.3.2).
- An S/MIME profile names a CA/Browser Forum S/MIME policy OID
  (2.23.140.1.5.*, S/MIME BR §7.1.6.1) and emailProtection only.
- A path length is only meaningful on a CA profile (RFC 5280 §4.2.1.9).
- `freshest_crl` (true or false) puts a Freshest CRL extension naming the
  issuer's delta CRL (RFC 5280 §4.2.1.15) in the certificate. On for the
  S/MIME profiles (S/MIME BR §7.1.2.4 allows data beyond §7.1.2.3 for a
  reason: a mail client learns of a revocation within the delta CRL's
  hours, not the full CRL's; pkilint's S/MIME linter reports nothing) and
  tls-client (not under the TLS BR). Off for tls-server and sub-ca (the TLS
  BR §7.1.2.7.6 and §7.1.2.6.1 do not list it: pkilint warns
  `unknown_extension_present`; a sub-CA's delta would come from a parent
  that is often offline) and ocsp-signing (never checked for revocation,
  RFC 6960 §4.2.2.2.1).
- Every error is a CAError naming the offending key, e.g.
  "ca.profiles.smime-user.validity_days: expected a positive integer, got 'x'".
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from ca import keys
from ca.errors import CAError

KEY_USAGES = frozenset(
    {
        "digital_signature",
        "content_commitment",
        "key_encipherment",
        "data_encipherment",
        "key_agreement",
        "key_cert_sign",
        "crl_sign",
    }
)

EXTENDED_KEY_USAGES: Mapping[str, x509.ObjectIdentifier] = {
    "serverAuth": ExtendedKeyUsageOID.SERVER_AUTH,
    "clientAuth": ExtendedKeyUsageOID.CLIENT_AUTH,
    "emailProtection": ExtendedKeyUsageOID.EMAIL_PROTECTION,
    "codeSigning": ExtendedKeyUsageOID.CODE_SIGNING,
    "timeStamping": ExtendedKeyUsageOID.TIME_STAMPING,
    "OCSPSigning": ExtendedKeyUsageOID.OCSP_SIGNING,
}

SAN_SOURCES = frozenset({"mail", "dns", "ip"})
SUBJECT_TEMPLATES = frozenset({"mailbox", "individual", "dns", "request"})
PUBLISH_ATTRIBUTES = frozenset({"userCertificate;binary", "userSMIMECertificate"})

SMIME_POLICY_ARC = "2.23.140.1.5."
SMIME_MAILBOX_STRICT = "2.23.140.1.5.1.3"
SMIME_INDIVIDUAL_STRICT = "2.23.140.1.5.4.3"
SMIME_MAX_DAYS = 825
TLS_SERVER_MAX_DAYS = 398


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    key_usage: frozenset[str]
    extended_key_usage: tuple[str, ...]
    san: tuple[str, ...]
    validity_days: int
    key_types: frozenset[str]
    ca: bool = False
    path_length: int | None = None
    publish: tuple[str, ...] = ()
    smime: bool = False
    subject: str = "request"
    policies: tuple[str, ...] = ()
    freshest_crl: bool = False


_ALL_KEYS = frozenset(keys.KEY_TYPES)
_SIGNING_KEYS = _ALL_KEYS
_ENCRYPTION_KEYS = _ALL_KEYS - {"ed25519"}
_SMIME_PUBLISH = ("userCertificate;binary", "userSMIMECertificate")


def _smime(name: str, usage: frozenset[str], key_types: frozenset[str]) -> Profile:
    return Profile(
        name=name,
        key_usage=usage,
        extended_key_usage=("emailProtection",),
        san=("mail",),
        validity_days=730,
        key_types=key_types,
        publish=_SMIME_PUBLISH,
        smime=True,
        subject="mailbox",
        policies=(SMIME_MAILBOX_STRICT,),
        freshest_crl=True,
    )


BUILTIN: Mapping[str, Profile] = {
    p.name: p
    for p in (
        _smime(
            "smime-user",
            frozenset({"digital_signature", "key_encipherment", "key_agreement"}),
            _ALL_KEYS,
        ),
        _smime("smime-signing", frozenset({"digital_signature"}), _SIGNING_KEYS),
        _smime(
            "smime-encryption", frozenset({"key_encipherment", "key_agreement"}), _ENCRYPTION_KEYS
        ),
        Profile(
            name="tls-server",
            key_usage=frozenset({"digital_signature", "key_encipherment"}),
            extended_key_usage=("serverAuth",),
            san=("dns", "ip"),
            validity_days=397,
            key_types=_ALL_KEYS,
            subject="dns",
        ),
        Profile(
            name="tls-client",
            key_usage=frozenset({"digital_signature"}),
            extended_key_usage=("clientAuth",),
            san=("dns",),
            validity_days=397,
            key_types=_ALL_KEYS,
            subject="dns",
            freshest_crl=True,
        ),
        Profile(
            name="sub-ca",
            key_usage=frozenset({"digital_signature", "key_cert_sign", "crl_sign"}),
            extended_key_usage=(),
            san=(),
            validity_days=5 * 365,
            key_types=_ALL_KEYS,
            ca=True,
            path_length=0,
            subject="request",
        ),
        Profile(
            name="ocsp-signing",
            key_usage=frozenset({"digital_signature"}),
            extended_key_usage=("OCSPSigning",),
            san=(),
            validity_days=90,
            key_types=_ALL_KEYS,
            subject="request",
        ),
    )
}

_FIELDS = frozenset(f.name for f in dataclasses.fields(Profile)) - {"name"}
_REQUIRED = ("key_usage", "extended_key_usage", "san", "validity_days", "key_types")


def _string_list(where: str, value: Any, known: frozenset[str] | None) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise CAError(f"{where}: expected a list of names, got {value!r}")
    for item in value:
        if not isinstance(item, str):
            raise CAError(f"{where}: expected a name, got {item!r}")
        if known is not None and item not in known:
            raise CAError(f"{where}: unknown name {item!r} (known: {', '.join(sorted(known))})")
    return tuple(value)


def _names(known: frozenset[str] | None) -> Callable[[str, Any], tuple[str, ...]]:
    return lambda where, value: _string_list(where, value, known)


def _name_set(known: frozenset[str]) -> Callable[[str, Any], frozenset[str]]:
    return lambda where, value: frozenset(_string_list(where, value, known))


def _positive_int(where: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise CAError(f"{where}: expected a positive integer, got {value!r}")
    return value


# 100 years: added to a certificate's notBefore it stays within X.509's calendar.
MAX_DAYS = 36_500


def _days(where: str, value: Any) -> int:
    days = _positive_int(where, value)
    if days > MAX_DAYS:
        raise CAError(f"{where}: at most {MAX_DAYS} days, got {days}")
    return days


def _path_length(where: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise CAError(f"{where}: expected a non-negative integer or null, got {value!r}")
    return value


def _boolean(where: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise CAError(f"{where}: expected true or false, got {value!r}")
    return value


def _subject(where: str, value: Any) -> str:
    if not isinstance(value, str) or value not in SUBJECT_TEMPLATES:
        raise CAError(
            f"{where}: unknown subject template {value!r} "
            f"(known: {', '.join(sorted(SUBJECT_TEMPLATES))})"
        )
    return str(value)


def _policies(where: str, value: Any) -> tuple[str, ...]:
    oids = _string_list(where, value, None)
    for oid in oids:
        try:
            x509.ObjectIdentifier(oid)
        except ValueError:
            raise CAError(f"{where}: {oid!r} is not a dotted OID") from None
    return oids


_PARSERS: Mapping[str, Callable[[str, Any], Any]] = {
    "key_usage": _name_set(KEY_USAGES),
    "extended_key_usage": _names(frozenset(EXTENDED_KEY_USAGES)),
    "san": _names(SAN_SOURCES),
    "validity_days": _days,
    "key_types": _name_set(_ALL_KEYS),
    "ca": _boolean,
    "path_length": _path_length,
    "publish": _names(PUBLISH_ATTRIBUTES),
    "smime": _boolean,
    "subject": _subject,
    "policies": _policies,
    "freshest_crl": _boolean,
}
assert frozenset(_PARSERS) == _FIELDS


def _check(where: str, p: Profile) -> None:
    """Rules across fields, each naming the field it blames."""
    if not p.key_types:
        raise CAError(f"{where}.key_types: at least one key type is needed")
    if not p.key_usage:
        raise CAError(f"{where}.key_usage: at least one key usage is needed")
    if p.path_length is not None and not p.ca:
        raise CAError(f"{where}.path_length: only a CA profile (ca: true) has a path length")
    if p.smime:
        if p.validity_days > SMIME_MAX_DAYS:
            raise CAError(
                f"{where}.validity_days: at most {SMIME_MAX_DAYS} days for S/MIME "
                f"(S/MIME BR §6.3.2), got {p.validity_days}"
            )
        if p.extended_key_usage != ("emailProtection",):
            raise CAError(f"{where}.extended_key_usage: S/MIME needs emailProtection only")
        if "mail" not in p.san:
            raise CAError(f"{where}.san: S/MIME needs the mail source")
        if not any(oid.startswith(SMIME_POLICY_ARC) for oid in p.policies):
            raise CAError(
                f"{where}.policies: S/MIME needs a CA/Browser Forum S/MIME policy OID "
                f"({SMIME_POLICY_ARC}*)"
            )
    if "serverAuth" in p.extended_key_usage and p.validity_days > TLS_SERVER_MAX_DAYS:
        raise CAError(
            f"{where}.validity_days: at most {TLS_SERVER_MAX_DAYS} days for TLS servers "
            f"(CA/Browser Forum BR §6.3.2), got {p.validity_days}"
        )


def _load_one(where: str, name: str, fields: Any) -> Profile:
    if not isinstance(fields, dict):
        raise CAError(f"{where}: expected a mapping of profile fields, got {fields!r}")
    values: dict[str, Any] = {}
    for key, value in fields.items():
        parse = _PARSERS.get(key)
        if parse is None:
            raise CAError(
                f"{where}.{key}: unknown field (known: {', '.join(sorted(_PARSERS))})"
            )
        values[key] = parse(f"{where}.{key}", value)
    base = BUILTIN.get(name)
    if base is None:
        missing = [key for key in _REQUIRED if key not in values]
        if missing:
            raise CAError(f"{where}: a new profile needs {', '.join(missing)}")
        result = Profile(name=name, **values)
    else:
        result = dataclasses.replace(base, **values)
    _check(where, result)
    return result


def load_profiles(data: Any, where: str = "ca.profiles") -> Mapping[str, Profile]:
    if data is None:
        return dict(BUILTIN)
    if not isinstance(data, dict):
        raise CAError(f"{where}: expected a mapping of profile names, got {data!r}")
    loaded = dict(BUILTIN)
    for name, fields in data.items():
        if not isinstance(name, str) or not name:
            raise CAError(f"{where}: profile names are strings, got {name!r}")
        loaded[name] = _load_one(f"{where}.{name}", name, fields)
    return loaded


def profile(profiles: Mapping[str, Profile], name: str) -> Profile:
    try:
        return profiles[name]
    except KeyError:
        raise CAError(f"unknown profile {name!r} (known: {', '.join(sorted(profiles))})") from None
