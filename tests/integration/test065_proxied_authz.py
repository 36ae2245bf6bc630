"""Scenario 065: the proxied authorization control (RFC 4370; issue 10, part 2).

1. The root DSE lists 2.16.840.1.113730.3.4.18 in supportedControl.
2. The root DN with `ldapwhoami -e '!authzid=dn:<person>'` is told the
   proxied identity (WhoAmI answers the authorization identity, RFC 4532);
   with an empty authzId, anonymous. The access log names both identities.
3. A person bound with their own password, whom no proxy rule allows (the
   default policy), gets authorizationDenied (123).
4. The control must be critical: not marked so, protocolError (2).
5. A "u:" authzId, or a "dn:" one that is not a DN, names no identity here:
   authorizationDenied (123).
6. It does not apply to bind or StartTLS (RFC 4370 §3): critical there, it
   is an unavailable critical extension (12).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import ldap
import pytest
from ldap.controls import RequestControlTuples
from ldap.controls.simple import ProxyAuthzControl

from tests.integration.conftest import SUFFIX, Server

PROXIED_AUTHZ = "2.16.840.1.113730.3.4.18"
ALICE = f"cn=Alice,{SUFFIX}"
BOB = f"cn=Bob,{SUFFIX}"
PASSWORD = "alice-secret-1"


@pytest.fixture(scope="module")
def people(server: Server) -> Iterator[Server]:
    ldif = "".join(f"dn: cn={cn},{SUFFIX}\nobjectClass: inetOrgPerson\ncn: {cn}\nsn: {cn}\n"
                   f"userPassword: {PASSWORD}\n\n" for cn in ("Alice", "Bob"))
    done = server.tool("ldapadd", input=ldif.encode())
    assert done.returncode == 0, done.stderr
    yield server


def whoami(server: Server, dn: str, password: str,
           *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["ldapwhoami", "-H", server.uri, "-x", "-D", dn, "-w", password,
                           *args], check=False, capture_output=True, env=server.env(),
                          timeout=60)


def connect(server: Server) -> ldap.ldapobject.LDAPObject:
    conn = ldap.initialize(server.uri)
    conn.set_option(ldap.OPT_PROTOCOL_VERSION, 3)
    return conn


def proxied(authzid: str, critical: bool = True) -> list[ProxyAuthzControl]:
    return [ProxyAuthzControl(critical, authzid.encode())]


def proxied_whoami(conn: ldap.ldapobject.LDAPObject, authzid: str,
                   critical: bool = True) -> str:
    # python-ldap's whoami_s passes its controls on unconverted: give it tuples.
    found: str = conn.whoami_s(serverctrls=RequestControlTuples(proxied(authzid, critical)))
    return found


def test_root_dse_lists_the_control(people: Server) -> None:
    done = people.tool("ldapsearch", "-LLL", "-b", "", "-s", "base", "(objectClass=*)",
                       "supportedControl", bind=False)
    assert done.returncode == 0, done.stderr
    assert f"supportedControl: {PROXIED_AUTHZ}" in done.stdout.decode()


def test_root_acts_as_a_person(people: Server) -> None:
    done = whoami(people, people.root_dn, people.root_password, "-e", f"!authzid=dn:{ALICE}")
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode().strip().lower() == f"dn:{ALICE}".lower()
    people.logged(f'authzid="dn:{ALICE}" by="{people.root_dn}"')


def test_root_acts_as_anonymous(people: Server) -> None:
    done = whoami(people, people.root_dn, people.root_password, "-e", "!authzid=")
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode().strip() == "anonymous"


def test_person_without_a_proxy_rule_is_denied(people: Server) -> None:
    conn = connect(people)
    conn.simple_bind_s(ALICE, PASSWORD)
    with pytest.raises(ldap.PROXIED_AUTHORIZATION_DENIED):
        proxied_whoami(conn, f"dn:{BOB}")


def test_control_must_be_critical(people: Server) -> None:
    conn = connect(people)
    conn.simple_bind_s(people.root_dn, people.root_password)
    with pytest.raises(ldap.PROTOCOL_ERROR):
        proxied_whoami(conn, f"dn:{ALICE}", critical=False)


@pytest.mark.parametrize("authzid", ["u:alice", "dn:not a dn"])
def test_authzid_naming_no_identity_is_denied(people: Server, authzid: str) -> None:
    conn = connect(people)
    conn.simple_bind_s(people.root_dn, people.root_password)
    with pytest.raises(ldap.PROXIED_AUTHORIZATION_DENIED):
        proxied_whoami(conn, authzid)


def test_not_on_bind(people: Server) -> None:
    conn = connect(people)
    with pytest.raises(ldap.UNAVAILABLE_CRITICAL_EXTENSION):
        conn.simple_bind_s(ALICE, PASSWORD, serverctrls=proxied(""))


def test_not_on_starttls(people: Server) -> None:
    conn = connect(people)
    conn.set_option(ldap.OPT_X_TLS_CACERTFILE, str(people.ca_file))
    conn.set_option(ldap.OPT_X_TLS_NEWCTX, 0)
    conn.set_option(ldap.OPT_SERVER_CONTROLS, proxied(""))
    with pytest.raises(ldap.UNAVAILABLE_CRITICAL_EXTENSION):
        conn.start_tls_s()
