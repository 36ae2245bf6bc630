"""The URLs of referrals and continuation references (RFC 3296, RFC 4516).

- A `ref` value is a labeledURI (RFC 2079): a URI, optionally followed by
  whitespace and a label. Only the URI is returned, never the separator or
  the label (RFC 3296 §2.2); a value without a URI gives nothing.
- A URI that is not an LDAP URL (ldap, ldaps, ldapi) is returned as it is
  (RFC 3296 §5.4).
- A referral (the target of an operation, or the base of a search, is the
  referral object or lies below it, RFC 3296 §5.2, §5.3) names the target:
  the target's RDNs below the referral object go before the URL's DN, and a
  URL without a DN gets the target's.
- The default referral (a target outside every naming context, RFC 4511
  §4.1.10) names the target, whatever DN its URL holds, as slapd's does.
- A continuation reference (a referral object in a search's scope,
  RFC 3296 §5.4) keeps the URL's DN; a URL without one gets the referral
  object's.
- A search's referral (default or not) carries the search's scope (`base`,
  `one`, `sub`; `subordinate` for a children search, as slapd writes it),
  and its continuation references `base` for a one-level search and `sub`
  for a subtree or children one (RFC 3296 §5.3, §5.4, RFC 4511 §4.5.3). A
  scope the URL names already is kept, as slapd keeps it.
- Other operations' referrals carry no attribute list, scope or filter
  (RFC 3296 §5.2); extensions are kept.
- A URL's DN is read percent-decoded and written percent-encoded, `?` and
  spaces among the characters escaped (RFC 4516 §2.1).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from functools import lru_cache
from urllib.parse import quote, unquote

from directory.protocol.dn import DN
from directory.protocol.messages import Scope

LDAP_SCHEMES = frozenset({"ldap", "ldaps", "ldapi"})
# Characters a URL's DN keeps as they are, besides letters, digits and "_.-~".
DN_SAFE = ",=+;:@&$!*'()/"
# Where the scope and the extensions are among the fields after the DN
# (attributes, scope, filter, extensions).
SCOPE, EXTENSIONS = 1, 3

CACHED_REFERENCES = 256

REFERRAL_SCOPES: dict[Scope, str] = {
    Scope.BASE: "base", Scope.ONE: "one", Scope.SUB: "sub", Scope.CHILDREN: "subordinate",
}
# A base search reaches no referral object: its base would be one, and referred.
CONTINUATION_SCOPES: dict[Scope, str] = {
    Scope.ONE: "base", Scope.SUB: "sub", Scope.CHILDREN: "sub",
}


def referral(values: Iterable[bytes], referral_dn: DN, target: DN,
             scope: Scope | None) -> tuple[str, ...]:
    """The referral for `target`, at or below the referral object `referral_dn`;
    `scope` is the search's, None for any other operation."""
    below = ",".join(str(r) for r in target.rdns[: len(target) - len(referral_dn)])

    def aimed(dn: str) -> str:
        return ",".join(p for p in (below, dn) if p) if dn else str(target)

    return _aimed(_uris(values), aimed, _referral_scope(scope))


def superior(uris: Iterable[str], target: DN, scope: Scope | None) -> tuple[str, ...]:
    """The default referral for `target`, outside every naming context;
    `scope` is the search's, None for any other operation."""
    return _aimed(uris, lambda dn: str(target), _referral_scope(scope))


def continuation(values: tuple[bytes, ...], referral_dn: DN,
                 scope: Scope) -> tuple[str, ...]:
    """The continuation reference of the referral object `referral_dn` in a
    search of `scope`."""
    return _continuation(values, str(referral_dn), scope)


# Searches return the same few references again and again: their URLs are
# kept, keyed by stored values only (a referral object's), never by a request's.
@lru_cache(maxsize=CACHED_REFERENCES)
def _continuation(values: tuple[bytes, ...], referral_dn: str,
                  scope: Scope) -> tuple[str, ...]:
    return _aimed(_uris(values), lambda dn: dn or referral_dn, CONTINUATION_SCOPES[scope])


def _referral_scope(scope: Scope | None) -> str | None:
    return None if scope is None else REFERRAL_SCOPES[scope]


def _aimed(uris: Iterable[str], aimed: Callable[[str], str],
           scope: str | None) -> tuple[str, ...]:
    """The URIs, each LDAP URL's DN replaced by what `aimed` makes of it, with
    `scope` unless the URL names one (None: no attributes, scope or filter)."""
    urls = []
    for uri in uris:
        parts = _parts(uri)
        if parts is None:
            urls.append(uri)
            continue
        head, dn, fields = parts
        if scope is None:
            fields = ["", "", "", fields[EXTENSIONS]]
        elif not fields[SCOPE]:
            fields[SCOPE] = scope
        urls.append(_join(head, aimed(dn), fields))
    return tuple(urls)


def _uris(values: Iterable[bytes]) -> Iterator[str]:
    for value in values:
        words = value.split(None, 1)
        if words:
            yield words[0].decode("utf-8", "replace")


def _parts(uri: str) -> tuple[str, str, list[str]] | None:
    """An LDAP URL's scheme and host, its DN, and the fields after it (always
    four, empty when absent); None for any other URI."""
    scheme, sep, rest = uri.partition("://")
    if not sep or scheme.lower() not in LDAP_SCHEMES:
        return None
    host, _, path = rest.partition("/")
    dn, *fields = path.split("?", 4)
    return f"{scheme}://{host}", unquote(dn), (fields + [""] * 4)[:4]


def _join(head: str, dn: str, fields: list[str]) -> str:
    while fields and not fields[-1]:
        fields = fields[:-1]
    return f"{head}/{quote(dn, safe=DN_SAFE)}" + "".join(f"?{f}" for f in fields)
