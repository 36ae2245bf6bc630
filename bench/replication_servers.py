"""The servers of the replication benchmark and how it reads their state.

- Every slapd indexes what certdir indexes (index_config.py, as in the directory
  benchmark), and entryCSN and entryUUID for syncprov and syncrepl.
- slapd provider: Debian's slapd, back_mdb with the syncprov overlay, loaded offline with
  `slapadd -q -w` (-w writes the suffix's contextCSN, as a provider that had taken the
  writes would hold it).
- slapd consumer: an empty back_mdb whose `syncrepl` directive (refreshAndPersist, `retry="1
  +"`) replicates the whole suffix from a provider (slapd or certdir), bound as the
  provider's root DN; it carries the syncprov overlay too, so that an observer's persist
  search on it sees each change as the consumer writes it (cascading replication). Unless
  asked to be durable it runs with `dbnosync`: slapd's consumer writes each replicated
  entry in a transaction of its own, and with one fsync each the refresh measures the
  disk, not the replication (certdir's consumer commits batches of entries).
- certdir consumer: `certdir init --no-ca --no-kms` and `replication.consumer`
  (refreshAndPersist, `retry: "1 +"`) of a certdir provider, bound as its root DN.
- A server's state is read as its root DN: the suffix's contextCSN (the set of its values,
  one per server id), the number of entries in the suffix (a subtree search for `1.1`),
  the values of one attribute on the entries below a base.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

import ldap
import yaml
from harness import BenchError
from servers import SLAPADD, SLAPD, Certdir, Running, run_timed, slapd_conf, start

# After the indexes of index_config.py (servers.slapd_conf), with `syncrepl` on a consumer.
SYNCPROV_LINES = """\
index entryCSN,entryUUID eq
{syncrepl}overlay syncprov
syncprov-checkpoint 100 1
"""
SYNCREPL = """\
syncrepl rid={rid:03d} provider=ldap://127.0.0.1:{port} type=refreshAndPersist
  searchbase="{suffix}" bindmethod=simple binddn="{bind_dn}" credentials={password}
  retry="1 +" timeout=5
"""
CONSUMER_PASSWORD_FILE = "provider.pw"


@dataclass(frozen=True, slots=True)
class Credentials:
    """Where a server answers and how its root DN binds."""

    port: int
    root_dn: str
    password: str

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"


@dataclass(frozen=True, slots=True)
class SlapdServer:
    """A slapd with syncprov: a provider when `provider` is None, else its consumer."""

    work: Path
    suffix: str
    port: int
    password: str
    provider: tuple[int, Credentials] | None = None
    durable: bool = True

    @property
    def credentials(self) -> Credentials:
        return Credentials(self.port, f"cn=admin,{self.suffix}", self.password)

    @property
    def conf(self) -> Path:
        return self.work / "slapd.conf"

    def prepare(self) -> None:
        (self.work / "mdb").mkdir(parents=True)
        syncrepl = ""
        if self.provider is not None:
            rid, source = self.provider
            syncrepl = SYNCREPL.format(rid=rid, port=source.port, suffix=self.suffix,
                                       bind_dn=source.root_dn, password=source.password)
        self.conf.write_text(slapd_conf(
            self.work, self.suffix, self.password, modules=("syncprov",), durable=self.durable,
            database_lines=SYNCPROV_LINES.format(syncrepl=syncrepl)))

    def load(self, ldif: Path) -> float:
        return run_timed([str(SLAPADD), "-f", str(self.conf), "-l", str(ldif), "-q", "-w"],
                         "slapadd")

    def serve(self, name: str) -> Running:
        command = [str(SLAPD), "-f", str(self.conf), "-h", f"{self.credentials.url}/",
                   "-d", "0"]
        return start(name, command, self.port, self.work / "slapd.log")


def slapd_server(work: Path, suffix: str, port: int,
                 provider: tuple[int, Credentials] | None = None,
                 durable: bool = True) -> SlapdServer:
    server = SlapdServer(work, suffix, port, secrets.token_urlsafe(18), provider, durable)
    server.prepare()
    return server


def certdir_credentials(certdir: Certdir) -> Credentials:
    password = (certdir.data_dir / "secrets" / "root-password").read_text().strip()
    return Credentials(certdir.port, f"cn=admin,{certdir.suffix}", password)


def make_consumer(certdir: Certdir, rid: int, source: Credentials) -> None:
    """Make the (initialised, configured) `certdir` a replica of `source`."""
    (certdir.data_dir / CONSUMER_PASSWORD_FILE).write_text(source.password + "\n")
    config = yaml.safe_load(certdir.config_path.read_text())
    config["replication"] = {"consumer": {
        "provider": source.url, "rid": rid, "bind_dn": source.root_dn,
        "password_file": CONSUMER_PASSWORD_FILE, "type": "refreshAndPersist",
        "retry": "1 +"}}
    certdir.config_path.write_text(yaml.safe_dump(config, sort_keys=False))


def bound(server: Credentials) -> ldap.ldapobject.LDAPObject:
    client = ldap.initialize(server.url)
    client.set_option(ldap.OPT_NETWORK_TIMEOUT, 5)
    client.simple_bind_s(server.root_dn, server.password)
    return client


def context_csn(server: Credentials, suffix: str) -> frozenset[bytes]:
    """The suffix's contextCSN values; empty while the suffix is not there."""
    client = bound(server)
    try:
        found = client.search_s(suffix, ldap.SCOPE_BASE, "(objectClass=*)", ["contextCSN"])
    except ldap.NO_SUCH_OBJECT:
        return frozenset()
    finally:
        client.unbind_s()
    return frozenset(found[0][1].get("contextCSN", ())) if found else frozenset()


def entry_count(server: Credentials, suffix: str) -> int:
    client = bound(server)
    try:
        return len(client.search_s(suffix, ldap.SCOPE_SUBTREE, "(objectClass=*)", ["1.1"]))
    except ldap.NO_SUCH_OBJECT:
        return 0
    except ldap.LDAPError as error:
        raise BenchError(f"counting the entries on port {server.port}: {error}") from None
    finally:
        client.unbind_s()


def values_below(server: Credentials, base: str, attribute: str) -> dict[str, list[bytes]]:
    """DN (lower case) -> the values of `attribute`, for the entries one level below `base`."""
    client = bound(server)
    try:
        found = client.search_s(base, ldap.SCOPE_ONELEVEL, "(objectClass=*)", [attribute])
    except ldap.LDAPError as error:
        raise BenchError(f"reading {base} on port {server.port}: {error}") from None
    finally:
        client.unbind_s()
    return {dn.lower(): sorted(attrs.get(attribute, [])) for dn, attrs in found}
