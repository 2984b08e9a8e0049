"""A headless Chromium for browser tests, driven by Playwright.

The browser is Debian's (`apt-get install chromium`, at /usr/bin/chromium; $BASTION_CHROMIUM
names another); Playwright's own browser downloads are never used. A test that needs it skips,
naming what is missing (chromium, or the playwright package), unless $BASTION_REQUIRE_BROWSER
is set (CI sets it), where it fails instead. tests/conftest.py registers the fixtures
`chromium_browser` and `async_chromium_browser` for every test:

    def test_sync(chromium_browser: Browser) -> None:          # a sync test
        page = chromium_browser.new_page()

    async def test_async(async_chromium_browser: AsyncBrowser) -> None:
        page = await async_chromium_browser.new_page()

    with chromium() as browser: ...                             # or without fixtures
    async with async_chromium() as browser: ...

Playwright's sync API refuses to run where an asyncio loop runs: async tests take the async
fixture. Each test gets a fresh browser (about half a second to start); pages of one test share
its cookies only through one `browser.new_context()`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from playwright.async_api import Browser as AsyncBrowser
    from playwright.sync_api import Browser

__all__ = [
    "CHROMIUM",
    "REQUIRE_BROWSER",
    "async_chromium",
    "async_chromium_browser_fixture",
    "chromium",
    "chromium_browser_fixture",
    "chromium_executable",
]

CHROMIUM = Path(os.environ.get("BASTION_CHROMIUM", "/usr/bin/chromium"))
REQUIRE_BROWSER = os.environ.get("BASTION_REQUIRE_BROWSER", "") not in ("", "0")
LAUNCH_ARGS = [
    "--disable-dev-shm-usage",  # containers often have a small /dev/shm
    "--disable-gpu",
    "--no-first-run",
    "--no-default-browser-check",
]


def _missing(reason: str) -> None:
    if REQUIRE_BROWSER:
        pytest.fail(f"{reason} ($BASTION_REQUIRE_BROWSER is set)", pytrace=False)
    pytest.skip(reason)


def chromium_executable() -> str:
    """Debian's chromium, with Playwright importable; skips (or fails) otherwise."""
    try:
        import playwright  # noqa: F401
    except ImportError:
        _missing("needs the playwright package (pip install playwright) for browser tests")
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        _missing(f"needs chromium at {CHROMIUM} (apt-get install chromium) for browser tests")
    return str(CHROMIUM)


def _launch_options(options: dict[str, Any]) -> dict[str, Any]:
    return {
        "executable_path": chromium_executable(),
        "headless": True,
        "args": LAUNCH_ARGS,
        "timeout": 30_000,
        **options,
    }


@contextlib.contextmanager
def chromium(**options: Any) -> Iterator[Browser]:
    """A headless Chromium (Playwright's sync API) until the block ends. `options` go to
    `chromium.launch` (e.g. slow_mo=...)."""
    launch = _launch_options(options)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(**launch)
        try:
            yield browser
        finally:
            browser.close()


@contextlib.asynccontextmanager
async def async_chromium(**options: Any) -> AsyncIterator[AsyncBrowser]:
    """A headless Chromium (Playwright's async API) until the block ends."""
    launch = _launch_options(options)
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(**launch)
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture(name="chromium_browser")
def chromium_browser_fixture() -> Iterator[Browser]:
    """A fresh headless Chromium for a sync test (see the module doc)."""
    with chromium() as browser:
        yield browser


@pytest.fixture(name="async_chromium_browser")
async def async_chromium_browser_fixture() -> AsyncIterator[AsyncBrowser]:
    """A fresh headless Chromium for an async test."""
    async with async_chromium() as browser:
        yield browser
