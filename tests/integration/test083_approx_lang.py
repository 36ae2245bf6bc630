"""Scenario 083: approximate matching and language ranges, as slapd answers.

- `~=` on string attributes matches by sound, word by word, in order
  (slapd's metaphone): `(cn~=Alise Archer)` finds Alice Archer; on other
  attributes it is equality (RFC 4511 §4.5.1.7.6 leaves the rule to the
  server). The expected answers are slapd 2.5's for the same entries.
- A language range (RFC 3866 §3.1) in an attribute list or a filter names
  the values whose tag it covers: `description;lang-en-` covers `lang-en`
  and `lang-en-us`, `description;lang-` every tagged value and no untagged
  one; `description;lang-en` names `lang-en` alone. Compare takes a range
  too; add and modify refuse one (undefinedAttributeType, as slapd).
"""

from __future__ import annotations

import pytest

from tests.integration.conftest import Server
from tests.integration.ldif_compare import parse

SUFFIX = "dc=example,dc=com"
ALICE = f"cn=Alice Archer,{SUFFIX}"
BOB = f"cn=Bob Brown,{SUFFIX}"

ENTRIES = f"""\
dn: {ALICE}
objectClass: inetOrgPerson
cn: Alice Archer
sn: Archer
mail: alice@example.com
employeeNumber: 1234
telephoneNumber: +1 555 0100
description;lang-en: English
description;lang-en-us: American
description;lang-fr: French
description: untagged

dn: {BOB}
objectClass: inetOrgPerson
cn: Bob Brown
sn: Brown
mail: bob@example.com
description: plain
""".encode()


@pytest.fixture(scope="module")
def loaded(server: Server) -> Server:
    added = server.tool("ldapadd", input=ENTRIES)
    assert added.returncode == 0, added.stderr.decode()
    return server


def found(server: Server, search_filter: str, *attributes: str) -> str:
    result = server.tool("ldapsearch", "-LLL", "-b", SUFFIX, "-s", "sub", search_filter,
                         *(attributes or ("1.1",)), bind=False)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


def names(ldif: str) -> set[str]:
    return {record.dn for record in parse(ldif)}


APPROX = [
    # (filter, the entries slapd 2.5 returns)
    ("(cn~=Alise Archer)", {ALICE}),
    ("(cn~=alice arsher)", {ALICE}),
    ("(cn~=Archer)", {ALICE}),
    ("(cn~=Archer Alice)", set()),
    ("(cn~=Bob Brawn)", {BOB}),
    ("(cn~=Bobb Brown)", set()),  # slapd keeps a B only last: Bobb has no code
    ("(name~=Arsher)", {ALICE}),
    ("(sn~=Brawn)", {BOB}),
    ("(mail~=alise@example.com)", {ALICE}),
    ("(cn~=Carol)", set()),
    # A directory string of digits has words without letters, hence without
    # codes: slapd finds 1234 for 1235.
    ("(employeeNumber~=1235)", {ALICE}),
    # telephoneNumberMatch has no approximate rule: equality.
    ("(telephoneNumber~=+15550100)", {ALICE}),
    ("(telephoneNumber~=+15550101)", set()),
    ("(!(cn~=Alise))", {SUFFIX, BOB}),
]


@pytest.mark.parametrize("search_filter, expected", APPROX, ids=[a[0] for a in APPROX])
def test_approximate(loaded: Server, search_filter: str, expected: set[str]) -> None:
    assert names(found(loaded, search_filter)) == expected


SELECTIONS = [
    # (description asked for, the values slapd 2.5 returns of Alice's entry)
    ("description;lang-en-", {("description;lang-en", "English"),
                              ("description;lang-en-us", "American")}),
    ("description;lang-", {("description;lang-en", "English"),
                           ("description;lang-en-us", "American"),
                           ("description;lang-fr", "French")}),
    ("description;lang-en", {("description;lang-en", "English")}),
    ("description;lang-fr", {("description;lang-fr", "French")}),
    ("description;lang-de-", set()),
    ("name;lang-en-", set()),
]


def values(ldif: str) -> set[tuple[str, str]]:
    (record,) = parse(ldif)
    return set(record.attributes)


@pytest.mark.parametrize("description, expected", SELECTIONS, ids=[s[0] for s in SELECTIONS])
def test_range_in_attribute_list(loaded: Server, description: str,
                                 expected: set[tuple[str, str]]) -> None:
    assert values(found(loaded, "(cn=Alice Archer)", description)) == expected


def test_tagged_description_returns_nothing_of_untagged_values(loaded: Server) -> None:
    assert values(found(loaded, "(cn=Bob Brown)", "description;lang-en-")) == set()


RANGE_FILTERS = [
    ("(description;lang-en-=American)", {ALICE}),
    ("(description;lang-en-=English)", {ALICE}),
    ("(description;lang-en-=French)", set()),
    ("(description;lang-=French)", {ALICE}),
    ("(description;lang-=untagged)", set()),
    ("(description;lang-=plain)", set()),
    ("(description;lang-en-=*)", {ALICE}),
    ("(description;lang-en-=Eng*)", {ALICE}),
    ("(description;lang-en-~=Amerikan)", {ALICE}),
]


@pytest.mark.parametrize("search_filter, expected", RANGE_FILTERS,
                         ids=[r[0] for r in RANGE_FILTERS])
def test_range_in_filter(loaded: Server, search_filter: str, expected: set[str]) -> None:
    assert names(found(loaded, search_filter)) == expected


def test_compare_with_a_range(loaded: Server) -> None:
    result = loaded.tool("ldapcompare", ALICE, "description;lang-en-:American")
    assert result.returncode == 6, result.stderr.decode()


def test_a_range_cannot_hold_values(loaded: Server) -> None:
    change = f"dn: {BOB}\nchangetype: modify\nadd: description;lang-en-\n" \
             "description;lang-en-: x\n"
    result = loaded.tool("ldapmodify", input=change.encode())
    assert result.returncode == 17, result.stderr.decode()


# OpenLDAP's tests/scripts/test013-language, replayed: its entry
# (tests/data/test-lang.ldif) below the suffix rather than as the suffix,
# and the four searches' answers as tests/data/lang-out.ldif has them, but
# for `objectClass: top`, which certdir stores with every entry's classes
# (their superclass, RFC 4512 §2.4.1) and slapd does not.
LANGUAGE = f"o=lang,{SUFFIX}"
LANGUAGE_ENTRY = f"""\
dn: {LANGUAGE}
objectClass: organization
objectClass: extensibleObject
o: lang
o;lang-zz;lang-y;lang-yy;lang-xx;lang-x;lang-z: Example, Inc.
name;lang-en-US: Billy Ray
name;lang-en-US: Billy Bob
CN;lang-en-US: Billy Ray
name: Billy Ray
SN;lang-en-US;lang-en-GB: Billy Ray
SN: Ray
""".encode()
TAGGED = {("name;lang-en-us", "Billy Ray"), ("name;lang-en-us", "Billy Bob"),
          ("cn;lang-en-us", "Billy Ray"), ("sn;lang-en-gb;lang-en-us", "Billy Ray")}
USER = {("o", "lang"), ("o;lang-x;lang-xx;lang-y;lang-yy;lang-z;lang-zz", "Example, Inc."),
        ("name", "Billy Ray"), ("sn", "Ray"), *TAGGED}
TEST013 = [
    # (attributes asked for, lang-out.ldif's answer)
    ((), USER | {("objectclass", "organization"), ("objectclass", "extensibleObject"),
                 ("objectclass", "top")}),
    (("name",), USER),
    (("name;lang-en-US",), TAGGED),
    (("name;lang-en-",), TAGGED),
]


@pytest.fixture(scope="module")
def language(loaded: Server) -> Server:
    added = loaded.tool("ldapadd", input=LANGUAGE_ENTRY)
    assert added.returncode == 0, added.stderr.decode()
    return loaded


@pytest.mark.parametrize("attributes, expected", TEST013, ids=["all", "name", "tag", "range"])
def test_openldap_test013_language(language: Server, attributes: tuple[str, ...],
                                   expected: set[tuple[str, str]]) -> None:
    result = language.tool("ldapsearch", "-LLL", "-b", LANGUAGE, "-s", "base", "(&)",
                           *attributes, bind=False)
    assert result.returncode == 0, result.stderr.decode()
    assert values(result.stdout.decode()) == expected
