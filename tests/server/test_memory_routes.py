"""The memory routes over HTTP, and runs with a `threadId`: shapes, errors, what is written
when (only after the model finished), anonymous use, and `Bastion(memory=None)`.
Isolation between users is in test_isolation.py."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from bastion.auth import RequestContext, SimpleAuth, StaticRBAC
from bastion.client.sse import iter_sse
from bastion.server import Agent, Bastion, Memory, ModelError, tool
from bastion.server.models import ModelResponse
from tests.auth.doubles import ScriptedModel, calls, client, text
from tests.server.memory_kit import Clock, open_memory

USERS = {"token-ana": {"id": "ana"}}
AUTH = {"Authorization": "Bearer token-ana"}
ISO = "2026-03-01T12:00:00.123Z"


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool
async def whoami(context: RequestContext) -> str | None:
    """The caller's resource id."""
    return context.resource_id


def make_app(memory: Memory | None, model: Any = None, **kw: Any) -> Bastion:
    helper = Agent(
        id="helper",
        name="Helper",
        instructions="Be brief.",
        model=model or ScriptedModel(text("hi")),
        tools=[add, whoami],
    )
    kw.setdefault("auth", SimpleAuth(USERS))
    return Bastion(agents=[helper], memory=memory, **kw)


@asynccontextmanager
async def serving(
    model: Any = None, url: str = "sqlite://", clock: Clock | None = None, **kw: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, Memory]]:
    async with (
        open_memory(url, clock=clock or Clock()) as memory,
        client(make_app(memory, model, **kw)) as http,
    ):
        yield http, memory


async def test_memory_not_configured() -> None:
    async with client(make_app(None)) as http:
        anonymous = await http.get("/api/memory/threads")
        for method, path in [
            ("GET", "/api/memory/threads"),
            ("POST", "/api/memory/threads"),
            ("GET", "/api/memory/threads/t1"),
            ("PATCH", "/api/memory/threads/t1"),
            ("DELETE", "/api/memory/threads/t1"),
            ("GET", "/api/memory/threads/t1/messages"),
        ]:
            response = await http.request(method, path, json={}, headers=AUTH)
            assert response.status_code == 404, (method, path)
            assert response.json() == {"error": "Memory is not configured"}
        generate = await http.post(
            "/api/agents/helper/generate", json={"messages": "hi", "threadId": "t"}, headers=AUTH
        )
    assert anonymous.status_code == 401  # the pipeline first, as everywhere under /api
    assert generate.status_code == 400
    assert generate.json() == {"error": "Memory is not configured: threadId cannot be used"}


async def test_thread_crud(database_url: str) -> None:
    clock = Clock()
    async with serving(url=database_url, clock=clock) as (http, _):
        created = await http.post(
            "/api/memory/threads",
            json={"title": "Trip", "metadata": {"city": "Lyon"}},
            headers=AUTH,
        )
        assert created.status_code == 201
        thread = created.json()
        assert set(thread) == {"id", "resourceId", "title", "metadata", "createdAt", "updatedAt"}
        assert thread["resourceId"] == "ana" and thread["title"] == "Trip"
        assert thread["metadata"] == {"city": "Lyon"}
        assert thread["createdAt"] == thread["updatedAt"] == ISO
        assert len(thread["id"]) == 32

        clock.tick()
        named = await http.post("/api/memory/threads", json={"threadId": "chat-1"}, headers=AUTH)
        assert named.status_code == 201 and named.json()["id"] == "chat-1"
        assert named.json()["title"] is None and named.json()["metadata"] == {}
        taken = await http.post("/api/memory/threads", json={"threadId": "chat-1"}, headers=AUTH)
        assert (taken.status_code, taken.json()) == (409, {"error": "Thread already exists"})

        listing = (await http.get("/api/memory/threads", headers=AUTH)).json()
        assert [t["id"] for t in listing] == ["chat-1", thread["id"]]  # newest first
        page = await http.get("/api/memory/threads?limit=1&offset=1", headers=AUTH)
        assert [t["id"] for t in page.json()] == [thread["id"]]

        one = await http.get(f"/api/memory/threads/{thread['id']}", headers=AUTH)
        assert one.json() == thread

        clock.tick()
        renamed = await http.patch(
            f"/api/memory/threads/{thread['id']}", json={"title": "Lyon"}, headers=AUTH
        )
        assert renamed.json()["title"] == "Lyon"
        assert renamed.json()["metadata"] == {"city": "Lyon"}  # untouched
        assert renamed.json()["updatedAt"] == "2026-03-01T12:00:02.123Z"
        cleared = await http.patch(
            f"/api/memory/threads/{thread['id']}",
            json={"title": None, "metadata": {"k": [1]}},
            headers=AUTH,
        )
        assert cleared.json()["title"] is None and cleared.json()["metadata"] == {"k": [1]}

        messages = await http.get(f"/api/memory/threads/{thread['id']}/messages", headers=AUTH)
        assert messages.json() == {"messages": []}

        deleted = await http.delete(f"/api/memory/threads/{thread['id']}", headers=AUTH)
        assert (deleted.status_code, deleted.json()) == (200, {"ok": True})
        for method in ("GET", "DELETE"):
            gone = await http.request(method, f"/api/memory/threads/{thread['id']}", headers=AUTH)
            assert (gone.status_code, gone.json()) == (404, {"error": "Thread not found"})
        listing = (await http.get("/api/memory/threads", headers=AUTH)).json()
        assert [t["id"] for t in listing] == ["chat-1"]


@pytest.mark.parametrize(
    ("method", "path", "body", "error"),
    [
        ("POST", "/api/memory/threads", {"title": 3}, "title must be a string"),
        ("POST", "/api/memory/threads", {"metadata": []}, "metadata must be an object"),
        ("POST", "/api/memory/threads", {"threadId": 7}, "threadId must be a string"),
        (
            "POST",
            "/api/memory/threads",
            {"threadId": "has space"},
            "a thread id is 1 to 36 characters of A-Z, a-z, 0-9, _ and -",
        ),
        ("POST", "/api/memory/threads", {"resourceId": 1}, "resourceId must be a string"),
        ("PATCH", "/api/memory/threads/t1", {"title": []}, "title must be a string"),
        ("PATCH", "/api/memory/threads/t1", {"metadata": "x"}, "metadata must be an object"),
        ("GET", "/api/memory/threads?limit=-1", None, "limit must be a non-negative integer"),
        ("GET", "/api/memory/threads?offset=x", None, "offset must be a non-negative integer"),
        ("GET", "/api/memory/threads/t1/messages?limit=1.5", None,
         "limit must be a non-negative integer"),
    ],
)  # fmt: skip
async def test_bad_requests(method: str, path: str, body: Any, error: str) -> None:
    async with serving() as (http, memory):
        await memory.create_thread("ana", id="t1")
        response = await http.request(method, path, json=body, headers=AUTH)
    assert (response.status_code, response.json()) == (400, {"error": error})


async def test_unknown_and_malformed_thread_ids_are_not_found() -> None:
    async with serving() as (http, _):
        for thread_id in ("nope", "x" * 37, "a.b"):
            for method, suffix in [
                ("GET", ""),
                ("PATCH", ""),
                ("DELETE", ""),
                ("GET", "/messages"),
            ]:
                response = await http.request(
                    method, f"/api/memory/threads/{thread_id}{suffix}", json={}, headers=AUTH
                )
                assert (response.status_code, response.json()) == (
                    404,
                    {"error": "Thread not found"},
                ), (method, thread_id, suffix)


async def test_generate_with_a_new_thread_id_creates_it_and_saves_the_exchange(
    database_url: str,
) -> None:
    model = ScriptedModel(
        calls(("c1", "add", {"a": 1, "b": 2}), tokens=2), text("It is 3.", tokens=3)
    )
    async with serving(model, url=database_url) as (http, _):
        response = await http.post(
            "/api/agents/helper/generate",
            json={"messages": "1+2?", "threadId": "sums"},
            headers=AUTH,
        )
        assert response.status_code == 200
        assert response.json()["threadId"] == "sums" and response.json()["text"] == "It is 3."
        thread = (await http.get("/api/memory/threads/sums", headers=AUTH)).json()
        stored = (await http.get("/api/memory/threads/sums/messages", headers=AUTH)).json()
    assert thread["resourceId"] == "ana"
    shapes = [
        {k: v for k, v in m.items() if k not in ("id", "createdAt")} for m in stored["messages"]
    ]
    assert shapes == [
        {"threadId": "sums", "role": "user", "content": "1+2?"},
        {
            "threadId": "sums",
            "role": "assistant",
            "content": "",
            "toolCalls": [{"toolCallId": "c1", "toolName": "add", "args": {"a": 1, "b": 2}}],
        },
        {"threadId": "sums", "role": "tool", "content": "3", "toolCallId": "c1"},
        {"threadId": "sums", "role": "assistant", "content": "It is 3."},
    ]
    assert all(m["createdAt"] == ISO for m in stored["messages"])


async def test_the_history_goes_to_the_model_before_the_new_messages() -> None:
    model = ScriptedModel(text("first answer"), text("second answer"))
    async with serving(model) as (http, _):
        for said in ("first", "second"):
            response = await http.post(
                "/api/agents/helper/generate",
                json={"messages": [{"role": "user", "content": said}], "threadId": "t"},
                headers=AUTH,
            )
            assert response.status_code == 200
        stream = await http.post(
            "/api/agents/helper/stream", json={"messages": "third", "threadId": "t"}, headers=AUTH
        )
        stored = (await http.get("/api/memory/threads/t/messages?limit=2", headers=AUTH)).json()
    seen = [(m.role, m.content) for m in model.calls[-1][0]]
    assert seen == [
        ("system", "Be brief."),
        ("user", "first"),
        ("assistant", "first answer"),
        ("user", "second"),
        ("assistant", "second answer"),
        ("user", "third"),
    ]
    finish = [json.loads(e.data) for e in iter_sse([stream.content]) if e.event == "finish"]
    assert finish[0]["threadId"] == "t"
    assert [(m["role"], m["content"]) for m in stored["messages"]] == [
        ("user", "third"),
        ("assistant", "second answer "),  # the scripted stream's words keep their spaces
    ]


async def test_a_failed_run_writes_nothing() -> None:
    model = ScriptedModel(text("ok"), ModelError("model down"))
    async with serving(model) as (http, memory):
        ok = await http.post(
            "/api/agents/helper/generate", json={"messages": "one", "threadId": "t"}, headers=AUTH
        )
        assert ok.status_code == 200
        before = await memory.list_messages("t")
        failed = await http.post(
            "/api/agents/helper/generate", json={"messages": "two", "threadId": "t"}, headers=AUTH
        )
        streamed = await http.post(
            "/api/agents/helper/stream", json={"messages": "three", "threadId": "t"}, headers=AUTH
        )
        assert (failed.status_code, failed.json()) == (502, {"error": "model down"})
        assert (streamed.status_code, streamed.json()) == (502, {"error": "model down"})
        assert await memory.list_messages("t") == before
        assert len(before) == 2


async def test_a_run_that_fails_after_streaming_writes_nothing() -> None:
    model = ScriptedModel(calls(("c1", "add", {"a": 1, "b": 1})), ModelError("cut"))
    async with serving(model) as (http, memory):
        response = await http.post(
            "/api/agents/helper/stream", json={"messages": "go", "threadId": "t"}, headers=AUTH
        )
        kinds = [e.event for e in iter_sse([response.content])]
        assert kinds == ["tool-call", "tool-result", "error"]
        assert await memory.list_messages("t") == []
        # The thread was claimed for the caller when the run began, and is still empty.
        assert (await memory.get_owned_thread("t", "ana")).resource_id == "ana"


async def test_a_message_the_store_refuses_is_refused_before_the_model_runs() -> None:
    model = ScriptedModel(text("never"))
    async with serving(model) as (http, memory):
        response = await http.post(
            "/api/agents/helper/generate",
            json={"messages": "nul \u0000 here", "threadId": "t"},
            headers=AUTH,
        )
        assert response.status_code == 400
        assert "NUL" in response.json()["error"]
        assert model.calls == []
        assert await memory.list_messages("t") == []


async def test_an_answer_the_store_refuses_is_a_500_and_writes_nothing() -> None:
    model = ScriptedModel(ModelResponse(text="bad \u0000 answer"))
    async with serving(model) as (http, memory):
        generated = await http.post(
            "/api/agents/helper/generate", json={"messages": "hi", "threadId": "t"}, headers=AUTH
        )
        streamed = await http.post(
            "/api/agents/helper/stream", json={"messages": "hi", "threadId": "t"}, headers=AUTH
        )
        assert (generated.status_code, generated.json()) == (
            500,
            {"error": "The conversation could not be saved"},
        )
        last = list(iter_sse([streamed.content]))[-1]
        assert (last.event, json.loads(last.data)) == (
            "error",
            {"error": "The conversation could not be saved"},
        )
        assert await memory.list_messages("t") == []


async def test_client_messages_are_stored_as_sent() -> None:
    async with serving(ScriptedModel(text("done"))) as (http, memory):
        await http.post(
            "/api/agents/helper/generate",
            json={
                "messages": [
                    {"role": "system", "content": "Speak French."},
                    {"role": "assistant", "content": "Bonjour."},
                    {"role": "user", "content": "Salut"},
                ],
                "threadId": "t",
            },
            headers=AUTH,
        )
        stored = await memory.list_messages("t")
    assert [(m.role, m.content) for m in stored] == [
        ("system", "Speak French."),
        ("assistant", "Bonjour."),
        ("user", "Salut"),
        ("assistant", "done"),
    ]


async def test_without_auth_the_client_names_its_resource() -> None:
    """No auth configured (or a memory path made public): the request is anonymous and the
    `resourceId` it sends is the owner; without one, memory cannot be used."""
    async with serving(auth=None) as (http, memory):
        missing = await http.get("/api/memory/threads")
        assert (missing.status_code, missing.json()) == (400, {"error": "resourceId is required"})
        created = await http.post("/api/memory/threads", json={"resourceId": "guest-1"})
        assert created.json()["resourceId"] == "guest-1"
        thread_id = created.json()["id"]
        mine = await http.get(f"/api/memory/threads/{thread_id}?resourceId=guest-1")
        other = await http.get(f"/api/memory/threads/{thread_id}?resourceId=guest-2")
        assert mine.status_code == 200
        assert (other.status_code, other.json()) == (404, {"error": "Thread not found"})
        no_owner = await http.post(
            "/api/agents/helper/generate", json={"messages": "hi", "threadId": "t"}
        )
        assert (no_owner.status_code, no_owner.json()) == (
            400,
            {"error": "resourceId is required"},
        )
        ran = await http.post(
            "/api/agents/helper/generate",
            json={"messages": "use whoami", "threadId": "t", "resourceId": "guest-2"},
        )
        assert ran.status_code == 200
        assert (await memory.get_owned_thread("t", "guest-2")).id == "t"
        listed = await http.get("/api/memory/threads", params={"resourceId": "guest-2"})
        assert [t["id"] for t in listed.json()] == ["t"]


async def test_memory_of_its_own_is_closed_on_shutdown() -> None:
    memory = Memory("sqlite://")
    closed: list[bool] = []
    original = memory.close

    async def close() -> None:
        closed.append(True)
        await original()

    memory.close = close  # type: ignore[method-assign]
    app = make_app(memory)
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])

    async def receive() -> dict[str, Any]:
        return next(messages)

    async def send(message: MutableMapping[str, Any]) -> None:
        pass

    await app({"type": "lifespan"}, receive, send)
    assert closed == [True]


def test_memory_must_be_a_memory() -> None:
    with pytest.raises(TypeError):
        Bastion(memory="sqlite://")  # type: ignore[arg-type]


async def test_rbac_permissions_of_the_memory_routes() -> None:
    users = {"t-viewer": {"id": "v", "role": "viewer"}, "t-admin": {"id": "a", "role": "admin"}}
    viewer, admin = {"Authorization": "Bearer t-viewer"}, {"Authorization": "Bearer t-admin"}
    async with serving(auth=SimpleAuth(users), rbac=StaticRBAC()) as (http, _):
        listed = await http.get("/api/memory/threads", headers=viewer)
        refused = await http.post("/api/memory/threads", json={}, headers=viewer)
        created = await http.post("/api/memory/threads", json={}, headers=admin)
        thread_id = created.json()["id"]
        deleted = await http.delete(f"/api/memory/threads/{thread_id}", headers=admin)
    assert listed.status_code == 200
    assert (refused.status_code, refused.json()) == (
        403,
        {"error": "Forbidden", "message": "Missing required permission: memory:write"},
    )
    assert created.status_code == 201
    # Threads are the caller's own: admin (and member) may delete them, viewer may not.
    assert (deleted.status_code, deleted.json()) == (200, {"ok": True})
