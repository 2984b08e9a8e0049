"""`BastionClient` and `AsyncBastionClient` against a stand-in that follows docs/http-api.md
(tests/client/standin.py): each test body runs with the sync client on a real server and
with the async client in-process; the streaming-specific tests use the real server for both.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bastion.client import (
    AsyncBastionClient,
    BastionClient,
    BastionError,
    ErrorEvent,
    FinishEvent,
    ProtocolError,
    TextDeltaEvent,
    ToolCallEvent,
    ToolResultEvent,
)
from tests.client.servers import Mode, Served, resolve, served, thread_served
from tests.client.standin import SESSION_COOKIE, TOKEN, USAGE, StandIn


@pytest.fixture
async def standin(mode: Mode) -> AsyncIterator[tuple[Served, StandIn]]:
    fake = StandIn()
    async with served(mode, fake.setup, BastionClient, AsyncBastionClient) as server:
        yield server, fake


async def _events(stream: Any) -> list[Any]:
    """Every event of a stream, sync or async."""
    if hasattr(stream, "__aiter__"):
        return [event async for event in stream]
    return list(stream)


# -- agents ---------------------------------------------------------------------------------


async def test_agents(standin: tuple[Served, StandIn]) -> None:
    server, _ = standin
    client = server.client(token=TOKEN)
    agents = await resolve(client.agents.list())
    assert set(agents) == {"echo", "failing", "slow"}
    echo = await resolve(client.agents.get("echo"))
    assert echo["modelId"] == "local/test" and set(echo["tools"]) == {"upper"}
    with pytest.raises(BastionError) as missing:
        await resolve(client.agents.get("nobody"))
    assert (missing.value.status, missing.value.message) == (404, "Agent nobody not found")


async def test_generate(standin: tuple[Served, StandIn]) -> None:
    server, fake = standin
    client = server.client(token=TOKEN)
    answer = await resolve(client.agents.generate("echo", "hello"))
    assert answer["text"] == "echo: hello" and answer["usage"] == USAGE
    assert "threadId" not in answer
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hi there"},
    ]
    answer = await resolve(
        client.agents.generate(
            "echo", messages, thread_id="t-1", resource_id="r-1", max_steps=3, temperature=0
        )
    )
    assert answer == {
        "text": "echo: hi there",
        "toolCalls": [],
        "toolResults": [],
        "finishReason": "stop",
        "usage": USAGE,
        "threadId": "t-1",
    }
    assert fake.bodies[-1] == {
        "messages": messages,
        "threadId": "t-1",
        "resourceId": "r-1",
        "maxSteps": 3,
        "temperature": 0,
    }


async def test_stream_yields_typed_events(standin: tuple[Served, StandIn]) -> None:
    server, _ = standin
    client = server.client(token=TOKEN)
    events = await _events(client.agents.stream("echo", "hi you", thread_id="t-9"))
    call, result, *deltas, finish = events
    assert call == ToolCallEvent("call-1", "upper", {"text": "hi you"})
    assert result == ToolResultEvent("call-1", "upper", "HI YOU")
    assert all(isinstance(d, TextDeltaEvent) for d in deltas)
    assert "".join(d.text for d in deltas) == "echo: hi you "
    assert finish == FinishEvent("stop", USAGE, "t-9")
    assert [e.type for e in (call, result, deltas[0], finish)] == [
        "tool-call",
        "tool-result",
        "text-delta",
        "finish",
    ]


async def test_stream_error_event(standin: tuple[Served, StandIn]) -> None:
    server, _ = standin
    events = await _events(server.client(token=TOKEN).agents.stream("failing", "x"))
    assert events == [TextDeltaEvent("partial"), ErrorEvent("model exploded")]


async def test_a_refused_stream_raises_before_any_event(standin: tuple[Served, StandIn]) -> None:
    server, _ = standin
    stream = server.client(token="wrong").agents.stream("echo", "hi")
    with pytest.raises(BastionError) as refused:
        await _events(stream)
    assert (refused.value.status, refused.value.message) == (401, "Invalid or expired token")
    assert refused.value.response is not None
    assert refused.value.response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert await _events(stream) == []  # one request per stream; it is over

    with pytest.raises(BastionError) as missing:
        await _events(server.client(token=TOKEN).agents.stream("nobody", "hi"))
    assert missing.value.status == 404


async def test_an_answer_that_is_not_an_event_stream(standin: tuple[Served, StandIn]) -> None:
    server, _ = standin
    client = server.client(token=TOKEN)
    with pytest.raises(ProtocolError) as not_sse:
        await _events(client.agents.stream("not-a-stream", "hi"))
    assert not_sse.value.status == 200
    assert "text/event-stream" in not_sse.value.message
    with pytest.raises(ProtocolError) as not_json:
        await resolve(client.request("GET", "/plain"))
    assert not_json.value.status == 200


# -- tools ----------------------------------------------------------------------------------


async def test_tools(standin: tuple[Served, StandIn]) -> None:
    server, fake = standin
    client = server.client(token=TOKEN)
    assert set(await resolve(client.tools.list())) == {"upper", "admin-only"}
    assert (await resolve(client.tools.get("upper")))["description"] == "Upper-cases a text."
    assert await resolve(client.tools.execute("upper", {"text": "shout"})) == {"text": "SHOUT"}
    assert fake.bodies[-1] == {"data": {"text": "shout"}}
    with pytest.raises(BastionError) as forbidden:
        await resolve(client.tools.execute("admin-only"))
    error = forbidden.value
    assert (error.status, error.message) == (403, "Forbidden")
    assert error.detail == "Missing required permission: tools:execute"
    assert str(error) == "403: Forbidden (Missing required permission: tools:execute)"


# -- memory threads -------------------------------------------------------------------------


async def test_threads(standin: tuple[Served, StandIn]) -> None:
    server, _ = standin
    client = server.client(token=TOKEN)
    assert await resolve(client.threads.list()) == []
    thread = await resolve(client.threads.create(title="Trip", metadata={"city": "Oslo"}))
    assert thread["title"] == "Trip" and thread["metadata"] == {"city": "Oslo"}
    thread_id = thread["id"]
    assert [t["id"] for t in await resolve(client.threads.list())] == [thread_id]
    assert (await resolve(client.threads.get(thread_id)))["title"] == "Trip"

    updated = await resolve(client.threads.update(thread_id, title="Trip to Oslo"))
    assert updated["title"] == "Trip to Oslo" and updated["metadata"] == {"city": "Oslo"}

    await resolve(client.agents.generate("echo", "pack?", thread_id=thread_id))
    stored = await resolve(client.threads.messages(thread_id))
    assert [(m["role"], m["content"]) for m in stored] == [
        ("user", "pack?"),
        ("assistant", "echo: pack?"),
    ]

    assert await resolve(client.threads.delete(thread_id)) is None
    with pytest.raises(BastionError) as gone:
        await resolve(client.threads.get(thread_id))
    assert (gone.value.status, gone.value.message) == (404, "Thread not found")


async def test_an_id_is_one_path_segment(standin: tuple[Served, StandIn]) -> None:
    """An id with `?` or `#` stays in the path instead of starting a query or fragment."""
    server, _ = standin
    client = server.client(token=TOKEN)
    thread = await resolve(client.threads.create(threadId="what?#now"))
    assert thread["id"] == "what?#now"
    assert (await resolve(client.threads.get("what?#now")))["id"] == "what?#now"


# -- credentials ----------------------------------------------------------------------------


async def test_without_a_credential(standin: tuple[Served, StandIn]) -> None:
    server, _ = standin
    with pytest.raises(BastionError) as refused:
        await resolve(server.client().agents.list())
    assert (refused.value.status, refused.value.message) == (401, "Invalid or expired token")


async def test_a_session_cookie_is_a_credential(standin: tuple[Served, StandIn]) -> None:
    server, _ = standin
    client = server.client(cookies=dict([SESSION_COOKIE]))
    assert set(await resolve(client.agents.list())) == {"echo", "failing", "slow"}


def test_paths_go_under_api() -> None:
    with BastionClient("http://127.0.0.1:4111/") as client:
        assert client.base_url == "http://127.0.0.1:4111/api"
    with BastionClient("https://example.com/agents") as mounted:
        assert mounted.base_url == "https://example.com/agents/api"


# -- streaming over a real socket -----------------------------------------------------------


def _wait(flag: Any, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while not flag.is_set():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_sync_stream_yields_events_as_they_arrive() -> None:
    """The first event is in hand while the server still holds the rest back."""
    fake = StandIn()
    with thread_served(fake.setup) as origin, BastionClient(origin, token=TOKEN) as client:
        with client.agents.stream("slow", "hi") as events:
            assert next(events) == TextDeltaEvent("first")
            fake.release.set()
            rest = list(events)
        assert rest == [TextDeltaEvent("second"), FinishEvent("stop", USAGE)]


async def test_async_stream_yields_events_as_they_arrive() -> None:
    fake = StandIn()
    with thread_served(fake.setup) as origin:
        async with AsyncBastionClient(origin, token=TOKEN) as client:
            async with client.agents.stream("slow", "hi") as events:
                assert await anext(events) == TextDeltaEvent("first")
                fake.release.set()
                rest = [event async for event in events]
            assert rest == [TextDeltaEvent("second"), FinishEvent("stop", USAGE)]


def test_sync_stream_closed_early_ends_the_request() -> None:
    """Leaving the `with` block hangs up: the server's stream ends without being released."""
    fake = StandIn()
    with thread_served(fake.setup) as origin, BastionClient(origin, token=TOKEN) as client:
        with client.agents.stream("slow", "hi") as events:
            assert next(events) == TextDeltaEvent("first")
        assert _wait(fake.stream_closed), "the server kept streaming"
        assert not fake.release.is_set()
        assert list(events) == []
        # The connection pool is still usable.
        assert set(client.agents.list()) == {"echo", "failing", "slow"}


async def test_async_stream_closed_early_ends_the_request() -> None:
    fake = StandIn()
    with thread_served(fake.setup) as origin:
        async with AsyncBastionClient(origin, token=TOKEN) as client:
            events = client.agents.stream("slow", "hi")
            assert await anext(events) == TextDeltaEvent("first")
            await events.aclose()
            assert _wait(fake.stream_closed), "the server kept streaming"
            assert [event async for event in events] == []
            assert set(await client.agents.list()) == {"echo", "failing", "slow"}
