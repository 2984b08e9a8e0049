"""Drive the TypeScript better-auth peer in tests/e2e/node (see its README).

Tests that need it skip, saying why, when Node or its packages are missing — unless
$BASTION_REQUIRE_NODE is set (CI sets it), where they fail instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

NODE_DIR = Path(__file__).resolve().parent / "node"
REQUIRE_NODE = os.environ.get("BASTION_REQUIRE_NODE", "") not in ("", "0")


def _missing(reason: str) -> None:
    if REQUIRE_NODE:
        pytest.fail(f"{reason} ($BASTION_REQUIRE_NODE is set)", pytrace=False)
    pytest.skip(reason)


def node_executable() -> str:
    """The `node` binary with the peer's packages installed; skips (or fails) otherwise."""
    node = shutil.which("node")
    if node is None:
        _missing("needs Node.js (node) for the better-auth peer")
    if not (NODE_DIR / "node_modules" / "better-auth").is_dir():
        _missing(f"needs the better-auth peer installed: npm ci --prefix {NODE_DIR}")
    return str(node)


def peer_database_env(database_url: str) -> dict[str, str]:
    """DB_KIND and DB_URL for ba-peer.mjs, from one of our SQLAlchemy database URLs."""
    url = make_url(database_url)
    kind = url.get_backend_name()
    if kind == "sqlite":
        return {"DB_KIND": "sqlite", "DB_URL": url.database or ""}
    kind = "postgres" if kind == "postgresql" else "mysql"
    target = url.set(drivername=kind).render_as_string(hide_password=False)
    return {"DB_KIND": kind, "DB_URL": target}


def better_auth(command: str, database_url: str, **env: str) -> dict[str, Any]:
    """Run `node ba-peer.mjs <command>` against our database URL; its one line of JSON."""
    node = node_executable()
    result = subprocess.run(
        [node, "ba-peer.mjs", command],
        cwd=NODE_DIR,
        env={**os.environ, **peer_database_env(database_url), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode != 0:
        raise AssertionError(f"better-auth peer {command} failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


# --- long-running Node children (the better-auth server, the JS client bridge) ---


def _die_with_parent() -> Callable[[], None] | None:
    """A preexec_fn that makes Linux SIGKILL the child when this process dies."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1

    def preexec() -> None:
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)

    return preexec


async def start_node(
    script: str, args: list[str], env: dict[str, str], stderr_path: Path
) -> asyncio.subprocess.Process:
    """Start `node <script> <args>` in NODE_DIR with stdin/stdout pipes and stderr to a file.

    The child is SIGKILLed if this process dies (Linux), and Node scripts here also exit
    when their stdin closes, so none outlives the test run.
    """
    node = node_executable()
    with stderr_path.open("ab") as stderr:
        return await asyncio.create_subprocess_exec(
            node,
            script,
            *args,
            cwd=NODE_DIR,
            env={**os.environ, **env},
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
            preexec_fn=_die_with_parent(),
            limit=16 * 1024 * 1024,
        )


async def stop_node(process: asyncio.subprocess.Process, grace: float = 10.0) -> None:
    """Close stdin, SIGTERM, wait up to `grace` seconds, then SIGKILL; always reaps."""
    if process.stdin is not None and not process.stdin.is_closing():
        process.stdin.close()
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            await asyncio.wait_for(process.wait(), grace)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
    await process.wait()


def log_tail(path: Path, limit: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-limit:]
    except OSError:
        return ""


async def read_json_line(
    process: asyncio.subprocess.Process, within: float, stderr_path: Path, what: str
) -> dict[str, Any]:
    """The next stdout line of `process` as JSON (waiting at most `within` seconds);
    AssertionError with its stderr otherwise."""
    assert process.stdout is not None
    try:
        line = await asyncio.wait_for(process.stdout.readline(), within)
    except TimeoutError:
        raise AssertionError(
            f"{what}: no answer within {within} s; stderr:\n{log_tail(stderr_path)}"
        ) from None
    if not line:
        await asyncio.wait_for(process.wait(), 5)
        raise AssertionError(
            f"{what}: exited (code {process.returncode}); stderr:\n{log_tail(stderr_path)}"
        )
    return json.loads(line)


@dataclass
class BetterAuthServer:
    """A running TypeScript better-auth server (`ba-peer.mjs serve`)."""

    base_url: str  # e.g. http://127.0.0.1:40123/api/auth
    mail_log: Path  # JSON lines {"type","to","url","token"}
    stderr_log: Path
    process: asyncio.subprocess.Process
    _taken: set[int] = field(default_factory=set, repr=False)

    @property
    def origin(self) -> str:
        return self.base_url.removesuffix("/api/auth")

    def mails(self) -> list[dict[str, Any]]:
        """Every email sent so far, oldest first."""
        if not self.mail_log.exists():
            return []
        lines = self.mail_log.read_text().splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    async def next_mail(self, type: str, to: str, within: float = 10.0) -> dict[str, Any]:
        """The oldest email of `type` to `to` that next_mail has not returned yet (waiting
        at most `within` seconds for one)."""
        deadline = time.monotonic() + within
        while True:
            mails = self.mails()
            for index, mail in enumerate(mails):
                if index not in self._taken and mail["type"] == type and mail["to"] == to:
                    self._taken.add(index)
                    return mail
            if time.monotonic() > deadline:
                raise AssertionError(f"no {type} email to {to} within {within} s: {mails}")
            await asyncio.sleep(0.05)


@asynccontextmanager
async def better_auth_server(
    database_url: str, port: int | None = None, *, startup_timeout: float = 90.0, **env: str
) -> AsyncIterator[BetterAuthServer]:
    """Run the real TypeScript better-auth server on our database (migrating it first).

    `port=None` lets the server pick a free port. `env` adds variables for
    `ba-peer.mjs serve` (TRUSTED_ORIGINS, RATE_LIMIT="1", COOKIE_CACHE="1",
    BA_OPTIONS, BETTER_AUTH_SECRET, MAIL_LOG, ...). The server is stopped on exit.
    """
    with tempfile.TemporaryDirectory(prefix="bastion-ba-server-") as folder:
        stderr_log = Path(folder) / "server.stderr"
        mail_log = Path(env.pop("MAIL_LOG", None) or Path(folder) / "mail.jsonl")
        child_env = {
            **peer_database_env(database_url),
            "PORT": str(port or 0),
            "MAIL_LOG": str(mail_log),
            "EXIT_ON_STDIN_CLOSE": "1",
            **env,
        }
        process = await start_node("ba-peer.mjs", ["serve"], child_env, stderr_log)
        try:
            ready = await read_json_line(
                process, startup_timeout, stderr_log, "better-auth server start"
            )
            assert ready.get("ready") is True, ready
            yield BetterAuthServer(
                base_url=ready["url"],
                mail_log=mail_log,
                stderr_log=stderr_log,
                process=process,
            )
        finally:
            await stop_node(process)
