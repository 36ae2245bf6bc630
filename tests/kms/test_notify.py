"""Token mail through a real SMTP server (aiosmtpd) with STARTTLS and AUTH.

The server runs in its own thread; the client under test is Twisted's, on the
test reactor or, for the blocking batch helper, in a subprocess.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import ipaddress
import json
import ssl
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from twisted.internet import reactor

from kms.config import SMTPConfig
from kms.errors import KMSError
from kms.notify import send, token_message
from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
USER = "mailer"
PASSWORD = "s3cret-mail"
TOKEN = "ct-" + "a" * 32
EXPIRES = dt.datetime(2031, 1, 2, 3, 4, tzinfo=dt.UTC)
URL = "https://kms.example.com/kms/enroll"


@dataclass(frozen=True)
class PKI:
    ca_file: Path
    server_context: ssl.SSLContext
    stranger_ca_file: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _ca(common_name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, certificate


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    directory = tmp_path_factory.mktemp("smtp-pki")
    ca_key, ca = _ca("Test Mail CA")
    server_key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    server = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    (directory / "ca.pem").write_bytes(ca.public_bytes(pem))
    (directory / "server.pem").write_bytes(server.public_bytes(pem) + ca.public_bytes(pem))
    (directory / "server.key").write_bytes(
        server_key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    (directory / "stranger.pem").write_bytes(_ca("Someone Else")[1].public_bytes(pem))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(directory / "server.pem", directory / "server.key")
    return PKI(directory / "ca.pem", context, directory / "stranger.pem")


class Inbox:
    """The server's DATA handler: keeps what arrives."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 OK"


def _authenticate(
    server: SMTPServer, session: Session, envelope: Envelope, mechanism: str, data: Any
) -> AuthResult:
    good = isinstance(data, LoginPassword) and (data.login, data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=good, handled=False)


@dataclass(frozen=True)
class Server:
    port: int
    inbox: Inbox


def _serve(**settings: Any) -> Iterator[Server]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, **settings)
    controller.start()
    try:
        yield Server(port, inbox)
    finally:
        controller.stop()


@pytest.fixture(params=[(), ("LOGIN",)], ids=["login", "plain"])
def secure_server(request: pytest.FixtureRequest, pki: PKI) -> Iterator[Server]:
    """STARTTLS required, AUTH required, through LOGIN or (LOGIN excluded) PLAIN."""
    yield from _serve(
        tls_context=pki.server_context,
        require_starttls=True,
        auth_required=True,
        authenticator=_authenticate,
        auth_exclude_mechanism=request.param,
    )


@pytest.fixture
def plain_server() -> Iterator[Server]:
    """No STARTTLS, no AUTH: what an unconfigured relay looks like."""
    yield from _serve()


def _config(port: int, tmp_path: Path, password: str = PASSWORD, **changes: Any) -> SMTPConfig:
    password_file = tmp_path / "smtp-password"
    password_file.write_text(password + "\n")
    settings: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "username": USER,
        "password_file": password_file,
        "sender": "kms@example.com",
    }
    settings.update(changes)
    return SMTPConfig(**settings)


def _message(to: str = "alice@example.com") -> bytes:
    return token_message("kms@example.com", to, "Alice Example", TOKEN, EXPIRES, URL)


def test_token_message_is_rfc5322_with_redemption_instructions() -> None:
    raw = _message()
    assert b"\r\n" in raw
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["From"] == "kms@example.com"
    assert parsed["To"] == "Alice Example <alice@example.com>"
    assert parsed["Subject"]
    assert parsed["Date"].datetime.tzinfo is not None
    assert parsed["Message-ID"].endswith("@example.com>")
    body = parsed.get_body().get_content().replace("\r\n", "\n")  # type: ignore[union-attr]
    assert TOKEN in body
    assert "\n     https://kms.example.com/kms/redeem\n" in body
    command = body.partition("certdir kms enroll")[2].partition("\n\n")[0]
    # The command is one shell line continued with backslashes.
    command = command.replace("\\\n", " ").split()
    assert command == [
        *("--url", URL, "--token", TOKEN, "--csr", "signing.csr"),
        *("--p12-password-file", "pw", "--out", "bundle.p12"),
    ]
    assert parsed["Content-Transfer-Encoding"] == "7bit"
    assert "2031-01-02 03:04 UTC" in body


def test_token_message_refuses_an_unusable_address() -> None:
    with pytest.raises(KMSError, match=r"cannot mail 'bäd@example\.com'"):
        _message("bäd@example.com")


@pytest_twisted.ensureDeferred
async def test_token_arrives_over_starttls_with_auth(
    secure_server: Server, pki: PKI, tmp_path: Path
) -> None:
    config = _config(secure_server.port, tmp_path)
    await send(reactor, config, "alice@example.com", _message(), ca_file=pki.ca_file)
    (envelope,) = secure_server.inbox.envelopes
    assert envelope.mail_from == "kms@example.com"
    assert envelope.rcpt_tos == ["alice@example.com"]
    assert isinstance(envelope.content, bytes)
    assert TOKEN.encode() in envelope.content


@pytest_twisted.ensureDeferred
async def test_wrong_password_is_a_clear_error(
    secure_server: Server, pki: PKI, tmp_path: Path
) -> None:
    config = _config(secure_server.port, tmp_path, password="wrong")
    with pytest.raises(KMSError, match=r"refused the SMTP username or password \(535"):
        await send(reactor, config, "alice@example.com", _message(), ca_file=pki.ca_file)
    assert secure_server.inbox.envelopes == []


@pytest_twisted.ensureDeferred
async def test_server_without_starttls_is_refused(
    plain_server: Server, pki: PKI, tmp_path: Path
) -> None:
    config = _config(plain_server.port, tmp_path)
    with pytest.raises(KMSError, match="does not offer STARTTLS; refusing to send in clear"):
        await send(reactor, config, "alice@example.com", _message(), ca_file=pki.ca_file)
    assert plain_server.inbox.envelopes == []


@pytest_twisted.ensureDeferred
async def test_untrusted_server_certificate_is_refused(
    secure_server: Server, pki: PKI, tmp_path: Path
) -> None:
    config = _config(secure_server.port, tmp_path)
    with pytest.raises(
        KMSError, match=r"not sent through 127\.0\.0\.1:\d+: .*certificate verify failed"
    ):
        await send(reactor, config, "alice@example.com", _message(), ca_file=pki.stranger_ca_file)
    assert secure_server.inbox.envelopes == []


@pytest_twisted.ensureDeferred
async def test_credentials_without_starttls_are_never_sent(
    plain_server: Server, tmp_path: Path
) -> None:
    config = _config(plain_server.port, tmp_path, starttls=False)
    with pytest.raises(KMSError, match="refusing to send SMTP credentials"):
        await send(reactor, config, "alice@example.com", _message())
    assert plain_server.inbox.envelopes == []


@pytest_twisted.ensureDeferred
async def test_plain_relay_without_credentials(plain_server: Server, tmp_path: Path) -> None:
    config = SMTPConfig(host="127.0.0.1", port=plain_server.port, starttls=False)
    await send(reactor, config, "bob@example.com", _message("bob@example.com"))
    (envelope,) = plain_server.inbox.envelopes
    assert envelope.rcpt_tos == ["bob@example.com"]


def test_send_all_runs_one_batch_and_reports_each_recipient(
    secure_server: Server, pki: PKI, tmp_path: Path
) -> None:
    recipients = [f"user{n}@example.com" for n in range(12)] + ["bäd@example.com"]
    script = textwrap.dedent(
        """
        import json, sys
        from pathlib import Path
        from kms.config import SMTPConfig
        from kms.notify import send_all, token_message

        port, password_file, ca_file, recipients = json.loads(sys.argv[1])
        config = SMTPConfig(host="127.0.0.1", port=port, username="mailer",
                            password_file=Path(password_file), sender="kms@example.com")
        message = token_message("kms@example.com", "u@example.com", "U", "ct-x",
                                __import__("datetime").datetime.now(), "http://x")
        messages = [(to, message) for to in recipients]
        print(json.dumps(send_all(config, messages, ca_file=Path(ca_file))))
        """
    )
    config = _config(secure_server.port, tmp_path)
    arguments = [secure_server.port, str(config.password_file), str(pki.ca_file), recipients]
    done = subprocess.run(
        [sys.executable, "-c", script, json.dumps(arguments)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    outcomes = json.loads(done.stdout)
    assert [to for to, _ in outcomes] == recipients
    assert all(error is None for _, error in outcomes[:-1])
    assert "not ASCII" in outcomes[-1][1]
    assert sorted(envelope.rcpt_tos[0] for envelope in secure_server.inbox.envelopes) == sorted(
        recipients[:-1]
    )
