"""Sending the emails better-auth's flows ask for: verification, password reset,
account deletion and change-email confirmation.

better-auth does not send mail itself: it calls user callbacks such as
`sendVerificationEmail({user, url, token}, request)` (spec §3.2, §9.3, §9.4). Bastion does
the same with `EmailLink` and an `EmailSender`; `call_sender` runs either kind of callback
without blocking the event loop. For those who do not want to write the callbacks, a
`Mailer` (`ConsoleMailer` for development, `SMTPMailer` for production) turns into one
with `verification_sender`, `reset_password_sender`, `delete_account_sender` and
`change_email_sender`. The identity runs the callbacks with `send_or_log`: a mail that
could not be sent is logged, and never answers a 500.

EmailDeliveryError    a mailer could not hand the message over (never carries the password)
"""

from __future__ import annotations

import html
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import KW_ONLY, dataclass, field
from email.message import EmailMessage as MIMEMessage
from email.utils import formatdate, make_msgid, parseaddr
from typing import Any, Protocol, TextIO, runtime_checkable

import aiosmtplib

from .._callbacks import call_user

__all__ = [
    "ConsoleMailer",
    "EmailDeliveryError",
    "EmailLink",
    "EmailMessage",
    "EmailSender",
    "Mailer",
    "SMTPMailer",
    "call_sender",
    "change_email_sender",
    "delete_account_sender",
    "reset_password_sender",
    "send_or_log",
    "verification_sender",
]

logger = logging.getLogger(__name__)


# --- what better-auth hands to its callbacks -------------------------------------------


@dataclass(frozen=True, slots=True)
class EmailLink:
    """The first argument of every email callback: `{user, url, token}` in better-auth.

    `user` is the user record as the API returns it (`user["email"]`, `user["name"]`, ...);
    `url` is the link to put in the mail; `token` is the bare token inside it, for those who
    build their own URL. `new_email` is set only for change-email confirmation, whose mail
    goes to the *current* address and asks to approve the move to `new_email`.
    """

    user: Mapping[str, Any]
    url: str
    token: str
    new_email: str | None = None


EmailSender = Callable[[EmailLink, Any], Awaitable[None] | None]
"""`(link, request) -> None`, sync or async; `request` is the incoming request, or None
when the flow was started from the server API."""


async def call_sender(callback: EmailSender, link: EmailLink, request: Any | None) -> None:
    """Run an email callback: await an async one, run a sync one in a worker thread, so a
    slow synchronous SMTP call never blocks the event loop."""
    await call_user(callback, link, request)


async def send_or_log(
    callback: EmailSender, link: EmailLink, request: Any | None, *, purpose: str
) -> bool:
    """`call_sender`, but a callback that raises (an address the SMTP server refuses, a
    mail service that is down, any bug) is logged in one line and gives False.

    better-auth 1.7.25 runs its mail callbacks so (`runInBackgroundOrAwait`): the request
    goes on as if the mail had gone. Then a refused address cannot turn a request into a
    500, nor answer differently from an unknown address (S7). The line names the purpose,
    the user's id and the error, with the link's token cut out; no traceback.
    """
    try:
        await call_sender(callback, link, request)
    except Exception as exc:  # whatever the user's callback raises
        logger.error(
            "%s email for user %s not sent: %s", purpose, link.user.get("id"), _reason(exc, link)
        )
        return False
    return True


def _reason(exc: Exception, link: EmailLink) -> str:
    text = str(exc).replace(link.token, "[token]") if link.token else str(exc)
    text = " ".join(text.split())  # one line, whatever an SMTP server's reply held
    if len(text) > 300:
        text = text[:300] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# --- messages and mailers --------------------------------------------------------------


def _check_header(name: str, value: str) -> None:
    if "\r" in value or "\n" in value:
        raise ValueError(f"{name} must not contain line breaks")


@dataclass(frozen=True, slots=True)
class EmailMessage:
    """One email to one recipient: a plain-text body and, optionally, an HTML alternative."""

    to: str
    subject: str
    text: str
    html: str | None = None

    def __post_init__(self) -> None:
        if not self.to or "@" not in self.to:
            raise ValueError(f"not an email address: {self.to!r}")
        _check_header("to", self.to)
        _check_header("subject", self.subject)


@runtime_checkable
class Mailer(Protocol):
    """Something that delivers an `EmailMessage`, or raises `EmailDeliveryError`."""

    async def send(self, message: EmailMessage) -> None: ...


class EmailDeliveryError(Exception):
    """A mailer could not hand a message over (connection, TLS, AUTH or a refusal).

    The message names the recipient and the server, never the password.
    """


class ConsoleMailer:
    """The development mailer: sends nothing, shows each message as one block (recipient,
    subject, text with the link) on `stream` and/or as an INFO record on `logger`.

    With neither given it writes to `sys.stderr` (looked up at send time, so a test's
    capture sees it).
    """

    RULE = "=" * 72

    def __init__(self, stream: TextIO | None = None, logger: logging.Logger | None = None) -> None:
        self.stream = stream
        self.logger = logger

    def render(self, message: EmailMessage) -> str:
        return (
            f"{self.RULE}\n"
            f"Email (not sent: ConsoleMailer)\n"
            f"To: {message.to}\n"
            f"Subject: {message.subject}\n"
            f"\n"
            f"{message.text.rstrip()}\n"
            f"{self.RULE}\n"
        )

    async def send(self, message: EmailMessage) -> None:
        block = self.render(message)
        if self.logger is not None:
            self.logger.info("%s", block.rstrip("\n"))
        if self.stream is not None or self.logger is None:
            stream = self.stream if self.stream is not None else sys.stderr
            stream.write(block)
            stream.flush()


_TRUE = frozenset({"1", "true", "yes", "on", "tls", "ssl"})
_FALSE = frozenset({"0", "false", "no", "off", "none", "plain"})


@dataclass(frozen=True)
class SMTPMailer:
    """Delivers over SMTP with aiosmtplib, one connection per message.

    `use_tls` opens an implicit-TLS connection (SMTPS, usually port 465). `start_tls`:
    None upgrades with STARTTLS when the server offers it, True requires it, False never
    upgrades. `username`/`password` log in with AUTH when given. `sender` is the From
    header (`"Bastion <no-reply@example.com>"` or a bare address).
    """

    host: str = "localhost"
    port: int = 587
    _: KW_ONLY
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    sender: str
    use_tls: bool = False
    start_tls: bool | None = None
    timeout: float = 10.0

    def __post_init__(self) -> None:
        if not self.host:
            raise ValueError("SMTP host must not be empty")
        if not 0 < self.port < 65536:
            raise ValueError(f"SMTP port out of range: {self.port}")
        if self.use_tls and self.start_tls:
            raise ValueError("use_tls (implicit TLS) and start_tls are mutually exclusive")
        if (self.username is None) != (self.password is None):
            raise ValueError("SMTP username and password go together")
        if self.timeout <= 0:
            raise ValueError("SMTP timeout must be positive")
        _check_header("sender", self.sender)
        if "@" not in self.envelope_sender:
            raise ValueError(f"SMTP sender is not an email address: {self.sender!r}")

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> SMTPMailer:
        """Build from `SMTP_HOST` (default localhost), `SMTP_PORT` (default 465 with TLS,
        else 587), `SMTP_USER`, `SMTP_PASSWORD`, `SMTP_FROM` (required) and `SMTP_TLS`:
        true/1/yes/tls/ssl → implicit TLS; starttls → STARTTLS required; false/0/no/plain →
        never encrypt; unset → STARTTLS when offered."""
        sender = env.get("SMTP_FROM", "").strip()
        if not sender:
            raise ValueError("SMTP_FROM is required (the From address of Bastion's emails)")
        tls = env.get("SMTP_TLS", "").strip().lower()
        use_tls, start_tls = False, None
        if tls in _TRUE:
            use_tls = True
        elif tls == "starttls":
            start_tls = True
        elif tls in _FALSE:
            start_tls = False
        elif tls:
            raise ValueError(f"SMTP_TLS: expected true, false or starttls, got {tls!r}")
        raw_port = env.get("SMTP_PORT", "").strip()
        try:
            port = int(raw_port) if raw_port else (465 if use_tls else 587)
        except ValueError:
            raise ValueError(f"SMTP_PORT is not a number: {raw_port!r}") from None
        return cls(
            env.get("SMTP_HOST", "").strip() or "localhost",
            port,
            username=env.get("SMTP_USER") or None,
            password=env.get("SMTP_PASSWORD") or None,
            sender=sender,
            use_tls=use_tls,
            start_tls=start_tls,
        )

    @property
    def envelope_sender(self) -> str:
        """The bare address of `sender`, for MAIL FROM."""
        return parseaddr(self.sender)[1]

    def build(self, message: EmailMessage) -> MIMEMessage:
        """The MIME message that goes over the wire (text, plus HTML as an alternative)."""
        mime = MIMEMessage()
        mime["From"] = self.sender
        mime["To"] = message.to
        mime["Subject"] = message.subject
        mime["Date"] = formatdate(usegmt=True)
        # An explicit domain: make_msgid would otherwise call getfqdn() on the loop.
        mime["Message-ID"] = make_msgid(domain=self.envelope_sender.rpartition("@")[2])
        mime.set_content(message.text)
        if message.html is not None:
            mime.add_alternative(message.html, subtype="html")
        return mime

    async def send(self, message: EmailMessage) -> None:
        try:
            await aiosmtplib.send(
                self.build(message),
                sender=self.envelope_sender,
                recipients=[message.to],
                hostname=self.host,
                port=self.port,
                username=self.username,
                password=self.password,
                use_tls=self.use_tls,
                start_tls=self.start_tls,
                timeout=self.timeout,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            reason = str(exc) or type(exc).__name__
            password = self.password or ""
            leaked = bool(password) and password in reason
            if leaked:
                reason = type(exc).__name__
            raise EmailDeliveryError(
                f"could not send email to {message.to} via {self.host}:{self.port}: {reason}"
            ) from (None if leaked else exc)


# --- default texts ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Template:
    subject: str  # may use {app}
    intro: str  # may use {app}, {email}, {new_email}; one paragraph before the link
    action: str  # the link's label
    outro: str  # may use {app}; one paragraph after the link


_VERIFY = _Template(
    subject="Verify your email address for {app}",
    intro="Please confirm that {email} is your email address for {app} by opening this link:",
    action="Verify email address",
    outro="If you did not create an account with {app}, you can ignore this email.",
)
_RESET = _Template(
    subject="Reset your {app} password",
    intro="We received a request to reset the password of your {app} account. "
    "To choose a new password, open this link:",
    action="Reset password",
    outro="If you did not ask for this, you can ignore this email: your password stays the same.",
)
_DELETE = _Template(
    subject="Confirm the deletion of your {app} account",
    intro="We received a request to delete your {app} account ({email}). "
    "This cannot be undone. To confirm, open this link:",
    action="Delete my account",
    outro="If you did not ask for this, ignore this email and your account stays as it is; "
    "you may want to change your password.",
)
_CHANGE = _Template(
    subject="Approve the change of your {app} email address",
    intro="We received a request to change the email address of your {app} account "
    "from {email} to {new_email}. To approve it, open this link:",
    action="Approve the change",
    outro="If you did not ask for this, ignore this email and your address stays as it is.",
)


def _compose(template: _Template, link: EmailLink, app: str) -> EmailMessage:
    email = str(link.user["email"])
    name = str(link.user.get("name") or "").strip()
    values = {"app": app, "email": email, "new_email": link.new_email or "a new address"}
    intro = template.intro.format(**values)
    outro = template.outro.format(**values)
    greeting = f"Hello {name}," if name else "Hello,"
    text = f"{greeting}\n\n{intro}\n\n{link.url}\n\n{outro}\n\n{app}\n"

    esc = {k: html.escape(v) for k, v in values.items()}
    url = html.escape(link.url)
    html_greeting = f"Hello {html.escape(name)}," if name else "Hello,"
    body = (
        "<!DOCTYPE html>\n"
        '<html><body style="font-family: sans-serif; line-height: 1.5">\n'
        f"<p>{html_greeting}</p>\n"
        f"<p>{template.intro.format(**esc)}</p>\n"
        f'<p><a href="{url}">{html.escape(template.action)}</a></p>\n'
        f"<p>Or copy this link into your browser:<br>{url}</p>\n"
        f"<p>{template.outro.format(**esc)}</p>\n"
        f"<p>{esc['app']}</p>\n"
        "</body></html>\n"
    )
    return EmailMessage(to=email, subject=template.subject.format(**values), text=text, html=body)


def _sender(
    template: _Template, mailer: Mailer, app_name: str
) -> Callable[[EmailLink, Any], Awaitable[None]]:
    _check_header("app_name", app_name)
    if not app_name.strip():
        raise ValueError("app_name must not be empty")

    async def send(link: EmailLink, request: Any | None = None) -> None:
        await mailer.send(_compose(template, link, app_name))

    return send


def verification_sender(
    mailer: Mailer, app_name: str = "Bastion"
) -> Callable[[EmailLink, Any], Awaitable[None]]:
    """A `sendVerificationEmail` callback: mails the verification link to the user."""
    return _sender(_VERIFY, mailer, app_name)


def reset_password_sender(
    mailer: Mailer, app_name: str = "Bastion"
) -> Callable[[EmailLink, Any], Awaitable[None]]:
    """A `sendResetPassword` callback: mails the password-reset link to the user."""
    return _sender(_RESET, mailer, app_name)


def delete_account_sender(
    mailer: Mailer, app_name: str = "Bastion"
) -> Callable[[EmailLink, Any], Awaitable[None]]:
    """A `sendDeleteAccountVerification` callback: mails the deletion link to the user."""
    return _sender(_DELETE, mailer, app_name)


def change_email_sender(
    mailer: Mailer, app_name: str = "Bastion"
) -> Callable[[EmailLink, Any], Awaitable[None]]:
    """A `sendChangeEmailConfirmation` callback: mails the approval link to the user's
    *current* address (`link.user["email"]`), naming `link.new_email`."""
    return _sender(_CHANGE, mailer, app_name)
