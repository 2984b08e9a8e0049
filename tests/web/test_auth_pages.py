"""The sign-in pages in a real browser (headless Debian chromium, Playwright) against a real
Bastion on 127.0.0.1, with its mail delivered to a local SMTP server: every flow a person
does, the messages a mistake shows, axe-core on every page, screenshots kept."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest

from bastion.identity import email_otp, magic_link, magic_link_sender, otp_sender
from tests.identity.mailbox import SMTPMailbox, smtp_mailbox_fixture  # noqa: F401
from tests.web.pagecheck import axe, check_headers, screenshot
from tests.web.site import (
    PASSWORD,
    Site,
    alert_of,
    api,
    sign_in,
    sign_up,
    signed_in_email,
    status_of,
    web_site,
)

if TYPE_CHECKING:
    from playwright.async_api import Browser, BrowserContext, Page

TIMEOUT_MS = 10_000


@pytest.fixture
async def site(smtp_mailbox: SMTPMailbox) -> AsyncIterator[Site]:
    async with web_site(smtp_mailbox) as running:
        yield running


@pytest.fixture
async def context(async_chromium_browser: Browser) -> AsyncIterator[BrowserContext]:
    context = await async_chromium_browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    try:
        yield context
    finally:
        await context.close()


async def open_page(context: BrowserContext, url: str) -> Page:
    page = await context.new_page()
    response = await page.goto(url)
    assert response is not None and response.ok, f"{url}: {response and response.status}"
    check_headers(response.headers, url)
    return page


async def verified_account(site: Site, context: BrowserContext, email: str) -> Page:
    """An account made on the sign-up page and verified from its mail; signed out."""
    page = await open_page(context, site.origin + "/sign-up")
    await sign_up(page, email.split("@")[0].title(), email)
    await page.wait_for_url("**/verify-email?sent=1")
    await site.mailbox.wait_for(email)
    await page.goto(site.mailbox.url_for(email, containing="/verify-email"))
    await page.wait_for_url("**/verify-email?verified=1")
    return page


# -- sign up, verify, sign in, sign out ------------------------------------------------------


async def test_sign_up_verify_sign_in_sign_out(site: Site, context: BrowserContext) -> None:
    email = "ada@example.com"
    page = await open_page(context, site.origin + "/")
    assert urlsplit(page.url).path == "/sign-in"  # "/" sends a visitor to sign in
    await page.click("text=Create an account")
    await page.wait_for_url("**/sign-up")
    await screenshot(page, "sign-up")
    await sign_up(page, "Ada", email)
    # Verification is required: no session yet, the page says to check the inbox.
    await page.wait_for_url("**/verify-email?sent=1")
    assert "We sent you an email" in await page.inner_text("main")
    assert await signed_in_email(page) is None
    await screenshot(page, "verify-email-sent")

    # Signing in before verifying says why it cannot, and keeps the email typed.
    await page.goto(site.origin + "/sign-in")
    await sign_in(page, email)
    assert "verified" in (await alert_of(page, "#sign-in-email")).lower()
    assert await page.input_value("#f-email") == email
    assert await page.input_value("#f-password") == ""

    # The mail's link: Bastion's endpoint verifies, then lands on our page.
    mail = await site.mailbox.wait_for(email)
    assert "/api/auth/verify-email?token=" in mail.text
    response = await page.goto(site.mailbox.url_for(email, containing="/verify-email"))
    assert response is not None and response.ok
    await page.wait_for_url("**/verify-email?verified=1")
    assert "verified" in await page.inner_text("main [role=status]")
    await screenshot(page, "verify-email-done")
    await page.click("text=Continue")
    await page.wait_for_url("**/sign-in?verified=1")

    await sign_in(page, email)
    await page.wait_for_url("**/playground")
    assert await signed_in_email(page) == email
    # Signed in, the sign-in page sends on; "/" leads to the playground.
    await page.goto(site.origin + "/")
    await page.wait_for_url("**/playground")

    await page.click("header button:has-text('Sign out')")
    await page.wait_for_url("**/sign-in")
    assert await signed_in_email(page) is None


async def test_wrong_password_keeps_the_email(site: Site, context: BrowserContext) -> None:
    await verified_account(site, context, "bob@example.com")
    page = await open_page(context, site.origin + "/sign-in")
    await sign_in(page, "bob@example.com", "not-the-password")
    assert await alert_of(page, "#sign-in-email") == "Invalid email or password"
    assert await page.input_value("#f-email") == "bob@example.com"
    assert await page.input_value("#f-password") == ""
    html = await page.content()
    assert '"code"' not in html and "Traceback" not in html
    await screenshot(page, "sign-in-wrong-password")


async def test_sign_up_errors_stay_on_the_page(site: Site, context: BrowserContext) -> None:
    page = await open_page(context, site.origin + "/sign-up")
    # The browser's own check (minlength) is the first; the server's message the second.
    await page.eval_on_selector("#f-password", "el => el.removeAttribute('minlength')")
    await sign_up(page, "Carol", "carol@example.com", "short")
    message = await alert_of(page, "#sign-up")
    assert message == "Password too short"
    assert await page.input_value("#f-name") == "Carol"
    assert await page.input_value("#f-email") == "carol@example.com"
    assert await page.input_value("#f-password") == ""


async def test_a_page_that_needs_a_session_sends_to_sign_in_and_back(
    site: Site, context: BrowserContext
) -> None:
    """/verify-email is public, so the round trip is shown with the next= of the sign-in
    page itself: a signed-in visitor of /sign-in?next=X goes to X."""
    await verified_account(site, context, "dan@example.com")
    page = await open_page(context, site.origin + "/sign-in?next=/verify-email%3Fverified%3D1")
    await sign_in(page, "dan@example.com")
    await page.wait_for_url("**/verify-email?verified=1")
    # Another site as next= is refused: the default is used.
    await page.goto(site.origin + "/sign-in?next=//evil.example/")
    await page.wait_for_url("**/playground")


# -- reset password from the mail ------------------------------------------------------------


async def test_reset_password_from_the_mail(site: Site, context: BrowserContext) -> None:
    email = "erin@example.com"
    page = await verified_account(site, context, email)
    await page.goto(site.origin + "/sign-in")
    await page.click("text=Forgot your password?")
    await page.wait_for_url("**/forgot-password")
    await page.fill("#f-email", email)
    await page.click("#forgot-password button[type=submit]")
    assert "we sent it a link" in await status_of(page, "#forgot-password")
    await screenshot(page, "forgot-password")

    mail = await site.mailbox.wait_for(email, count=2)
    assert "reset" in mail.subject.lower()
    await page.goto(site.mailbox.url_for(email, containing="/reset-password/"))
    await page.wait_for_url("**/reset-password?token=*")
    await screenshot(page, "reset-password")
    # Two different entries: said on the page, nothing sent.
    await page.fill("#f-newPassword", "a-new-password-1")
    await page.fill("#f-_confirm", "a-new-password-2")
    await page.click("#reset-password button[type=submit]")
    assert "not the same" in await alert_of(page, "#reset-password")
    await page.fill("#f-newPassword", "a-new-password-1")
    await page.fill("#f-_confirm", "a-new-password-1")
    await page.click("#reset-password button[type=submit]")
    await page.wait_for_url("**/sign-in?reset=1")
    assert "password was changed" in await page.inner_text("main")

    await sign_in(page, email, PASSWORD)
    assert await alert_of(page, "#sign-in-email") == "Invalid email or password"
    await sign_in(page, email, "a-new-password-1")
    await page.wait_for_url("**/playground")

    # The link works once: a second use lands on the page with a clear message.
    await page.goto(site.mailbox.url_for(email, containing="/reset-password/"))
    await page.wait_for_url("**/reset-password?*error=INVALID_TOKEN*")
    assert "not valid any more" in await page.inner_text("main [role=alert]")


async def test_a_broken_verification_link_says_so(site: Site, context: BrowserContext) -> None:
    page = await open_page(
        context, site.origin + "/api/auth/verify-email?token=nonsense&callbackURL=%2Fverify-email"
    )
    await page.wait_for_url("**/verify-email?error=INVALID_TOKEN")
    assert "not valid any more" in await page.inner_text("main [role=alert]")
    # The raw code from the URL is not what the page shows; unknown codes get a sentence.
    await page.goto(site.origin + "/verify-email?error=<b>pwned</b>")
    text = await page.inner_text("main [role=alert]")
    assert "pwned" not in text and "did not work" in text


# -- two-factor ------------------------------------------------------------------------------


async def enable_totp(page: Page, email: str) -> tuple[str, list[str]]:
    """Two-factor on, through the API (the account page is web-account's): the TOTP secret
    and the backup codes. Leaves the page signed out."""
    signed = await api(page, "/api/auth/sign-in/email", {"email": email, "password": PASSWORD})
    assert signed["status"] == 200, signed
    enabled = await api(page, "/api/auth/two-factor/enable", {"password": PASSWORD})
    assert enabled["status"] == 200, enabled
    uri = enabled["data"]["totpURI"]
    secret = parse_qs(urlsplit(uri).query)["secret"][0]
    code = pyotp.TOTP(secret).now()
    verified = await api(page, "/api/auth/two-factor/verify-totp", {"code": code})
    assert verified["status"] == 200, verified
    assert (await api(page, "/api/auth/sign-out", {}))["status"] == 200
    return secret, enabled["data"]["backupCodes"]


async def test_two_factor_sign_in_with_an_authenticator_code(
    site: Site, context: BrowserContext
) -> None:
    email = "fay@example.com"
    page = await verified_account(site, context, email)
    secret, _ = await enable_totp(page, email)

    await page.goto(site.origin + "/sign-in?next=/verify-email%3Fverified%3D1")
    await sign_in(page, email)
    await page.wait_for_url("**/two-factor?*")
    assert "methods=totp" in page.url
    await screenshot(page, "two-factor")
    assert await signed_in_email(page) is None  # no session before the second factor

    await page.fill("#totp-code", "000000")
    await page.click("#two-factor-totp button[type=submit]")
    assert "invalid" in (await alert_of(page, "#two-factor-totp")).lower()
    # The next time step's code: the one used to enable two-factor works only once.
    await page.fill("#totp-code", pyotp.TOTP(secret).at(time.time() + 30))
    await page.check("#totp-trust")
    await page.click("#two-factor-totp button[type=submit]")
    await page.wait_for_url("**/verify-email?verified=1")  # back to next=
    assert await signed_in_email(page) == email


async def test_two_factor_with_a_code_by_mail_and_a_backup_code(
    site: Site, context: BrowserContext, async_chromium_browser: Browser
) -> None:
    email = "gus@example.com"
    page = await verified_account(site, context, email)
    _, backup_codes = await enable_totp(page, email)

    await page.goto(site.origin + "/sign-in")
    await sign_in(page, email)
    await page.wait_for_url("**/two-factor?*")
    before = len(site.mailbox.messages_to(email))
    await page.click("#two-factor-otp button:has-text('Email me a code')")
    assert "sent a code" in await status_of(page, "#two-factor-otp")
    mail = await site.mailbox.wait_for(email, count=before + 1)
    code = next(word for word in mail.text.split() if word.isdigit() and len(word) == 6)
    await page.fill("#otp-code", code)
    await page.click("#two-factor-otp button:has-text('Verify')")
    await page.wait_for_url("**/playground")
    assert await signed_in_email(page) == email

    # Another browser: a backup code instead.
    other = await async_chromium_browser.new_context()
    other.set_default_timeout(TIMEOUT_MS)
    try:
        second = await open_page(other, site.origin + "/sign-in")
        await sign_in(second, email)
        await second.wait_for_url("**/two-factor?*")
        await second.fill("#backup-code", backup_codes[0])
        await second.click("#two-factor-backup button[type=submit]")
        await second.wait_for_url("**/playground")
        assert await signed_in_email(second) == email
    finally:
        await other.close()


# -- accessibility, in light and dark --------------------------------------------------------

PAGES = [
    "/sign-in",
    "/sign-in?error=access_denied",
    "/sign-up",
    "/forgot-password",
    "/reset-password?token=abc",
    "/reset-password?error=INVALID_TOKEN",
    "/verify-email?sent=1",
    "/verify-email?verified=1",
    "/verify-email?error=TOKEN_EXPIRED",
    "/two-factor?methods=totp,otp",
    "/no-such-page",
]


@pytest.mark.parametrize("scheme", ["light", "dark"])
async def test_axe_finds_nothing_serious(
    site: Site, async_chromium_browser: Browser, scheme: str
) -> None:
    # bypass_csp: axe-core is injected as an inline script, which our CSP rightly refuses.
    context = await async_chromium_browser.new_context(color_scheme=scheme, bypass_csp=True)  # type: ignore[arg-type]
    try:
        page = await context.new_page()
        for path in PAGES:
            await page.goto(site.origin + path)
            name = path.strip("/").replace("?", "-").replace("=", "-").replace(",", "-")
            await axe(page, f"{path} ({scheme})")
            await screenshot(page, f"{name}-{scheme}")
        # And with an error shown by the form helper.
        await page.goto(site.origin + "/sign-in")
        await sign_in(page, "nobody@example.com", "wrong-password")
        await alert_of(page, "#sign-in-email")
        await axe(page, f"/sign-in with an error ({scheme})")
    finally:
        await context.close()


async def test_phone_width(site: Site, async_chromium_browser: Browser) -> None:
    context = await async_chromium_browser.new_context(
        viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True
    )
    try:
        page = await context.new_page()
        await page.goto(site.origin + "/sign-in")
        # Nothing wider than the screen.
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= 375
        await screenshot(page, "sign-in-phone")
    finally:
        await context.close()


# -- passwordless: a link or a code by mail --------------------------------------------------


@pytest.fixture
async def passwordless(smtp_mailbox: SMTPMailbox) -> AsyncIterator[Site]:
    mailer = smtp_mailbox.mailer()
    plugins = [
        magic_link(send_magic_link=magic_link_sender(mailer)),
        email_otp(send_verification_otp=otp_sender(mailer)),
    ]
    async with web_site(smtp_mailbox, plugins=plugins) as running:
        yield running


async def test_sign_in_with_a_magic_link(passwordless: Site, context: BrowserContext) -> None:
    site = passwordless
    email = "hal@example.com"
    page = await open_page(context, site.origin + "/sign-in?next=/verify-email%3Fverified%3D1")
    await page.fill("#m-email", email)
    await page.click("#sign-in-magic-link button[type=submit]")
    assert "Check your email" in await status_of(page, "#sign-in-magic-link")
    await site.mailbox.wait_for(email)
    link = site.mailbox.url_for(email, containing="/magic-link/verify")
    await page.goto(link)
    await page.wait_for_url("**/verify-email?verified=1")  # next=, signed in
    assert await signed_in_email(page) == email
    # The link works once: the second time lands on the page, which says so.
    await page.goto(link)
    await page.wait_for_url("**/magic-link?error=*")
    assert "not valid any more" in await page.inner_text("main [role=alert]")
    await screenshot(page, "magic-link-used")


async def test_sign_in_with_a_code_by_mail(passwordless: Site, context: BrowserContext) -> None:
    site = passwordless
    email = "ida@example.com"
    page = await open_page(context, site.origin + "/sign-in")
    await page.fill("#o-email", email)
    await page.click("#sign-in-email-otp button:has-text('Email me a code')")
    assert "sent a code" in await status_of(page, "#sign-in-email-otp")
    await page.locator("#o-otp").wait_for(state="visible")
    mail = await site.mailbox.wait_for(email)
    code = next(word for word in re.findall(r"\b\d{6}\b", mail.text))
    await page.fill("#o-otp", "000000" if code != "000000" else "111111")
    await page.click("#sign-in-email-otp button:has-text('Sign in with the code')")
    assert "invalid" in (await alert_of(page, "#sign-in-email-otp")).lower()
    assert await page.input_value("#o-email") == email
    await page.fill("#o-otp", code)
    await page.click("#sign-in-email-otp button:has-text('Sign in with the code')")
    await page.wait_for_url("**/playground")
    assert await signed_in_email(page) == email
