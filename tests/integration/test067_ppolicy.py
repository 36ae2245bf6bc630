"""Scenario 067: password policy (issue 10 part 3; draft-behera-ldap-password-policy-10).

Policies by subtree in certdir.yaml (`password_policy`), the root DN's
per-source backoff (`root_backoff`):

- Lockout: after `lockout.failures` wrong passwords the right one gets
  invalidCredentials (49) until `lockout.duration` has passed;
  `ldapwhoami -e ppolicy` shows "Account locked". Pipelined guesses (an
  {SSHA} account verifies in microseconds: 6,000+ guesses/s before) lock
  after exactly that many.
- Quality: too short (passwordTooShort) and too few character classes
  (insufficientPasswordQuality) are constraintViolation (19), by
  ldappasswd and ldapmodify, with the error in the response control.
- History: the current and the last `history` passwords cannot come back.
- Expiry: a warning within `expire_warning`; after `max_age`, grace logins
  counted down, then 49 "Password expired".
- The state attributes are NO-USER-MODIFICATION and hidden from users.
- Root backoff: after N wrong root passwords from 127.0.0.1 the right one
  from 127.0.0.1 is refused (49) for the delay; from 127.0.0.2 it binds.
"""

from __future__ import annotations

import base64
import hashlib
import re
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest

from directory.protocol import ber
from directory.protocol.codec import decode, encode
from directory.protocol.messages import BindRequest, BindResponse, LDAPMessage
from tests.integration.conftest import SUFFIX, Server, make_server
from tests.integration.ldif_compare import parse

PASSWORD = "Secret-pw1"
LOCK_SECONDS = 3
POLICIES = [
    {"subtree": f"ou=locked,{SUFFIX}", "lockout": {"failures": 3, "duration": f"{LOCK_SECONDS}s"}},
    {"subtree": f"ou=guessed,{SUFFIX}", "lockout": {"failures": 5, "duration": "1h"}},
    {"subtree": f"ou=quality,{SUFFIX}", "min_length": 8, "min_classes": 3, "history": 2},
    {"subtree": f"ou=expiry,{SUFFIX}", "max_age": "2s", "grace_logins": 2},
    {"subtree": f"ou=warn,{SUFFIX}", "max_age": "1000s", "expire_warning": "2000s"},
]
OUS = ("locked", "guessed", "quality", "expiry", "warn", "free")


def dn_of(uid: str, ou: str) -> str:
    return f"uid={uid},ou={ou},{SUFFIX}"


def ssha(password: str) -> str:
    salt = b"saltsalt"
    return "{SSHA}" + base64.b64encode(hashlib.sha1(password.encode() + salt).digest()
                                       + salt).decode()


def person(uid: str, ou: str, password: str = PASSWORD) -> str:
    return (f"dn: {dn_of(uid, ou)}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\n"
            f"sn: {uid}\nuserPassword: {password}\n\n")


def add(server: Server, ldif: str) -> None:
    added = server.tool("ldapadd", input=ldif.encode())
    assert added.returncode == 0, added.stderr.decode()


@pytest.fixture(scope="module")
def policed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = make_server(tmp_path_factory.mktemp("ppolicy"), "--no-ca")
    # The password queue's share per client is wide enough for the whole pipeline
    # (the default answers most of a flood with busy, 51: scenario 066), so what
    # is judged here is the policy alone.
    server.configure(password_policy=POLICIES)
    server.configure("passwords", queue_per_client=512, queue_total=512)
    server.start()
    add(server, "".join(f"dn: ou={ou},{SUFFIX}\nobjectClass: organizationalUnit\nou: {ou}\n\n"
                        for ou in OUS))
    yield server
    assert "Traceback" not in server.stop()


@pytest.fixture(scope="module")
def backed_off(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = make_server(tmp_path_factory.mktemp("backoff"), "--no-ca")
    server.configure(root_backoff={"failures": 3, "delay": "3s", "max_delay": "6s"})
    server.start()
    yield server
    assert "Traceback" not in server.stop()


def whoami(server: Server, dn: str, password: str, *options: str,
           ) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["ldapwhoami", "-H", server.uri, "-x", *options, "-D", dn,
                           "-w", password], capture_output=True, env=server.env(),
                          timeout=60, check=False)


def as_user(server: Server, dn: str, password: str, tool: str, *args: str,
            input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([tool, "-H", server.uri, "-x", "-D", dn, "-w", password, *args],
                          input=input, capture_output=True, env=server.env(), timeout=60,
                          check=False)


def replace_password(dn: str, password: str) -> bytes:
    return (f"dn: {dn}\nchangetype: modify\nreplace: userPassword\n"
            f"userPassword: {password}\n").encode()


def state_of(server: Server, dn: str) -> dict[str, list[str]]:
    found = server.tool("ldapsearch", "-LLL", "-b", dn, "-s", "base", "(objectClass=*)",
                        "pwdChangedTime", "pwdFailureTime", "pwdAccountLockedTime",
                        "pwdGraceUseTime", "pwdHistory")
    assert found.returncode == 0, found.stderr.decode()
    entry = parse(found.stdout)[0]
    return {name: list(entry.values(name)) for name in ("pwdChangedTime", "pwdFailureTime",
                                                  "pwdAccountLockedTime", "pwdGraceUseTime",
                                                  "pwdHistory")}


def recorded(server: Server, dn: str, name: str, count: int) -> bool:
    """Whether `name` reaches `count` values: a failure is written just after
    the client has its answer."""
    deadline = time.monotonic() + 10
    while len(state_of(server, dn)[name]) != count:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def pipelined_binds(server: Server, dn: str, passwords: list[str],
                    source: str = "127.0.0.1") -> list[int]:
    """Send every bind in one write on one connection; the result codes in order."""
    wire = b"".join(encode(LDAPMessage(i + 1, BindRequest(3, dn, p.encode())))
                    for i, p in enumerate(passwords))
    codes: list[int] = []
    with socket.create_connection(("127.0.0.1", server.port), timeout=120,
                                  source_address=(source, 0)) as sock:
        sock.sendall(wire)
        buffer = b""
        while len(codes) < len(passwords):
            chunk = sock.recv(65536)
            assert chunk, "the server closed the connection"
            buffer += chunk
            while (size := ber.header_length(buffer)) is not None and \
                    len(buffer) >= sum(size):
                length = sum(size)
                message = decode(buffer[:length])
                buffer = buffer[length:]
                assert isinstance(message.op, BindResponse)
                codes.append(int(message.op.result.code))
    return codes


# --- lockout -----------------------------------------------------------------

def test_lockout_after_failures_then_unlocked_after_duration(policed: Server) -> None:
    add(policed, person("lena", "locked"))
    dn = dn_of("lena", "locked")
    assert [whoami(policed, dn, "wrong").returncode for _ in range(3)] == [49, 49, 49]
    locked = whoami(policed, dn, PASSWORD, "-e", "ppolicy")
    assert locked.returncode == 49
    assert locked.stderr.decode().splitlines()[0] == \
        "ldap_bind: Invalid credentials (49); Account locked"
    assert len(state_of(policed, dn)["pwdAccountLockedTime"]) == 1
    time.sleep(LOCK_SECONDS + 0.5)
    unlocked = whoami(policed, dn, PASSWORD, "-e", "ppolicy")
    assert unlocked.returncode == 0, unlocked.stderr.decode()
    assert unlocked.stdout.decode().strip() == f"dn:{dn}"
    assert state_of(policed, dn)["pwdFailureTime"] == []


def test_locked_answer_without_the_request_control_has_no_detail(policed: Server) -> None:
    add(policed, person("luke", "locked"))
    dn = dn_of("luke", "locked")
    for _ in range(3):
        whoami(policed, dn, "wrong")
    locked = whoami(policed, dn, PASSWORD)
    assert locked.returncode == 49
    assert locked.stderr.decode().splitlines()[0] == "ldap_bind: Invalid credentials (49)"


def test_success_clears_failures(policed: Server) -> None:
    add(policed, person("sam", "locked"))
    dn = dn_of("sam", "locked")
    assert [whoami(policed, dn, "wrong").returncode for _ in range(2)] == [49, 49]
    assert recorded(policed, dn, "pwdFailureTime", 2)
    assert whoami(policed, dn, PASSWORD).returncode == 0
    assert whoami(policed, dn, "wrong").returncode == 49
    assert whoami(policed, dn, PASSWORD).returncode == 0


def test_pipelined_guesses_at_an_ssha_account_lock_after_five(policed: Server) -> None:
    add(policed, person("gus", "guessed", ssha("right-one")))
    dn = dn_of("gus", "guessed")
    started = time.monotonic()
    codes = pipelined_binds(policed, dn, [f"guess-{i}" for i in range(300)] + ["right-one"])
    elapsed = time.monotonic() - started
    assert codes == [49] * 301
    assert len(state_of(policed, dn)["pwdFailureTime"]) == 5
    assert len(state_of(policed, dn)["pwdAccountLockedTime"]) == 1
    print(f"301 pipelined binds in {elapsed:.2f} s; locked after 5")


# --- quality and history -----------------------------------------------------

def test_too_short_by_ldappasswd_is_constraint_violation(policed: Server) -> None:
    add(policed, person("quinn", "quality"))
    dn = dn_of("quinn", "quality")
    result = as_user(policed, dn, PASSWORD, "ldappasswd", "-e", "ppolicy", "-s", "Ab1-")
    assert result.returncode == 1
    lines = result.stdout.decode().splitlines()
    assert "Result: Constraint violation (19)" in lines
    assert "ppolicy: error=6 (Password is too short for policy)" in lines
    assert whoami(policed, dn, PASSWORD).returncode == 0


def test_too_few_classes_by_ldapmodify_is_constraint_violation(policed: Server) -> None:
    add(policed, person("quentin", "quality"))
    dn = dn_of("quentin", "quality")
    result = as_user(policed, dn, PASSWORD, "ldapmodify", "-e", "ppolicy",
                     input=replace_password(dn, "onlylowercase"))
    assert result.returncode == 19
    assert "ppolicy: error=5 (Password fails quality checks)" in result.stdout.decode()
    assert whoami(policed, dn, "onlylowercase").returncode == 49


def test_a_good_password_passes_and_is_recorded(policed: Server) -> None:
    add(policed, person("grace", "quality"))
    dn = dn_of("grace", "quality")
    before = state_of(policed, dn)["pwdChangedTime"]
    time.sleep(1.1)
    result = as_user(policed, dn, PASSWORD, "ldappasswd", "-s", "Better-pw-2")
    assert result.returncode == 0, result.stderr.decode()
    after = state_of(policed, dn)
    assert len(before) == 1 and after["pwdChangedTime"] != before
    assert len(after["pwdHistory"]) == 1
    assert re.fullmatch(r"\d{14}Z#1\.3\.6\.1\.4\.1\.1466\.115\.121\.1\.40#\d+#\{ARGON2\}.*",
                        after["pwdHistory"][0])
    assert whoami(policed, dn, "Better-pw-2").returncode == 0


def test_history_refuses_the_last_passwords(policed: Server) -> None:
    add(policed, person("hugo", "quality"))
    dn = dn_of("hugo", "quality")
    same = as_user(policed, dn, PASSWORD, "ldappasswd", "-e", "ppolicy", "-s", PASSWORD)
    assert same.returncode == 1
    assert "ppolicy: error=8 (New password is in list of old passwords)" in \
        same.stdout.decode().splitlines()
    steps = [(PASSWORD, "Second-pw2"), ("Second-pw2", "Third-pw3")]
    for old, new in steps:
        assert as_user(policed, dn, old, "ldappasswd", "-s", new).returncode == 0
    back = as_user(policed, dn, "Third-pw3", "ldapmodify", "-e", "ppolicy",
                   input=replace_password(dn, PASSWORD))
    assert back.returncode == 19
    assert "ppolicy: error=8 (New password is in list of old passwords)" in \
        back.stdout.decode()
    assert as_user(policed, dn, "Third-pw3", "ldappasswd", "-s", "Fourth-pw4").returncode == 0
    oldest = as_user(policed, dn, "Fourth-pw4", "ldappasswd", "-s", PASSWORD)
    assert oldest.returncode == 0, oldest.stdout.decode()


def test_root_is_exempt_from_quality(policed: Server) -> None:
    add(policed, person("rita", "quality", "short"))
    assert whoami(policed, dn_of("rita", "quality"), "short").returncode == 0


# --- expiry ------------------------------------------------------------------

def test_warning_before_expiry(policed: Server) -> None:
    add(policed, person("wanda", "warn"))
    result = whoami(policed, dn_of("wanda", "warn"), PASSWORD, "-e", "ppolicy")
    assert result.returncode == 0, result.stderr.decode()
    line = result.stderr.decode().splitlines()[0]
    seconds = re.fullmatch(r"ldap_bind: Success \(0\) \(Password expires in (\d+) seconds\)",
                           line)
    assert seconds is not None, line
    assert 900 < int(seconds.group(1)) <= 1000


def test_grace_logins_then_expired(policed: Server) -> None:
    add(policed, person("eve", "expiry"))
    dn = dn_of("eve", "expiry")
    time.sleep(2.5)
    answers = [whoami(policed, dn, PASSWORD, "-e", "ppolicy") for _ in range(3)]
    assert [a.returncode for a in answers] == [0, 0, 49]
    assert [a.stderr.decode().splitlines()[0] for a in answers] == [
        "ldap_bind: Success (0) (Password expired, 1 grace logins remain)",
        "ldap_bind: Success (0) (Password expired, 0 grace logins remain)",
        "ldap_bind: Invalid credentials (49); Password expired",
    ]
    assert len(state_of(policed, dn)["pwdGraceUseTime"]) == 2


# --- the state attributes ----------------------------------------------------

def test_state_is_no_user_modification(policed: Server) -> None:
    result = policed.tool("ldapmodify", input=(
        f"dn: {dn_of('lena', 'locked')}\nchangetype: modify\n"
        f"replace: pwdAccountLockedTime\npwdAccountLockedTime: 20000101000000Z\n").encode())
    assert result.returncode == 19, result.stderr.decode()


def test_state_is_hidden_from_the_user(policed: Server) -> None:
    add(policed, person("holly", "quality"))
    dn = dn_of("holly", "quality")
    assert as_user(policed, dn, PASSWORD, "ldappasswd", "-s", "Changed-pw9").returncode == 0
    assert state_of(policed, dn)["pwdHistory"] != []
    own = as_user(policed, dn, "Changed-pw9", "ldapsearch", "-LLL", "-b", dn, "-s", "base",
                  "(objectClass=*)", "+", "pwdHistory")
    assert own.returncode == 0, own.stderr.decode()
    assert b"pwd" not in own.stdout


def test_no_policy_no_state(policed: Server) -> None:
    add(policed, person("fred", "free"))
    dn = dn_of("fred", "free")
    assert whoami(policed, dn, "wrong").returncode == 49
    assert state_of(policed, dn) == {k: [] for k in state_of(policed, dn)}


# --- root per-source backoff -------------------------------------------------

def test_root_backoff_per_source(backed_off: Server) -> None:
    root = backed_off.root_dn
    assert [whoami(backed_off, root, "wrong").returncode for _ in range(3)] == [49, 49, 49]
    refused = whoami(backed_off, root, backed_off.root_password)
    assert refused.returncode == 49
    assert "too many failed binds from 127.0.0.1" in refused.stderr.decode()
    assert pipelined_binds(backed_off, root, [backed_off.root_password],
                           source="127.0.0.2") == [0]
    time.sleep(3.5)
    assert whoami(backed_off, root, backed_off.root_password).returncode == 0


def test_root_backoff_holds_against_a_pipelined_burst(backed_off: Server) -> None:
    root = backed_off.root_dn
    assert whoami(backed_off, root, "wrong").returncode == 49
    codes = pipelined_binds(backed_off, root, ["wrong"] * 40 + [backed_off.root_password])
    assert codes == [49] * 41
    time.sleep(6.5)
    assert whoami(backed_off, root, backed_off.root_password).returncode == 0
