"""Token mail: an enrollment token delivered through the configured SMTP server.

- The message is RFC 5322 (From, To, Subject, Date, Message-ID: §3.6), CRLF
  line endings, and tells the holder how to redeem the token and when it
  expires (in the browser at the redemption page beside `enroll_url`, or
  with `certdir kms enroll --url`); body lines stay short so the token
  travels as plain 7bit text.
- With `starttls` the client upgrades the connection with STARTTLS (RFC 3207)
  before anything else and refuses to go on when the server does not offer it.
  Credentials never travel in clear: a username without STARTTLS is refused
  before any connection is made.
- With a username the client authenticates (RFC 4954; CRAM-MD5, LOGIN or
  PLAIN, whichever the server offers first in that order); the password comes
  from `password_file`, never from the configuration itself.
- TLS is 1.2 or newer (RFC 8996) and the server certificate must be valid for
  the configured host (RFC 6125) under the system trust store or, when given,
  the certificates of a CA file.
- Every failure is a `KMSError` naming the recipient, the server and its
  reply; the SMTP session log is never shown because it carries the AUTH
  exchange.
- Twisted's sender opens one connection per message; a batch keeps at most
  `CONCURRENT_SESSIONS` of them open at once.
"""

from __future__ import annotations

import datetime as dt
import email.policy
import email.utils
import urllib.parse
from collections.abc import Sequence
from email.headerregistry import Address
from email.message import EmailMessage
from io import BytesIO
from pathlib import Path
from typing import Any, NoReturn

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from twisted.internet import ssl, task
from twisted.internet.defer import Deferred, DeferredSemaphore, fail
from twisted.mail import smtp as twisted_smtp
from twisted.python.failure import Failure

from kms.config import SMTPConfig
from kms.errors import KMSError

CONCURRENT_SESSIONS = 8
# Seconds to wait for the connection and for each server reply.
TIMEOUT = 30

SUBJECT = "Your S/MIME enrollment token"

BODY = """\
Hello {name},

an S/MIME certificate pair is ready to be issued for {to}.

1. Make your signing key and its request on your own machine; the signing
   key never leaves it:

     openssl req -new -newkey rsa:3072 -nodes -keyout signing.key \\
       -subj "/CN={name}" -out signing.csr

2. Redeem the token in your browser at

     {redeem_url}

   or put the password that will protect your key bundle in a file "pw"
   and redeem it with certdir's command line (with --ca-file and your
   organisation's CA certificate if your system does not trust it yet):

     certdir kms enroll \\
       --url {enroll_url} \\
       --token {token} \\
       --csr signing.csr --p12-password-file pw --out bundle.p12

The bundle then holds your encryption key and both certificates; import it
and signing.key into your mail program.

The token works once and expires on {expires}.
"""

# Why a send failed, by the Twisted client's error class; the server's reply
# follows in the message.
EXPLANATIONS: dict[type[Exception], str] = {
    twisted_smtp.TLSRequiredError: "the server does not offer STARTTLS; refusing to send in clear",
    twisted_smtp.TLSError: "the TLS handshake failed",
    twisted_smtp.AUTHDeclinedError: "the server refused the SMTP username or password",
    twisted_smtp.AUTHRequiredError: "the server offers none of CRAM-MD5, LOGIN, PLAIN",
    twisted_smtp.EHLORequiredError: "the server does not speak ESMTP",
    twisted_smtp.AuthenticationError: "SMTP authentication failed",
    twisted_smtp.SMTPDeliveryError: "the server refused the message",
    twisted_smtp.SMTPConnectError: "no SMTP session",
    twisted_smtp.SMTPTimeoutError: "the server did not answer in time",
}


def token_message(
    sender: str, to: str, name: str, token: str, expires: dt.datetime, enroll_url: str
) -> bytes:
    """The token mail for `to`, ready for SMTP; `KMSError` for an unusable address."""
    message = EmailMessage(policy=email.policy.SMTP)
    message["From"] = sender
    try:
        message["To"] = Address(display_name=name, addr_spec=to)
    except ValueError as error:
        raise KMSError(f"cannot mail {to!r}: {error}") from error
    message["Subject"] = SUBJECT
    message["Date"] = email.utils.format_datetime(dt.datetime.now(dt.UTC))
    # make_msgid would otherwise resolve this machine's name on every call.
    message["Message-ID"] = email.utils.make_msgid(
        "certdir", domain=sender.rpartition("@")[2] or "localhost"
    )
    message.set_content(
        BODY.format(
            name=name,
            to=to,
            token=token,
            enroll_url=enroll_url,
            # The redemption page sits beside the endpoint (`kms.web_pages`).
            redeem_url=urllib.parse.urljoin(enroll_url, "redeem"),
            expires=expires.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        )
    )
    return message.as_bytes()


def send(
    reactor: Any, smtp: SMTPConfig, to: str, message: bytes, ca_file: Path | None = None
) -> Deferred[None]:
    """Deliver `message` to `to` through `smtp`; fails with `KMSError`."""
    try:
        recipient = _ascii_address(to)
        password = _password(smtp)
        tls = _tls_options(smtp, ca_file) if smtp.starttls else None
    except KMSError:
        return fail()
    outcome: Deferred[object] = Deferred()
    factory = twisted_smtp.ESMTPSenderFactory(
        smtp.username.encode() if smtp.username else None,
        password,
        smtp.sender,
        [recipient],
        # Twisted's sender turns every LF into CRLF itself.
        BytesIO(message.replace(b"\r\n", b"\n")),
        outcome,
        retries=0,
        timeout=TIMEOUT,
        contextFactory=tls,
        heloFallback=tls is None and password is None,
        requireAuthentication=password is not None,
        requireTransportSecurity=smtp.starttls,
    )
    reactor.connectTCP(smtp.host, smtp.port, factory, timeout=TIMEOUT)

    def sent(_: object) -> None:
        return None

    def refused(failure: Failure) -> NoReturn:
        error = failure.value
        assert error is not None
        raise KMSError(
            f"mail to {to} not sent through {smtp.host}:{smtp.port}: {_reason(error)}"
        ) from error

    return outcome.addCallbacks(sent, refused)


def send_all(
    smtp: SMTPConfig, messages: Sequence[tuple[str, bytes]], ca_file: Path | None = None
) -> list[tuple[str, str | None]]:
    """Deliver every (recipient, message); per recipient, None or why it failed.

    Runs the reactor once, so a process calls it at most once.
    """
    outcomes: list[tuple[str, str | None]] = []
    crashed: list[BaseException] = []

    async def batch(reactor: Any) -> None:
        sessions = DeferredSemaphore(CONCURRENT_SESSIONS)
        pending = [
            (to, sessions.run(send, reactor, smtp, to, message, ca_file))
            for to, message in messages
        ]
        for to, delivery in pending:
            try:
                await delivery
            except KMSError as error:
                outcomes.append((to, str(error)))
            except Exception as error:
                crashed.append(error)
                return
            else:
                outcomes.append((to, None))

    try:
        task.react(batch)
    except SystemExit as exit_:
        # react ends the process by design; the caller still has work to do.
        if exit_.code not in (0, None):
            raise
    if crashed:
        raise crashed[0]
    return outcomes


def _ascii_address(to: str) -> bytes:
    try:
        return to.encode("ascii")
    except UnicodeEncodeError:
        raise KMSError(f"mail address {to!r} is not ASCII; SMTPUTF8 is not supported") from None


def _password(smtp: SMTPConfig) -> bytes | None:
    if smtp.username is None:
        return None
    if not smtp.starttls:
        raise KMSError(
            f"refusing to send SMTP credentials to {smtp.host} without STARTTLS; "
            "set kms.smtp.starttls"
        )
    if smtp.password_file is None:
        raise KMSError(f"kms.smtp.username {smtp.username!r} is set but no password_file")
    try:
        password = smtp.password_file.read_bytes().rstrip(b"\r\n")
    except OSError as error:
        raise KMSError(
            f"cannot read the SMTP password file {smtp.password_file}: {error.strerror}"
        ) from error
    if not password:
        raise KMSError(f"the SMTP password file {smtp.password_file} is empty")
    return password


def _tls_options(smtp: SMTPConfig, ca_file: Path | None) -> Any:
    trust = ssl.platformTrust() if ca_file is None else _trust_from(ca_file)
    return ssl.optionsForClientTLS(
        smtp.host,
        trustRoot=trust,
        extraCertificateOptions={"raiseMinimumTo": ssl.TLSVersion.TLSv1_2},
    )


def _trust_from(ca_file: Path) -> Any:
    try:
        certificates = x509.load_pem_x509_certificates(ca_file.read_bytes())
    except (OSError, ValueError) as error:
        raise KMSError(f"cannot read CA certificates from {ca_file}: {error}") from error
    return ssl.trustRootFromCertificates(
        [
            ssl.Certificate.load(certificate.public_bytes(Encoding.DER))
            for certificate in certificates
        ]
    )


def _reason(error: BaseException) -> str:
    if not isinstance(error, twisted_smtp.SMTPClientError):
        return str(error) or type(error).__name__
    reply = error.resp.decode("utf-8", "replace").strip()
    if error.code > 0:
        reply = f"{error.code:03d} {reply}"
    explanation = next(
        (text for kind, text in EXPLANATIONS.items() if isinstance(error, kind)), None
    )
    return reply if explanation is None else f"{explanation} ({reply})"
