"""Issue 11, item 3: nothing stored that cannot be read back.

Why 254: pydantic-core, which writes the agent server's JSON, stops at 255 levels of nesting
("Maximum serialization depth exceeded"). A thread list wraps each thread's metadata in two
more (`[{"metadata": …}]`), so metadata nested 254 deep was stored and then every list of
the owner's threads answered 500; nested deeper, the create answered 500 too (after the
write). Tool arguments did the same to a thread's messages (`{"messages": [{"toolCalls":
[{"args": …}]}]}`). Request bodies are now held to MAX_JSON_DEPTH (32) levels before
anything runs, memory checks metadata and tool calls the same way, the demo LocalModel
parses the arguments a client writes in `use <tool> {json}` as a body, and the agent loop
refuses a model's tool call nested deeper (ModelError).

Sizes: a 1,000,000-character user name was accepted and returned by every get-session,
and 900 KB thread titles were stored. Names, emails, images and additional fields now have
maximum lengths (answered as zod does: `Too big: expected string to have <=N characters`);
titles at most 1,024 characters, metadata at most 64 KiB as JSON.

Security check S38, "bounded input": request bodies
nested at most 32 levels; every stored string and JSON value has a maximum size, checked
before the write, so that whatever is stored can be read back.

Each runs on SQLite and PostgreSQL (skipped, naming it, when PostgreSQL is not there).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
import pytest

from bastion.identity.db import Field
from bastion.server import Agent, tool
from bastion.server.memory import InvalidMemoryInput, Memory
from bastion.server.models import (
    Finish,
    Message,
    ModelError,
    ModelResponse,
    StreamChunk,
    TextDelta,
    ToolCall,
    ToolCallChunk,
    ToolSpec,
)
from tests.identity.conftest import ORIGIN, running
from tests.robustness.hostile_kit import (
    PASSWORD,
    bearer,
    default_app,
    nested,
    post_raw,
    sign_up,
)
from tests.services import scratch_database

TOO_DEEP = {"error": "The request body is nested more than 32 levels deep"}


@pytest.fixture(params=["sqlite", "postgresql"])
def dialect(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def deep_dict(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


async def assert_threads_readable(http: httpx.AsyncClient, token: str) -> list[dict[str, Any]]:
    listed = await http.get("/api/memory/threads", headers=bearer(token))
    assert listed.status_code == 200, listed.text
    threads: list[dict[str, Any]] = listed.json()
    for thread in threads:
        one = await http.get(f"/api/memory/threads/{thread['id']}", headers=bearer(token))
        assert one.status_code == 200, one.text
        messages = await http.get(
            f"/api/memory/threads/{thread['id']}/messages", headers=bearer(token)
        )
        assert messages.status_code == 200, messages.text
    return threads


# -- thread metadata and titles --------------------------------------------------------------


async def test_item03_metadata_nested_254_levels_is_refused_and_threads_stay_readable(
    dialect: str,
) -> None:
    async with default_app(dialect) as http:
        token = await sign_up(http, "ada@example.com")
        kept = await http.post("/api/memory/threads", json={"title": "kept"}, headers=bearer(token))
        assert kept.status_code == 201
        thread_id = kept.json()["id"]
        for depth in (254, 255, 300):
            body = f'{{"title":"deep","metadata":{nested(depth)}}}'
            created = await post_raw(http, "/api/memory/threads", body, bearer(token))
            assert (created.status_code, created.json()) == (400, TOO_DEEP)
            updated = await http.patch(
                f"/api/memory/threads/{thread_id}",
                content=f'{{"metadata":{nested(depth)}}}',
                headers={"content-type": "application/json", **bearer(token)},
            )
            assert (updated.status_code, updated.json()) == (400, TOO_DEEP)
        threads = await assert_threads_readable(http, token)
        assert [t["id"] for t in threads] == [thread_id]
        assert threads[0]["metadata"] == {}

        # Within the bound (the body is one level more): stored and read back as sent.
        body = f'{{"title":"deep enough","metadata":{nested(31)}}}'
        created = await post_raw(http, "/api/memory/threads", body, bearer(token))
        assert created.status_code == 201, created.text
        threads = await assert_threads_readable(http, token)
        assert {t["title"] for t in threads} == {"kept", "deep enough"}


async def test_item03_memory_api_bounds_metadata_depth_and_size(dialect: str) -> None:
    async with scratch_database(dialect) as url, Memory(url) as memory:
        await memory.migrate()
        # A Python value may nest deeper than json.dumps can follow: refused, no RecursionError.
        for depth in (33, 254, 5000):
            with pytest.raises(InvalidMemoryInput, match="nested more than 32 levels"):
                await memory.create_thread("alice", metadata=deep_dict(depth))
        with pytest.raises(InvalidMemoryInput, match="over 65536 bytes"):
            await memory.create_thread("alice", metadata={"blob": "x" * 70_000})
        with pytest.raises(InvalidMemoryInput, match="at most 1024 characters"):
            await memory.create_thread("alice", title="x" * 1025)
        thread = await memory.create_thread("alice", metadata=deep_dict(32), title="t" * 1024)
        assert (await memory.list_threads("alice"))[0].metadata == deep_dict(32)
        assert thread.title == "t" * 1024


async def test_item03_900_kb_titles_are_refused(dialect: str) -> None:
    async with default_app(dialect) as http:
        token = await sign_up(http, "ada@example.com")
        huge = "x" * 900_000
        created = await http.post(
            "/api/memory/threads", json={"title": huge}, headers=bearer(token)
        )
        assert created.status_code == 400
        assert created.json() == {"error": "a thread title has at most 1024 characters"}
        kept = await http.post(
            "/api/memory/threads", json={"title": "k" * 1024}, headers=bearer(token)
        )
        assert kept.status_code == 201
        updated = await http.patch(
            f"/api/memory/threads/{kept.json()['id']}",
            json={"title": huge},
            headers=bearer(token),
        )
        assert updated.status_code == 400
        threads = await assert_threads_readable(http, token)
        assert [t["title"] for t in threads] == ["k" * 1024]


async def test_item03_oversized_metadata_is_refused(dialect: str) -> None:
    async with default_app(dialect) as http:
        token = await sign_up(http, "ada@example.com")
        created = await http.post(
            "/api/memory/threads",
            json={"metadata": {"blob": "x" * 70_000}},
            headers=bearer(token),
        )
        assert created.status_code == 400
        assert created.json() == {"error": "metadata is over 65536 bytes as JSON"}
        assert await assert_threads_readable(http, token) == []


# -- tool arguments a client writes through the demo LocalModel --------------------------------


@pytest.mark.parametrize("route", ["generate", "stream"])
async def test_item03_nested_tool_arguments_via_local_model(dialect: str, route: str) -> None:
    async with default_app(dialect) as http:
        token = await sign_up(http, "ada@example.com")
        for depth in (254, 1000):
            answer = await http.post(
                f"/api/agents/assistant/{route}",
                json={"messages": f"use whoami {nested(depth)}", "threadId": f"deep-{depth}"},
                headers=bearer(token),
            )
            assert answer.status_code == 200, answer.text
            if route == "generate":
                result = answer.json()
                assert result["text"] == (
                    "Cannot call whoami: the JSON is nested more than 32 levels deep."
                )
                assert result["toolCalls"] == []
            else:
                assert "event: error" not in answer.text
                assert "event: tool-call" not in answer.text
                assert "event: finish" in answer.text
        threads = await assert_threads_readable(http, token)
        assert {t["id"] for t in threads} == {"deep-254", "deep-1000"}
        messages = await http.get("/api/memory/threads/deep-254/messages", headers=bearer(token))
        assert [m["role"] for m in messages.json()["messages"]] == ["user", "assistant"]


# -- identity strings -------------------------------------------------------------------------


def too_big(field: str, limit: int) -> dict[str, str]:
    return {
        "message": f"[body.{field}] Too big: expected string to have <={limit} characters",
        "code": "VALIDATION_ERROR",
    }


async def test_item03_a_million_character_name_is_refused(dialect: str) -> None:
    async with default_app(dialect) as http:
        million = "n" * 1_000_000
        refused = await http.post(
            "/api/auth/sign-up/email",
            json={"name": million, "email": "ada@example.com", "password": PASSWORD},
        )
        assert refused.status_code == 400
        assert refused.json() == too_big("name", 256)
        token = await sign_up(http, "ada@example.com", name="n" * 256)  # nothing was stored
        updated = await http.post(
            "/api/auth/update-user", json={"name": million}, headers=bearer(token)
        )
        assert updated.status_code == 400
        assert updated.json() == too_big("name", 256)
        session = await http.get("/api/auth/get-session", headers=bearer(token))
        assert session.status_code == 200
        assert session.json()["user"]["name"] == "n" * 256


async def test_item03_emails_and_images_are_bounded(dialect: str) -> None:
    async with default_app(dialect) as http:
        long_email = "a" * 243 + "@example.com"  # 255 characters, as zod's pattern allows
        refused = await http.post(
            "/api/auth/sign-up/email",
            json={"name": "Ada", "email": long_email, "password": PASSWORD},
        )
        assert (refused.status_code, refused.json()) == (400, too_big("email", 254))
        image = "https://example.com/" + "i" * 16_400
        refused = await http.post(
            "/api/auth/sign-up/email",
            json={"name": "Ada", "email": "ada@example.com", "password": PASSWORD, "image": image},
        )
        assert (refused.status_code, refused.json()) == (400, too_big("image", 16_384))
        token = await sign_up(http, "a" * 242 + "@example.com")  # 254: the limit itself
        updated = await http.post(
            "/api/auth/update-user", json={"image": image}, headers=bearer(token)
        )
        assert (updated.status_code, updated.json()) == (400, too_big("image", 16_384))
        change = await http.post(
            "/api/auth/change-email", json={"newEmail": long_email}, headers=bearer(token)
        )
        assert change.status_code == 400
        assert change.json() == {
            "message": "[body.newEmail] Too big: expected string to have <=254 characters",
            "code": "VALIDATION_ERROR",
        }


async def test_item03_additional_fields_are_bounded() -> None:
    user_fields = {
        "bio": Field(type="string", required=False),
        "prefs": Field(type="json", required=False),
    }
    session_fields = {"theme": Field(type="string", required=False)}
    async with running(
        user={"additional_fields": user_fields},
        session={"additional_fields": session_fields},
    ) as (identity, client):
        body = {"name": "Ada", "email": "ada@example.com", "password": PASSWORD}
        refused = await client.post("/sign-up/email", json={**body, "bio": "b" * 4097})
        assert (refused.status_code, refused.json()) == (400, too_big("bio", 4096))
        refused = await client.post("/sign-up/email", json={**body, "prefs": {"p": "x" * 5000}})
        assert refused.status_code == 400
        assert refused.json() == {
            "message": "[body.prefs] Too big: expected JSON to have <=4096 characters",
            "code": "VALIDATION_ERROR",
        }
        assert await identity.store.find_user_by_email("ada@example.com") is None
        signed_up = await client.post("/sign-up/email", json={**body, "bio": "b" * 4096})
        assert signed_up.status_code == 200
        token = signed_up.headers["set-auth-token"]
        updated = await client.post(
            "/update-session", json={"theme": "t" * 4097}, headers={**bearer(token), **ORIGIN}
        )
        assert (updated.status_code, updated.json()) == (400, too_big("theme", 4096))


# -- what any model or tool hands the agent loop ----------------------------------------------


class Scripted:
    """A model that answers with the given responses, in order (the Model protocol)."""

    id = "test/scripted"

    def __init__(self, *responses: ModelResponse) -> None:
        self._responses = list(responses)

    async def generate(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec]
    ) -> ModelResponse:
        return self._responses.pop(0)

    async def stream(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec]
    ) -> AsyncIterator[StreamChunk]:
        response = self._responses.pop(0)
        yield TextDelta(response.text)
        for call in response.tool_calls:
            yield ToolCallChunk(call)
        yield Finish(response.finish_reason)


@tool
def echo(value: Any = None) -> Any:
    """Gives its argument back."""
    return value


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        (deep_dict(40), "arguments is nested more than 32 levels deep"),
        ({"value": ["\ud800"]}, r"value\[0\] is not valid Unicode \(a lone surrogate\)"),
    ],
)
async def test_item03_a_models_unstorable_tool_call_fails_the_run(
    arguments: dict[str, Any], problem: str
) -> None:
    call = ToolCall("call_1", "echo", arguments)
    for run in ("generate", "stream"):
        agent = Agent(
            name="a",
            instructions="",
            model=Scripted(ModelResponse(tool_calls=(call,))),
            tools=[echo],
        )
        with pytest.raises(ModelError, match=f"unusable call of echo: {problem}"):
            if run == "generate":
                await agent.generate("hi")
            else:
                async for _ in agent.stream("hi"):
                    pass


@pytest.mark.parametrize("value", [deep_dict(40), ["\ud800"], {"k": ["x", "\udfff"]}])
async def test_item03_a_tools_unstorable_result_becomes_an_error_result(value: Any) -> None:
    @tool
    def make() -> Any:
        """Returns what cannot be stored."""
        return value

    call = ToolCall("call_1", "make", {})
    model = Scripted(ModelResponse(tool_calls=(call,)), ModelResponse(text="done"))
    generation = await Agent(name="a", instructions="", model=model, tools=[make]).generate("hi")
    assert generation.tool_results[0].result == {
        "error": "Tool make returned a value that cannot be sent or stored"
    }
    assert generation.tool_results[0].is_error
    assert generation.text == "done"
