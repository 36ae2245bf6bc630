"""What the replication scenarios (test087, test088, test099) share: test
certificates, slapd as a syncrepl provider or consumer, a certdir replica,
and the comparison of what two servers hold.

- `certificate(name)` is a self-signed EC certificate (DER) naming `name`;
  passing `key` signs with that key, so many certificates cost no key
  generation each.
- `start_provider` is slapd with the syncprov overlay (a session log unless
  told not to); `start_consumer` is slapd replicating a provider with a
  `syncrepl` directive (rid 001, retry every second), its cookie kept in its
  own database across a restart. Both log at `stats`, which also shows a
  consumer's failed binds and searches and its retries.
- `replica` is a certdir data directory configured as a consumer
  (`replication.consumer`, rid 7) of a slapd provider, bound as its root DN.
- `contents` is what one side holds: DN -> its user attributes and the
  operational ones the provider sets (`COMPARED`), objectClass left out
  (certdir adds the superclasses); `converge` waits until two sides hold
  the same.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from tests.integration.conftest import SUFFIX, Server, make_server
from tests.integration.ldif_compare import Record, by_dn
from tests.integration.slapd import ROOT_PW, Slapd, start_slapd

ROOT_DN = f"cn=admin,{SUFFIX}"
CONVERGE_S = 60
NO_SUCH_OBJECT = 32
# The user attributes and the operational ones the provider sets, which the
# consumer keeps as they were sent.
COMPARED = ("*", "entryUUID", "entryCSN", "creatorsName", "modifiersName",
            "createTimestamp", "modifyTimestamp")

SYNCPROV = """\
index objectClass eq
index entryCSN,entryUUID eq
overlay syncprov
syncprov-checkpoint 1 1
"""
SYNCREPL = """\
index entryUUID eq
syncrepl rid=001 provider={provider} type={kind} interval=00:00:00:01
  searchbase="{suffix}" bindmethod=simple binddn="{bind_dn}" credentials={password}
  retry="1 +" timeout=5
"""



class Side(Protocol):
    """A server replication runs between: certdir's `Server` or a `Slapd`."""

    def tool(self, name: str, *args: str, input: bytes | None = None,
             bind: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[bytes]: ...

    def log(self) -> str: ...


def certificate(name: str, key: ec.EllipticCurvePrivateKey | None = None) -> bytes:
    key = key or ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + dt.timedelta(days=30))
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(Encoding.DER)


def start_provider(work: Path, ldif: str, sessionlog: bool = True, global_lines: str = "",
                   ldaps: bool = False) -> Slapd:
    """slapd providing `ldif`; with a session log it sends the deletes since a
    cookie as syncIdSets, without one it names the present entries instead."""
    return start_slapd(
        work, SUFFIX, ldif, modules=("syncprov",), global_lines=global_lines,
        database_lines=SYNCPROV + ("syncprov-sessionlog 10000\n" if sessionlog else ""),
        ldaps=ldaps, loglevel="stats")


def start_consumer(work: Path, provider: Server, kind: str) -> Slapd:
    """slapd replicating certdir `provider` (refreshOnly or refreshAndPersist)."""
    return start_slapd(work, SUFFIX, database_lines=SYNCREPL.format(
        provider=provider.uri, kind=kind, suffix=SUFFIX, bind_dn=provider.root_dn,
        password=provider.root_password), loglevel="stats")


def replica(tmp: Path, source: Slapd, **settings: Any) -> Server:
    """A certdir consumer of `source`, not started; `<name>-ca.pem` files in
    slapd's directory are copied into its data directory."""
    server = make_server(tmp, "--no-ca", "--no-kms")
    (server.data_dir / "provider.pw").write_text(ROOT_PW + "\n")
    server.configure("replication", consumer={
        "provider": source.uri, "rid": 7, "bind_dn": ROOT_DN,
        "password_file": "provider.pw", "retry": "1 +", **settings})
    for pem in source.work.glob("*-ca.pem"):
        shutil.copy(pem, server.data_dir / pem.name)
    return server


def contents(side: Side, attributes: tuple[str, ...] = COMPARED) -> dict[str, Record]:
    """DN -> the entry as `side` holds it, objectClass left out; nothing
    before it holds the suffix entry (noSuchObject, 32)."""
    done = side.tool("ldapsearch", "-LLL", "-b", SUFFIX, "(objectClass=*)", *attributes)
    if done.returncode == NO_SUCH_OBJECT:
        return {}
    assert done.returncode == 0, done.stderr.decode()
    return {dn.lower(): Record(dn, tuple(sorted(a for a in r.attributes
                                                  if a[0] != "objectclass")))
            for dn, r in by_dn(done.stdout).items()}


def converge(provider: Side, consumer: Side, attributes: tuple[str, ...] = COMPARED,
             seconds: float = CONVERGE_S) -> dict[str, Record]:
    """Wait until the consumer holds what the provider holds; that content."""
    deadline = time.monotonic() + seconds
    while True:
        expected = contents(provider, attributes)
        actual = contents(consumer, attributes)
        if actual == expected:
            return expected
        if time.monotonic() > deadline:
            missing = sorted(set(expected) - set(actual))[:5]
            extra = sorted(set(actual) - set(expected))[:5]
            differ = [dn for dn in expected if dn in actual and actual[dn] != expected[dn]][:3]
            raise AssertionError(f"not converged: missing {missing}, extra {extra}, "
                                 f"different {differ}\n{consumer.log()[-3000:]}")
        time.sleep(0.3)
