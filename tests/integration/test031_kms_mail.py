"""Scenario 031: enrollment by mail and over HTTPS, end to end.

- A real SMTP server (aiosmtpd) receives the token mail `kms enroll-user`
  sends; the mail names the web service's https enrollment URL, where the
  token is redeemed (`kms enroll --url`, the server verified against the
  data directory's public/ca.pem or `--ca-file`); `openssl pkcs12` reads the
  bundle and ldapsearch sees both certificates on the entry.
- A server certificate the given CA did not issue is refused by name,
  before the token is sent. Plain http is not served for enrollment: the
  server redirects (308) to https and the client refuses http URLs; the
  token stays unused.
- `kms enroll-bulk` mails a token to every person with mail under a base and
  skips those without; the summary says so.
- The endpoint refuses a used token with the KMS's reason and the server
  keeps serving.
- With `auto_enroll`, adding a person with ldapadd mails them a token.
"""

from __future__ import annotations

import http.client
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from tests.integration.conftest import SUFFIX, Server, make_server
from tests.integration.ldif_compare import by_dn
from tests.ports import free_port

PEOPLE = f"ou=people,{SUFFIX}"
TOKEN = re.compile(r"\bct-[a-z2-7]{32}\b")


@dataclass
class Mailbox:
    messages: list[tuple[list[str], bytes]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), bytes(envelope.content)))
        return "250 OK"

    def text_for(self, address: str) -> str:
        for recipients, content in reversed(self.messages):
            if address in recipients:
                body = message_from_bytes(content).get_payload(decode=True)
                assert isinstance(body, bytes)
                return body.decode()
        raise AssertionError(f"no mail to {address}")

    def token_for(self, address: str) -> str:
        found = TOKEN.search(self.text_for(address))
        assert found is not None, self.text_for(address)
        return found.group(0)


@dataclass
class World:
    server: Server
    mailbox: Mailbox
    enroll_url: str
    tmp: Path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("kms-mail")
    mailbox = Mailbox()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    server = make_server(tmp)
    server.configure("kms", auto_enroll=True,
                     smtp={"host": "127.0.0.1", "port": smtp.port, "starttls": False,
                           "sender": "pki@example.com"})
    server.start()
    people = "".join(
        f"dn: uid={uid},{PEOPLE}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\n"
        f"sn: {uid}\n" + (f"mail: {uid}@example.com\n" if uid != "nomail" else "") + "\n"
        for uid in ("erin", "frank", "grace", "nomail"))
    added = server.tool("ldapadd", input=(
        f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n\n{people}").encode())
    assert added.returncode == 0, added.stderr
    yield World(server, mailbox, f"{server.https_url}/kms/enroll", tmp)
    smtp.stop()
    assert "Traceback" not in server.stop()


def certificates_on(server: Server, dn: str) -> list[str]:
    found = server.tool("ldapsearch", "-LLL", "-b", dn, "-s", "base", "(objectClass=*)",
                        "userCertificate;binary", bind=False)
    assert found.returncode == 0, found.stderr
    return list(by_dn(found.stdout)[dn.lower()].values("userCertificate;binary"))


def redeem(world: World, token: str, name: str, *trust: str,
           url: str | None = None) -> subprocess.CompletedProcess[bytes]:
    """`kms enroll --url` trusting the data directory's CA, or as `trust` says."""
    csr = world.tmp / f"{name}.csr"
    subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(world.tmp / f"{name}.key"),
                    "-subj", "/CN=x", "-out", str(csr)], check=True, capture_output=True)
    password = world.tmp / "p12-password"
    password.write_text("mail-bundle\n")
    trust = trust or ("--data-dir", str(world.server.data_dir))
    return world.server.certdir("kms", "enroll", "--url", url or world.enroll_url, *trust,
                                "--token", token, "--csr", str(csr), "--p12-password-file",
                                str(password), "--out", str(world.tmp / f"{name}.p12"),
                                check=False)


def test_mailed_token_redeemed_over_https(world: World) -> None:
    sent = world.server.certdir("kms", "enroll-user", "--data-dir", str(world.server.data_dir),
                                "--mail", "erin@example.com")
    assert b"mailed to erin@example.com" in sent.stdout
    token = world.mailbox.token_for("erin@example.com")
    mail = world.mailbox.text_for("erin@example.com")
    assert world.enroll_url in mail
    assert f"{world.server.https_url}/kms/redeem" in mail
    done = redeem(world, token, "erin")
    assert done.returncode == 0, done.stderr
    shown = subprocess.run(["openssl", "pkcs12", "-in", str(world.tmp / "erin.p12"),
                            "-passin", "pass:mail-bundle", "-nodes"], capture_output=True,
                           check=True)
    assert b"BEGIN PRIVATE KEY" in shown.stdout
    assert len(certificates_on(world.server, f"uid=erin,{PEOPLE}")) == 2
    again = redeem(world, token, "erin-again")
    assert again.returncode == 1
    assert b"already used" in again.stderr, again.stderr


def test_bulk_enrollment_mails_everyone_with_mail(world: World) -> None:
    before = len(world.mailbox.messages)
    out = world.tmp / "undelivered.csv"
    done = world.server.certdir("kms", "enroll-bulk", "--data-dir", str(world.server.data_dir),
                                "--base", PEOPLE, "--filter", "(objectClass=inetOrgPerson)",
                                "--out", str(out))
    summary = done.stdout.decode()
    assert re.search(r"│\s*4\s*│\s*3\s*│\s*3\s*│\s*1\s*│\s*0\s*│", summary), summary
    assert len(world.mailbox.messages) - before == 3
    assert not out.exists()
    token = world.mailbox.token_for("grace@example.com")
    assert redeem(world, token, "grace").returncode == 0


def test_new_person_is_mailed_a_token(world: World) -> None:
    added = world.server.tool("ldapadd", input=(
        f"dn: uid=henry,{PEOPLE}\nobjectClass: inetOrgPerson\nuid: henry\ncn: Henry\n"
        "sn: Henry\nmail: henry@example.com\n").encode())
    assert added.returncode == 0, added.stderr
    deadline = time.monotonic() + 10
    while not any("henry@example.com" in to for to, _ in world.mailbox.messages):
        assert time.monotonic() < deadline, "no mail for the new person"
        time.sleep(0.1)
    assert redeem(world, world.mailbox.token_for("henry@example.com"), "henry").returncode == 0
    assert len(certificates_on(world.server, f"uid=henry,{PEOPLE}")) == 2


def test_untrusted_server_and_plain_http_are_refused(world: World) -> None:
    sent = world.server.certdir("kms", "enroll-user", "--data-dir", str(world.server.data_dir),
                                "--mail", "frank@example.com")
    assert b"mailed to frank@example.com" in sent.stdout
    token = world.mailbox.token_for("frank@example.com")
    stranger = world.tmp / "stranger-ca.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(world.tmp / "stranger.key"),
                    "-subj", "/CN=Stranger CA", "-days", "1", "-out", str(stranger)],
                   check=True, capture_output=True)
    wrong_ca = redeem(world, token, "frank-wrong-ca", "--ca-file", str(stranger))
    assert wrong_ca.returncode == 1
    assert re.search(rf"the KMS at {re.escape(world.enroll_url)} is not trusted by "
                     rf"{re.escape(str(stranger))}: ".encode(), wrong_ca.stderr), wrong_ca.stderr
    plain_url = f"{world.server.http_url}/kms/enroll"
    plain = redeem(world, token, "frank-plain", url=plain_url)
    assert plain.returncode == 1
    assert b"enrollment is served over https only" in plain.stderr, plain.stderr
    connection = http.client.HTTPConnection("127.0.0.1", world.server.http_port, timeout=30)
    connection.request("POST", "/kms/enroll", body=f"token={token}&csr=x&p12_password=y",
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    answer = connection.getresponse()
    assert (answer.status, answer.getheader("Location")) == (308, world.enroll_url)
    connection.close()
    done = redeem(world, token, "frank", "--ca-file", str(world.server.ca_file))
    assert done.returncode == 0, done.stderr
