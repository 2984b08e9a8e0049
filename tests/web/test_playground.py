"""The agent playground in a real browser (headless Debian chromium, Playwright) against a
real Bastion on 127.0.0.1: a conversation that streams and calls tools (shown inline), an
agent that fails mid-answer, threads (new, rename, open, delete), a second user who cannot
see the first one's threads, the auth panel; axe-core in light, dark and on a phone; the
CSP and the page's HTML; screenshots kept under $BASTION_ARTIFACTS."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest

from tests.web.pagecheck import axe, check_headers, check_html, screenshot
from tests.web.playground_site import PASSWORD, playground_site, sign_up
from tests.web.site import api

if TYPE_CHECKING:
    from playwright.async_api import Browser, BrowserContext, Page, Route

TIMEOUT_MS = 10_000
CONSOLE_ERRORS: dict[int, list[str]] = {}  # per page: what its console reported


def no_console_errors(page: Page) -> None:
    """No script error and no CSP violation (Chromium reports both on the console)."""
    assert CONSOLE_ERRORS.get(id(page)) == [], CONSOLE_ERRORS.get(id(page))


@pytest.fixture
async def origin() -> AsyncIterator[str]:
    async with playground_site() as running:
        yield running


async def new_context(browser: Browser, **options: object) -> BrowserContext:
    """A browser context. `bypass_csp=True` where axe-core runs: the test injects it as an
    inline script, which our CSP rightly refuses; elsewhere the CSP is enforced and any
    violation (a console error) fails the test (`playground`)."""
    context = await browser.new_context(**options)  # type: ignore[arg-type]
    context.set_default_timeout(TIMEOUT_MS)
    return context


async def playground(context: BrowserContext, origin: str, name: str, email: str) -> Page:
    """A signed-up person on /playground, its agents loaded."""
    page = await context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())  # "Delete ...?" confirmations
    errors = CONSOLE_ERRORS.setdefault(id(page), [])
    # A 404 the test asks for itself (another user's thread) is logged as a failed load:
    # not a fault of the page. CSP violations read "Refused to ...".
    page.on(
        "console",
        lambda m: (
            errors.append(m.text)
            if m.type == "error" and not m.text.startswith("Failed to load resource")
            else None
        ),
    )
    page.on("pageerror", lambda e: errors.append(str(e)))
    await sign_up(page, origin, name, email)
    response = await page.goto(origin + "/playground")
    assert response is not None and response.ok
    check_headers(response.headers, "/playground")
    check_html(await response.text(), "/playground")
    await page.wait_for_selector("#pg-agent:not([disabled])")
    return page


async def send(page: Page, text: str) -> None:
    await page.fill("#pg-input", text)
    await page.press("#pg-input", "Enter")


async def wait_idle(page: Page) -> None:
    """Until the run has ended (the Send button is enabled again)."""
    await page.wait_for_selector("#pg-send:not([disabled])")
    await page.wait_for_selector("#pg-log[aria-busy=false]")


async def thread_titles(page: Page) -> list[str]:
    return [t.strip() for t in await page.locator("#pg-threads .thread-open").all_inner_texts()]


async def test_signed_out_goes_to_sign_in_and_back(
    origin: str, async_chromium_browser: Browser
) -> None:
    context = await new_context(async_chromium_browser)
    page = await context.new_page()
    await sign_up(page, origin, "Ada Lovelace", "ada@example.com")
    await context.clear_cookies()
    await page.goto(origin + "/playground")
    # The playground is where sign-in leads by default: no ?next= needed.
    assert page.url == origin + "/sign-in"
    await page.fill("#f-email", "ada@example.com")
    await page.fill("#f-password", PASSWORD)
    await page.click("#sign-in-email button[type=submit]")
    await page.wait_for_url(origin + "/playground")
    await page.wait_for_selector("#pg-agent:not([disabled])")
    await context.close()


async def test_a_conversation_streams_and_calls_tools(
    origin: str, async_chromium_browser: Browser
) -> None:
    context = await new_context(async_chromium_browser, bypass_csp=True)
    page = await playground(context, origin, "Ada Lovelace", "ada@example.com")
    assert await page.input_value("#pg-agent") == "assistant"
    assert "get_time" in await page.inner_text("#pg-agent-about")

    # A tool call and its result, inline, then the model's text about it.
    await send(page, "use get_time {}")
    tool = page.locator("#pg-log .tool").first
    await tool.locator(".tool-result").wait_for()
    assert (await tool.locator(".tool-name").inner_text()) == "get_time"
    assert (await tool.locator(".tool-state").inner_text()) == "done"
    result = await tool.locator(".tool-result").inner_text()
    assert result.startswith("20") and "T" in result  # an ISO 8601 time
    await wait_idle(page)
    reply = page.locator("#pg-log .msg-assistant .msg-text").last
    assert (await reply.inner_text()).startswith("get_time returned")

    # The whoami tool reads the request context: the signed-in user reaches the tool.
    await send(page, "who am i?")
    await page.wait_for_function(
        "document.querySelectorAll('#pg-log .tool .tool-result').length === 2"
    )
    whoami = page.locator("#pg-log .tool").nth(1)
    assert (await whoami.locator(".tool-name").inner_text()) == "whoami"
    assert "ada@example.com" in await whoami.locator(".tool-result").inner_text()
    await wait_idle(page)

    # Tokens appear as they arrive: part of the answer is on the page while the run goes on.
    await page.select_option("#pg-agent", "slow")
    words = "one two three four five six seven eight"
    await send(page, words)
    await page.wait_for_function(
        """(full) => {
            const replies = document.querySelectorAll('#pg-log .msg-assistant .msg-text');
            const last = replies[replies.length - 1];
            const text = last ? last.textContent : "";
            return text.length > 0 && text !== full
              && !document.getElementById('pg-stop').hidden;
        }""",
        arg=f"You said: {words}",
    )
    await wait_idle(page)
    assert (
        await page.locator("#pg-log .msg-assistant .msg-text").last.inner_text()
    ) == f"You said: {words}"

    # The first message named the thread; the thread holds the exchange.
    assert await thread_titles(page) == ["use get_time {}"]
    await axe(page, "playground")
    await screenshot(page, "playground-conversation")
    await page.emulate_media(color_scheme="dark")
    await axe(page, "playground (dark)")
    await screenshot(page, "playground-dark")
    await context.close()


async def test_an_agent_failing_mid_answer_says_so(
    origin: str, async_chromium_browser: Browser
) -> None:
    context = await new_context(async_chromium_browser)
    page = await playground(context, origin, "Grace Hopper", "grace@example.com")
    await page.select_option("#pg-agent", "broken")
    await send(page, "hello")
    alert = page.locator("#pg-log .msg-error[role=alert]")
    await alert.wait_for()
    message = (await alert.inner_text()).strip()
    assert message == "The agent stopped with an error: the upstream model timed out"
    # What had streamed before the failure stays; the person can go on typing.
    assert "Let me think" in await page.locator("#pg-log .msg-assistant").last.inner_text()
    await wait_idle(page)
    assert not await page.locator("#pg-send").is_disabled()
    await screenshot(page, "playground-agent-error")
    no_console_errors(page)
    await context.close()


async def test_threads_new_rename_open_delete(origin: str, async_chromium_browser: Browser) -> None:
    context = await new_context(async_chromium_browser, bypass_csp=True)
    page = await playground(context, origin, "Ada Lovelace", "ada@example.com")
    await page.wait_for_selector("#pg-no-threads:not([hidden])")

    # New: an untitled thread, opened; a message goes into it.
    await page.click("#pg-new")
    await page.wait_for_selector("#pg-threads .thread-open[aria-current]")
    assert await thread_titles(page) == ["Untitled thread"]
    await send(page, "remember the milk")
    await wait_idle(page)

    # Rename: the keyboard path (the Rename button, type, Enter).
    await page.click("#pg-threads .thread button:has-text('Rename')")
    await page.fill("#pg-threads .thread-rename input", "Groceries")
    await page.press("#pg-threads .thread-rename input", "Enter")
    await page.wait_for_selector("#pg-threads .thread-open:has-text('Groceries')")
    assert await page.inner_text("#pg-chat-h") == "Groceries"

    # A second thread, then open the first again: its messages come back from memory.
    await page.click("#pg-new")
    await send(page, "use whoami")
    await wait_idle(page)
    titles = await thread_titles(page)
    assert sorted(titles) == ["Groceries", "Untitled thread"]
    await page.reload()
    await page.click("#pg-threads .thread-open:has-text('Groceries')")
    await page.wait_for_selector("#pg-log .msg-user")
    assert await page.locator("#pg-log .msg-user .msg-text").all_inner_texts() == [
        "remember the milk"
    ]
    assert await page.locator("#pg-log .msg-assistant .msg-text").all_inner_texts() == [
        "You said: remember the milk"
    ]
    # The other one shows its tool call from memory, inline as when it streamed.
    await page.click("#pg-threads .thread-open:has-text('Untitled thread')")
    await page.wait_for_selector("#pg-log .tool .tool-result")
    assert "ada@example.com" in await page.inner_text("#pg-log .tool .tool-result")
    await axe(page, "playground threads")
    await screenshot(page, "playground-threads")

    # Delete: gone from the page and from the API.
    await page.click("#pg-threads .thread:has-text('Groceries') button:has-text('Delete')")
    await page.wait_for_function("document.querySelectorAll('#pg-threads .thread').length === 1")
    assert await thread_titles(page) == ["Untitled thread"]
    listed = await api(page, "/api/memory/threads")
    assert [t["title"] for t in listed["data"]] == [None]
    await context.close()


async def test_a_message_sent_while_a_new_thread_is_made_goes_into_it(
    origin: str, async_chromium_browser: Browser
) -> None:
    """ "New", then a message at once: the message waits for the thread being made, rather
    than going into the thread that was open."""
    context = await new_context(async_chromium_browser)
    page = await playground(context, origin, "Ada Lovelace", "ada@example.com")
    await send(page, "first thread")
    await wait_idle(page)
    held: list[Route] = []

    async def hold_creation(route: Route) -> None:
        if route.request.method == "POST":
            held.append(route)  # answered once the message has been sent
        else:
            await route.continue_()

    await page.route("**/api/memory/threads", hold_creation)
    await page.click("#pg-new")
    await send(page, "second thread")
    while not held:
        await page.wait_for_timeout(10)
    await held[0].continue_()
    await wait_idle(page)
    await page.unroute("**/api/memory/threads")
    threads = (await api(page, "/api/memory/threads"))["data"]
    contents = {}
    for thread in threads:
        answer = await api(page, f"/api/memory/threads/{thread['id']}/messages")
        contents[thread["id"]] = [m["content"] for m in answer["data"]["messages"]]
    assert sorted(
        [m for m in messages if not m.startswith("You said")] for messages in contents.values()
    ) == [["first thread"], ["second thread"]]
    await context.close()


async def test_a_second_user_cannot_see_the_first_ones_threads(
    origin: str, async_chromium_browser: Browser
) -> None:
    first = await new_context(async_chromium_browser)
    ada = await playground(first, origin, "Ada Lovelace", "ada@example.com")
    await send(ada, "my secret plan")
    await wait_idle(ada)
    assert await thread_titles(ada) == ["my secret plan"]
    ada_thread = (await api(ada, "/api/memory/threads"))["data"][0]["id"]

    second = await new_context(async_chromium_browser)
    bob = await playground(second, origin, "Bob", "bob@example.com")
    await bob.wait_for_selector("#pg-no-threads:not([hidden])")
    assert await thread_titles(bob) == []
    # Not by its id either: answered as a thread that does not exist.
    for path in (f"/api/memory/threads/{ada_thread}", f"/api/memory/threads/{ada_thread}/messages"):
        answer = await api(bob, path)
        assert answer == {"status": 404, "data": {"error": "Thread not found"}}
    # And Bob's page says who Bob is.
    await bob.wait_for_selector("#pg-auth-facts[aria-busy=false]")
    assert "bob@example.com" in await bob.inner_text("#pg-auth-facts")
    no_console_errors(ada)
    no_console_errors(bob)
    await first.close()
    await second.close()


async def test_the_auth_panel_shows_what_the_server_sees(
    origin: str, async_chromium_browser: Browser
) -> None:
    context = await new_context(async_chromium_browser)
    page = await playground(context, origin, "Ada Lovelace", "ada@example.com")
    await page.wait_for_selector("#pg-auth-facts[aria-busy=false]")
    facts = await page.inner_text("#pg-auth-facts")
    session = (await api(page, "/api/auth/get-session"))["data"]
    assert "Ada Lovelace · ada@example.com" in facts
    assert session["user"]["id"] in facts
    assert session["session"]["id"] in facts
    assert "yes, by cookie" in facts
    assert "identity" in facts
    # The whole context, and never the session's token.
    raw = await page.text_content("#pg-auth-json") or ""  # in a closed <details>
    assert session["session"]["token"] not in raw
    assert '"resourceId": "' + session["user"]["id"] in raw
    no_console_errors(page)
    await context.close()


async def test_on_a_phone(origin: str, async_chromium_browser: Browser) -> None:
    context = await new_context(
        async_chromium_browser,
        viewport={"width": 390, "height": 844},
        is_mobile=True,
        has_touch=True,
        bypass_csp=True,
    )
    page = await playground(context, origin, "Ada Lovelace", "ada@example.com")
    await send(page, "use get_time")
    await page.locator("#pg-log .tool .tool-result").wait_for()
    await wait_idle(page)
    # Nothing wider than the screen: no sideways scrolling.
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, width
    await axe(page, "playground (phone)")
    await screenshot(page, "playground-phone")
    await context.close()
