"""A real Bastion with the web pages, on 127.0.0.1 and a free port, for the browser tests.

    async with web_site(mailbox) as site:      # site.origin, site.identity, site.mailbox
        page = await context.new_page()
        await page.goto(site.origin + "/sign-in")

Its mails go to the test's `SMTPMailbox` (tests/identity/mailbox.py) through the same
senders `bastion serve` uses (`to_pages(...)`: the links land on the pages); two-factor is
on (authenticator app and codes by mail). `identity` options and `bastion` options
(agents, memory, ...) add to or replace the defaults; `plugins` adds plugins.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bastion.auth.providers.identity import IdentityAuth
from bastion.identity import Identity, bearer
from bastion.identity.email import reset_password_sender, verification_sender
from bastion.identity.plugins import Plugin
from bastion.identity.plugins.two_factor import two_factor
from bastion.server import Bastion
from bastion.standalone import two_factor_code_sender
from bastion.web import Pages, to_pages
from tests.e2e.bastion_server import serve

if TYPE_CHECKING:
    from playwright.async_api import Page

    from tests.identity.mailbox import SMTPMailbox

__all__ = [
    "PASSWORD",
    "SECRET",
    "Site",
    "alert_of",
    "api",
    "sign_in",
    "sign_up",
    "signed_in_email",
    "status_of",
    "web_site",
]

SECRET = "web-pages-tests-secret-0123456789abcdef"
PASSWORD = "correct-horse-battery"


@dataclass(frozen=True)
class Site:
    origin: str
    identity: Identity
    mailbox: SMTPMailbox


@asynccontextmanager
async def web_site(
    mailbox: SMTPMailbox,
    *,
    identity: dict[str, Any] | None = None,
    plugins: Sequence[Plugin] = (),
    pages: Pages | None = None,
    **bastion: Any,
) -> AsyncIterator[Site]:
    mailer = mailbox.mailer()

    def identity_for(base_url: str) -> Identity:
        options: dict[str, Any] = {
            "env": {},
            "secret": SECRET,
            "base_url": base_url,
            "database": "sqlite+aiosqlite:///:memory:",
            "email_and_password": {
                "enabled": True,
                "require_email_verification": True,
                "send_reset_password": to_pages(reset_password_sender(mailer)),
            },
            "email_verification": {
                "send_verification_email": to_pages(verification_sender(mailer)),
            },
            "plugins": [
                bearer(),
                two_factor(otp={"send_otp": two_factor_code_sender(mailer)}),
                *plugins,
            ],
            **(identity or {}),
        }
        return Identity(**options)

    def app_for(identity: Identity) -> Bastion:
        return Bastion(auth=IdentityAuth(identity), ui=pages or Pages(), **bastion)

    async with serve(identity_for, app_for=app_for) as (served, origin):
        yield Site(origin, served, mailbox)


async def api(page: Page, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """`fetch(path)` from the page (its origin and cookies, as the pages' forms do): a POST
    with the JSON `body`, or a GET without one. {"status", "data"}."""
    result: dict[str, Any] = await page.evaluate(
        """async ([path, body]) => {
            const init = body === null ? {} : {method: "POST", body: JSON.stringify(body),
                headers: {"content-type": "application/json"}};
            const r = await fetch(path, {credentials: "same-origin", ...init});
            const text = await r.text();
            let data = null;
            try { data = JSON.parse(text); } catch { data = text; }
            return {status: r.status, data};
        }""",
        [path, body],
    )
    return result


async def alert_of(page: Page, form: str) -> str:
    """The text of the alert `form` shows (its error), once visible."""
    alert = page.locator(f"{form} [role=alert]")
    await alert.wait_for(state="visible")
    return (await alert.inner_text()).strip()


async def status_of(page: Page, form: str) -> str:
    """The text of the status `form` shows (its success), once visible."""
    status = page.locator(f"{form} [role=status]")
    await status.wait_for(state="visible")
    return (await status.inner_text()).strip()


async def signed_in_email(page: Page) -> str | None:
    """The email of the page's session, as its own get-session answers; None signed out."""
    data = (await api(page, "/api/auth/get-session"))["data"]
    return data["user"]["email"] if isinstance(data, dict) else None


async def sign_up(page: Page, name: str, email: str, password: str = PASSWORD) -> None:
    """Fill in and send the sign-up page's form."""
    await page.fill("#f-name", name)
    await page.fill("#f-email", email)
    await page.fill("#f-password", password)
    await page.click("#sign-up button[type=submit]")


async def sign_in(page: Page, email: str, password: str = PASSWORD) -> None:
    """Fill in and send the sign-in page's email form."""
    await page.fill("#f-email", email)
    await page.fill("#f-password", password)
    await page.click("#sign-in-email button[type=submit]")
