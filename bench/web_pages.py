"""How small and fast the web pages are: transferred bytes and time to first render.

Run (from the repository root, in the venv; Debian's chromium at /usr/bin/chromium, or
$BASTION_CHROMIUM; about 20 s):

    python bench/web_pages.py [--runs 20] [--paths /sign-in,/sign-up]

It starts `bastion serve` (the embedded default: uvicorn, httptools, uvloop) on a free port
and a scratch SQLite file, and loads each page `--runs` times in headless Chromium through
Playwright, reading the browser's own Navigation and Paint Timing:

    cold    a new browser context each time (empty cache): the HTML, app.css and app.js
    warm    the same page again in that context: the HTML only, the hashed static files come
            from the cache (Cache-Control: immutable)

bytes are `transferSize` (headers and body as received) of the document and of every
resource; first paint and first contentful paint are from the navigation's start; DCL is
domContentLoadedEventEnd. Prints medians (and the slowest run) in milliseconds.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _harness import log, machine
from tests.browser import chromium

SECRET = "bastion-bench-secret-0123456789abcdef0123456789abcdef"
TIMING = """() => {
    const nav = performance.getEntriesByType("navigation")[0];
    const paint = Object.fromEntries(
        performance.getEntriesByType("paint").map((p) => [p.name, p.startTime]));
    const resources = performance.getEntriesByType("resource");
    return {
        document: nav.transferSize,
        resources: resources.reduce((sum, r) => sum + r.transferSize, 0),
        files: resources.length,
        ttfb: nav.responseStart,
        first_paint: paint["first-paint"] ?? null,
        fcp: paint["first-contentful-paint"] ?? null,
        dcl: nav.domContentLoadedEventEnd,
        load: nav.loadEventEnd,
    };
}"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(folder: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "BASTION_SECRET": SECRET,
        "DATABASE_URL": f"sqlite:///{folder}/bench.db",
        "PORT": str(port),
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from bastion.cli import main; main()",
            "serve",
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=folder,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit("bastion serve did not start within 30 s")


def wait_for_paint(page: Any) -> None:
    # Paint entries appear a frame after load; two animation frames are enough.
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")


def measure(browser: Any, url: str, runs: int) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {"cold": [], "warm": []}
    for _ in range(runs):
        context = browser.new_context()
        try:
            page = context.new_page()
            for kind in ("cold", "warm"):
                page.goto(url, wait_until="load")
                wait_for_paint(page)
                found[kind].append(page.evaluate(TIMING))
        finally:
            context.close()
    return found


def summary(rows: list[dict[str, Any]]) -> dict[str, str]:
    def column(name: str) -> list[float]:
        return [float(r[name]) for r in rows if r[name] is not None]

    out = {}
    for name in ("document", "resources"):
        out[name] = f"{statistics.median(column(name)):.0f}"
    out["files"] = f"{statistics.median(column('files')):.0f}"
    for name in ("ttfb", "first_paint", "fcp", "dcl", "load"):
        values = column(name)
        out[name] = f"{statistics.median(values):.1f} ({max(values):.1f})" if values else "-"
    return out


HEADER = ["document B", "resources B", "files", "TTFB", "first paint", "FCP", "DCL", "load"]
COLUMNS = ["document", "resources", "files", "ttfb", "first_paint", "fcp", "dcl", "load"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--paths", default="/sign-in,/sign-up")
    args = parser.parse_args()
    info = machine()
    log(f"machine: {info}")
    with tempfile.TemporaryDirectory() as folder:
        port = free_port()
        server = start_server(Path(folder), port)
        try:
            with chromium() as browser:
                log(f"chromium {browser.version}")
                for path in args.paths.split(","):
                    url = f"http://127.0.0.1:{port}{path}"
                    measure(browser, url, 2)  # warm up the server and the browser
                    results = measure(browser, url, args.runs)
                    print(f"\n{path}  ({args.runs} runs; ms: median (slowest))")
                    print(" | ".join(["", *HEADER]))
                    for kind, rows in results.items():
                        s = summary(rows)
                        print(" | ".join([kind, *(s[name] for name in COLUMNS)]))
        finally:
            server.terminate()
            server.wait(10)


if __name__ == "__main__":
    main()
