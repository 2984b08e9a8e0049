"""OpenAIModel against a real chat-completions stand-in on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence

import httpx
import pytest

from bastion.server.models import (
    Finish,
    Message,
    Model,
    ModelError,
    ModelResponse,
    StreamChunk,
    TextDelta,
    ToolCall,
    ToolCallChunk,
    ToolSpec,
    Usage,
)
from bastion.server.openai import OpenAIModel
from tests.server.openai_standin import (
    STANDIN_KEY,
    Failure,
    OpenAIStandin,
    Reply,
    free_port,
    serve_standin,
)

WEATHER = ToolSpec(
    "get_weather",
    "The weather in a city",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
WHOAMI = ToolSpec("whoami", "Who is asking", {"type": "object", "properties": {}})


@pytest.fixture
async def standin() -> AsyncIterator[OpenAIStandin]:
    async with serve_standin() as running:
        yield running


@pytest.fixture
async def model(standin: OpenAIStandin) -> AsyncIterator[OpenAIModel]:
    async with standin.model() as opened:
        yield opened


def user(text: str) -> Message:
    return Message("user", text)


async def collect(
    model: OpenAIModel, messages: Sequence[Message], tools: Sequence[ToolSpec] = ()
) -> list[StreamChunk]:
    return [chunk async for chunk in model.stream(messages, tools)]


def assembled(chunks: list[StreamChunk]) -> ModelResponse:
    """The stream's chunks as one response, after checking their order."""
    kinds = [type(c).__name__ for c in chunks]
    assert kinds == sorted(kinds, key=["TextDelta", "ToolCallChunk", "Finish"].index), kinds
    assert kinds.count("Finish") == 1
    final = chunks[-1]
    assert isinstance(final, Finish)
    text = "".join(c.text for c in chunks if isinstance(c, TextDelta))
    calls = tuple(c.call for c in chunks if isinstance(c, ToolCallChunk))
    return ModelResponse(text, calls, final.usage, final.finish_reason)


# --- construction -------------------------------------------------------------------------


async def test_is_a_model_named_after_its_host(standin: OpenAIStandin) -> None:
    async with standin.model(model="llama-3") as model:
        assert isinstance(model, Model)
        assert model.id == f"{standin.base_url.split('/')[2]}/llama-3"
    async with OpenAIModel("gpt-4o-mini", env={"OPENAI_API_KEY": "sk-x"}) as openai:
        assert openai.id == "openai/gpt-4o-mini"
        assert openai.base_url == "https://api.openai.com/v1"


async def test_defaults_come_from_the_environment(standin: OpenAIStandin) -> None:
    env = {"OPENAI_API_KEY": STANDIN_KEY, "OPENAI_BASE_URL": standin.base_url + "/"}
    async with OpenAIModel("standin-1", env=env) as model:
        answer = await model.generate([user("hi")], [])
    assert answer.text == "Echo: hi"
    assert standin.requests[-1].headers["authorization"] == f"Bearer {STANDIN_KEY}"


def test_the_openai_url_needs_a_key() -> None:
    with pytest.raises(ValueError, match="OPENAI_API_KEY"):
        OpenAIModel("gpt-4o-mini", env={})


@pytest.mark.parametrize(
    "options",
    [
        {"base_url": "ftp://example.com/v1"},
        {"base_url": "not a url"},
        {"timeout": 0},
        {"params": {"stream": False}},
    ],
)
def test_bad_options_are_refused(options: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        OpenAIModel("m", api_key="k", **options)  # type: ignore[arg-type]


async def test_repr_hides_the_key(model: OpenAIModel) -> None:
    assert STANDIN_KEY not in repr(model)


# --- generate -----------------------------------------------------------------------------


async def test_generate_text(model: OpenAIModel) -> None:
    answer = await model.generate([Message("system", "Be brief."), user("hello")], [])
    # The stand-in counts words: 3 in, 2 out.
    assert answer == ModelResponse("Echo: hello", (), Usage(3, 2), "stop")


async def test_generate_tool_call_with_parsed_arguments(model: OpenAIModel) -> None:
    answer = await model.generate([user('get_weather {"city": "Paris"}')], [WHOAMI, WEATHER])
    assert answer.text == ""
    assert answer.tool_calls == (ToolCall("call_standin_1", "get_weather", {"city": "Paris"}),)
    assert answer.finish_reason == "tool_calls"


async def test_usage_comes_from_the_provider(standin: OpenAIStandin, model: OpenAIModel) -> None:
    standin.replies = [Reply("hi", usage=(11, 7)), Reply("hi", usage=(13, 5))]
    assert (await model.generate([user("x")], [])).usage == Usage(11, 7)
    assert assembled(await collect(model, [user("x")])).usage == Usage(13, 5)


async def test_request_shape(standin: OpenAIStandin) -> None:
    call = ToolCall("call_9", "get_weather", {"city": "Paris"})
    messages = [
        Message("system", "Be brief."),
        Message("user", "Weather?", name="ada"),
        Message("assistant", tool_calls=(call,)),
        Message("tool", '{"sky": "clear"}', tool_call_id="call_9", name="get_weather"),
    ]
    async with standin.model(params={"temperature": 0}) as model:
        answer = await model.generate(messages, [WEATHER])
    assert answer.text == 'Tool said: {"sky": "clear"}'
    sent = standin.requests[-1]
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["content-type"] == "application/json"
    assert sent.body == {
        "temperature": 0,
        "model": "standin-1",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Weather?", "name": "ada"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_9",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_9", "content": '{"sky": "clear"}'},
        ],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "The weather in a city",
                    "parameters": WEATHER.parameters,
                },
            }
        ],
    }


async def test_no_tools_key_without_tools(standin: OpenAIStandin, model: OpenAIModel) -> None:
    await model.generate([user("hi")], [])
    assert "tools" not in standin.requests[-1].body


async def test_auth_and_extra_headers(standin: OpenAIStandin) -> None:
    async with standin.model(headers={"OpenAI-Organization": "org-1"}) as model:
        await model.generate([user("hi")], [])
    headers = standin.requests[-1].headers
    assert headers["authorization"] == f"Bearer {STANDIN_KEY}"
    assert headers["openai-organization"] == "org-1"


async def test_a_keyless_local_server_gets_no_authorization(standin: OpenAIStandin) -> None:
    async with standin.model(api_key="") as model:
        with pytest.raises(ModelError, match="HTTP 401"):
            await model.generate([user("hi")], [])
    assert "authorization" not in standin.requests[-1].headers


async def test_a_tool_message_needs_its_call_id(model: OpenAIModel) -> None:
    with pytest.raises(ValueError, match="tool_call_id"):
        await model.generate([user("x"), Message("tool", "result")], [])


async def test_agent_round_trip(model: OpenAIModel) -> None:
    """Call, run the tool, send the result back: the tool result reaches the answer."""
    messages = [user("whoami please")]
    first = await model.generate(messages, [WEATHER, WHOAMI])
    (call,) = first.tool_calls
    assert call.name == "whoami"
    messages += [
        Message("assistant", first.text, tool_calls=first.tool_calls),
        Message("tool", '{"name": "Ada"}', tool_call_id=call.id),
    ]
    second = await model.generate(messages, [WEATHER, WHOAMI])
    assert second.text == 'Tool said: {"name": "Ada"}'
    assert second.tool_calls == ()


# --- stream -------------------------------------------------------------------------------


async def test_stream_text(standin: OpenAIStandin, model: OpenAIModel) -> None:
    chunks = await collect(model, [user("hello big world")])
    assert [c.text for c in chunks if isinstance(c, TextDelta)] == [
        "Echo: ",
        "hello ",
        "big ",
        "world",
    ]
    assert assembled(chunks) == ModelResponse("Echo: hello big world", (), Usage(3, 4), "stop")
    body = standin.requests[-1].body
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}


async def test_the_standin_streams_arguments_in_fragments(standin: OpenAIStandin) -> None:
    """The assembly test below means something only if arguments arrive in pieces."""
    standin.replies = [Reply(tool_calls=[("get_weather", {"city": "Paris, France"})])]
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": True}
    headers = {"Authorization": f"Bearer {STANDIN_KEY}"}
    async with httpx.AsyncClient() as client:
        response = await client.post(
            standin.base_url + "/chat/completions", json=body, headers=headers
        )
    events = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    fragments = [
        call["function"].get("arguments")
        for event in events[:-1]
        for choice in json.loads(event)["choices"]
        for call in choice["delta"].get("tool_calls", [])
        if call["function"].get("arguments")
    ]
    assert len(fragments) >= 3
    assert "".join(fragments) == '{"city": "Paris, France"}'


async def test_stream_assembles_tool_calls_from_fragments(
    standin: OpenAIStandin, model: OpenAIModel
) -> None:
    standin.replies = [
        Reply(
            text="Checking both.",
            tool_calls=[
                ("get_weather", {"city": "Paris, France", "units": "metric"}),
                ("whoami", {}),
            ],
        )
    ]
    chunks = await collect(model, [user("x")], [WEATHER, WHOAMI])
    assert assembled(chunks) == ModelResponse(
        "Checking both.",
        (
            ToolCall("call_standin_1", "get_weather", {"city": "Paris, France", "units": "metric"}),
            ToolCall("call_standin_2", "whoami", {}),
        ),
        Usage(1, 2 + 5 + 1),
        "tool_calls",
    )


async def test_stream_from_a_server_that_ignores_stream(
    standin: OpenAIStandin, model: OpenAIModel
) -> None:
    standin.ignore_stream = True
    chunks = await collect(model, [user('whoami {"verbose": true}')], [WHOAMI])
    assert assembled(chunks) == ModelResponse(
        "", (ToolCall("call_standin_1", "whoami", {"verbose": True}),), Usage(3, 2), "tool_calls"
    )


async def test_stopping_early_leaves_the_model_usable(model: OpenAIModel) -> None:
    async for chunk in model.stream([user("one two three four")], []):
        assert isinstance(chunk, TextDelta)
        break
    assert (await model.generate([user("again")], [])).text == "Echo: again"


# --- errors -------------------------------------------------------------------------------


async def failure(model: OpenAIModel, streaming: bool, tools: Sequence[ToolSpec] = ()) -> str:
    """The message of the ModelError that generate (or stream) raises."""
    with pytest.raises(ModelError) as caught:
        if streaming:
            await collect(model, [user("hello there")], tools)
        else:
            await model.generate([user("hello there")], tools)
    message = str(caught.value)
    assert model.id in message
    return message


STREAMING = pytest.mark.parametrize("streaming", [False, True], ids=["generate", "stream"])


@STREAMING
async def test_server_error_names_status_and_provider_message(
    standin: OpenAIStandin, model: OpenAIModel, streaming: bool
) -> None:
    standin.fail = Failure(status=500, message="The engine is overloaded")
    message = await failure(model, streaming)
    assert "HTTP 500: The engine is overloaded" in message
    assert STANDIN_KEY not in message


@STREAMING
async def test_wrong_key_is_never_repeated(standin: OpenAIStandin, streaming: bool) -> None:
    # The stand-in echoes the wrong key in its 401 message; ours must not pass it on.
    secret = "sk-wrong-but-still-secret-42"
    async with standin.model(api_key=secret) as model:
        message = await failure(model, streaming)
    assert "HTTP 401" in message
    assert "Incorrect API key provided" in message
    assert secret not in message
    assert standin.requests[-1].headers["authorization"] == f"Bearer {secret}"


@STREAMING
async def test_timeout(standin: OpenAIStandin, streaming: bool) -> None:
    # Streaming stalls after the first chunk: the limit applies to each read.
    standin.fail = Failure(delay=5)
    async with standin.model(timeout=0.2) as model:
        message = await failure(model, streaming)
    assert "no answer within 0.2s" in message


@STREAMING
async def test_malformed_answer(
    standin: OpenAIStandin, model: OpenAIModel, streaming: bool
) -> None:
    standin.fail = Failure(malformed=True)
    assert "not valid JSON" in await failure(model, streaming)


@STREAMING
async def test_invalid_tool_arguments(
    standin: OpenAIStandin, model: OpenAIModel, streaming: bool
) -> None:
    standin.replies = [Reply(tool_calls=[("get_weather", '{"city": "Par')])]
    message = await failure(model, streaming, [WEATHER])
    assert "arguments of tool call get_weather are not valid JSON" in message


@STREAMING
async def test_arguments_that_are_not_an_object(
    standin: OpenAIStandin, model: OpenAIModel, streaming: bool
) -> None:
    standin.replies = [Reply(tool_calls=[("get_weather", '["Paris"]')])]
    assert "not a JSON object" in await failure(model, streaming, [WEATHER])


async def test_a_stream_cut_short(standin: OpenAIStandin, model: OpenAIModel) -> None:
    standin.fail = Failure(truncate=True)
    assert "ended before the answer was complete" in await failure(model, True)


@STREAMING
async def test_connection_refused(streaming: bool) -> None:
    base_url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    async with OpenAIModel("m", base_url=base_url, api_key=STANDIN_KEY) as model:
        message = await failure(model, streaming)
    assert f"cannot connect to {base_url}" in message
    assert STANDIN_KEY not in message


async def test_credentials_in_the_url_are_not_shown() -> None:
    base_url = f"http://proxy-user:proxy-pass@127.0.0.1:{free_port()}/v1"
    async with OpenAIModel("m", base_url=base_url, api_key=STANDIN_KEY) as model:
        assert "proxy-pass" not in repr(model)
        message = await failure(model, False)
    assert "cannot connect to http://127.0.0.1:" in message
    assert "proxy-pass" not in message
