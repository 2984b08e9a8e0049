"""The playground in a real browser: how fast a token reaches the page, and what the page costs.

Run (from the repository root, in the venv, with Debian's chromium; about 30 s):

    python bench/web_playground.py [--rounds 30] [--loads 10]

A real Bastion (uvicorn on 127.0.0.1, in this process) with the playground's test site
(tests/web/playground_site.py): the demo agent `assistant` on LocalModel, memory, the pages.
Headless Chromium through Playwright, signed in.

    first token   per run: from the moment the model yields its first text piece (measured
                  in the model, wall clock) to (a) the text node's insertion into the page
                  (a MutationObserver) and (b) the next animation frame after it (the paint
                  that shows it). Both clocks are the machine's wall clock (Python's
                  time.time(), the page's performance.timeOrigin + performance.now()).
                  Each run is one message on the conversation's thread, so the figure
                  includes the server's whole stream path: auth, thread load, agent, SSE.
    /playground   a cold load (a fresh browser context, no cache) of the signed-in page:
                  transferred bytes of the document and of its static files (navigation
                  and resource timing), those of the API calls the page makes at once
                  (agents, threads, auth context), first contentful paint, DOMContentLoaded
                  and load.

Prints medians (and the 90th percentile of the token latency), in milliseconds and bytes.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

sys.path[:0] = [str(Path(__file__).parents[1]), str(Path(__file__).parents[1] / "src")]

from tests.browser import async_chromium  # noqa: E402
from tests.web.playground_site import playground_site, sign_up  # noqa: E402

from bastion.server.local import LocalModel  # noqa: E402
from bastion.server.models import Message, StreamChunk, TextDelta, ToolSpec  # noqa: E402

# Records the wall-clock time (ms) of the first text piece of each answer, then yields it.
WATCH = """() => {
    window.__seen = [];
    const log = document.getElementById("pg-log");
    new MutationObserver(() => {
        const replies = log.querySelectorAll(".msg-assistant .msg-text");
        const last = replies[replies.length - 1];
        if (!last || last.dataset.seen || !last.textContent) return;
        last.dataset.seen = "1";
        const inserted = performance.timeOrigin + performance.now();
        requestAnimationFrame(() => window.__seen.push(
            [inserted, performance.timeOrigin + performance.now()]));
    }).observe(log, {childList: true, subtree: true, characterData: true});
}"""

LOAD = """() => {
    const nav = performance.getEntriesByType("navigation")[0];
    const res = performance.getEntriesByType("resource");
    const sum = (xs) => xs.reduce((n, r) => n + r.transferSize, 0);
    const paint = performance.getEntriesByName("first-contentful-paint")[0];
    return {
        document: nav.transferSize,
        static: sum(res.filter((r) => r.name.includes("/static/"))),
        api: sum(res.filter((r) => r.name.includes("/api/"))),
        fcp: paint ? paint.startTime : null,
        dcl: nav.domContentLoadedEventEnd,
        load: nav.loadEventEnd,
    };
}"""


class TimedModel(LocalModel):
    """LocalModel that notes when it yields the first text piece of an answer."""

    def __init__(self) -> None:
        super().__init__(name="demo", rules=[(r"\bwho\s*am\s*i\b", "whoami")])
        self.first: list[float] = []

    async def stream(  # type: ignore[override]
        self, messages: Sequence[Message], tools: Sequence[ToolSpec]
    ) -> AsyncIterator[StreamChunk]:
        first = True
        async for chunk in super().stream(messages, tools):
            if first and isinstance(chunk, TextDelta):
                first = False
                self.first.append(time.time() * 1000)
            yield chunk


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def main(rounds: int, loads: int) -> None:
    model = TimedModel()
    async with playground_site(model) as origin, async_chromium() as browser:
        context = await browser.new_context()
        page = await context.new_page()
        await sign_up(page, origin, "Bench", "bench@example.com")
        await page.goto(origin + "/playground")
        await page.wait_for_selector("#pg-agent:not([disabled])")
        await page.evaluate(WATCH)
        for i in range(rounds):
            await page.fill("#pg-input", f"hello number {i} from the benchmark")
            await page.press("#pg-input", "Enter")
            await page.wait_for_function("(n) => window.__seen.length > n", arg=i)
            await page.wait_for_selector("#pg-send:not([disabled])")
        seen: list[list[float]] = await page.evaluate("window.__seen")
        inserted = [s[0] - f for s, f in zip(seen, model.first, strict=True)]
        painted = [s[1] - f for s, f in zip(seen, model.first, strict=True)]
        cookies = await context.cookies()
        await context.close()

        figures: list[dict[str, Any]] = []
        for _ in range(loads):
            cold = await browser.new_context()
            await cold.add_cookies(cookies)  # type: ignore[arg-type]
            fresh = await cold.new_page()
            await fresh.goto(origin + "/playground", wait_until="load")
            await fresh.wait_for_selector("#pg-auth-facts[aria-busy=false]")
            await fresh.wait_for_selector("#pg-agent:not([disabled])")
            figures.append(await fresh.evaluate(LOAD))
            await cold.close()

    print(f"first token -> on the page ({rounds} runs, ms)")
    for label, values in (("inserted in the DOM ", inserted), ("next frame (painted)", painted)):
        median, p90 = statistics.median(values), pct(values, 0.9)
        print(f"  {label}  median {median:6.2f}   p90 {p90:6.2f}")
    print(f"/playground, cold ({loads} loads; medians)")
    for key, unit in (
        ("document", "B"),
        ("static", "B"),
        ("api", "B"),
        ("fcp", "ms"),
        ("dcl", "ms"),
        ("load", "ms"),
    ):
        values = [f[key] for f in figures if f[key] is not None]
        print(f"  {key:9} {statistics.median(values):9.1f} {unit}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--loads", type=int, default=10)
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.loads))
