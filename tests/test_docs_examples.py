"""Every ```python block of README.md and docs/*.md runs, as written.

The blocks of one file run in order in one namespace, as a reader pastes them into one
session: a later block may use what an earlier one defined. Top-level `await` works (each
block is run on an event loop). A block preceded by `<!-- not-run: reason -->` is a fragment
that is deliberately not runnable (a signature, a config excerpt, a sketch with names the
reader supplies); every other block must run, or this test fails naming the file and line.
A ```bash block runs too when preceded by `<!-- run -->` (the cheap ones: curl against the
demo server).

What the examples expect around them is provided, not written into them: a scratch folder
as the working directory, the environment their text names (`BASTION_SECRET`,
`DATABASE_URL` = a SQLite file there, `JWT_AUTH_SECRET`, `AUTH0_DOMAIN`, ...), and, for a
file that talks to `http://127.0.0.1:4111` (or `localhost:4111`), a fresh `bastion serve`
(the demo) on a free port, the address in the examples' text replaced by its own.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import os
import re
import subprocess
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from bastion.identity import Identity
from bastion.server import Bastion
from tests.test_cli import bastion_serve

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
DEMO_ADDRESS = re.compile(r"(?:127\.0\.0\.1|localhost):4111")
# A fence at the start of a line or indented in a list item, closed at the same indentation.
FENCE = re.compile(r"^([ \t]*)```(\w*)[^\n]*\n(.*?)^\1```[ \t]*$", re.MULTILINE | re.DOTALL)
NOT_RUN = re.compile(r"<!--\s*not-run:\s*(\S[^>]*?)\s*-->\s*$")
RUN = re.compile(r"<!--\s*run\s*-->\s*$")
SECRET = "docs-examples-secret-0123456789abcdef0123456789"


@dataclass(frozen=True)
class Block:
    path: Path
    line: int
    language: str
    code: str
    marker: str | None  # "not-run: ..." or "run" or None

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    @property
    def runs(self) -> bool:
        if self.language == "python":
            return not (self.marker or "").startswith("not-run")
        return self.language in ("bash", "sh") and self.marker == "run"


def blocks(path: Path) -> list[Block]:
    text = path.read_text()
    found = []
    for match in FENCE.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        marker = None
        if m := NOT_RUN.search(before):
            marker = f"not-run: {m.group(1)}"
        elif RUN.search(before):
            marker = "run"
        line = text.count("\n", 0, match.start()) + 1
        code = textwrap.dedent(match.group(3))
        found.append(Block(path, line, match.group(2), code, marker))
    return found


def test_the_documents_have_python_examples_and_marked_fragments_say_why() -> None:
    every = [b for path in DOCUMENTS for b in blocks(path)]
    assert sum(b.language == "python" and b.runs for b in every) >= 20
    for block in every:
        if block.marker and block.marker.startswith("not-run"):
            assert block.language == "python", f"{block.where}: only python blocks are run"
            assert len(block.marker) > len("not-run: ") + 5, f"{block.where}: say why"


# -- the surroundings ----------------------------------------------------------------------


@contextmanager
def demo_server(cwd: Path, env: dict[str, str]) -> Iterator[str]:
    """`bastion serve` (the demo app) in `cwd` on a free port, until /health answers."""
    with bastion_serve(cwd=cwd, env=env) as server:
        yield server.url.removeprefix("http://")


def example_env(folder: Path) -> dict[str, str]:
    return {
        "BASTION_SECRET": SECRET,
        "BETTER_AUTH_SECRET": SECRET,
        "DATABASE_URL": f"sqlite:///{folder / 'app.db'}",
        "JWT_AUTH_SECRET": "a-shared-hs256-secret-of-32-bytes-or-more",
        "AUTH0_DOMAIN": "tenant.eu.auth0.com",
        "AUTH0_AUDIENCE": "https://api.example.com",
        "OPENAI_API_KEY": "sk-docs-example",
        "SMTP_FROM": "Bastion <no-reply@example.com>",
        "SMTP_HOST": "127.0.0.1",
    }


async def run_python(block: Block, namespace: dict[str, Any]) -> None:
    code = compile(
        block.code, block.where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True
    )
    result = eval(code, namespace)  # the repository's own documentation
    if inspect.iscoroutine(result):
        await result


def run_shell(block: Block, cwd: Path, env: dict[str, str]) -> None:
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block.code],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, f"{block.where} exited {done.returncode}:\n{done.stderr}"


# Documents without a runnable block (only shell, or only fragments) have nothing to run.
WITH_EXAMPLES = [path for path in DOCUMENTS if any(b.runs for b in blocks(path))]


@pytest.mark.parametrize("path", WITH_EXAMPLES, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_examples_run(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runnable = [b for b in blocks(path) if b.runs]
    env = example_env(tmp_path)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    process_env = {**os.environ, **env}
    # The demo the documents talk to answers with LocalModel: OPENAI_API_KEY (set above for
    # the examples that build an OpenAIModel) would put it on OpenAI.
    server_env = {k: v for k, v in process_env.items() if not k.startswith("OPENAI_")}
    server_env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'server.db'}"
    with demo_server_if_needed(path, tmp_path, server_env) as address:
        namespace: dict[str, Any] = {"__name__": "docs_example"}

        async def run_all() -> None:
            for block in runnable:
                if address is not None:
                    block = Block(
                        block.path,
                        block.line,
                        block.language,
                        DEMO_ADDRESS.sub(address, block.code),
                        block.marker,
                    )
                try:
                    if block.language == "python":
                        await run_python(block, namespace)
                    else:
                        run_shell(block, tmp_path, process_env)
                except Exception as exc:
                    raise AssertionError(
                        f"the example at {block.where} does not run: {type(exc).__name__}: "
                        f"{exc} (mark a deliberate fragment with <!-- not-run: reason -->)"
                    ) from exc

        async def run_and_close() -> None:
            try:
                await run_all()
            finally:
                await close_what_is_left(namespace)

        asyncio.run(run_and_close())


async def close_what_is_left(namespace: dict[str, Any]) -> None:
    """What a reader's process would end with: the apps, Identities and clients the examples
    left open, closed on the loop that opened them (an SQLite connection left to the garbage
    collector answers a closed loop from its thread). Each close is idempotent."""
    for value in list(namespace.values()):
        if isinstance(value, Bastion):
            await value.shutdown()
        elif isinstance(value, Identity):
            await value.close()
        elif isinstance(value, httpx.AsyncClient):
            await value.aclose()


@contextmanager
def demo_server_if_needed(path: Path, folder: Path, env: dict[str, str]) -> Iterator[str | None]:
    """A demo server when the document's examples talk to one."""
    if not any(DEMO_ADDRESS.search(b.code) for b in blocks(path) if b.runs):
        yield None
        return
    with demo_server(folder, env) as address:
        yield address
