"""Scenario 007: simple bind, WhoAmI and Password Modify.

- ldapwhoami (RFC 4532) answers `anonymous` or `dn:<bound DN>`.
- Simple bind (RFC 4513 §5.1): a wrong password and a DN that does not
  exist both give invalidCredentials (49), so a client cannot probe which
  DNs exist (RFC 4513 §6.3.1); a DN with an empty password is an
  unauthenticated bind, refused with unwillingToPerform (53) (§5.1.2).
- userPassword values given in clear are stored hashed ({ARGON2});
  pre-hashed {SSHA}, {SSHA256} and {SSHA512} values verify as given.
- Password Modify (RFC 3062, ldappasswd): root sets anyone's password; with
  no new password the server generates one and returns it; a user changes
  their own (with the old one); a user cannot change someone else's.
"""

from __future__ import annotations

import base64
import hashlib
import subprocess

import pytest

from tests.integration.conftest import Server
from tests.integration.ldif_compare import by_dn

PEOPLE = "ou=people,dc=example,dc=com"
HASHES = {"SSHA": hashlib.sha1, "SSHA256": hashlib.sha256, "SSHA512": hashlib.sha512}


def dn_of(uid: str) -> str:
    return f"uid={uid},{PEOPLE}"


def salted(scheme: str, password: str) -> str:
    salt = b"\x01\x02\x03\x04\x05\x06\x07\x08"
    digest = HASHES[scheme](password.encode() + salt).digest()
    return f"{{{scheme}}}" + base64.b64encode(digest + salt).decode()


def person(uid: str, password: str) -> str:
    return (f"dn: {dn_of(uid)}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\nsn: {uid}\n"
            f"userPassword: {password}\n\n")


@pytest.fixture(scope="module")
def users(server: Server) -> Server:
    ldif = (f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n\n"
            + person("alice", "alice-secret") + person("bob", "bob-secret")
            + person("carol", "carol-secret") + person("dave", "dave-secret")
            + "".join(person(scheme.lower(), salted(scheme, f"{scheme}-pw")) for scheme in HASHES))
    added = server.tool("ldapadd", input=ldif.encode())
    assert added.returncode == 0, added.stderr.decode()
    return server


def whoami(server: Server, *auth: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["ldapwhoami", "-H", server.uri, "-x", *auth],
                          capture_output=True, env=server.env(), timeout=60, check=False)


def as_user(dn: str, password: str) -> tuple[str, ...]:
    return ("-D", dn, "-w", password)


def test_whoami_anonymous(users: Server) -> None:
    result = whoami(users)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().strip() == "anonymous"


def test_whoami_root(users: Server) -> None:
    result = whoami(users, *as_user(users.root_dn, users.root_password))
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().strip().lower() == f"dn:{users.root_dn}"


def test_whoami_user(users: Server) -> None:
    result = whoami(users, *as_user(dn_of("alice"), "alice-secret"))
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().strip().lower() == f"dn:{dn_of('alice')}"


def test_bind_dn_is_matched_by_its_normal_form(users: Server) -> None:
    result = whoami(users, *as_user("UID=Alice, OU=People, DC=Example, DC=Com", "alice-secret"))
    assert result.returncode == 0, result.stderr.decode()


@pytest.mark.parametrize("scheme", sorted(HASHES))
def test_pre_hashed_passwords(users: Server, scheme: str) -> None:
    uid = scheme.lower()
    assert whoami(users, *as_user(dn_of(uid), f"{scheme}-pw")).returncode == 0
    assert whoami(users, *as_user(dn_of(uid), f"{scheme}-wrong")).returncode == 49


def test_clear_password_is_stored_hashed(users: Server) -> None:
    result = users.tool("ldapsearch", "-LLL", "-b", dn_of("alice"), "-s", "base",
                        "userPassword")
    (stored,) = by_dn(result.stdout)[dn_of("alice")].values("userPassword")
    assert stored.startswith("{ARGON2}")
    assert "alice-secret" not in stored


def test_wrong_password(users: Server) -> None:
    result = whoami(users, *as_user(dn_of("alice"), "wrong"))
    assert result.returncode == 49
    assert "Invalid credentials (49)" in result.stderr.decode()


def test_wrong_root_password(users: Server) -> None:
    assert whoami(users, *as_user(users.root_dn, "wrong")).returncode == 49


def test_unknown_dn_is_invalid_credentials_too(users: Server) -> None:
    result = whoami(users, *as_user(dn_of("nobody"), "whatever"))
    assert result.returncode == 49
    assert "Invalid credentials (49)" in result.stderr.decode()
    outside = whoami(users, *as_user("cn=x,o=elsewhere", "whatever"))
    assert outside.returncode == 49


def test_malformed_bind_dn(users: Server) -> None:
    result = whoami(users, *as_user("not a dn", "whatever"))
    assert result.returncode == 34, result.stderr.decode()


def test_ldap_version_2_bind_is_refused(users: Server) -> None:
    # certdir speaks LDAPv3 only (RFC 4511 §4.2: version 3 is this protocol).
    result = users.tool("ldapsearch", "-P", "2", "-b", "", "-s", "base", bind=False)
    assert result.returncode == 2, result.stderr.decode()
    assert "Protocol error (2)" in result.stderr.decode()


def test_entry_without_password_cannot_bind(users: Server) -> None:
    assert whoami(users, *as_user(PEOPLE, "anything")).returncode == 49


def test_unauthenticated_bind_is_refused(users: Server) -> None:
    result = whoami(users, *as_user(dn_of("alice"), ""))
    assert result.returncode == 53
    assert "Server is unwilling to perform (53)" in result.stderr.decode()


def passwd(server: Server, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["ldappasswd", "-H", server.uri, "-x", *args],
                          capture_output=True, env=server.env(), timeout=60, check=False)


def test_root_sets_a_password(users: Server) -> None:
    result = passwd(users, *as_user(users.root_dn, users.root_password),
                    "-s", "bob-new", dn_of("bob"))
    assert result.returncode == 0, result.stderr.decode()
    assert whoami(users, *as_user(dn_of("bob"), "bob-new")).returncode == 0
    assert whoami(users, *as_user(dn_of("bob"), "bob-secret")).returncode == 49


def test_root_has_a_password_generated(users: Server) -> None:
    result = passwd(users, *as_user(users.root_dn, users.root_password), dn_of("carol"))
    assert result.returncode == 0, result.stderr.decode()
    line = result.stdout.decode().strip()
    assert line.startswith("New password: ")
    generated = line.removeprefix("New password: ")
    assert len(generated) >= 8
    assert whoami(users, *as_user(dn_of("carol"), generated)).returncode == 0
    assert whoami(users, *as_user(dn_of("carol"), "carol-secret")).returncode == 49


def test_user_changes_own_password(users: Server) -> None:
    result = passwd(users, *as_user(dn_of("dave"), "dave-secret"),
                    "-a", "dave-secret", "-s", "dave-new")
    assert result.returncode == 0, result.stderr.decode()
    result = whoami(users, *as_user(dn_of("dave"), "dave-new"))
    assert result.stdout.decode().strip().lower() == f"dn:{dn_of('dave')}"
    assert whoami(users, *as_user(dn_of("dave"), "dave-secret")).returncode == 49


def test_wrong_old_password_changes_nothing(users: Server) -> None:
    result = passwd(users, *as_user(dn_of("alice"), "alice-secret"),
                    "-a", "not-the-old-one", "-s", "alice-new")
    assert result.returncode == 1
    assert whoami(users, *as_user(dn_of("alice"), "alice-new")).returncode == 49
    assert whoami(users, *as_user(dn_of("alice"), "alice-secret")).returncode == 0


def test_user_cannot_change_another_users_password(users: Server) -> None:
    result = passwd(users, *as_user(dn_of("alice"), "alice-secret"),
                    "-s", "hijacked", dn_of("ssha"))
    # ldappasswd exits 1 on any failure and prints the result on stdout.
    assert result.returncode == 1
    assert "Result: Insufficient access (50)" in result.stdout.decode()
    assert whoami(users, *as_user(dn_of("ssha"), "hijacked")).returncode == 49
    assert whoami(users, *as_user(dn_of("ssha"), "SSHA-pw")).returncode == 0


def test_anonymous_cannot_change_a_password(users: Server) -> None:
    result = passwd(users, "-s", "hijacked", dn_of("alice"))
    assert result.returncode == 1
    assert "Result: Strong(er) authentication required (8)" in result.stdout.decode()
    assert whoami(users, *as_user(dn_of("alice"), "alice-secret")).returncode == 0


def test_root_dn_in_another_spelling(users: Server) -> None:
    result = whoami(users, *as_user("CN=Admin, DC=Example,DC=COM", users.root_password))
    assert result.returncode == 0, result.stderr.decode()
    # The bound DN as the client spelled it, without the space (as slapd prints it).
    assert result.stdout.decode().strip() == "dn:CN=Admin,DC=Example,DC=COM"
