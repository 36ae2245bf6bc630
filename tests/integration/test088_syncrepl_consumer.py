"""Scenario 088: certdir as a syncrepl consumer (issue 12 part 4) of a real
slapd provider (back_mdb with the syncprov overlay and a session log).

- refreshAndPersist and refreshOnly: certdir converges on a few hundred
  people with certificates, each entry as slapd holds it: its attributes,
  its entryUUID, entryCSN, creatorsName, modifiersName and timestamps as
  slapd set them (certdir adds only the superclasses to objectClass); then
  on adds, modifies, renames and deletes made on slapd.
- kill -9 of the consumer, changes on slapd meanwhile, a restart: it
  resumes from its stored cookie. Its log says how many entries the
  provider sent in full: the few changed ones, not every entry again.
  Killed in the middle of its first refresh (batches committed, no cookie
  yet), it refreshes again and converges, the entry deleted meanwhile gone.
- Without a session log on slapd, a resume is a present phase: the entry
  deleted while the consumer was down is deleted here at its end.
- slapd stopped and started again: the consumer reconnects on its retry
  schedule and converges on what changed.
- The provider over ldaps:// and over StartTLS, its certificate checked
  against `ca_file`; one from another CA is refused (and retried).
- A replica is read-only: an add, a modify, a delete, a rename and a
  password modify, even as the root DN, get referral (10) naming the
  provider (with the target, but for the password modify).
- `replication.consumer` with a bad value stops `certdir serve` with a
  message naming the key; a replica refuses a `ca` section (the CA signs
  on the provider).
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from cryptography.x509.oid import NameOID

from tests.integration.conftest import (
    CERTDIR,
    SUFFIX,
    ServeExited,
    database_rows,
    make_server,
)
from tests.integration.replication import (
    CONVERGE_S,
    ROOT_DN,
    certificate,
    contents,
    converge,
    replica,
    start_provider,
)
from tests.integration.slapd import Slapd

PEOPLE = 300
LARGE = 6000  # entries a refresh takes long enough over to be killed in the middle
TLS_CONF = """\
TLSCACertificateFile {work}/ca.pem
TLSCertificateFile {work}/server.pem
TLSCertificateKeyFile {work}/server.key
"""


def tls_files(work: Path, name: str) -> None:
    """A CA (`<name>-ca.pem`) and, for slapd, a server certificate it issued
    for 127.0.0.1 (`server.pem`, `server.key`, and the CA as `ca.pem`)."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} test CA")])
    now = dt.datetime.now(dt.UTC)
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now).not_valid_after(now + dt.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .sign(ca_key, hashes.SHA256()))
    (work / f"{name}-ca.pem").write_bytes(ca.public_bytes(Encoding.PEM))
    if name != "provider":
        return
    key = ec.generate_private_key(ec.SECP256R1())
    server = (x509.CertificateBuilder()
              .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
              .issuer_name(ca_name).public_key(key.public_key())
              .serial_number(x509.random_serial_number())
              .not_valid_before(now).not_valid_after(now + dt.timedelta(days=30))
              .add_extension(x509.SubjectAlternativeName(
                  [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
              .sign(ca_key, hashes.SHA256()))
    (work / "ca.pem").write_bytes(ca.public_bytes(Encoding.PEM))
    (work / "server.pem").write_bytes(server.public_bytes(Encoding.PEM))
    (work / "server.key").write_bytes(key.private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))


def person(n: int) -> str:
    name = f"Person {n:04d}"
    return (f"dn: cn={name},ou=people,{SUFFIX}\nobjectClass: inetOrgPerson\ncn: {name}\n"
            f"sn: {n:04d}\nmail: person{n}@example.com\n"
            f"userCertificate;binary:: {base64.b64encode(certificate(name)).decode()}\n\n")


PROVIDER_LDIF = (
    f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: example\n"
    f"dc: example\n\n"
    f"dn: ou=people,{SUFFIX}\nobjectClass: organizationalUnit\nou: people\n\n"
    f"dn: ou=staff,{SUFFIX}\nobjectClass: organizationalUnit\nou: staff\n\n"
    + "".join(person(n) for n in range(PEOPLE)))


def plain_person(n: int) -> str:
    return (f"dn: cn=Plain {n:05d},ou=people,{SUFFIX}\nobjectClass: inetOrgPerson\n"
            f"cn: Plain {n:05d}\nsn: {n:05d}\nmail: plain{n}@example.com\n\n")


def start_people_provider(work: Path, tls: bool = False, extra: int = 0,
                          sessionlog: bool = True) -> Slapd:
    """A provider of PROVIDER_LDIF and `extra` plain people; with `tls` it
    offers StartTLS and listens on ldaps:// too."""
    work.mkdir(parents=True)
    if tls:
        tls_files(work, "provider")
        tls_files(work, "stranger")
    return start_provider(
        work, PROVIDER_LDIF + "".join(plain_person(n) for n in range(extra)), sessionlog,
        global_lines=TLS_CONF.format(work=work) if tls else "", ldaps=tls)


@pytest.fixture
def slapd(tmp_path: Path) -> Iterator[Slapd]:
    server = start_people_provider(tmp_path / "slapd", sessionlog=True)
    yield server
    server.stop()


@pytest.fixture
def slapd_tls(tmp_path: Path) -> Iterator[Slapd]:
    server = start_people_provider(tmp_path / "slapd", sessionlog=True, tls=True)
    yield server
    server.stop()


@pytest.fixture
def slapd_large(tmp_path: Path) -> Iterator[Slapd]:
    server = start_people_provider(tmp_path / "slapd", sessionlog=True, extra=LARGE)
    yield server
    server.stop()


@pytest.fixture
def slapd_without_log(tmp_path: Path) -> Iterator[Slapd]:
    server = start_people_provider(tmp_path / "slapd", sessionlog=False)
    yield server
    server.stop()


CHANGES = (
    f"dn: cn=New Person,ou=people,{SUFFIX}\nchangetype: add\nobjectClass: inetOrgPerson\n"
    f"cn: New Person\nsn: Person\nmail: new@example.com\n"
    f"userCertificate;binary:: {base64.b64encode(certificate('New Person')).decode()}\n\n"
    f"dn: cn=Person 0001,ou=people,{SUFFIX}\nchangetype: modify\nreplace: mail\n"
    f"mail: renamed.one@example.com\n-\nadd: description\ndescription: modified\n\n"
    f"dn: cn=Person 0002,ou=people,{SUFFIX}\nchangetype: modrdn\nnewrdn: cn=Moved Person\n"
    f"deleteoldrdn: 1\nnewsuperior: ou=staff,{SUFFIX}\n\n"
    f"dn: cn=Person 0003,ou=people,{SUFFIX}\nchangetype: delete\n\n"
    f"dn: ou=staff,{SUFFIX}\nchangetype: modrdn\nnewrdn: ou=team\ndeleteoldrdn: 1\n\n")
MOVED = f"cn=Moved Person,ou=team,{SUFFIX}".lower()


def test_refresh_and_persist(tmp_path: Path, slapd: Slapd) -> None:
    consumer = replica(tmp_path, slapd, type="refreshAndPersist")
    consumer.start()
    try:
        held = converge(slapd, consumer)
        assert len(held) == PEOPLE + 3
        entry = held[f"cn=Person 0042,ou=people,{SUFFIX}".lower()]
        assert entry.values("creatorsName") == (ROOT_DN,)
        assert len(entry.values("userCertificate;binary")) == 1
        slapd.modify(CHANGES)
        held = converge(slapd, consumer)
        assert MOVED in held
        assert f"cn=Person 0003,ou=people,{SUFFIX}".lower() not in held
        one = held[f"cn=Person 0001,ou=people,{SUFFIX}".lower()]
        assert one.values("description") == ("modified",)
    finally:
        consumer.stop()


def test_refresh_only(tmp_path: Path, slapd: Slapd) -> None:
    consumer = replica(tmp_path, slapd, type="refreshOnly", interval_s=1)
    consumer.start()
    try:
        assert len(converge(slapd, consumer)) == PEOPLE + 3
        slapd.modify(CHANGES)
        held = converge(slapd, consumer)
        assert f"cn=New Person,ou=people,{SUFFIX}".lower() in held
        assert f"cn=Person 0002,ou=people,{SUFFIX}".lower() not in held
    finally:
        consumer.stop()


REFRESHED = re.compile(r"refresh from \S+ done: (\d+) entries sent in full")


def test_kill_and_resume(tmp_path: Path, slapd: Slapd) -> None:
    consumer = replica(tmp_path, slapd, type="refreshAndPersist")
    consumer.start()
    converge(slapd, consumer)
    assert REFRESHED.findall(consumer.log()) == [str(PEOPLE + 3)]
    consumer.kill()
    slapd.modify(CHANGES)
    consumer.start()
    try:
        converge(slapd, consumer)
        # The add, the modify and the two renames; the delete came by entryUUID.
        assert REFRESHED.findall(consumer.log()) == [str(PEOPLE + 3), "4"]
    finally:
        consumer.stop()


def test_kill_in_the_middle_of_a_refresh(tmp_path: Path, slapd_large: Slapd) -> None:
    consumer = replica(tmp_path, slapd_large, type="refreshAndPersist")
    consumer.start()
    deadline = time.monotonic() + CONVERGE_S
    while not database_rows(consumer.data_dir, "SELECT uuid FROM sync_entries"):
        assert time.monotonic() < deadline, consumer.log()[-2000:]
        time.sleep(0.02)
    consumer.kill()
    stored = database_rows(consumer.data_dir, "SELECT count(*) FROM sync_entries")[0][0]
    # Killed in the middle: some batches committed, no cookie yet.
    assert 0 < stored < LARGE
    assert database_rows(consumer.data_dir, "SELECT rid FROM sync_cookies") == []
    slapd_large.modify(f"dn: cn=Plain 00001,ou=people,{SUFFIX}\nchangetype: delete\n\n")
    consumer.start()
    try:
        assert len(converge(slapd_large, consumer)) == PEOPLE + 3 + LARGE - 1
        assert database_rows(consumer.data_dir, "SELECT rid FROM sync_cookies") == [(7,)]
    finally:
        consumer.stop()


PRESENT = re.compile(r"done: (\d+) entries sent in full, (\d+) named present, (\d+) deleted")


def test_resume_by_present_phase(tmp_path: Path, slapd_without_log: Slapd) -> None:
    provider = slapd_without_log
    consumer = replica(tmp_path, provider, type="refreshOnly", interval_s=3600)
    consumer.start()
    converge(provider, consumer)
    consumer.kill()
    provider.modify(f"dn: cn=Person 0009,ou=people,{SUFFIX}\nchangetype: delete\n\n"
                    f"dn: cn=Person 0010,ou=people,{SUFFIX}\nchangetype: modify\n"
                    f"replace: sn\nsn: changed\n\n")
    consumer.start()
    try:
        converge(provider, consumer)
        # Without a session log slapd sends the changed entry in full and names
        # every entry it holds present; the one it no longer holds is deleted here.
        assert PRESENT.findall(consumer.log())[-1] == ("1", str(PEOPLE + 3 - 1), "1")
    finally:
        consumer.stop()


def test_provider_restarts(tmp_path: Path, slapd: Slapd) -> None:
    consumer = replica(tmp_path, slapd, type="refreshAndPersist")
    consumer.start()
    try:
        converge(slapd, consumer)
        slapd.stop()
        time.sleep(1.5)
        slapd.start()
        slapd.modify(CHANGES)
        assert MOVED in converge(slapd, consumer)
        assert "retrying in 1 s" in consumer.log()
    finally:
        consumer.stop()


# (tool, its arguments, its input, the DN the referral names)
WRITES = (
    ("ldapadd", (), f"dn: cn=Local,ou=people,{SUFFIX}\nobjectClass: person\ncn: Local\n"
     f"sn: L\n", f"cn=Local,ou=people,{SUFFIX}"),
    ("ldapmodify", (), f"dn: cn=Person 0005,ou=people,{SUFFIX}\nchangetype: modify\n"
     f"replace: sn\nsn: x\n", f"cn=Person 0005,ou=people,{SUFFIX}"),
    ("ldapdelete", (), f"cn=Person 0006,ou=people,{SUFFIX}\n",
     f"cn=Person 0006,ou=people,{SUFFIX}"),
    ("ldapmodrdn", (), f"cn=Person 0007,ou=people,{SUFFIX}\ncn=Other\n",
     f"cn=Person 0007,ou=people,{SUFFIX}"),
    ("ldappasswd", ("-s", "new-secret", f"cn=Person 0008,ou=people,{SUFFIX}"), "", ""),
)


@pytest.mark.parametrize("tool, args, ldif, target", WRITES, ids=[w[0] for w in WRITES])
def test_writes_are_referred(tmp_path: Path, slapd: Slapd, tool: str, args: tuple[str, ...],
                             ldif: str, target: str) -> None:
    consumer = replica(tmp_path, slapd, type="refreshAndPersist")
    consumer.start()
    try:
        converge(slapd, consumer)
        done = consumer.tool(tool, *args, input=ldif.encode())
        output = (done.stdout + done.stderr).decode()
        # ldappasswd exits 1 whatever the result, and prints it.
        assert done.returncode == (1 if tool == "ldappasswd" else 10), output
        assert "Referral (10)" in output, output
        url = f"{slapd.uri}/{target.replace(' ', '%20')}" if target else slapd.uri
        assert url in output, output
        converge(slapd, consumer)
    finally:
        consumer.stop()


@pytest.mark.parametrize("how", ["ldaps", "starttls"])
def test_tls_provider(tmp_path: Path, slapd_tls: Slapd, how: str) -> None:
    settings = ({"provider": slapd_tls.ldaps_uri} if how == "ldaps"
                else {"starttls": True})
    consumer = replica(tmp_path, slapd_tls, type="refreshAndPersist",
                       ca_file="provider-ca.pem", **settings)
    consumer.start()
    try:
        converge(slapd_tls, consumer)
        assert "retrying" not in consumer.log()
    finally:
        consumer.stop()


def test_tls_provider_not_trusted(tmp_path: Path, slapd_tls: Slapd) -> None:
    consumer = replica(tmp_path, slapd_tls, type="refreshAndPersist",
                       provider=slapd_tls.ldaps_uri, ca_file="stranger-ca.pem")
    consumer.start()
    try:
        deadline = time.monotonic() + CONVERGE_S
        while "retrying in 1 s" not in consumer.log() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "certificate verify failed" in consumer.log()
        assert len(contents(consumer)) == 1  # the suffix entry `certdir init` made
    finally:
        consumer.stop()


# (a consumer setting, what `certdir serve` says of it)
BAD = (
    ({"retry": "5 x"}, "replication.consumer.retry: '5 x': must be pairs of seconds and times"),
    ({"retry": "5 + 60 +"}, "replication.consumer.retry: '5 + 60 +': only the last step is +"),
    ({"retry": "0 +"}, "replication.consumer.retry: '0 +': seconds and times are above 0"),
    ({"provider": "http://127.0.0.1:1"}, "replication.consumer.provider: 'http://127.0.0.1:1': "
     "must be ldap://host:port or ldaps://host:port"),
    ({"provider": "ldaps://127.0.0.1:1", "starttls": True},
     "replication.consumer.starttls: not with an ldaps:// URL"),
    ({"base": "dc=other,dc=org"}, "replication.consumer.base: 'dc=other,dc=org' is not within "
     "the suffix"),
    ({"type": "refreshSometimes"}, "replication.consumer.type: 'refreshSometimes' is not allowed"),
    ({"scope": "deep"}, "replication.consumer.scope: 'deep' is not allowed"),
    ({"filter": "(cn=x"}, "replication.consumer.filter: '(cn=x'"),
    ({"rid": 1000}, "replication.consumer.rid: 1000 is not allowed"),
    ({"password_file": ""}, "replication.consumer.bind_dn: bind_dn and password_file go together"),
    ({"interval": 5}, "replication.consumer.interval: unknown key"),
)


def test_bad_configuration(tmp_path: Path, slapd: Slapd) -> None:
    consumer = replica(tmp_path / "bad", slapd)
    good = {"provider": slapd.uri, "rid": 7, "bind_dn": ROOT_DN, "password_file": "provider.pw"}
    for setting, message in BAD:
        consumer.configure("replication", consumer={**good, **setting})
        with pytest.raises(ServeExited) as exited:
            consumer.start()
        assert message in exited.value.output, (setting, exited.value.output[-500:])
    signer = make_server(tmp_path / "ca")
    signer.configure("replication", consumer={"provider": slapd.uri, "rid": 1})
    refusal = b"ca: a replica (replication.consumer) does not sign: the CA runs on the provider"
    done = subprocess.run([*CERTDIR, "serve", "--data-dir", str(signer.data_dir)],
                          capture_output=True, timeout=60, check=False)
    assert done.returncode == 1, done.stderr
    assert refusal in done.stderr
    crl = signer.certdir("ca", "crl", "--data-dir", str(signer.data_dir), check=False)
    assert crl.returncode == 1, crl.stderr
    assert refusal in crl.stderr
