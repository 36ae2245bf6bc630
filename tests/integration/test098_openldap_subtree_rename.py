"""Scenario 098: OpenLDAP's tests/scripts/test040-subtree-rename, replayed.

Every command of the script runs, with its arguments and its LDIF, against
certdir and against a slapd (2.5, back-mdb) configured as the script's
slapd.conf (its schema files and indexes) and started empty: the ldapadd -v
of five entries (tests/data/integration/098_tree.ldif, the suffix entry
among them), three renames by ldapmodify -v (a child, its parent, then the
child under another parent, keeping the old RDN values) and a subtree
search of everything after each. Each step must answer alike: the same
result code, the same lines from the tools that write (the URI aside), the
same entries from the searches (tests/integration/ldif_compare.py).

- A Modify DN of an entry with children moves the whole subtree: the
  children's DNs follow their parent's (RFC 4511 §4.9), with newSuperior
  as with a new RDN alone.
- With deleteoldrdn 0 the old RDN value stays in the entry beside the new
  one (RFC 4511 §4.9).

`certdir init` writes the suffix entry; it is deleted before the replay, so
that the script's ldapadd adds it, as on slapd. One difference RFC 4512
§2.4.1 requires: certdir adds `top`, the superclass of every class, to the
entries' objectClass values, which slapd does not store; the comparison
adds it to slapd's answers.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.conftest import SUFFIX, make_server
from tests.integration.ldif_compare import normalise
from tests.integration.slapd import ROOT_PW, start_slapd

DATA = Path(__file__).parents[1] / "data" / "integration"
SCHEMAS = ("core", "cosine", "inetorgperson", "openldap", "nis")
TEST_SCHEMA = DATA / "093_test.schema"
INDEXES = "index objectClass eq\nindex cn,sn,uid pres,eq,sub\n"
SUPERCLASSES = {"organization": ("top",), "dcobject": ("top",),
                "organizationalunit": ("top",)}

PASS1 = f"""dn: ou=Child,ou=Parent,{SUFFIX}
changetype: modrdn
newrdn: ou=Renamed child
deleteoldrdn: 0
"""
PASS2 = f"""dn: ou=Parent,{SUFFIX}
changetype: modrdn
newrdn: ou=Renamed parent
deleteoldrdn: 0
"""
PASS3 = f"""dn: ou=Renamed child,ou=Renamed parent,{SUFFIX}
changetype: modrdn
newrdn: ou=Renamed child
deleteoldrdn: 0
newsuperior: ou=Another parent,{SUFFIX}
"""
SEARCH = ("ldapsearch", ("-S", "", "-b", SUFFIX, "(objectClass=*)"), "")
# The script's commands in order: (tool, arguments, standard input).
SCRIPT = [
    ("ldapadd", ("-v",), (DATA / "098_tree.ldif").read_text()), SEARCH,
    ("ldapmodify", ("-v",), PASS1), SEARCH,
    ("ldapmodify", ("-v",), PASS2), SEARCH,
    ("ldapmodify", ("-v",), PASS3), SEARCH,
]
NAMES = ["add", "search after add", "rename child", "search after PASS1",
         "rename parent", "search after PASS2", "move child", "search after PASS3"]


@dataclass(frozen=True)
class Step:
    """What one command of the script answered: exit status (the result
    code) and its output, normalised."""

    code: int
    output: str


def replay(uri: str, root_dn: str, password: str) -> list[Step]:
    """The script against the server at `uri`: writes bound as the root DN
    (the script's MANAGERDN), searches anonymous."""
    steps = []
    for tool, args, ldif in SCRIPT:
        auth = ("-D", root_dn, "-w", password) if tool != "ldapsearch" else ()
        done = subprocess.run([tool, "-x", "-H", uri, *auth, *args], input=ldif.encode(),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=60, check=False)
        text = done.stdout.decode()
        output = (normalise(text, superclasses=SUPERCLASSES) if tool == "ldapsearch"
                  else text.replace(uri, "<uri>"))
        steps.append(Step(done.returncode, output))
    return steps


@pytest.fixture(scope="module")
def certdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Step]]:
    server = make_server(tmp_path_factory.mktemp("certdir-subtree-rename"), "--no-ca")
    server.configure("schema", paths=[*(f"/etc/ldap/schema/{name}.schema" for name in SCHEMAS),
                                      str(TEST_SCHEMA)])
    server.start()
    emptied = server.tool("ldapdelete", SUFFIX)
    assert emptied.returncode == 0, emptied.stderr
    yield replay(server.uri, server.root_dn, server.root_password)
    log = server.stop()
    assert "Traceback" not in log, log


@pytest.fixture(scope="module")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Step]]:
    server = start_slapd(tmp_path_factory.mktemp("slapd-subtree-rename"), SUFFIX,
                         schemas=SCHEMAS, global_lines=f"include {TEST_SCHEMA}",
                         database_lines=INDEXES)
    yield replay(server.uri, server.root_dn, ROOT_PW)
    server.stop()


@pytest.mark.parametrize("step", range(len(SCRIPT)), ids=NAMES)
def test_same_answer_as_slapd(certdir: list[Step], slapd: list[Step], step: int) -> None:
    assert certdir[step] == slapd[step]


def test_every_step_succeeds(certdir: list[Step]) -> None:
    assert [step.code for step in certdir] == [0] * len(SCRIPT)


def test_the_grandchild_followed_its_parent(certdir: list[Step]) -> None:
    final = certdir[-1].output
    assert f"dn: ou=Grandchild,ou=Renamed child,ou=Another parent,{SUFFIX}" in final
    assert "ou=Parent," not in final
