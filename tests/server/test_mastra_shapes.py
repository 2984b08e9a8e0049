"""The request shapes of Mastra's own client, in-process (no Node needed): `memory: {thread,
resource}` on runs, `page`/`perPage` on thread lists, Mastra's stream chunks on
`X-Bastion-Stream-Format: mastra`, Mastra's reserved context keys. The client itself drives
a real server in tests/e2e/test_mastra_client.py."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from tests.auth.doubles import ScriptedModel, calls, client, text
from tests.server.memory_kit import open_memory
from tests.server.test_stream import BreaksMidway, make_app

AUTH = {"Authorization": "Bearer good"}  # the user "ana" of test_stream's app
MASTRA = {**AUTH, "X-Bastion-Stream-Format": "mastra"}
RUN = "/api/agents/helper"


@asynccontextmanager
async def with_memory(model: Any = None) -> AsyncIterator[httpx.AsyncClient]:
    async with open_memory("sqlite://") as memory, client(make_app(model, memory=memory)) as http:
        yield http


def chunks(response: httpx.Response) -> list[dict[str, Any]]:
    """The blocks as Mastra's client reads them: each `data: <JSON>`, nothing else."""
    blocks = response.text.split("\n\n")
    assert blocks.pop() == ""
    assert all(block.startswith("data: ") and "\n" not in block for block in blocks), blocks
    return [json.loads(block.removeprefix("data: ")) for block in blocks]


async def test_memory_thread_is_the_runs_thread_and_resource_is_only_checked() -> None:
    async with with_memory(ScriptedModel(text("one"), text("two"), text("three"))) as http:
        first = await http.post(
            f"{RUN}/generate",
            json={"messages": "hi", "memory": {"thread": "t1", "resource": "ana"}},
            headers=AUTH,
        )
        assert first.status_code == 200, first.text
        assert first.json()["threadId"] == "t1"
        second = await http.post(
            f"{RUN}/stream",
            json={"messages": "again", "memory": {"thread": {"id": "t1"}}},
            headers=AUTH,
        )
        assert second.status_code == 200
        kept = await http.get("/api/memory/threads/t1/messages", headers=AUTH)
        assert [m["content"].strip() for m in kept.json()["messages"]] == [
            "hi",
            "one",
            "again",
            "two",
        ]
        thread = await http.get("/api/memory/threads/t1", headers=AUTH)
        assert thread.json()["resourceId"] == "ana"

        other = await http.post(
            f"{RUN}/generate",
            json={"messages": "hi", "memory": {"thread": "t2", "resource": "bob"}},
            headers=AUTH,
        )
        assert other.status_code == 403
        assert other.json() == {"error": "resourceId does not match the authenticated user"}
        no_thread = await http.post(
            f"{RUN}/generate", json={"messages": "hi", "memory": {"resource": "bob"}}, headers=AUTH
        )
        assert no_thread.status_code == 403
        assert (await http.get("/api/memory/threads/t2", headers=AUTH)).status_code == 404


async def test_bad_memory_values_are_400s() -> None:
    async with with_memory() as http:
        for memory, message in (
            ([], "memory must be an object"),
            ({"thread": ["t"]}, "memory.thread must be a string or an object with an id"),
            ({"thread": {"id": 1}}, "memory.thread.id must be a string"),
            ({"resource": {}}, "memory.resource must be a string"),
        ):
            answer = await http.post(
                f"{RUN}/generate", json={"messages": "hi", "memory": memory}, headers=AUTH
            )
            assert (answer.status_code, answer.json()) == (400, {"error": message}), memory
        without = await http.post(
            f"{RUN}/generate", json={"messages": "hi", "memory": {"thread": "t"}}, headers=AUTH
        )
        assert without.status_code == 200  # `memory` with nothing in it changes nothing...
    async with client(make_app()) as http:  # ...but a thread needs a memory
        answer = await http.post(
            f"{RUN}/generate", json={"messages": "hi", "memory": {"thread": "t"}}, headers=AUTH
        )
        assert answer.json() == {"error": "Memory is not configured: threadId cannot be used"}


async def test_mastra_chunks_carry_the_same_events() -> None:
    model = ScriptedModel(calls(("c1", "add", {"a": 1, "b": 2})), text("It is 3."))
    async with with_memory(model) as http:
        answer = await http.post(
            f"{RUN}/stream", json={"messages": "add", "memory": {"thread": "m"}}, headers=MASTRA
        )
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/event-stream")
    got = chunks(answer)
    run_id = got[0]["runId"]
    assert all(c["runId"] == run_id and c["from"] == "AGENT" for c in got)
    assert [(c["type"], c["payload"]) for c in got[:2]] == [
        ("tool-call", {"toolCallId": "c1", "toolName": "add", "args": {"a": 1, "b": 2}}),
        ("tool-result", {"toolCallId": "c1", "toolName": "add", "result": 3}),
    ]
    said = "".join(c["payload"]["text"] for c in got if c["type"] == "text-delta")
    assert said.strip() == "It is 3."  # the scripted model streams words with their spaces
    finish = got[-1]
    assert finish["type"] == "finish"
    assert finish["payload"]["stepResult"] == {"reason": "stop"}
    assert finish["payload"]["threadId"] == "m"
    assert finish["payload"]["usage"] == finish["payload"]["output"]["usage"]


async def test_mastra_spelling_of_finish_reasons_and_errors_mid_stream() -> None:
    looping = ScriptedModel(calls(("c", "add", {"a": 1, "b": 1})))
    async with client(make_app(looping)) as http:
        answer = await http.post(
            f"{RUN}/stream", json={"messages": "go", "maxSteps": 1}, headers=MASTRA
        )
    assert chunks(answer)[-1]["payload"]["stepResult"] == {"reason": "tool-calls"}

    async with client(make_app(BreaksMidway(RuntimeError("secret detail")))) as http:
        broken = await http.post(f"{RUN}/stream", json={"messages": "hi"}, headers=MASTRA)
    got = chunks(broken)
    assert [c["type"] for c in got] == ["text-delta", "text-delta", "error"]
    assert got[-1]["payload"] == {"error": {"message": "Internal server error"}}


async def test_the_stream_format_header() -> None:
    async with client(make_app()) as http:
        plain = await http.post(
            f"{RUN}/stream",
            json={"messages": "hi"},
            headers={**AUTH, "X-Bastion-Stream-Format": "Bastion"},
        )
        assert plain.text.startswith("event: text-delta\n")
        odd = await http.post(
            f"{RUN}/stream",
            json={"messages": "hi"},
            headers={**AUTH, "X-Bastion-Stream-Format": "sse"},
        )
        assert (odd.status_code, odd.json()) == (
            400,
            {"error": "X-Bastion-Stream-Format must be one of: bastion, mastra"},
        )


async def test_thread_pages_as_mastra_asks_for_them() -> None:
    async with with_memory() as http:
        for name in ("a", "b", "c"):
            made = await http.post("/api/memory/threads", json={"threadId": name}, headers=AUTH)
            assert made.status_code == 201

        async def ids(**query: Any) -> Any:
            answer = await http.get("/api/memory/threads", params=query, headers=AUTH)
            return [t["id"] for t in answer.json()] if answer.status_code == 200 else answer.json()

        everything = await ids()
        assert len(everything) == 3
        assert await ids(page=0, perPage=2) == everything[:2]
        assert await ids(page=1, perPage=2) == everything[2:]
        assert await ids(page=0) == everything  # Mastra's default page size, 100
        assert await ids(perPage="false") == everything
        assert (
            await ids(**{"orderBy[field]": "updatedAt", "orderBy[direction]": "DESC"}) == everything
        )
        assert await ids(page=1, limit=1) == {
            "error": "Use limit and offset, or page and perPage, not both"
        }
        assert await ids(page=1, perPage="false") == {
            "error": "page must be 0 when perPage is false"
        }
        assert await ids(**{"orderBy[direction]": "ASC"}) == {
            "error": "orderBy[direction] must be DESC: threads are listed by updatedAt DESC"
        }
        assert await ids(metadata="{}") == {
            "error": "metadata is not supported: threads cannot be filtered by metadata"
        }


async def test_mastra_scope_keys_are_reserved() -> None:
    model = ScriptedModel(calls(("c1", "whoami", {})), text("done"))
    forged = {"mastra__resourceId": "bob", "mastra__threadId": "x", "kept": 1}
    async with client(make_app(model)) as http:
        answer = await http.post(
            f"{RUN}/generate", json={"messages": "hi", "requestContext": forged}, headers=AUTH
        )
    seen = answer.json()["toolResults"][0]["result"]
    assert seen["values"] == {"kept": 1} and seen["resourceId"] == "ana"
