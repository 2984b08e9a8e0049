"""Social sign-in in a real browser: headless Chromium runs the official better-auth JS client
(`better-auth/client` 1.7.25, bundled by tests/e2e/browser_site.py) on a page of Bastion's
origin, and goes through the whole redirect dance: our page, Bastion's /sign-in/social, the
provider's login form (the GitHub stand-in, or panva's oidc-provider through the generic
OAuth plugin), Bastion's /callback/{id}, and back to our page, signed in.

Bastion is http://localhost:<port>, the providers http://127.0.0.1:<port>: another site, as a
real provider is, so the callback is a cross-site navigation (SameSite=Lax cookies are sent on
it, Strict ones would not be).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from bastion.identity import Identity, generic_oauth
from tests.e2e.bastion_server import free_port, serve
from tests.e2e.browser_site import client_bundle, site
from tests.identity.social.standins import (
    GitHubStandin,
    OIDCProvider,
    github_standin,
    oidc_provider,
)

if TYPE_CHECKING:
    from playwright.async_api import Browser, BrowserContext, Page

pytestmark = pytest.mark.e2e

SECRET = "browser-social-tests-secret-0123456789abcdef"
PASSWORD = "correct-horse-battery"
GITHUB_CLIENT = {
    "client_id": "gh-browser",
    "client_secret": "gh-browser-secret",
    "redirect_uris": ["http://localhost/"],  # loopback: any port, any path below
}
TIMEOUT_MS = 10_000  # each step takes well under a second; a stuck one fails in 10 s


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return client_bundle(tmp_path_factory.mktemp("better-auth-client"))


@pytest.fixture(scope="module")
def gh() -> Iterator[GitHubStandin]:
    with github_standin(clients=[GITHUB_CLIENT]) as standin:
        yield standin


@pytest.fixture(scope="module")
def idp() -> Iterator[OIDCProvider]:
    """One OpenID Provider for the module; each test registers its own client (its origin)."""
    with oidc_provider() as provider:
        yield provider


@asynccontextmanager
async def bastion(
    bundle: Path,
    gh: GitHubStandin,
    idp: OIDCProvider,
    corp: dict[str, Any] | None = None,
    **options: Any,
) -> AsyncIterator[tuple[Identity, str]]:
    """Bastion with GitHub (the stand-in) and "corp" (generic OAuth, OpenID Connect at the
    provider; `corp` adds to its options), and our page, on http://localhost:<free port>.
    `options` go to the Identity."""
    port = free_port()
    origin = f"http://localhost:{port}"
    client_id = f"bastion-{port}"
    idp.add_clients(
        {
            "client_id": client_id,
            "client_secret": "corp-secret",
            "redirect_uris": [f"{origin}/api/auth/callback/corp"],
            "token_endpoint_auth_method": "client_secret_post",
        }
    )

    def identity_for(base_url: str) -> Identity:
        return Identity(
            env={},
            secret=SECRET,
            base_url=base_url,
            database="sqlite+aiosqlite:///:memory:",
            email_and_password={"enabled": True},
            social_providers={
                "github": {
                    "client_id": GITHUB_CLIENT["client_id"],
                    "client_secret": GITHUB_CLIENT["client_secret"],
                    "authorization_endpoint": gh.authorize_url,
                    "token_endpoint": gh.token_url,
                    "userinfo_endpoint": gh.user_url,
                    "emails_endpoint": gh.emails_url,
                }
            },
            plugins=[
                generic_oauth(
                    config=[
                        {
                            "provider_id": "corp",
                            "discovery_url": idp.discovery_url,
                            "client_id": client_id,
                            "client_secret": "corp-secret",
                            "scopes": ["openid", "email", "profile"],
                            **(corp or {}),
                        }
                    ]
                )
            ],
            **options,
        )

    async with serve(identity_for, port, host="localhost", app_for=site(bundle)) as served:
        assert served[1] == origin
        yield served


@pytest.fixture
async def browser_context(async_chromium_browser: Browser) -> AsyncIterator[BrowserContext]:
    context = await async_chromium_browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    try:
        yield context
    finally:
        await context.close()


# -- the page and the client ----------------------------------------------------------------


async def client_ready(page: Page) -> None:
    """Our page has loaded and made `window.authClient`."""
    await page.wait_for_function("() => window.authClient !== undefined")


async def open_page(context: BrowserContext, origin: str, path: str = "/") -> Page:
    page = await context.new_page()
    await page.goto(origin + path)
    await client_ready(page)
    return page


async def call(page: Page, method: str, *args: Any) -> dict[str, Any]:
    """`await authClient.<method>(...args)` in the page: the client's {data, error}."""
    result: dict[str, Any] = await page.evaluate(
        """async ([method, args]) => {
            const fn = method.split(".").reduce((o, k) => o[k], window.authClient);
            const { data, error } = await fn(...args);
            return { data: data ?? null, error: error ?? null };
        }""",
        [method, list(args)],
    )
    return result


async def data(page: Page, method: str, *args: Any) -> Any:
    """The client's `data`, after checking that it answered no error."""
    result = await call(page, method, *args)
    assert result["error"] is None, f"{method}: {result['error']}"
    return result["data"]


async def navigate_away(page: Page, method: str, body: dict[str, Any], to: str) -> None:
    """`authClient.<method>(body)`, which answers a URL the client navigates to (the
    provider's authorization URL); waits until the browser is at `to` (a glob)."""
    await page.evaluate(
        """([method, body]) => {
            const fn = method.split(".").reduce((o, k) => o[k], window.authClient);
            window.started = fn(body).then(
                (r) => JSON.stringify({ data: r.data ?? null, error: r.error ?? null }),
                (e) => JSON.stringify({ thrown: String(e) }),
            );
        }""",
        [method, body],
    )
    try:
        await page.wait_for_url(to)
    except Exception as error:  # the client did not navigate: show what it answered
        answered = await page.evaluate("() => window.started")
        raise AssertionError(f"{method} did not lead to {to}: {answered}") from error


async def at_the_login_form(page: Page, login: str) -> None:
    """The provider's login form (both stand-ins': <form id="login">), filled and sent."""
    await page.fill("#login input[name=login]", login)
    await page.click("#login button[type=submit]")


async def back_at(page: Page, url: str) -> None:
    """Waits until the provider has sent the browser back to our origin, and checks that it
    ended at `url` (failing at once, with the page it ended on, otherwise)."""
    origin = "/".join(url.split("/", 3)[:3])
    await page.wait_for_url(lambda at: at.startswith(origin + "/"))
    if page.url != url:
        text = await page.text_content("body")
        raise AssertionError(f"expected {url}, ended at {page.url}: {text!r}")


async def sign_up(page: Page, email: str, name: str) -> dict[str, Any]:
    signed_up = await data(
        page, "signUp.email", {"email": email, "password": PASSWORD, "name": name}
    )
    user: dict[str, Any] = signed_up["user"]
    return user


def login_form(provider: str, gh: GitHubStandin, idp: OIDCProvider) -> str:
    """Where the provider shows its login form (a glob)."""
    return gh.authorize_url + "?*" if provider == "github" else idp.issuer + "/interaction/*"


def providers(accounts: list[dict[str, Any]]) -> list[str]:
    return sorted(a["providerId"] for a in accounts)


# -- sign-in --------------------------------------------------------------------------------


@pytest.mark.parametrize("state_strategy", ["database", "cookie"])
async def test_github_sign_in_through_the_browser(
    browser_context: BrowserContext,
    bundle: Path,
    gh: GitHubStandin,
    idp: OIDCProvider,
    state_strategy: str,
) -> None:
    """Either way of keeping the OAuth state: a row and a signed cookie, or an encrypted
    cookie alone; the browser sends it back on the provider's cross-site redirect."""
    account = {"store_state_strategy": state_strategy}
    async with bastion(bundle, gh, idp, account=account) as (_, origin):
        page = await open_page(browser_context, origin)
        assert await data(page, "getSession") is None
        body = {"provider": "github", "callbackURL": "/done"}
        await navigate_away(page, "signIn.social", body, login_form("github", gh, idp))
        await at_the_login_form(page, "octocat")
        await back_at(page, origin + "/done")
        await client_ready(page)
        assert await page.text_content("#path") == "/done"

        session = await data(page, "getSession")
        assert session is not None
        assert session["user"]["email"] == "octocat@example.com"
        assert session["user"]["name"] == "The Octocat"
        assert session["user"]["emailVerified"] is True
        accounts = await data(page, "listAccounts")
        assert [(a["providerId"], a["accountId"]) for a in accounts] == [("github", "583231")]
        # The browser keeps the session cookie, and the state's cookie is gone: single use.
        cookies = {c["name"]: c for c in await browser_context.cookies(origin)}
        assert sorted(cookies) == ["better-auth.session_token"]
        assert cookies["better-auth.session_token"]["httpOnly"] is True
        assert cookies["better-auth.session_token"]["sameSite"] == "Lax"


@pytest.mark.parametrize("response_mode", ["query", "form_post"])
async def test_oidc_sign_in_through_the_browser(
    browser_context: BrowserContext,
    bundle: Path,
    gh: GitHubStandin,
    idp: OIDCProvider,
    response_mode: str,
) -> None:
    """form_post: the provider's page POSTs the code to the callback, cross-site, so without
    Bastion's SameSite=Lax state cookie; Bastion sends the browser on to the GET callback,
    where the cookie comes along."""
    corp = {"response_mode": response_mode}
    async with bastion(bundle, gh, idp, corp=corp) as (_, origin):
        page = await open_page(browser_context, origin)
        callbacks: list[str] = []
        page.on(
            "request",
            lambda r: callbacks.append(r.method) if "/api/auth/callback/" in r.url else None,
        )
        body = {"provider": "corp", "callbackURL": "/done"}
        await navigate_away(page, "signIn.social", body, login_form("corp", gh, idp))
        await at_the_login_form(page, "alice")
        await back_at(page, origin + "/done")
        await client_ready(page)
        assert callbacks == (["POST", "GET"] if response_mode == "form_post" else ["GET"])

        session = await data(page, "getSession")
        assert session is not None
        assert session["user"]["email"] == "alice@example.com"
        assert session["user"]["name"] == "Alice Example"
        accounts = await data(page, "listAccounts")
        assert [(a["providerId"], a["accountId"]) for a in accounts] == [("corp", "alice")]


# -- linking a provider to the signed-in user ------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "login", "email"),
    [("github", "octocat", "octocat@example.com"), ("corp", "alice", "alice@example.com")],
)
async def test_link_a_provider_from_the_account(
    browser_context: BrowserContext,
    bundle: Path,
    gh: GitHubStandin,
    idp: OIDCProvider,
    provider: str,
    login: str,
    email: str,
) -> None:
    async with bastion(bundle, gh, idp) as (_, origin):
        page = await open_page(browser_context, origin)
        user = await sign_up(page, email, "Local Name")
        assert providers(await data(page, "listAccounts")) == ["credential"]

        body = {"provider": provider, "callbackURL": "/linked"}
        await navigate_away(page, "linkSocial", body, login_form(provider, gh, idp))
        await at_the_login_form(page, login)
        await back_at(page, origin + "/linked")
        await client_ready(page)

        session = await data(page, "getSession")
        assert session["user"]["id"] == user["id"]  # the same user, still signed in
        assert session["user"]["email"] == email
        assert providers(await data(page, "listAccounts")) == sorted(["credential", provider])


# -- a refusal, as the browser sees it -------------------------------------------------------


async def test_an_unverified_github_address_ends_on_the_error_page(
    browser_context: BrowserContext, bundle: Path, gh: GitHubStandin, idp: OIDCProvider
) -> None:
    """S34 in the browser: GitHub says uma@example.com is unverified; the verified local user
    with that address is not signed in, and the browser ends on Bastion's error page."""
    async with bastion(bundle, gh, idp) as (identity, origin):
        page = await open_page(browser_context, origin)
        local = await sign_up(page, "uma@example.com", "Uma Local")
        await identity.store.update_user(local["id"], {"emailVerified": True})
        await data(page, "signOut")
        assert await data(page, "getSession") is None

        body = {"provider": "github", "callbackURL": "/done"}
        await navigate_away(page, "signIn.social", body, login_form("github", gh, idp))
        await at_the_login_form(page, "unverified-uma")
        await back_at(page, origin + "/api/auth/error?error=account_not_linked")
        assert "account_not_linked" in (await page.text_content("code") or "")

        await page.goto(origin + "/")
        await client_ready(page)
        assert await data(page, "getSession") is None
        accounts = await identity.store.list_accounts(local["id"])
        assert [a["providerId"] for a in accounts] == ["credential"]


async def test_a_refusal_goes_to_the_error_callback_url(
    browser_context: BrowserContext, bundle: Path, gh: GitHubStandin, idp: OIDCProvider
) -> None:
    """The same refusal with an errorCallbackURL of the app's: our page, with the error."""
    async with bastion(bundle, gh, idp) as (identity, origin):
        page = await open_page(browser_context, origin)
        local = await sign_up(page, "uma@example.com", "Uma Local")
        await identity.store.update_user(local["id"], {"emailVerified": True})
        await data(page, "signOut")

        body = {"provider": "github", "callbackURL": "/done", "errorCallbackURL": "/failed"}
        await navigate_away(page, "signIn.social", body, login_form("github", gh, idp))
        await at_the_login_form(page, "unverified-uma")
        await back_at(page, origin + "/failed?error=account_not_linked")
        await client_ready(page)
        assert await page.text_content("#error") == "account_not_linked"
        assert await data(page, "getSession") is None


async def test_a_callback_url_of_another_site_is_refused_before_the_provider(
    browser_context: BrowserContext, bundle: Path, gh: GitHubStandin, idp: OIDCProvider
) -> None:
    """The client gets the 403 and stays on our page: no provider, no state."""
    async with bastion(bundle, gh, idp) as (_, origin):
        page = await open_page(browser_context, origin)
        before = gh.hits["GET /login/oauth/authorize"]
        body = {"provider": "github", "callbackURL": "http://evil.example.test/"}
        result = await call(page, "signIn.social", body)
        assert result["data"] is None
        assert result["error"]["status"] == 403
        assert result["error"]["code"] == "INVALID_CALLBACK_URL"
        assert result["error"]["message"] == "Invalid callbackURL"
        assert page.url == origin + "/"
        assert gh.hits["GET /login/oauth/authorize"] == before
        assert [c["name"] for c in await browser_context.cookies(origin)] == []
