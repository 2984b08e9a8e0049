"""Both clients against the real thing: one `Bastion` app with `IdentityAuth` of an in-process
Identity (mounted at /api/auth), memory in the Identity's database, and an agent on the
deterministic `LocalModel`. Sign up with `AuthClient`, then use the agent API with
`BastionClient` by bearer token or by cookie: agents, streaming, tools, threads."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from starlette.types import ASGIApp

from bastion.auth import RequestContext
from bastion.auth.providers.identity import IdentityAuth
from bastion.client import (
    AsyncAuthClient,
    AsyncBastionClient,
    AuthClient,
    BastionClient,
    BastionError,
    FinishEvent,
    TextDeltaEvent,
    ToolCallEvent,
    ToolResultEvent,
)
from bastion.identity import Identity, bearer
from bastion.server import Agent, Bastion, tool
from bastion.server.local import LocalModel
from bastion.server.memory import Memory, memory_plugin
from tests.client.conftest import PASSWORD, SECRET
from tests.client.servers import Mode, Served, resolve, served
from tests.hashing import cheap_password

EMAIL = "ada@example.com"


@tool
async def whoami(context: RequestContext) -> dict[str, Any]:
    """The caller's email and memory owner."""
    return {"email": context.user["user"]["email"], "resourceId": context.resource_id}


@asynccontextmanager
async def _bastion(origin: str) -> AsyncIterator[ASGIApp]:
    identity = Identity(
        secret=SECRET,
        base_url=origin,
        database="sqlite://",
        email_and_password=cheap_password(),
        plugins=[bearer(), memory_plugin()],
        env={},
    )
    await identity.migrate()
    helper = Agent(
        id="helper", name="Helper", instructions="Be brief.", model=LocalModel(), tools=[whoami]
    )
    try:
        yield Bastion(
            agents=[helper],
            tools=[whoami],
            auth=IdentityAuth(identity),
            memory=Memory(identity.db),
        )
    finally:
        await identity.close()


@pytest.fixture
async def bastion(mode: Mode) -> AsyncIterator[tuple[Served, Any, str]]:
    """The server, an `AuthClient` signed up on it, and the user's id."""
    async with served(mode, _bastion, BastionClient, AsyncBastionClient) as server:
        auth = server.open(AuthClient, AsyncAuthClient)
        signed_up = await resolve(auth.sign_up.email(email=EMAIL, password=PASSWORD, name="Ada"))
        yield server, auth, signed_up["user"]["id"]


async def test_agents_with_the_bearer_token(bastion: tuple[Served, Any, str]) -> None:
    server, auth, user_id = bastion
    client = server.client(token=auth.token)
    agents = await resolve(client.agents.list())
    assert list(agents) == ["helper"]
    helper = await resolve(client.agents.get("helper"))
    assert helper["name"] == "Helper" and list(helper["tools"]) == ["whoami"]

    said = await resolve(client.agents.generate("helper", "hello there"))
    assert said["text"] == "You said: hello there"
    assert said["finishReason"] == "stop"

    used = await resolve(
        client.agents.generate("helper", [{"role": "user", "content": "use whoami"}])
    )
    assert [c["toolName"] for c in used["toolCalls"]] == ["whoami"]
    assert used["toolResults"][0]["result"] == {"email": EMAIL, "resourceId": user_id}

    with pytest.raises(BastionError) as missing:
        await resolve(client.agents.get("nobody"))
    assert (missing.value.status, missing.value.message) == (404, "Agent nobody not found")
    with pytest.raises(BastionError) as invalid:
        await resolve(client.agents.generate("helper", []))
    assert (invalid.value.status, invalid.value.message) == (400, "messages must not be empty")
    with pytest.raises(BastionError) as no_route:
        await resolve(client.request("GET", "/no-such-route"))
    assert (no_route.value.status, no_route.value.message) == (404, "Not found")


async def test_tools_with_the_session_cookie(bastion: tuple[Served, Any, str]) -> None:
    server, auth, user_id = bastion
    client = server.client(cookies=auth.cookies)
    assert list(await resolve(client.tools.list())) == ["whoami"]
    assert await resolve(client.tools.execute("whoami")) == {"email": EMAIL, "resourceId": user_id}


async def test_signed_out_is_refused(bastion: tuple[Served, Any, str]) -> None:
    """S16: after sign-out neither the token nor the cookie opens the API."""
    server, auth, _ = bastion
    by_token = server.client(token=auth.token)
    by_cookie = server.client(cookies=dict(auth.cookies))
    assert await resolve(by_token.tools.list())
    await resolve(auth.sign_out())
    for client in (by_token, by_cookie, server.client()):
        with pytest.raises(BastionError) as refused:
            await resolve(client.tools.list())
        assert (refused.value.status, refused.value.message) == (401, "Invalid or expired token")


async def test_stream(bastion: tuple[Served, Any, str]) -> None:
    server, auth, user_id = bastion
    client = server.client(token=auth.token)
    events = client.agents.stream("helper", "use whoami")
    received = [e async for e in events] if server.mode == "async" else list(events)
    call, result, *deltas, finish = received
    assert isinstance(call, ToolCallEvent) and call.tool_name == "whoami"
    assert isinstance(result, ToolResultEvent) and not result.is_error
    assert result.result == {"email": EMAIL, "resourceId": user_id}
    assert all(isinstance(d, TextDeltaEvent) for d in deltas)
    assert EMAIL in "".join(d.text for d in deltas)
    assert isinstance(finish, FinishEvent) and finish.finish_reason == "stop"


async def test_threads(bastion: tuple[Served, Any, str]) -> None:
    server, auth, user_id = bastion
    client = server.client(token=auth.token)
    thread = await resolve(client.threads.create(title="Trip", metadata={"city": "Lyon"}))
    assert thread["resourceId"] == user_id and thread["title"] == "Trip"
    assert [t["id"] for t in await resolve(client.threads.list())] == [thread["id"]]
    renamed = await resolve(client.threads.update(thread["id"], title="Trip to Lyon"))
    assert renamed["title"] == "Trip to Lyon"
    await resolve(client.agents.generate("helper", "hello", thread_id=thread["id"]))
    stored = await resolve(client.threads.messages(thread["id"]))
    assert [(m["role"], m["content"]) for m in stored] == [
        ("user", "hello"),
        ("assistant", "You said: hello"),
    ]
    last = await resolve(client.threads.messages(thread["id"], limit=1))
    assert [m["content"] for m in last] == ["You said: hello"]
    other = await resolve(client.threads.create(title="Other"))
    newest = await resolve(client.threads.list(limit=1))
    assert [t["id"] for t in newest] == [other["id"]]
    assert [t["id"] for t in await resolve(client.threads.list(offset=1))] == [thread["id"]]
    assert await resolve(client.threads.delete(thread["id"])) is None
    with pytest.raises(BastionError) as gone:
        await resolve(client.threads.get(thread["id"]))
    assert gone.value.status == 404
