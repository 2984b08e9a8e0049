"""A real Bastion for the playground's browser tests and benchmark: the demo agent
`assistant` (LocalModel, tools whoami and get_time, as `bastion serve` has it), a `slow`
one that streams a word every 150 ms, a `broken` one whose model fails mid-stream, memory
in the Identity's database; on 127.0.0.1 and a free port. No email verification, so a test
signs up and is signed in at once (`sign_up`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from bastion.auth.providers.identity import IdentityAuth
from bastion.identity import Identity, bearer
from bastion.server import Agent, Bastion
from bastion.server.local import LocalModel
from bastion.server.memory import Memory, memory_plugin
from bastion.server.models import Message, ModelError, StreamChunk, TextDelta, ToolSpec
from bastion.standalone import demo_agent, get_time, whoami
from bastion.web import Pages
from tests.e2e.bastion_server import serve

if TYPE_CHECKING:
    from playwright.async_api import Page

__all__ = ["PASSWORD", "BrokenModel", "playground_site", "sign_up"]

SECRET = "web-playground-tests-secret-0123456789abcdef"
PASSWORD = "correct-horse-battery"


class BrokenModel(LocalModel):
    """Starts an answer, then fails: the `error` event of a stream that has begun."""

    async def stream(  # type: ignore[override]
        self, messages: Sequence[Message], tools: Sequence[ToolSpec]
    ) -> AsyncIterator[StreamChunk]:
        yield TextDelta("Let me think… ")
        raise ModelError("the upstream model timed out")


def agents(model: Any = None) -> list[Agent]:
    assistant = demo_agent()
    if model is not None:  # the benchmark's instrumented model
        assistant = Agent(
            name=assistant.name,
            instructions=assistant.instructions,
            model=model,
            tools=[whoami, get_time],
        )
    return [
        assistant,
        Agent(name="Slow", instructions="Streams slowly.", model=LocalModel(delay=0.15)),
        Agent(name="Broken", instructions="Fails mid-answer.", model=BrokenModel()),
    ]


@asynccontextmanager
async def playground_site(model: Any = None) -> AsyncIterator[str]:
    """The origin of a running Bastion with the pages and the agents above."""

    def identity_for(base_url: str) -> Identity:
        return Identity(
            env={},
            secret=SECRET,
            base_url=base_url,
            database="sqlite+aiosqlite:///:memory:",
            email_and_password={"enabled": True},
            plugins=[bearer(), memory_plugin()],
        )

    def app_for(identity: Identity) -> Bastion:
        return Bastion(
            agents={a.name.lower(): a for a in agents(model)},
            tools=[whoami, get_time],
            auth=IdentityAuth(identity),
            memory=Memory(identity.db),
            ui=Pages(),
        )

    async with serve(identity_for, app_for=app_for) as (_, origin):
        yield origin


async def sign_up(page: Page, origin: str, name: str, email: str) -> None:
    """A new account, signed in in the page's browser context (its session cookie)."""
    await page.goto(origin + "/sign-in")
    status = await page.evaluate(
        """async (body) => (await fetch("/api/auth/sign-up/email", {method: "POST",
            credentials: "same-origin", headers: {"content-type": "application/json"},
            body: JSON.stringify(body)})).status""",
        {"name": name, "email": email, "password": PASSWORD},
    )
    assert status == 200, status
