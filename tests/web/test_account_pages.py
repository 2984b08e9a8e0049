"""The account, organization and invitation pages in a real browser (headless Debian
chromium, Playwright) against a real Bastion on 127.0.0.1, with its mail delivered to a local
SMTP server: profile, password, sessions, two-factor set-up from the server-drawn QR code's
secret, organizations with an invitation accepted from its mail; axe-core and the CSP on each
page, screenshots kept."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pyotp
import pytest

from bastion.identity import invitation_sender, organization
from tests.identity.mailbox import SMTPMailbox, smtp_mailbox_fixture  # noqa: F401
from tests.web.pagecheck import AXE, check_headers, check_html, screenshot
from tests.web.site import (
    PASSWORD,
    Site,
    alert_of,
    sign_in,
    sign_up,
    signed_in_email,
    status_of,
    web_site,
)

if TYPE_CHECKING:
    from playwright.async_api import Browser, BrowserContext, Page

TIMEOUT_MS = 10_000
NEW_PASSWORD = "another-horse-battery-9"


@pytest.fixture
async def site(smtp_mailbox: SMTPMailbox) -> AsyncIterator[Site]:
    plugins = [organization(send_invitation_email=invitation_sender(smtp_mailbox.mailer()))]
    identity = {"user": {"delete_user": {"enabled": True}}}
    async with web_site(smtp_mailbox, plugins=plugins, identity=identity) as running:
        yield running


@pytest.fixture
async def browser(async_chromium_browser: Browser) -> Browser:
    return async_chromium_browser


async def new_context(browser: Browser) -> BrowserContext:
    context = await browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    return context


@pytest.fixture
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    context = await new_context(browser)
    try:
        yield context
    finally:
        await context.close()


async def visit(page: Page, url: str, name: str | None = None) -> None:
    """Open a page of ours: CSP and security headers, valid HTML without inline scripts,
    axe-core clean, a screenshot."""
    response = await page.goto(url)
    assert response is not None and response.ok, f"{url}: {response and response.status}"
    check_headers(response.headers, url)
    check_html(await response.text(), url)
    if name:
        await axe(page, name)
        await screenshot(page, name)


async def axe(page: Page, name: str) -> None:
    """axe-core in the page, 0 serious or critical violations. Evaluated through the
    DevTools protocol, so the page keeps its CSP (an injected <script> would be refused)."""
    await page.evaluate(AXE.read_text())
    found = await page.evaluate(
        """async () => {
            const r = await axe.run(document, {resultTypes: ["violations"]});
            return r.violations.filter(v => v.impact === "serious" || v.impact === "critical")
              .map(v => ({id: v.id, impact: v.impact,
                          nodes: v.nodes.slice(0, 3).map(n => n.html)}));
        }"""
    )
    assert found == [], f"{name}: axe-core found {found}"


async def at(page: Page, path: str) -> None:
    """Wait until the page's path is `path` (a glob would match "/sign-in?next=<path>")."""
    await page.wait_for_url(lambda url: urlsplit(url).path == path)


async def verified_account(site: Site, context: BrowserContext, email: str) -> Page:
    """An account made on the sign-up page and verified from its mail; signed out."""
    page = await context.new_page()
    await page.goto(site.origin + "/sign-up")
    await sign_up(page, email.split("@")[0].title(), email)
    await page.wait_for_url("**/verify-email?sent=1")
    await site.mailbox.wait_for(email)
    await page.goto(site.mailbox.url_for(email, containing="/verify-email"))
    await page.wait_for_url("**/verify-email?verified=1")
    return page


async def signed_in(site: Site, context: BrowserContext, email: str) -> Page:
    page = await verified_account(site, context, email)
    await page.goto(site.origin + "/sign-in?next=/account")
    await sign_in(page, email)
    await at(page, "/account")
    return page


# -- account: profile, password, sessions, sign out -------------------------------------------


async def test_account_profile_password_sessions(site: Site, browser: Browser) -> None:
    email = "ada@example.com"
    context = await new_context(browser)
    other = await new_context(browser)
    try:
        page = await verified_account(site, context, email)
        # Signed out, the account page sends to sign-in and back.
        await page.goto(site.origin + "/account")
        assert urlsplit(page.url).path == "/sign-in"
        assert "next=/account" in page.url
        await sign_in(page, email)
        await at(page, "/account")
        await visit(page, site.origin + "/account", "account")

        # Profile.
        await page.fill("#profile-name", "Ada Lovelace")
        await page.click("#profile-form button[type=submit]")
        assert await status_of(page, "#profile-form") == "Your profile is saved."
        await page.reload()
        assert await page.input_value("#profile-name") == "Ada Lovelace"

        # A second device signs in: two sessions, revoke the other one.
        second = await other.new_page()
        await second.goto(site.origin + "/sign-in")
        await sign_in(second, email)
        await at(second, "/playground")
        await page.reload()
        assert await page.locator("#session-list > li").count() == 2
        assert await page.locator("#session-list .badge").inner_text() == "This device"
        await screenshot(page, "account-sessions")
        await page.click("#session-list form.revoke-session button")
        await page.wait_for_load_state("load")
        await page.locator("#session-list > li").nth(1).wait_for(state="detached")
        assert await page.locator("#session-list > li").count() == 1
        assert await signed_in_email(second) is None
        assert await signed_in_email(page) == email

        # A wrong current password: the message, the new password not kept.
        await page.fill("#current-password", "not-my-password")
        await page.fill("#new-password", NEW_PASSWORD)
        await page.fill("#confirm-password", NEW_PASSWORD)
        await page.click("#password-form button[type=submit]")
        assert "password" in (await alert_of(page, "#password-form")).lower()
        assert await page.input_value("#new-password") == ""
        # Mismatched confirmation is caught on the page.
        await page.fill("#current-password", PASSWORD)
        await page.fill("#new-password", NEW_PASSWORD)
        await page.fill("#confirm-password", NEW_PASSWORD + "x")
        await page.click("#password-form button[type=submit]")
        assert "do not match" in await alert_of(page, "#password-form")
        await page.fill("#current-password", PASSWORD)
        await page.fill("#new-password", NEW_PASSWORD)
        await page.fill("#confirm-password", NEW_PASSWORD)
        await page.check("#revoke-others")
        await page.click("#password-form button[type=submit]")
        assert await status_of(page, "#password-form") == "Your password is changed."
        assert await signed_in_email(page) == email  # still signed in here

        # Sign out from the header; the new password signs in.
        await page.click("header button:has-text('Sign out')")
        await at(page, "/sign-in")
        assert await signed_in_email(page) is None
        await page.goto(site.origin + "/sign-in?next=/account")
        await sign_in(page, email, PASSWORD)
        assert await alert_of(page, "#sign-in-email")
        await sign_in(page, email, NEW_PASSWORD)
        await at(page, "/account")
    finally:
        await other.close()
        await context.close()


async def test_delete_account(site: Site, context: BrowserContext) -> None:
    email = "gone@example.com"
    page = await signed_in(site, context, email)
    await page.fill("#delete-password", "wrong-password-here")
    await page.check("#delete-sure")
    await page.click("#delete-form button[type=submit]")
    assert await alert_of(page, "#delete-form")
    await page.fill("#delete-password", PASSWORD)
    await page.click("#delete-form button[type=submit]")
    await at(page, "/sign-in")
    await sign_in(page, email)
    assert await alert_of(page, "#sign-in-email")


# -- two-factor --------------------------------------------------------------------------------


async def test_two_factor_set_up_from_the_qr_then_sign_in(
    site: Site, context: BrowserContext
) -> None:
    email = "grace@example.com"
    page = await signed_in(site, context, email)
    await page.fill("#enable-password", "wrong-password-here")
    await page.click("#two-factor-enable button[type=submit]")
    assert await alert_of(page, "#two-factor-enable")
    await page.fill("#enable-password", PASSWORD)
    await page.click("#two-factor-enable button[type=submit]")
    await page.locator("#totp-setup").wait_for(state="visible")
    src = await page.get_attribute("#totp-qr", "src")
    assert src and src.startswith("data:image/svg+xml")
    uri = await page.text_content("#totp-uri") or ""
    assert uri.startswith("otpauth://totp/")
    secret = await page.get_attribute("#totp-secret", "data-secret")
    assert secret and secret in uri
    assert await page.locator("#totp-backup-codes li").count() == 10
    await axe(page, "account-two-factor-setup")
    await screenshot(page, "account-two-factor-setup")
    totp = pyotp.TOTP(secret)
    await page.fill("#verify-code", "000000" if totp.now() != "000000" else "111111")
    await page.click("#two-factor-verify button[type=submit]")
    assert await alert_of(page, "#two-factor-verify")
    await page.fill("#verify-code", totp.now())
    await page.click("#two-factor-verify button[type=submit]")
    await page.locator("#two-factor-disable").wait_for()
    assert "On" in await page.inner_text("#two-factor")

    # Sign out, sign in: the challenge takes the authenticator's next code.
    await page.click("header button:has-text('Sign out')")
    await at(page, "/sign-in")
    await page.goto(site.origin + "/sign-in?next=/account")
    await sign_in(page, email)
    await page.wait_for_url("**/two-factor?**")
    await page.fill("#totp-code", totp.at(time.time() + 30))
    await page.click("#two-factor-totp button[type=submit]")
    await at(page, "/account")
    assert await signed_in_email(page) == email

    # New backup codes, then off again.
    await page.fill("#backup-password", PASSWORD)
    await page.click("#backup-codes-form button[type=submit]")
    await page.locator("#new-backup-codes").wait_for(state="visible")
    assert await page.locator("#new-backup-codes li").count() == 10
    await page.fill("#disable-password", PASSWORD)
    await page.click("#two-factor-disable button[type=submit]")
    await page.locator("#two-factor-enable").wait_for()


# -- organizations and invitations -------------------------------------------------------------


async def test_organization_invite_accept_role_remove(site: Site, browser: Browser) -> None:
    owner_ctx = await new_context(browser)
    bob_ctx = await new_context(browser)
    try:
        owner = await signed_in(site, owner_ctx, "owner@example.com")
        await visit(owner, site.origin + "/organizations", "organizations-empty")
        await owner.fill("#org-name", "Acme Rockets")
        assert await owner.input_value("#org-slug") == "acme-rockets"
        await owner.click("#org-create button[type=submit]")
        await owner.locator("#member-list").wait_for()
        assert "Acme Rockets" in await owner.inner_text("#org-list")

        # A taken slug: the API's message on the page, the typed name kept.
        await owner.click("text=Create an organization")
        await owner.fill("#org-name", "Acme Again")
        await owner.fill("#org-slug", "acme-rockets")
        await owner.click("#org-create button[type=submit]")
        assert "already exists" in (await alert_of(owner, "#org-create")).lower()
        assert await owner.input_value("#org-name") == "Acme Again"

        bob_email = "bob@example.com"
        bob = await verified_account(site, bob_ctx, bob_email)
        await owner.fill("#invite-email", bob_email)
        await owner.select_option("#invite-role", "member")
        await owner.click("#invite-form button[type=submit]")
        await owner.locator("#invitation-list").wait_for()
        assert bob_email in await owner.inner_text("#invitation-list")
        await visit(owner, site.origin + "/organizations", "organizations")

        # Bob opens the mail's link signed out: sign in, then back to the invitation.
        mail = await site.mailbox.wait_for(bob_email, count=2)
        link = site.mailbox.url_for(bob_email, containing="/accept-invitation/")
        assert link.startswith(site.origin + "/accept-invitation/"), mail.text
        await bob.goto(link)
        await bob.wait_for_url("**/sign-in?next=**")
        await sign_in(bob, bob_email)
        await at(bob, urlsplit(link).path)
        await visit(bob, link, "accept-invitation")
        assert "Acme Rockets" in await bob.inner_text("main")
        await bob.click("#invitation-answer button:has-text('Accept')")
        await at(bob, "/organizations")
        assert "Acme Rockets" in await bob.inner_text("#org-list")

        # The owner sees Bob, makes him an admin, then removes him.
        await owner.reload()
        row = owner.locator("#member-list li[data-email='bob@example.com']")
        assert "member" in await row.inner_text()
        await row.locator("select").select_option("admin")
        await row.locator("button:has-text('Change role')").click()
        await owner.wait_for_load_state("load")
        bob_row = "#member-list li[data-email='bob@example.com']"
        await owner.locator(f"{bob_row} .muted:has-text('admin')").wait_for()
        await screenshot(owner, "organizations-members")
        await owner.locator(f"{bob_row} button:has-text('Remove')").click()
        await owner.locator(bob_row).wait_for(state="detached")
        await bob.reload()
        assert await bob.locator("#org-list").count() == 0

        # A link to an unknown invitation says so.
        response = await bob.goto(site.origin + "/accept-invitation/no-such-id")
        assert response is not None and response.status == 404
        assert await bob.locator("main [role=alert]").inner_text()
    finally:
        await bob_ctx.close()
        await owner_ctx.close()


# -- dark, phone -------------------------------------------------------------------------------


async def test_dark_and_phone(site: Site, browser: Browser) -> None:
    context = await browser.new_context(
        color_scheme="dark", viewport={"width": 375, "height": 740}, is_mobile=True
    )
    context.set_default_timeout(TIMEOUT_MS)
    try:
        page = await signed_in(site, context, "phone@example.com")
        for path in ("/account", "/organizations"):
            await visit(page, site.origin + path, f"{path.strip('/')}-dark-phone")
            assert await page.evaluate("document.documentElement.scrollWidth") <= 375, path
    finally:
        await context.close()
