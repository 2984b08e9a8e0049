"""Drive the OFFICIAL better-auth JS client from Python tests (tests/e2e/node/client-bridge.mjs).

    async with js_client(base_url, mode="cookie") as client:
        data, error = await client.call("signUp.email", {"email": e, "password": p, "name": n})

`mode="cookie"` keeps a browser-like cookie jar in the bridge; `mode="bearer"` uses the bearer
plugin's `set-auth-token` / `Authorization: Bearer` flow instead. Requests carry
`Origin: <origin>` (default: the base URL's origin; `origin="none"` sends none) where a browser
would: on every POST, and on GETs too when `origin` is not the server's. `data` and `error` are
exactly what the client returned, Dates as ISO strings.

Tests skip (or fail with $BASTION_REQUIRE_NODE) when Node or the peer's packages are missing.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

from tests.e2e.node_peer import log_tail, read_json_line, start_node, stop_node


class JsClientError(AssertionError):
    """The bridge could not run a command (the client threw, or the bridge died)."""


class JsClient:
    """One official better-auth client (createAuthClient) running in a Node process."""

    def __init__(
        self,
        process: asyncio.subprocess.Process,
        stderr_log: Path,
        mode: str,
        base_url: str,
        timeout: float,
    ) -> None:
        self.process = process
        self.stderr_log = stderr_log
        self.mode = mode
        self.base_url = base_url
        self.timeout = timeout
        self._next_id = 0
        self._lock = asyncio.Lock()

    async def _command(self, command: dict[str, Any]) -> dict[str, Any]:
        assert self.process.stdin is not None
        async with self._lock:
            self._next_id += 1
            command = {"id": self._next_id, **command}
            self.process.stdin.write(json.dumps(command).encode() + b"\n")
            await self.process.stdin.drain()
            reply = await read_json_line(
                self.process, self.timeout, self.stderr_log, f"JS client {command}"
            )
        if reply.get("id") != command["id"]:
            raise JsClientError(f"reply {reply} does not answer {command}")
        if "exception" in reply:
            raise JsClientError(
                f"client.{command.get('call')} threw {reply['exception']}\n"
                f"{log_tail(self.stderr_log)}"
            )
        return reply

    async def call(
        self,
        path: str,
        args: dict[str, Any] | None = None,
        fetch_options: dict[str, Any] | None = None,
    ) -> tuple[Any, Any]:
        """`client.<path>(args, fetchOptions)`; the client's `(data, error)`."""
        command: dict[str, Any] = {"call": path}
        if args is not None:
            command["args"] = args
        if fetch_options is not None:
            command["fetchOptions"] = fetch_options
        reply = await self._command(command)
        return reply.get("data"), reply.get("error")

    async def cookies(self) -> dict[str, str]:
        """The cookie jar (cookie mode): name -> value as sent back."""
        return (await self._command({"cookies": True}))["cookies"]

    async def token(self) -> str | None:
        """The bearer token the client sends (bearer mode), from `set-auth-token`."""
        return (await self._command({"token": True}))["token"]

    async def redirects(self) -> list[dict[str, Any]]:
        """twoFactorClient's `onTwoFactorRedirect` calls since the last call of this method
        (with `CLIENT_PLUGINS="twoFactor"`)."""
        return (await self._command({"redirects": True}))["redirects"]

    async def requests(self) -> list[dict[str, Any]]:
        """The HTTP requests made since the last call of this method (method, url, headers,
        body, status, setCookie, setAuthToken)."""
        return (await self._command({"requests": True}))["requests"]


@asynccontextmanager
async def js_client(
    base_url: str,
    mode: Literal["cookie", "bearer"] = "cookie",
    *,
    origin: str | None = None,
    call_timeout: float = 30.0,
    **env: str,
) -> AsyncIterator[JsClient]:
    """Start a client bridge for `base_url` (e.g. http://127.0.0.1:3000/api/auth).

    `call_timeout` bounds each HTTP request in the bridge (a call may make several, following
    redirects); Python waits 10 s longer per command. `env` adds variables for the bridge."""
    if mode not in ("cookie", "bearer"):
        raise ValueError(f"mode must be 'cookie' or 'bearer', not {mode!r}")
    with tempfile.TemporaryDirectory(prefix="bastion-js-client-") as folder:
        stderr_log = Path(folder) / "client.stderr"
        child_env = {
            "BASE_URL": base_url,
            "MODE": mode,
            "CALL_TIMEOUT_MS": str(int(call_timeout * 1000)),
            **({"ORIGIN": origin} if origin is not None else {}),
            **env,
        }
        process = await start_node("client-bridge.mjs", [], child_env, stderr_log)
        try:
            ready = await read_json_line(process, 60, stderr_log, "JS client start")
            assert ready.get("ready") is True, ready
            # Python's own timeout leaves room for the bridge's per-request timeout.
            yield JsClient(process, stderr_log, mode, base_url, call_timeout + 10)
        finally:
            await stop_node(process, grace=5)
