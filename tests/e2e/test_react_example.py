"""examples/react, built by npm (`.ci/run`), in Chromium against the default app of `bastion
serve`: better-auth's React client (`createAuthClient`, `useSession`) signs up and in through
CORS from another port, and the agent answers a call with the session's token as a bearer.

The built `dist/` is served by a small static server on one port, Bastion on another (free
ports rather than 4111: a developer's own `bastion serve` must not break the test), with the
page's origin in $BETTER_AUTH_TRUSTED_ORIGINS as the README says. Without the build the test
skips, naming the command; with $BASTION_REQUIRE_NODE (CI) it fails.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from tests.e2e.bastion_server import free_port, listening
from tests.e2e.default_server import serve_default
from tests.e2e.node_peer import _missing

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "react"
DIST = EXAMPLE / "dist"
SECRET = "test-secret-0123456789abcdef0123456789abcdef"
PASSWORD = "correct horse battery"


def built_example() -> Path:
    if not (DIST / "index.html").is_file():
        _missing(f"needs the React example built: cd {EXAMPLE} && npm ci && npm run build")
    return DIST


@asynccontextmanager
async def serve_static(dist: Path, bastion_url: str, port: int) -> AsyncIterator[str]:
    """`dist/` on 127.0.0.1, its config.js naming the Bastion under test (what a deployment
    does by editing dist/config.js)."""

    async def config(_: object) -> Response:
        script = f"window.BASTION_URL = {bastion_url!r};\n"
        return Response(script, media_type="text/javascript")

    app = Starlette(
        routes=[Route("/config.js", config), Mount("/", StaticFiles(directory=dist, html=True))]
    )
    async with listening(app, port):
        yield f"http://127.0.0.1:{port}"


async def sign_in(page: Page, email: str) -> None:
    form = page.locator("form", has=page.get_by_role("heading", name="Sign in"))
    await form.get_by_label("Email").fill(email)
    await form.get_by_label("Password").fill(PASSWORD)
    await form.get_by_role("button", name="Sign in").click()


async def test_react_example_signs_up_and_calls_the_agent(
    async_chromium_browser: Browser, tmp_path: Path
) -> None:
    dist = built_example()
    page_port = free_port()
    page_origin = f"http://127.0.0.1:{page_port}"
    env = {
        "BASTION_SECRET": SECRET,
        "DATABASE_URL": f"sqlite:///{tmp_path}/bastion.db",
        "BETTER_AUTH_TRUSTED_ORIGINS": page_origin,
    }
    async with (
        serve_default(env) as bastion_url,
        serve_static(dist, bastion_url, page_port) as origin,
    ):
        assert origin == page_origin
        context = await async_chromium_browser.new_context()
        page = await context.new_page()
        failed: list[str] = []
        page.on("requestfailed", lambda r: failed.append(f"{r.url}: {r.failure}"))
        api_calls: list[str] = []
        page.on(
            "request", lambda r: api_calls.append(r.url) if r.url.startswith(bastion_url) else None
        )
        await page.goto(origin)

        sign_up = page.locator("form", has=page.get_by_role("heading", name="Sign up"))
        await sign_up.get_by_label("Name").fill("Ada Lovelace")
        await sign_up.get_by_label("Email").fill("ada@example.com")
        await sign_up.get_by_label("Password").fill(PASSWORD)
        await sign_up.get_by_role("button", name="Sign up").click()

        # useSession() shows the user the session cookie (set through CORS) belongs to.
        user = page.get_by_test_id("user")
        await user.wait_for(timeout=15_000)
        assert await user.inner_text() == "Signed in as Ada Lovelace (ada@example.com)"

        # The agent call: Authorization: Bearer ${session.session.token}, no cookie needed.
        async with page.expect_request("**/api/agents/assistant/generate") as sent:
            await page.get_by_role("button", name="Ask the agent who I am").click()
        request = await sent.value
        token = request.headers["authorization"].removeprefix("Bearer ")
        answer = page.get_by_test_id("answer")
        await answer.wait_for(timeout=15_000)
        assert "Ada Lovelace" in await answer.inner_text()
        response = await request.response()
        assert response is not None and response.status == 200
        assert response.headers["access-control-allow-origin"] == origin

        # The bearer token is the session's: the signed session cookie carries it.
        cookies = {c["name"]: c["value"] for c in await context.cookies(bastion_url)}
        assert cookies["better-auth.session_token"].split(".")[0] == token

        await page.get_by_role("button", name="Sign out").click()
        await page.get_by_role("heading", name="Sign in").wait_for(timeout=15_000)
        await sign_in(page, "ada@example.com")
        await user.wait_for(timeout=15_000)
        assert "ada@example.com" in await user.inner_text()

        await page.screenshot(path=str(tmp_path / "react-example.png"))
        assert not failed, failed
        assert any("/api/auth/sign-up/email" in url for url in api_calls)
        await context.close()


async def test_react_example_from_an_untrusted_origin_is_refused(
    async_chromium_browser: Browser, tmp_path: Path
) -> None:
    """The same page, its origin not in $BETTER_AUTH_TRUSTED_ORIGINS: the browser's preflight
    is refused, the sign-up never reaches the Identity, the page says so."""
    dist = built_example()
    env = {"BASTION_SECRET": SECRET, "DATABASE_URL": f"sqlite:///{tmp_path}/bastion.db"}
    async with (
        serve_default(env) as bastion_url,
        serve_static(dist, bastion_url, free_port()) as origin,
    ):
        context = await async_chromium_browser.new_context()
        page = await context.new_page()
        failed: list[str] = []
        page.on("requestfailed", lambda r: failed.append(r.url))
        await page.goto(origin)
        sign_up = page.locator("form", has=page.get_by_role("heading", name="Sign up"))
        await sign_up.get_by_label("Name").fill("Eve")
        await sign_up.get_by_label("Email").fill("eve@example.com")
        await sign_up.get_by_label("Password").fill(PASSWORD)
        await sign_up.get_by_role("button", name="Sign up").click()
        await sign_up.get_by_role("alert").wait_for(timeout=15_000)
        assert await page.get_by_test_id("user").count() == 0
        # Chromium's message for a fetch its CORS check stopped.
        assert await sign_up.get_by_role("alert").inner_text() == "Failed to fetch"
        assert f"{bastion_url}/api/auth/sign-up/email" in failed
        with sqlite3.connect(tmp_path / "bastion.db") as db:
            assert db.execute('select count(*) from "user"').fetchone() == (0,)
        await context.close()
