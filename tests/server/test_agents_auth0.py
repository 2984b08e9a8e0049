"""Agents behind Auth0Auth (RS256 access tokens from a local issuer): a tool reads the
caller's claims from the context, memory threads are per `sub`, and streams carry the same
identity — the counterpart of the IdentityAuth tests in test_isolation.py."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from bastion.auth import Auth0Auth, JWKSCache, RequestContext
from bastion.server import Agent, Bastion, LocalModel, Memory, tool
from tests.auth.issuers import AUDIENCE, TestIssuer


@tool
def whoami(context: RequestContext) -> dict[str, Any]:
    """The caller's subject and memory owner."""
    return {"sub": context.user["sub"], "resourceId": context.resource_id}


@asynccontextmanager
async def served(issuer: TestIssuer) -> AsyncIterator[httpx.AsyncClient]:
    memory = Memory("sqlite://")
    await memory.migrate()
    app = Bastion(
        agents=[Agent(name="assistant", instructions="", model=LocalModel(), tools=[whoami])],
        auth=Auth0Auth(
            issuer=issuer.issuer,
            jwks_uri=issuer.jwks_uri,
            audience=AUDIENCE,
            jwks_cache=JWKSCache(),
        ),
        memory=memory,
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bastion.test") as http:
        try:
            yield http
        finally:
            await app.shutdown()


def as_user(issuer: TestIssuer, sub: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {issuer.token(sub=sub)}"}


async def test_a_tool_sees_the_token_subject(issuer: TestIssuer) -> None:
    async with served(issuer) as http:
        answer = await http.post(
            "/api/agents/assistant/generate",
            json={"messages": "use whoami {}"},
            headers=as_user(issuer, "auth0|alice"),
        )
    assert answer.status_code == 200, answer.text
    [result] = answer.json()["toolResults"]
    assert result["result"] == {"sub": "auth0|alice", "resourceId": "auth0|alice"}


async def test_threads_belong_to_the_subject(issuer: TestIssuer) -> None:
    alice, bob = as_user(issuer, "auth0|alice"), as_user(issuer, "auth0|bob")
    async with served(issuer) as http:
        ran = await http.post(
            "/api/agents/assistant/generate",
            json={"messages": "hello", "threadId": "alice-thread"},
            headers=alice,
        )
        assert ran.status_code == 200, ran.text
        mine = await http.get("/api/memory/threads", headers=alice)
        theirs = await http.get("/api/memory/threads", headers=bob)
        peek = await http.get("/api/memory/threads/alice-thread/messages", headers=bob)
        hijack = await http.post(
            "/api/agents/assistant/generate",
            json={"messages": "me too", "threadId": "alice-thread"},
            headers=bob,
        )
        forged = await http.get(
            "/api/memory/threads", params={"resourceId": "auth0|alice"}, headers=bob
        )
        kept = await http.get("/api/memory/threads/alice-thread/messages", headers=alice)
    assert [t["resourceId"] for t in mine.json()] == ["auth0|alice"]
    assert theirs.json() == []
    assert (peek.status_code, peek.json()) == (404, {"error": "Thread not found"})
    assert hijack.status_code == 404
    assert forged.status_code == 403
    assert [m["content"] for m in kept.json()["messages"]] == ["hello", "You said: hello"]


async def test_a_stream_runs_as_the_subject(issuer: TestIssuer) -> None:
    async with (
        served(issuer) as http,
        http.stream(
            "POST",
            "/api/agents/assistant/stream",
            json={"messages": "use whoami {}"},
            headers=as_user(issuer, "auth0|bob"),
        ) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [
            (block.split("\n")[0].removeprefix("event: "), block.split("\n")[1])
            for block in (await response.aread()).decode().strip().split("\n\n")
        ]
    names = [name for name, _ in events]
    assert names[0] == "tool-call" and names[-1] == "finish"
    [result] = [
        json.loads(data.removeprefix("data: ")) for name, data in events if name == "tool-result"
    ]
    assert result["result"] == {"sub": "auth0|bob", "resourceId": "auth0|bob"}


async def test_without_a_token_nothing_runs(issuer: TestIssuer) -> None:
    async with served(issuer) as http:
        answer = await http.post("/api/agents/assistant/generate", json={"messages": "hi"})
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"].startswith("Bearer")
