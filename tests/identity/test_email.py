"""Email: the callbacks' data, the console and SMTP mailers (against a real local SMTP
server), and the default verification / reset / delete / change-email messages."""

from __future__ import annotations

import asyncio
import functools
import io
import logging
import re
import threading
import traceback
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiosmtplib
import pytest

from bastion.identity.email import (
    ConsoleMailer,
    EmailDeliveryError,
    EmailLink,
    EmailMessage,
    Mailer,
    SMTPMailer,
    call_sender,
    change_email_sender,
    delete_account_sender,
    reset_password_sender,
    verification_sender,
)
from tests.identity.mailbox import SMTPMailbox, smtp_mailbox_fixture  # noqa: F401

BASE = "http://localhost:3000/api/auth"
VERIFY_URL = f"{BASE}/verify-email?token=eyJhbGciOiJIUzI1NiJ9.e30.sig&callbackURL=%2Fdashboard"
PASSWORD = "s3cret-Pa55word"

Builder = Callable[..., Callable[[EmailLink, Any], Awaitable[None]]]


def alice(**extra: Any) -> dict[str, Any]:
    return {"id": "u1", "email": "alice@example.com", "name": "Alice", **extra}


# --- SMTPMailer against a real server ----------------------------------------------------


async def test_smtp_mailer_delivers_text_and_html(smtp_mailbox: SMTPMailbox) -> None:
    mailer = smtp_mailbox.mailer(sender="Bastion <no-reply@bastion.test>")
    await mailer.send(
        EmailMessage(
            to="bob@example.com",
            subject="Your link",
            text=f"Open this:\n\n{VERIFY_URL}\n",
            html=f'<p><a href="{VERIFY_URL}">Open</a></p>',
        )
    )

    [received] = smtp_mailbox.messages
    assert received.rcpt_tos == ("bob@example.com",)
    assert received.mail_from == "no-reply@bastion.test"
    assert received.message["From"] == "Bastion <no-reply@bastion.test>"
    assert received.message["To"] == "bob@example.com"
    assert received.message["Message-ID"]
    assert received.subject == "Your link"
    assert VERIFY_URL in received.text
    assert received.html is not None and "<a href=" in received.html
    assert received.login is None
    assert smtp_mailbox.url_for("BOB@example.com") == VERIFY_URL


async def test_follow_the_verification_link_from_the_received_mail(
    smtp_mailbox: SMTPMailbox,
) -> None:
    send = verification_sender(smtp_mailbox.mailer(), app_name="Acme")
    await send(EmailLink(user=alice(), url=VERIFY_URL, token="eyJhbGciOiJIUzI1NiJ9.e30.sig"), None)

    received = smtp_mailbox.last_to("alice@example.com")
    assert received.subject == "Verify your email address for Acme"
    url = smtp_mailbox.url_for("alice@example.com", containing="/verify-email")
    assert url == VERIFY_URL
    parts = urlsplit(url)
    assert parts.path == "/api/auth/verify-email"
    assert parse_qs(parts.query) == {
        "token": ["eyJhbGciOiJIUzI1NiJ9.e30.sig"],
        "callbackURL": ["/dashboard"],
    }


async def test_wait_for_and_clear(smtp_mailbox: SMTPMailbox) -> None:
    mailer = smtp_mailbox.mailer()
    task = asyncio.create_task(mailer.send(EmailMessage("c@example.com", "s", "t")))
    received = await smtp_mailbox.wait_for("c@example.com")
    await task
    assert received.subject == "s"
    smtp_mailbox.clear()
    assert smtp_mailbox.messages == []
    with pytest.raises(AssertionError, match=re.escape("no email to c@example.com")):
        smtp_mailbox.last_to("c@example.com")


async def test_smtp_auth_with_username_and_password() -> None:
    with SMTPMailbox(credentials=("mailer", PASSWORD)) as mailbox:
        await mailbox.mailer(username="mailer", password=PASSWORD).send(
            EmailMessage("alice@example.com", "Hi", f"link: {VERIFY_URL}")
        )
        [received] = mailbox.messages
        assert received.login == "mailer"
        assert mailbox.url_for("alice@example.com") == VERIFY_URL


async def test_smtp_wrong_password_is_a_delivery_error_without_the_password() -> None:
    wrong = "wrong-" + PASSWORD
    with SMTPMailbox(credentials=("mailer", PASSWORD)) as mailbox:
        with pytest.raises(EmailDeliveryError) as info:
            await mailbox.mailer(username="mailer", password=wrong).send(
                EmailMessage("alice@example.com", "Hi", "text")
            )
        assert mailbox.messages == []
    rendered = "".join(traceback.format_exception(info.value))
    assert "alice@example.com" in str(info.value)
    assert wrong not in rendered and PASSWORD not in rendered


async def test_smtp_auth_required_but_not_given() -> None:
    with SMTPMailbox(credentials=("mailer", PASSWORD)) as mailbox:
        with pytest.raises(EmailDeliveryError):
            await mailbox.mailer().send(EmailMessage("alice@example.com", "Hi", "text"))
        assert mailbox.messages == []


async def test_connection_refused_is_a_delivery_error_without_the_password() -> None:
    with SMTPMailbox() as mailbox:
        host, port = mailbox.host, mailbox.port  # a port that was just free, now closed again
    mailer = SMTPMailer(host, port, username="mailer", password=PASSWORD, sender="a@b.test")
    with pytest.raises(EmailDeliveryError) as info:
        await mailer.send(EmailMessage("alice@example.com", "Hi", "text"))
    message = str(info.value)
    assert f"{host}:{port}" in message
    assert PASSWORD not in message
    assert PASSWORD not in repr(info.value)
    assert PASSWORD not in "".join(traceback.format_exception(info.value))
    assert isinstance(info.value.__cause__, aiosmtplib.SMTPException | OSError)


async def test_a_server_message_echoing_the_password_is_redacted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def echo(*args: Any, **kwargs: Any) -> None:
        raise aiosmtplib.SMTPException(f"rejected {kwargs['password']}")

    monkeypatch.setattr(aiosmtplib, "send", echo)
    mailer = SMTPMailer(username="u", password=PASSWORD, sender="a@b.test")
    with pytest.raises(EmailDeliveryError) as info:
        await mailer.send(EmailMessage("alice@example.com", "Hi", "text"))
    assert PASSWORD not in "".join(traceback.format_exception(info.value))
    assert info.value.__cause__ is None


def test_smtp_mailer_repr_hides_the_password() -> None:
    mailer = SMTPMailer("smtp.example.com", username="u", password=PASSWORD, sender="a@b.test")
    assert PASSWORD not in repr(mailer)
    assert "smtp.example.com" in repr(mailer)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"use_tls": True, "start_tls": True}, "mutually exclusive"),
        ({"username": "u"}, "go together"),
        ({"port": 0}, "port"),
        ({"host": ""}, "host"),
        ({"timeout": 0}, "timeout"),
        ({"sender": "nobody"}, "not an email address"),
        ({"sender": "a@b.test\r\nBcc: x@y.test"}, "line breaks"),
    ],
)
def test_smtp_mailer_checks_its_options(kwargs: dict[str, Any], match: str) -> None:
    options: dict[str, Any] = {"sender": "a@b.test", **kwargs}
    with pytest.raises(ValueError, match=match):
        SMTPMailer(**options)


def test_from_env() -> None:
    mailer = SMTPMailer.from_env(
        {
            "SMTP_HOST": "smtp.example.com",
            "SMTP_PORT": "2525",
            "SMTP_USER": "u",
            "SMTP_PASSWORD": PASSWORD,
            "SMTP_FROM": "Acme <no-reply@acme.test>",
        }
    )
    assert (mailer.host, mailer.port, mailer.username, mailer.password) == (
        "smtp.example.com",
        2525,
        "u",
        PASSWORD,
    )
    assert mailer.sender == "Acme <no-reply@acme.test>"
    assert mailer.envelope_sender == "no-reply@acme.test"
    assert (mailer.use_tls, mailer.start_tls) == (False, None)


@pytest.mark.parametrize(
    ("tls", "port", "use_tls", "start_tls"),
    [
        ("true", 465, True, None),
        ("SSL", 465, True, None),
        ("starttls", 587, False, True),
        ("false", 587, False, False),
        ("", 587, False, None),
    ],
)
def test_from_env_tls(tls: str, port: int, use_tls: bool, start_tls: bool | None) -> None:
    mailer = SMTPMailer.from_env({"SMTP_FROM": "a@b.test", "SMTP_TLS": tls})
    assert (mailer.host, mailer.port, mailer.use_tls, mailer.start_tls) == (
        "localhost",
        port,
        use_tls,
        start_tls,
    )
    assert mailer.username is None and mailer.password is None


@pytest.mark.parametrize(
    ("env", "match"),
    [
        ({}, "SMTP_FROM"),
        ({"SMTP_FROM": "a@b.test", "SMTP_TLS": "maybe"}, "SMTP_TLS"),
        ({"SMTP_FROM": "a@b.test", "SMTP_PORT": "smtp"}, "SMTP_PORT"),
        ({"SMTP_FROM": "a@b.test", "SMTP_USER": "u"}, "go together"),
    ],
)
def test_from_env_refuses_bad_settings(env: dict[str, str], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SMTPMailer.from_env(env)


def test_email_message_refuses_header_injection() -> None:
    with pytest.raises(ValueError, match="line breaks"):
        EmailMessage("a@b.test", "Hi\r\nBcc: evil@example.com", "text")
    with pytest.raises(ValueError, match="line breaks"):
        EmailMessage("a@b.test\nBcc: evil@example.com", "Hi", "text")
    with pytest.raises(ValueError, match="not an email address"):
        EmailMessage("", "Hi", "text")


def test_both_mailers_are_mailers() -> None:
    assert isinstance(ConsoleMailer(), Mailer)
    assert isinstance(SMTPMailer(sender="a@b.test"), Mailer)


# --- ConsoleMailer -----------------------------------------------------------------------


async def test_console_mailer_prints_one_block_with_the_link() -> None:
    stream = io.StringIO()
    await reset_password_sender(ConsoleMailer(stream))(
        EmailLink(user=alice(), url=f"{BASE}/reset-password/tok123?callbackURL=", token="tok123"),
        None,
    )
    out = stream.getvalue()
    assert "To: alice@example.com" in out
    assert "Subject: Reset your Bastion password" in out
    assert f"\n{BASE}/reset-password/tok123?callbackURL=\n" in out  # alone on its line
    assert "<a href" not in out  # the text, not the HTML
    assert out.startswith("=" * 72) and out.rstrip().endswith("=" * 72)


async def test_console_mailer_logs(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("bastion.test.mail")
    with caplog.at_level(logging.INFO, logger="bastion.test.mail"):
        await ConsoleMailer(logger=logger).send(
            EmailMessage("alice@example.com", "Hi", f"open {VERIFY_URL}")
        )
    [record] = caplog.records
    assert VERIFY_URL in record.getMessage()
    assert "alice@example.com" in record.getMessage()


async def test_console_mailer_defaults_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    await ConsoleMailer().send(EmailMessage("alice@example.com", "Hi", f"open {VERIFY_URL}"))
    captured = capsys.readouterr()
    assert VERIFY_URL in captured.err
    assert captured.out == ""


# --- call_sender -------------------------------------------------------------------------

LINK = EmailLink(user=alice(), url=VERIFY_URL, token="t")


async def test_call_sender_runs_a_sync_callback_in_a_thread() -> None:
    seen: list[tuple[EmailLink, Any, threading.Thread]] = []

    def callback(link: EmailLink, request: Any | None) -> None:
        seen.append((link, request, threading.current_thread()))

    await call_sender(callback, LINK, "req")
    [(link, request, thread)] = seen
    assert (link, request) == (LINK, "req")
    assert thread is not threading.main_thread()


async def test_a_slow_sync_callback_does_not_block_the_loop() -> None:
    # The callback returns only once the loop has moved on while it runs: on the loop's own
    # thread it would wait for ever (here: 10 s, then fail).
    running, loop_ran = threading.Event(), threading.Event()

    def slow(link: EmailLink, request: Any | None) -> None:
        running.set()
        assert loop_ran.wait(10), "the event loop did not run while the callback did"

    sending = asyncio.create_task(call_sender(slow, LINK, None))
    assert await asyncio.to_thread(running.wait, 10)
    loop_ran.set()
    await sending


async def test_call_sender_awaits_async_callbacks() -> None:
    seen: list[Any] = []

    async def callback(link: EmailLink, request: Any | None) -> None:
        await asyncio.sleep(0)
        seen.append(("function", threading.current_thread()))

    class Sender:
        async def __call__(self, link: EmailLink, request: Any | None) -> None:
            seen.append(("object", threading.current_thread()))

    async def with_prefix(prefix: str, link: EmailLink, request: Any | None) -> None:
        seen.append((prefix, threading.current_thread()))

    def returns_awaitable(link: EmailLink, request: Any | None) -> Awaitable[None]:
        return callback(link, request)

    await call_sender(callback, LINK, None)
    await call_sender(Sender(), LINK, None)
    await call_sender(functools.partial(with_prefix, "partial"), LINK, None)
    await call_sender(returns_awaitable, LINK, None)
    loop_thread = threading.current_thread()
    assert seen == [
        ("function", loop_thread),
        ("object", loop_thread),
        ("partial", loop_thread),
        ("function", loop_thread),
    ]


async def test_call_sender_with_a_builder(smtp_mailbox: SMTPMailbox) -> None:
    await call_sender(verification_sender(smtp_mailbox.mailer()), LINK, None)
    assert smtp_mailbox.url_for("alice@example.com") == VERIFY_URL


# --- the default messages ----------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.sent: list[EmailMessage] = []

    async def send(self, message: EmailMessage) -> None:
        self.sent.append(message)


@pytest.mark.parametrize(
    ("builder", "subject"),
    [
        (verification_sender, "Verify your email address for Acme"),
        (reset_password_sender, "Reset your Acme password"),
        (delete_account_sender, "Confirm the deletion of your Acme account"),
        (change_email_sender, "Approve the change of your Acme email address"),
    ],
)
async def test_default_messages(builder: Builder, subject: str) -> None:
    mailer = Recorder()
    url = f"{BASE}/some-path?token=abc&callbackURL=%2F"
    link = EmailLink(user=alice(), url=url, token="abc", new_email="new@example.com")
    await builder(mailer, app_name="Acme")(link, None)

    [message] = mailer.sent
    assert message.to == "alice@example.com"
    assert message.subject == subject
    assert message.text.startswith("Hello Alice,\n")
    assert f"\n{url}\n" in message.text
    assert message.html is not None
    escaped = url.replace("&", "&amp;")
    assert f'<a href="{escaped}">' in message.html
    assert f"<br>{escaped}</p>" in message.html  # the link as text too
    assert "Hello Alice," in message.html


async def test_change_email_goes_to_the_current_address(smtp_mailbox: SMTPMailbox) -> None:
    url = f"{BASE}/verify-email?token=jwt&callbackURL=%2Fsettings"
    link = EmailLink(user=alice(), url=url, token="jwt", new_email="alice.new@example.com")
    await change_email_sender(smtp_mailbox.mailer())(link, None)

    assert smtp_mailbox.messages_to("alice.new@example.com") == []
    received = smtp_mailbox.last_to("alice@example.com")
    assert "from alice@example.com to alice.new@example.com" in received.text
    assert smtp_mailbox.url_for("alice@example.com") == url


async def test_html_escapes_the_users_name() -> None:
    mailer = Recorder()
    user = alice(name='<script>alert("x")</script>')
    link = EmailLink(user=user, url=f"{BASE}/x?a=1&b=2", token="t", new_email="<b>@x.test")
    for builder in (
        verification_sender,
        reset_password_sender,
        delete_account_sender,
        change_email_sender,
    ):
        await builder(mailer, app_name="A&B")(link, None)
    for message in mailer.sent:
        assert message.html is not None
        assert "<script>" not in message.html and "<b>" not in message.html
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in message.html
        assert "A&amp;B" in message.html
        assert '<script>alert("x")</script>' in message.text  # plain text stays as is


async def test_a_user_without_a_name_is_greeted_plainly() -> None:
    mailer = Recorder()
    await verification_sender(mailer)(EmailLink(user=alice(name=None), url=BASE, token="t"), None)
    [message] = mailer.sent
    assert message.text.startswith("Hello,\n")
    assert message.subject == "Verify your email address for Bastion"


def test_builders_refuse_a_bad_app_name() -> None:
    with pytest.raises(ValueError, match="line breaks"):
        verification_sender(Recorder(), app_name="Acme\r\nBcc: x@y.test")
    with pytest.raises(ValueError, match="empty"):
        reset_password_sender(Recorder(), app_name=" ")
