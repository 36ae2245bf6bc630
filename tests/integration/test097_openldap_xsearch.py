"""Scenario 097: OpenLDAP's tests/scripts/test015-xsearch, replayed.

Every search of the script runs, with its base, scope, filter, attributes
and controls, anonymously against certdir and against a slapd (2.5,
back-mdb) configured as the script's slapd.conf (its schema files,
OpenLDAP's tests/data/test.schema among them, and indexes; no access
rules: everyone reads everything), both holding OpenLDAP's
tests/data/test-ordered.ldif (tests/data/integration/093_test_ordered.ldif).
Each must answer alike: the same result code and the same entries
(tests/integration/ldif_compare.py).

- Extensible matches (RFC 4511 §4.5.1.7.7): a rule on a type
  (`sn:caseExactMatch:=Jones`), a type alone (`sn:=jensen`), a rule and
  `:dn` without a type (the entry's DN values count), and `name:dn:=` on
  the root DSE.
- Approximate, OR with undefined parts (an unknown type, an empty cn, a
  substring that cannot match), AND with a trailing substring, NOT of a
  class the entries reach through their superclasses (pilotPerson).
- `userid` and `2.5.4.0` name uid and objectClass in the attribute list;
  ManageDsaIT with `-a never`.
- The matched values control (RFC 3876), critical, with equality and
  extensible filters, a substring filter on `o={*` and on the subschema
  entry's attributeTypes.
- A substring of postalAddress (RFC 4517 §3.3.28) finds `$`-separated
  lines.

The script loads slapd with slapadd; here both servers get the data by
ldapadd, so both store what an LDAP Add stores (slapd's slapadd keeps
objectClass values as written, its Add names them as the schema does).
`certdir init` writes the suffix entry; it is deleted first, so that the
ldapadd adds the file's own. Three differences:

- RFC 4512 §2.4.1: certdir adds every superclass of an entry's classes to
  its objectClass values, which slapd does not store; the comparison adds
  them to slapd's answers.
- userPassword values are compared by count only: certdir stores the clear
  passwords of the file as Argon2id hashes (docs/DESIGN.md: passwords are
  never stored clear), slapd as given.
- The subschema's definition of dc is certdir's built-in one, RFC 4519
  §2.4's, which has no DESC; core.schema repeats it with a DESC and the same
  meaning, and a repeated definition keeps the first (`directory.schema`).
  The attributeTypes values are compared without their DESC
  (RFC 4512 §4.1.2: a description is optional).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.conftest import SUFFIX, make_server
from tests.integration.ldif_compare import normalise, parse
from tests.integration.slapd import start_slapd

DATA = Path(__file__).parents[1] / "data" / "integration"
TREE = DATA / "093_test_ordered.ldif"
SCHEMAS = ("core", "cosine", "inetorgperson", "openldap", "nis")
TEST_SCHEMA = DATA / "093_test.schema"
INDEXES = "index objectClass eq\nindex cn,sn,uid pres,eq,sub\n"
READ_ALL = [{"to": {}, "by": [{"who": "*", "level": "read"}]}]
PERSON = ("pilotPerson", "inetOrgPerson", "organizationalPerson", "person", "top")
SUPERCLASSES = {"openldapperson": PERSON, "person": ("top",), "organization": ("top",),
                "dcobject": ("top",), "domainrelatedobject": ("top",),
                "organizationalunit": ("top",), "groupofnames": ("top",),
                "groupofuniquenames": ("top",), "extensibleobject": ("top",)}
DESC = re.compile(r" DESC '[^']*'")
DC = "(attributeTypes=0.9.2342.19200300.100.1.25)"
# The script's searches in order: ldapsearch's arguments after -H.
SEARCHES = [
    ("-S", "", "-b", SUFFIX, "(sn:=jensen)"),
    ("-S", "", "-b", SUFFIX, "(sn~=jensen)", "name"),
    ("-S", "", "-b", SUFFIX, "(|(givenName=XX*YY*Z)(cn=)(undef=*)(objectclass=groupofnames)"
     "(objectclass=groupofuniquenames)(sn:caseExactMatch:=Jones))"),
    ("-S", "", "-b", f"ou=groups,{SUFFIX}", "-s", "one",
     "(&(|(objectclass=groupofnames)(objectclass=groupofuniquenames))(cn=A*))"),
    ("-S", "", "-b", SUFFIX, "(!(objectclass=pilotPerson))"),
    ("-M", "-a", "never", "-S", "", "-b", SUFFIX,
     "(&(objectClass=inetorgperson)(userid=uham))", "2.5.4.0", "userid"),
    ("-S", "", "-b", SUFFIX, "(:dn:caseIgnoreIA5Match:=example)"),
    ("-S", "", "-b", SUFFIX, "(:dn:caseExactMatch:=Information Technology Division)"),
    ("-S", "", "-b", SUFFIX, "(:dn:caseIgnoreSubstringsMatch:=Information Technology Division)"),
    ("-S", "", "-b", "", "-s", "base", "(name:dn:=whatever)"),
    ("-S", "", "-b", SUFFIX, "-E", "!mv=(o=Example, Inc.)", "(o=Example, Inc.)"),
    ("-S", "", "-b", SUFFIX, "-E", "!mv=((o:caseExactMatch:=Example, Inc.)(dc=example))",
     "(dc=example)"),
    ("-S", "", "-b", SUFFIX, "-E", "!mv=((o={*)(dc=*))", "(dc=example)"),
    ("-S", "", "-b", "cn=Subschema", "-s", "base", "-E", f"!mv={DC}", DC, "attributeTypes"),
    ("-S", "", "-b", SUFFIX, "(postalAddress=*Anytown*)", "postalAddress"),
]
NAMES = ["exact", "approximate", "or", "and ends-with", "not", "inheritance",
         "dn caseIgnoreIA5Match", "dn caseExactMatch", "dn caseIgnoreSubstringsMatch",
         "name dn on root DSE", "mv equality", "mv extensible", "mv substring",
         "mv subschema", "list substring"]


@dataclass(frozen=True)
class Answer:
    """A search's exit status (its result code) and its entries, normalised."""

    code: int
    entries: str


def search(uri: str, args: tuple[str, ...]) -> Answer:
    done = subprocess.run(["ldapsearch", "-x", "-H", uri, *args], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=60, check=False)
    entries = normalise(done.stdout, mask=["userPassword"], superclasses=SUPERCLASSES)
    return Answer(done.returncode, DESC.sub("", entries) if DC in args else entries)


@pytest.fixture(scope="module")
def certdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = make_server(tmp_path_factory.mktemp("certdir-xsearch"), "--no-ca")
    server.configure("schema", paths=[*(f"/etc/ldap/schema/{name}.schema" for name in SCHEMAS),
                                      str(TEST_SCHEMA)])
    server.configure("access", rules=READ_ALL)
    server.start()
    emptied = server.tool("ldapdelete", SUFFIX)
    assert emptied.returncode == 0, emptied.stderr
    added = server.tool("ldapadd", "-f", str(TREE))
    assert added.returncode == 0, added.stderr
    yield server.uri
    log = server.stop()
    assert "Traceback" not in log, log


@pytest.fixture(scope="module")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = start_slapd(tmp_path_factory.mktemp("slapd-xsearch"), SUFFIX, schemas=SCHEMAS,
                         global_lines=f"include {TEST_SCHEMA}", database_lines=INDEXES)
    added = server.tool("ldapadd", "-f", str(TREE))
    assert added.returncode == 0, added.stderr
    yield server.uri
    server.stop()


@pytest.mark.parametrize("args", SEARCHES, ids=NAMES)
def test_same_answer_as_slapd(certdir: str, slapd: str, args: tuple[str, ...]) -> None:
    assert search(certdir, args) == search(slapd, args)


@pytest.mark.parametrize("args", SEARCHES, ids=NAMES)
def test_search_succeeds(certdir: str, args: tuple[str, ...]) -> None:
    assert search(certdir, args).code == 0


# How many entries slapd 2.5 returns to each search.
COUNTS = [2, 2, 4, 2, 9, 1, 19, 5, 0, 0, 1, 1, 1, 1, 11]


ITD_STAFF = f"cn=ITD Staff,ou=Groups,{SUFFIX}"


def test_dn_values_are_stored_as_slapd_stores_them(certdir: str) -> None:
    """The file's `OU=` comes back as the schema names the type (`directory.dn_values`)."""
    done = subprocess.run(["ldapsearch", "-x", "-H", certdir, "-b", ITD_STAFF, "-s", "base",
                           "(objectClass=*)", "uniqueMember"],
                          capture_output=True, timeout=60, check=True)
    (group,) = parse(done.stdout)
    assert f"cn=Bjorn Jensen,ou=Information Technology Division,ou=People,{SUFFIX}" in (
        group.values("uniqueMember"))


@pytest.mark.parametrize("args, count", list(zip(SEARCHES, COUNTS, strict=True)), ids=NAMES)
def test_entries_found(certdir: str, args: tuple[str, ...], count: int) -> None:
    assert len(parse(search(certdir, args).entries)) == count
