"""LocalModel: the deterministic demo/test model, through the Model protocol."""

from __future__ import annotations

import re
import time
from collections.abc import Sequence

import pytest

from bastion.server.local import LocalModel, ToolTrigger
from bastion.server.models import (
    Finish,
    Message,
    Model,
    ModelResponse,
    StreamChunk,
    TextDelta,
    ToolCall,
    ToolCallChunk,
    ToolSpec,
    Usage,
)

WEATHER = ToolSpec(
    "get_weather",
    "The weather in a city",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
WHOAMI = ToolSpec("whoami", "Who is asking", {"type": "object", "properties": {}})


def user(text: str) -> Message:
    return Message("user", text)


async def collect(
    model: LocalModel, messages: Sequence[Message], tools: Sequence[ToolSpec] = ()
) -> list[StreamChunk]:
    return [chunk async for chunk in model.stream(messages, tools)]


def test_is_a_model_with_a_local_id() -> None:
    assert isinstance(LocalModel(), Model)
    assert LocalModel().id == "local/echo"
    assert LocalModel(name="demo").id == "local/demo"


async def test_echoes_the_last_user_message() -> None:
    messages = [
        Message("system", "Be brief."),
        user("first"),
        Message("assistant", "You said: first"),
        user("  Hello there  "),
    ]
    answer = await LocalModel().generate(messages, [WEATHER])
    assert answer == ModelResponse(
        text="You said: Hello there",
        usage=Usage(input_tokens=2 + 1 + 3 + 2, output_tokens=4),
        finish_reason="stop",
    )


async def test_nothing_said() -> None:
    answer = await LocalModel().generate([Message("system", "Be brief.")], [])
    assert answer.text == "You said nothing."
    assert answer.tool_calls == ()


async def test_use_calls_an_offered_tool_with_json_arguments() -> None:
    answer = await LocalModel().generate([user('use get_weather {"city": "Paris"}')], [WEATHER])
    assert answer.text == ""
    assert answer.tool_calls == (ToolCall("call_1", "get_weather", {"city": "Paris"}),)
    assert answer.finish_reason == "tool_calls"
    # input: 4 words; output: the tool's name + `{"city": "Paris"}` (2 words)
    assert answer.usage == Usage(4, 3)


async def test_use_without_arguments_sends_an_empty_object() -> None:
    answer = await LocalModel().generate([user("Use whoami")], [WEATHER, WHOAMI])
    assert answer.tool_calls == (ToolCall("call_1", "whoami", {}),)


async def test_use_of_a_tool_not_offered_says_so() -> None:
    answer = await LocalModel().generate([user("use launch_rockets {}")], [WHOAMI, WEATHER])
    assert answer.tool_calls == ()
    assert answer.text == (
        "There is no tool named launch_rockets. Available tools: get_weather, whoami."
    )
    answer = await LocalModel().generate([user("use whoami")], [])
    assert answer.text == "There is no tool named whoami. Available tools: none."


@pytest.mark.parametrize("arguments", ['{"city": ', '["Paris"]', "Paris"])
async def test_use_with_arguments_that_are_not_an_object_says_so(arguments: str) -> None:
    answer = await LocalModel().generate([user(f"use get_weather {arguments}")], [WEATHER])
    assert answer.tool_calls == ()
    assert answer.text == "Cannot call get_weather: the arguments are not a JSON object."


async def test_rule_with_named_groups_calls_its_tool() -> None:
    model = LocalModel(rules=[(r"weather in (?P<city>\w+)", "get_weather")])
    answer = await model.generate([user("What's the WEATHER in Oslo today?")], [WEATHER])
    assert answer.tool_calls == (ToolCall("call_1", "get_weather", {"city": "Oslo"}),)


async def test_rule_with_an_argument_function_and_first_match_wins() -> None:
    model = LocalModel(
        rules=[
            ToolTrigger.of(re.compile(r"who am i"), "whoami", lambda m: {"asked": m.group(0)}),
            (r"\bi\b", "get_weather", lambda m: {"city": "never"}),
        ]
    )
    answer = await model.generate([user("hey, who am i?")], [WEATHER, WHOAMI])
    assert answer.tool_calls == (ToolCall("call_1", "whoami", {"asked": "who am i"}),)


async def test_rule_for_a_tool_not_offered_is_skipped() -> None:
    model = LocalModel(rules=[(r"who", "whoami"), (r"weather", "get_weather")])
    answer = await model.generate([user("who knows the weather")], [WEATHER])
    assert [c.name for c in answer.tool_calls] == ["get_weather"]
    answer = await model.generate([user("who knows")], [WEATHER])
    assert answer.text == "You said: who knows"


async def test_after_a_tool_result_it_answers_with_the_result() -> None:
    """The demo `whoami` tool relies on this: the caller's name ends up in the answer."""
    model = LocalModel(rules=[(r"who", "whoami")])
    messages = [
        user("who am I?"),
        Message("assistant", tool_calls=(ToolCall("call_1", "whoami", {}),)),
        Message("tool", '{"id": "u1", "name": "Ada Lovelace"}', tool_call_id="call_1"),
    ]
    answer = await model.generate(messages, [WHOAMI])
    assert answer.text == 'whoami returned {"id": "u1", "name": "Ada Lovelace"}'
    assert answer.tool_calls == ()  # no second call: an agent loop ends here
    assert answer.finish_reason == "stop"


async def test_several_tool_results_one_line_each() -> None:
    messages = [
        user("two things"),
        Message(
            "assistant",
            tool_calls=(
                ToolCall("a", "get_weather", {"city": "Paris"}),
                ToolCall("b", "whoami", {}),
            ),
        ),
        Message("tool", "sunny", tool_call_id="a"),
        Message("tool", "Ada", tool_call_id="b", name="whoami_v2"),
    ]
    answer = await LocalModel().generate(messages, [WEATHER, WHOAMI])
    assert answer.text == "get_weather returned sunny\nwhoami_v2 returned Ada"


async def test_call_ids_follow_the_calls_already_made() -> None:
    messages = [
        user("use whoami"),
        Message("assistant", tool_calls=(ToolCall("call_1", "whoami", {}),)),
        Message("tool", "Ada", tool_call_id="call_1"),
        Message("assistant", "whoami returned Ada"),
        user("use whoami"),
    ]
    answer = await LocalModel().generate(messages, [WHOAMI])
    assert answer.tool_calls == (ToolCall("call_2", "whoami", {}),)


async def test_stream_is_word_by_word_then_finish() -> None:
    model = LocalModel()
    messages = [user("one  two\nthree")]
    chunks = await collect(model, messages)
    answer = await model.generate(messages, [])
    assert chunks == [
        TextDelta("You "),
        TextDelta("said: "),
        TextDelta("one  "),
        TextDelta("two\n"),
        TextDelta("three"),
        Finish("stop", answer.usage),
    ]


async def test_stream_of_a_tool_call_ends_with_the_call_then_finish() -> None:
    model = LocalModel()
    messages = [user('use get_weather {"city": "Paris"}')]
    chunks = await collect(model, messages, [WEATHER])
    call = ToolCall("call_1", "get_weather", {"city": "Paris"})
    assert chunks == [ToolCallChunk(call), Finish("tool_calls", Usage(4, 3))]


@pytest.mark.parametrize(
    "messages",
    [
        [user("hello world")],
        [user("use whoami")],
        [
            user("use whoami"),
            Message("assistant", tool_calls=(ToolCall("call_1", "whoami", {}),)),
            Message("tool", '{"name": "Ada"}', tool_call_id="call_1"),
        ],
    ],
)
async def test_stream_and_generate_agree(messages: list[Message]) -> None:
    model = LocalModel()
    answer = await model.generate(messages, [WHOAMI])
    chunks = await collect(model, messages, [WHOAMI])
    assert isinstance(chunks[-1], Finish)
    assert sum(isinstance(c, Finish) for c in chunks) == 1
    text = "".join(c.text for c in chunks if isinstance(c, TextDelta))
    calls = tuple(c.call for c in chunks if isinstance(c, ToolCallChunk))
    final = chunks[-1]
    assert ModelResponse(text, calls, final.usage, final.finish_reason) == answer


async def test_deterministic_across_calls_and_instances() -> None:
    messages = [user('please use get_weather {"city": "Rome"}'), user("and now?")]
    answers = [await LocalModel().generate(messages, [WEATHER]) for _ in range(3)]
    answers.append(await LocalModel().generate(messages, [WEATHER]))
    assert all(a == answers[0] for a in answers)
    assert [await collect(LocalModel(), messages)] * 2 == [
        await collect(LocalModel(), messages) for _ in range(2)
    ]


async def test_delay_spaces_out_streamed_words() -> None:
    model = LocalModel(delay=0.02)
    started = time.monotonic()
    chunks = await collect(model, [user("a b c")])
    assert len([c for c in chunks if isinstance(c, TextDelta)]) == 5  # "You said: a b c"
    assert time.monotonic() - started >= 4 * 0.02
    with pytest.raises(ValueError):
        LocalModel(delay=-1)


def test_a_rule_needs_a_tool() -> None:
    with pytest.raises(ValueError):
        LocalModel(rules=[(r"x", "")])
