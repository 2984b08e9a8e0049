"""A web site for browser tests of the official better-auth JS client: on one origin, the
Identity at /api/auth and, everywhere else, a page that runs `createAuthClient()` from
`better-auth/client` (tests/e2e/node/node_modules, the pinned 1.7.25), as an app would.

    bundle = client_bundle(tmp_path)            # once: esbuild, a few tens of milliseconds
    async with serve(identity_for, host="localhost", app_for=site(bundle)) as (identity, origin):
        await page.goto(origin + "/")
        await page.wait_for_function("() => window.authClient")
        await page.evaluate("() => authClient.getSession()")

The browser cannot import npm's bare specifiers, so `client_bundle` bundles the client once
with esbuild (a devDependency of tests/e2e/node, pinned; .ci/run's `npm ci` installs it, the
binary itself comes in the @esbuild/<platform> package) into one ES module, served at
/assets/better-auth-client.js. Every other path outside /api/auth answers the same page: the
client on `window.authClient` (no baseURL: the same origin's /api/auth, the client's default),
the path in <h1 id="path">, the query's `error` in <p id="error">.

Without Node, the peer's packages or esbuild the test skips, saying what is missing, unless
$BASTION_REQUIRE_NODE is set (CI), where it fails.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from bastion.identity import Identity
from tests.e2e.node_peer import NODE_DIR, _missing

__all__ = ["BUNDLE_PATH", "PAGE", "client_bundle", "site"]

BUNDLE_PATH = "/assets/better-auth-client.js"
ESBUILD = NODE_DIR / "node_modules" / "esbuild" / "bin" / "esbuild"
ENTRY = 'export { createAuthClient } from "better-auth/client";\n'

PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Bastion: the better-auth client in a browser</title></head>
<body>
<h1 id="path"></h1>
<p id="error"></p>
<script type="module">
import { createAuthClient } from "BUNDLE_PATH";
window.authClient = createAuthClient();
document.getElementById("path").textContent = location.pathname;
document.getElementById("error").textContent =
  new URLSearchParams(location.search).get("error") ?? "";
</script>
</body>
</html>
""".replace("BUNDLE_PATH", BUNDLE_PATH)


def client_bundle(directory: Path) -> Path:
    """`better-auth/client` bundled for the browser (one ES module) into `directory`."""
    if shutil.which("node") is None:
        _missing("needs Node.js (node) to bundle the better-auth client for the browser")
    if not (NODE_DIR / "node_modules" / "better-auth").is_dir():
        _missing(f"needs the better-auth peer installed: npm ci --prefix {NODE_DIR}")
    if not ESBUILD.is_file():
        _missing(f"needs esbuild (a devDependency of the peer): npm ci --prefix {NODE_DIR}")
    out = directory / "better-auth-client.js"
    result = subprocess.run(
        [
            str(ESBUILD),  # a Node script that runs the platform's binary, or that binary
            "--bundle",
            "--format=esm",
            "--platform=browser",
            "--target=es2022",
            "--log-level=warning",
            f"--outfile={out}",
        ],
        cwd=NODE_DIR,  # the bare specifiers resolve from the peer's node_modules
        input=ENTRY,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if result.returncode != 0:
        raise AssertionError(f"esbuild failed to bundle better-auth/client:\n{result.stderr}")
    return out


def site(bundle: Path) -> Callable[[Identity], ASGIApp]:
    """`app_for` of tests/e2e/bastion_server.serve: the Identity at its base path, the
    client's bundle, and the page everywhere else."""

    async def page(request: Request) -> HTMLResponse:
        return HTMLResponse(PAGE, headers={"cache-control": "no-store"})

    async def script(request: Request) -> FileResponse:
        return FileResponse(bundle, media_type="text/javascript")

    pages = Starlette(
        routes=[Route(BUNDLE_PATH, script), Route("/{path:path}", page, methods=["GET"])]
    )

    def app_for(identity: Identity) -> ASGIApp:
        base_path = identity.options.base_path

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            path = scope.get("path", "")
            if scope["type"] == "http" and not (
                path == base_path or path.startswith(base_path + "/")
            ):
                await pages(scope, receive, send)
            else:
                await identity.app(scope, receive, send)

        return app

    return app_for
