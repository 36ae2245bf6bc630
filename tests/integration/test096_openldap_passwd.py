"""Scenario 096: OpenLDAP's tests/scripts/test010-passwd, replayed.

Every command of the script runs, with its arguments, against certdir and
against a slapd (2.5, back-mdb) configured as the script's slapd-pw.conf
(its schema files and access rules: userPassword `by anonymous auth by self
write`, everything else `by self write by * read`) and started empty: the
ldapadd of tests/data/integration/096_passwd.ldif (the suffix entry and
five people whose userPassword is `{MD5}`, clear, `{SHA}`, clear and
`{ARGON2}`), a search of everything as the root DN, three Password Modify
requests (RFC 3062) that must fail, four that change a password (by its
owner, or by the root DN for another entry), four that let the server
generate one, and the search of everything again. Each step must answer
alike: the same exit status, the same result code (ldappasswd prints it),
the same entries (tests/integration/ldif_compare.py).

- A bind checks a password stored in OpenLDAP's `{MD5}`, `{SHA}` (and,
  after the clear ones are hashed, certdir's own) scheme.
- An empty oldPasswd, an empty newPasswd and a wrong oldPasswd are each
  unwillingToPerform (53), as slapd answers; the text after it is not
  compared (RFC 4511 §4.1.9: diagnosticMessage is not standardised).
- A Password Modify without newPasswd returns a generated password
  (RFC 3062 §2), and the entry's owner binds with it.
- objectClass values come back as the schema names the classes
  (`dcobject` added is `dcObject`), as slapd stores them.

`certdir init` writes the suffix entry; it is deleted before the replay, so
that the script's ldapadd adds it, as on slapd. Two differences:

- RFC 4512 §2.4.1: certdir adds `top`, the superclass of every class, to
  the entries' objectClass values, which slapd does not store; the
  comparison adds it to slapd's answers.
- userPassword values are compared by count only: certdir stores every
  password a client sends in clear, and every one it sets, as an Argon2id
  hash (docs/DESIGN.md: passwords are never stored clear; slapd keeps a
  clear value as given and hashes Password Modify's with `{SSHA}`).
  Hashes the root DN adds are kept as given, as on slapd.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.conftest import SUFFIX, make_server
from tests.integration.ldif_compare import by_dn, normalise
from tests.integration.slapd import ROOT_PW, start_slapd

DATA = Path(__file__).parents[1] / "data" / "integration"
SCHEMAS = ("core", "cosine", "inetorgperson", "openldap", "nis")
ACCESS = """\
access to attrs=userpassword
    by anonymous auth
    by self write
access to *
    by self write
    by * read
"""
RULES = [
    {"to": {"attrs": ["userPassword"]},
     "by": [{"who": "anonymous", "level": "auth"}, {"who": "self", "level": "write"}]},
    {"to": {}, "by": [{"who": "self", "level": "write"}, {"who": "*", "level": "read"}]},
]
SUPERCLASSES = {"organization": ("top",), "dcobject": ("top",), "person": ("top",)}
ROOT = "<root>"  # stands for the server's root password
PEOPLE = ("md5", "smd5", "sha", "ssha")


def person(cn: str) -> str:
    return f"cn={cn}, {SUFFIX}"


SEARCH = ("ldapsearch", "-D", "cn=admin," + SUFFIX, "-w", ROOT, "-b", SUFFIX, "objectclass=*")
# The script's commands in order, its MANAGERDN being the root DN.
SCRIPT = [
    ("ldapadd", "-D", "cn=admin," + SUFFIX, "-w", ROOT, "-f", str(DATA / "096_passwd.ldif")),
    SEARCH,
    ("ldappasswd", "-w", "secret", "-a", "", "-s", "newsecret", "-D", person("md5")),
    ("ldappasswd", "-w", "secret", "-a", "oldsecret", "-s", "", "-D", person("md5")),
    ("ldappasswd", "-w", "secret", "-a", "oldsecret", "-s", "newsecret", "-D", person("md5")),
    ("ldappasswd", "-w", "secret", "-s", "newsecret", "-D", person("md5")),
    ("ldappasswd", "-w", ROOT, "-s", "newsecret", "-D", "cn=admin," + SUFFIX, person("smd5")),
    ("ldappasswd", "-w", "secret", "-s", "newsecret", "-D", person("sha")),
    ("ldappasswd", "-w", "secret", "-s", "newsecret", "-D", person("ssha")),
    *[("ldappasswd", "-w", "newsecret", "-D", person(cn)) for cn in PEOPLE],
    SEARCH,
]
NAMES = ["add", "initial search", "old empty", "new empty", "wrong old",
         *[f"pass 1 {cn}" for cn in PEOPLE], *[f"pass 2 {cn}" for cn in PEOPLE], "end search"]
GENERATED = re.compile(r"^New password: (.*)$", re.M)


@dataclass(frozen=True)
class Replay:
    """The script's run against one server: its URI and what each command
    printed (standard output and error, as the script keeps them) and
    exited with."""

    uri: str
    steps: tuple[tuple[int, str], ...]

    def answer(self, step: int) -> tuple[int, str]:
        """Step `step` as compared: exit status and, for searches, the
        entries with userPassword masked; for the others, the lines that
        carry the outcome (the URI, diagnostic text and generated
        passwords aside)."""
        code, text = self.steps[step]
        if SCRIPT[step][0] == "ldapsearch":
            return code, normalise(text, mask=["userPassword"], superclasses=SUPERCLASSES)
        kept = [GENERATED.sub("New password: <generated>", line)
                for line in text.replace(self.uri, "<uri>").splitlines()
                if not line.startswith("Additional info:")]
        return code, "\n".join(kept)

    def passwords(self, step: int) -> dict[str, tuple[str, ...]]:
        """The userPassword values a search step returned, by lowercased DN."""
        return {dn: record.values("userPassword")
                for dn, record in by_dn(self.steps[step][1]).items()}

    def generated(self) -> list[str]:
        return [match for _, text in self.steps for match in GENERATED.findall(text)]


def replay(uri: str, password: str) -> Replay:
    steps = []
    for tool, *args in SCRIPT:
        given = (password if arg == ROOT else arg for arg in args)
        done = subprocess.run([tool, "-x", "-H", uri, *given],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=60, check=False)
        steps.append((done.returncode, done.stdout.decode()))
    return Replay(uri, tuple(steps))


@pytest.fixture(scope="module")
def certdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replay]:
    server = make_server(tmp_path_factory.mktemp("certdir-passwd"), "--no-ca")
    server.configure("schema", paths=[f"/etc/ldap/schema/{name}.schema" for name in SCHEMAS])
    server.configure("access", rules=RULES)
    server.start()
    emptied = server.tool("ldapdelete", SUFFIX)
    assert emptied.returncode == 0, emptied.stderr
    yield replay(server.uri, server.root_password)
    log = server.stop()
    assert "Traceback" not in log, log


@pytest.fixture(scope="module")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replay]:
    server = start_slapd(tmp_path_factory.mktemp("slapd-passwd"), SUFFIX, schemas=SCHEMAS,
                         database_lines=ACCESS)
    yield replay(server.uri, ROOT_PW)
    server.stop()


@pytest.mark.parametrize("step", range(len(SCRIPT)), ids=NAMES)
def test_same_answer_as_slapd(certdir: Replay, slapd: Replay, step: int) -> None:
    assert certdir.answer(step) == slapd.answer(step)


def test_the_failures_are_unwilling_to_perform(certdir: Replay) -> None:
    for step in (2, 3, 4):
        assert certdir.steps[step][0] == 1
        assert "Result: Server is unwilling to perform (53)" in certdir.steps[step][1]


def test_the_changes_succeed(certdir: Replay) -> None:
    assert [code for code, _ in certdir.steps[5:]] == [0] * (len(SCRIPT) - 5)


def test_added_hashes_are_kept_and_clear_passwords_hashed(certdir: Replay,
                                                          slapd: Replay) -> None:
    ours, theirs = certdir.passwords(1), slapd.passwords(1)
    for cn in ("md5", "sha", "argon2"):
        assert ours[f"cn={cn},{SUFFIX}"] == theirs[f"cn={cn},{SUFFIX}"]
    for cn in ("smd5", "ssha"):
        assert theirs[f"cn={cn},{SUFFIX}"] == ("secret",)
        (value,) = ours[f"cn={cn},{SUFFIX}"]
        assert value.startswith("{ARGON2}$argon2id$"), value


def test_object_classes_are_named_as_the_schema_names_them(certdir: Replay) -> None:
    suffix = by_dn(certdir.steps[1][1])[SUFFIX]
    assert suffix.values("objectClass") == ("dcObject", "organization", "top")


def test_changed_passwords_are_argon2id(certdir: Replay) -> None:
    end = certdir.passwords(len(SCRIPT) - 1)
    for cn in PEOPLE:
        (value,) = end[f"cn={cn},{SUFFIX}"]
        assert value.startswith("{ARGON2}$argon2id$"), value


@pytest.mark.parametrize("target", ["certdir", "slapd"])
def test_generated_passwords_bind(request: pytest.FixtureRequest, target: str) -> None:
    run: Replay = request.getfixturevalue(target)
    generated = run.generated()
    assert len(generated) == len(PEOPLE)
    for cn, password in zip(PEOPLE, generated, strict=True):
        done = subprocess.run(["ldapwhoami", "-x", "-H", run.uri, "-D", person(cn),
                               "-w", password], capture_output=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
