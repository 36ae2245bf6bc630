"""Scenario 084: finding a certificate's holder by the serial `certdir ca issue` prints.

- `certdir ca issue` prints the serial in hex; written `0x<hex>` it finds
  the holder in OpenLDAP's older `serial$issuer` form of a certificate
  exact assertion (`(userCertificate=0x1f...$cn=CA,...)`) and in the GSER
  form (`{ serialNumber 0x1f..., issuer "cn=CA,..." }`, RFC 4523 §2.1,
  hex as OpenLDAP reads it).
- As slapd 2.5 answers: the older form takes a decimal serial, with
  leading zeros; GSER takes its two parts in either order; the issuer is
  compared as a DN (RFC 4517 §4.2.15); an extensible match by
  certificateExactMatch takes both forms. certdir also takes `0x` in the
  older form, which slapd does not.
- An assertion in neither form is Undefined: the search succeeds and
  finds nobody (RFC 4511 §4.5.1.7).
- The four assertions of OpenLDAP's tests/scripts/test021-certificate find
  the holders of its certificates, whose issuer's DN starts with
  `EMAIL=` (PKCS #9 email, which certdir's core schema has as slapd's).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.conftest import SUFFIX, Server, make_server
from tests.integration.ldif_compare import by_dn

DATA = Path(__file__).parents[1] / "data" / "integration"
CA_NAME = "cn=Example Root CA,dc=example,dc=com"
ALICE = f"cn=Alice,{SUFFIX}"
BOB = f"cn=Bob,{SUFFIX}"


@dataclass(frozen=True, slots=True)
class World:
    server: Server
    serial: str  # as `certdir ca issue` printed it: hex without a prefix
    other: str   # Bob's


def person(cn: str) -> str:
    return (f"dn: cn={cn},{SUFFIX}\nobjectClass: inetOrgPerson\ncn: {cn}\nsn: {cn}\n"
            f"mail: {cn.lower()}@example.com\n")


def issue(server: Server, tmp: Path, cn: str) -> str:
    key, csr = tmp / f"{cn}.key", tmp / f"{cn}.csr"
    subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key),
                    "-subj", f"/CN={cn}", "-out", str(csr)], check=True, capture_output=True)
    done = server.certdir("ca", "issue", "--data-dir", str(server.data_dir), "--csr", str(csr),
                          "--profile", "smime-user", "--entry", f"cn={cn},{SUFFIX}")
    return done.stdout.decode().strip()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("certificate-assertion")
    server = make_server(tmp)
    server.start()
    added = server.tool("ldapadd", input=(person("Alice") + "\n" + person("Bob")).encode())
    assert added.returncode == 0, added.stderr.decode()
    yield World(server, issue(server, tmp, "Alice"), issue(server, tmp, "Bob"))
    log = server.stop()
    assert "Traceback" not in log, log


def holders(world: World, search_filter: str) -> list[str]:
    done = world.server.tool("ldapsearch", "-LLL", "-b", SUFFIX, search_filter, "1.1",
                             bind=False)
    assert done.returncode == 0, done.stderr.decode()
    return list(by_dn(done.stdout))


def test_the_printed_serial_is_hex(world: World) -> None:
    assert int(world.serial, 16) > 0


Form = Callable[[str], str]

FORMS: list[tuple[str, Form]] = [
    # (why, assertion built from the printed serial)
    ("older form, hex", lambda s: f"0x{s}${CA_NAME}"),
    ("older form, upper-case hex", lambda s: f"0X{s.upper()}${CA_NAME}"),
    ("older form, decimal", lambda s: f"{int(s, 16)}${CA_NAME}"),
    ("older form, decimal with leading zeros", lambda s: f"000{int(s, 16)}${CA_NAME}"),
    ("older form, issuer spelled otherwise",
     lambda s: f"{int(s, 16)}$CN=example root ca, DC=Example,DC=COM"),
    ("GSER, hex", lambda s: f'{{ serialNumber 0x{s}, issuer rdnSequence:"{CA_NAME}" }}'),
    ("GSER, hex string", lambda s: f"{{ serialNumber '{s}'H, issuer \"{CA_NAME}\" }}"),
    ("GSER, issuer first", lambda s: f'{{ issuer "{CA_NAME}", serialNumber {int(s, 16)} }}'),
    ("GSER, no spaces", lambda s: f'{{serialNumber 0x{s},issuer "{CA_NAME}"}}'),
]


@pytest.mark.parametrize("why, form", FORMS, ids=[f[0] for f in FORMS])
def test_assertion_finds_the_holder(world: World, why: str, form: Form) -> None:
    assert holders(world, f"(userCertificate={form(world.serial)})") == [ALICE.lower()]


def test_extensible_match_takes_the_older_form(world: World) -> None:
    found = holders(world, f"(userCertificate:certificateExactMatch:=0x{world.other}${CA_NAME})")
    assert found == [BOB.lower()]


def test_other_serial_finds_the_other_holder(world: World) -> None:
    assert holders(world, f"(userCertificate=0x{world.other}${CA_NAME})") == [BOB.lower()]


def test_other_issuer_finds_nobody(world: World) -> None:
    assert holders(world, f"(userCertificate=0x{world.serial}$cn=Other CA,{SUFFIX})") == []


MALFORMED: list[tuple[str, Form]] = [
    ("serial alone", lambda s: f"0x{s}"),
    ("serial not a number", lambda s: f"0x{s}zz${CA_NAME}"),
    ("GSER without issuer", lambda s: f"{{ serialNumber 0x{s} }}"),
    ("GSER with text after it", lambda s: f'{{ serialNumber 0x{s}, issuer "{CA_NAME}" }}x'),
]


@pytest.mark.parametrize("why, form", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_assertion_finds_nobody(world: World, why: str, form: Form) -> None:
    assert holders(world, f"(userCertificate={form(world.serial)})") == []


OPENLDAP_ISSUER = ("EMAIL=ca@example.com,CN=Example CA,O=Openldap Example\\5C, Ltd.,"
                   "ST=California,C=US")
URSULA = f"cn=Ursula Hampster,{SUFFIX}"
JEN = f"cn=Jen Smith,{SUFFIX}"
TEST021 = [
    # (test021's filter, with its issuer, the holder)
    (f"(userCertificate=2${OPENLDAP_ISSUER})", URSULA),
    (f'(userCertificate={{ serialNumber 2, issuer "{OPENLDAP_ISSUER}" }})', URSULA),
    (f"(userCertificate:certificateExactMatch:=3${OPENLDAP_ISSUER})", JEN),
    (f'(userCertificate:certificateExactMatch:={{ issuer "{OPENLDAP_ISSUER}", '
     f"serialNumber 3 }})", JEN),
]


@pytest.fixture(scope="module")
def openldap_certificates(world: World) -> World:
    added = world.server.tool("ldapadd", input=(
        DATA / "084_openldap_certificates.ldif").read_bytes())
    assert added.returncode == 0, added.stderr.decode()
    return world


@pytest.mark.parametrize("search_filter, holder", TEST021, ids=["old", "gser", "ext-old",
                                                                 "ext-gser-issuer-first"])
def test_openldap_test021_assertions(openldap_certificates: World, search_filter: str,
                                     holder: str) -> None:
    assert holders(openldap_certificates, search_filter) == [holder.lower()]
