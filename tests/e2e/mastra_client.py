"""Drive Mastra's own HTTP client (`MastraClient` of @mastra/client-js) from Python tests,
through tests/e2e/mastra/mastra-bridge.mjs.

    async with mastra_client(origin, token) as mastra:
        agents = await mastra.call(("listAgents",))
        answer = await mastra.call(("getAgent", "assistant"), ("generate", "hi", {...}))

Each step calls a method of what the previous one returned. `call` returns the client's
result, or raises `MastraError` (the HTTP status and body of a refused request).

The client has its own npm project (tests/e2e/mastra), apart from the better-auth peers of
tests/e2e/node: it brings ~160 packages whose hoisting would move theirs. Tests skip, naming
the command, when Node or those packages are missing, and fail instead with
$BASTION_REQUIRE_NODE (CI, .ci/run).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from tests.e2e.node_peer import _die_with_parent, _missing, log_tail, read_json_line, stop_node

MASTRA_DIR = Path(__file__).resolve().parent / "mastra"


class MastraError(Exception):
    """The client threw: `status` and `body` of the HTTP answer (None if it was no HTTP
    error)."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error.get("message"))
        self.name: str = error.get("name") or "Error"
        self.status: int | None = error.get("status")
        self.body: Any = error.get("body")


class MastraClient:
    def __init__(self, process: asyncio.subprocess.Process, stderr_log: Path) -> None:
        self.process = process
        self.stderr_log = stderr_log
        self._next_id = 0

    async def call(self, *chain: Sequence[Any], raw: bool = False) -> Any:
        """`client.<step0>(...).<step1>(...)`, each step `(method, *args)`. A streamed answer
        comes back as `{"status", "contentType", "chunks"}` (read with the client's
        `processDataStream`), or with `raw=True` as `{"status", "contentType", "text"}`."""
        assert self.process.stdin is not None
        self._next_id += 1
        command = {
            "id": self._next_id,
            "chain": [[step[0], list(step[1:])] for step in chain],
            "raw": raw,
        }
        self.process.stdin.write(json.dumps(command).encode() + b"\n")
        await self.process.stdin.drain()
        reply = await read_json_line(self.process, 30, self.stderr_log, f"MastraClient {chain}")
        assert reply.get("id") == command["id"], (reply, command)
        if "error" in reply:
            error = MastraError(reply["error"])
            if error.status is None:  # not an HTTP answer: the client or the bridge broke
                raise AssertionError(f"{chain}: {error}\n{log_tail(self.stderr_log)}")
            raise error
        return reply["result"]


def node_for_mastra() -> str:
    node = shutil.which("node")
    if node is None:
        _missing("needs Node.js (node) for Mastra's client")
    if not (MASTRA_DIR / "node_modules" / "@mastra" / "client-js").is_dir():
        _missing(f"needs Mastra's client installed: npm ci --prefix {MASTRA_DIR}")
    return str(node)


@asynccontextmanager
async def mastra_client(
    base_url: str, token: str | None = None, headers: dict[str, str] | None = None
) -> AsyncIterator[MastraClient]:
    """A MastraClient for `base_url` (the server's origin; the client adds `/api`), sending
    `Authorization: Bearer <token>` through its `headers` option when `token` is given, and
    `headers` with every request."""
    node = node_for_mastra()
    env = {key: value for key, value in os.environ.items() if key != "TOKEN"}
    env.update({"BASE_URL": base_url, "HEADERS": json.dumps(headers or {})})
    if token:
        env["TOKEN"] = token
    with tempfile.TemporaryDirectory(prefix="bastion-mastra-") as folder:
        stderr_log = Path(folder) / "bridge.stderr"
        with stderr_log.open("ab") as stderr:
            process = await asyncio.create_subprocess_exec(
                node,
                "mastra-bridge.mjs",
                cwd=MASTRA_DIR,
                env=env,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=stderr,
                preexec_fn=_die_with_parent(),
                limit=16 * 1024 * 1024,
            )
        try:
            ready = await read_json_line(process, 60, stderr_log, "MastraClient bridge start")
            assert ready.get("ready") is True, ready
            yield MastraClient(process, stderr_log)
        finally:
            await stop_node(process, grace=5)
