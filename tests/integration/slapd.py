"""Debian's slapd (2.5, back-mdb) on loopback ports, for the scenarios that
compare certdir's answers with slapd's or replicate between the two.

- `start_slapd(work, suffix, ...)` writes `work/slapd.conf` (the schema
  files core, cosine and inetorgperson unless told others, back_mdb and the
  modules asked for, `global` lines before the database, `database` lines
  after its suffix, rootdn `cn=admin,<suffix>`, rootpw `secret`, and a
  1 GiB map: mdb's 10 MiB default fills before 10,000 entries with
  certificates), loads `ldif` with slapadd when there is one, and starts
  slapd on a free port (and a second one for ldaps:// with `ldaps`); it
  returns once slapd accepts connections.
- slapd's debug output goes to `work/slapd.log` (`loglevel` picks how much);
  a restart after `stop` or `kill` appends to it.
- `held()` lists the DNs in its database, running or killed.
"""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.ports import free_port, listening

SLAPD = Path("/usr/sbin/slapd")
SLAPADD = Path("/usr/sbin/slapadd")
SLAPCAT = Path("/usr/sbin/slapcat")
ROOT_PW = "secret"
SCHEMAS = ("core", "cosine", "inetorgperson")

CONF = """\
{includes}
modulepath /usr/lib/ldap
{modules}
pidfile {work}/slapd.pid
argsfile {work}/slapd.args
{global_lines}
database mdb
suffix "{suffix}"
rootdn "cn=admin,{suffix}"
rootpw {root_pw}
directory {work}/mdb
maxsize 1073741824
{database_lines}
"""


@dataclass
class Slapd:
    work: Path
    suffix: str
    port: int
    ldaps_port: int = 0
    loglevel: str = "0"
    proc: subprocess.Popen[bytes] | None = None

    @property
    def root_dn(self) -> str:
        return f"cn=admin,{self.suffix}"

    @property
    def uri(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def ldaps_uri(self) -> str:
        return f"ldaps://127.0.0.1:{self.ldaps_port}"

    @property
    def suffix_url(self) -> str:
        """The LDAP URL of its naming context, as a referral list names a peer."""
        return f"{self.uri}/{self.suffix}"

    @property
    def log_file(self) -> Path:
        return self.work / "slapd.log"

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def start(self) -> None:
        urls = f"{self.uri}/ {self.ldaps_uri}/" if self.ldaps_port else f"{self.uri}/"
        with self.log_file.open("ab") as log:
            self.proc = subprocess.Popen(
                [str(SLAPD), "-f", str(self.work / "slapd.conf"), "-h", urls,
                 "-d", self.loglevel], stdout=subprocess.DEVNULL, stderr=log,
                start_new_session=True)
        if not listening(self.port):
            raise RuntimeError(f"slapd did not listen on {self.port}:\n{self.log()[-3000:]}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=20)
            self.proc = None

    def kill(self) -> None:
        """kill -9: slapd gets no chance to write anything more."""
        if self.proc is not None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=20)
            self.proc = None

    def tool(self, name: str, *args: str, input: bytes | None = None,
             bind: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
        """An ldap-utils command against it, bound as its root DN unless `bind` is False."""
        auth = ["-x", "-D", self.root_dn, "-w", ROOT_PW] if bind else ["-x"]
        return subprocess.run([name, "-H", self.uri, *auth, *args], input=input,
                              capture_output=True, timeout=timeout, check=False)

    def held(self) -> list[str]:
        """The DNs its database holds (slapcat), read whether it runs or not."""
        done = subprocess.run([str(SLAPCAT), "-f", str(self.work / "slapd.conf"), "-o",
                               "ldif_wrap=no"], capture_output=True, timeout=120, check=True)
        return [line[4:] for line in done.stdout.decode().splitlines()
                if line.startswith("dn: ")]

    def modify(self, ldif: str) -> None:
        done = self.tool("ldapmodify", input=ldif.encode())
        assert done.returncode == 0, done.stderr.decode()


def start_slapd(work: Path, suffix: str, ldif: str = "", *, modules: tuple[str, ...] = (),
                schemas: tuple[str, ...] = SCHEMAS, global_lines: str = "",
                database_lines: str = "", ldaps: bool = False, loglevel: str = "0") -> Slapd:
    """slapd serving `suffix` from `work`, loaded with `ldif`, started."""
    if not SLAPD.exists():
        pytest.fail("slapd is not installed (apt-get install slapd)")
    (work / "mdb").mkdir(parents=True, exist_ok=True)
    conf = work / "slapd.conf"
    conf.write_text(CONF.format(
        includes="\n".join(f"include /etc/ldap/schema/{name}.schema" for name in schemas),
        modules="\n".join(f"moduleload {name}" for name in ("back_mdb", *modules)),
        work=work, global_lines=global_lines, suffix=suffix, root_pw=ROOT_PW,
        database_lines=database_lines))
    if ldif:
        (work / "data.ldif").write_text(ldif)
        subprocess.run([str(SLAPADD), "-q", "-f", str(conf), "-l", str(work / "data.ldif")],
                       check=True, capture_output=True, timeout=300)
    slapd = Slapd(work, suffix, free_port(), free_port() if ldaps else 0, loglevel)
    slapd.start()
    return slapd
