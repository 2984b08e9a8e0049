"""Tools: schemas derived from Python, validated input, execution and the request context."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import enum
import re
import threading
import uuid
from collections.abc import Iterator, Mapping
from typing import Annotated, Any, Literal, Optional

import pytest
from pydantic import BaseModel, ConfigDict, Field

from bastion.auth.context import RequestContext, bind_context, current_context
from bastion.server.models import ToolSpec
from bastion.server.tools import FunctionTool, Tool, ToolInputError, ToolOutputError, tool


class Address(BaseModel):
    """A postal address."""

    street: str
    zip: str


class Node(BaseModel):
    name: str
    children: list[Node] = []


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Forecast(BaseModel):
    city: str
    day: datetime.date
    high: float


def walk(schema: Any) -> Iterator[dict[str, Any]]:
    """Every schema object inside `schema` (not the data under default/enum/required)."""
    if isinstance(schema, dict):
        yield schema
        for key, value in schema.items():
            if key in ("properties", "$defs"):
                for sub in value.values():
                    yield from walk(sub)
            elif key not in ("default", "enum", "const", "required"):
                yield from walk(value)
    elif isinstance(schema, list):
        for item in schema:
            yield from walk(item)


# --- schema derivation --------------------------------------------------------------------


def test_schema_of_a_simple_signature() -> None:
    @tool
    def get_weather(city: str, days: int = 3, units: Literal["c", "f"] = "c") -> str:
        """The forecast for a city.

        More detail that the model does not need.
        """
        return city

    assert get_weather.id == "get_weather"
    assert get_weather.description == "The forecast for a city."
    assert get_weather.input_schema == {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "days": {"type": "integer", "default": 3},
            "units": {"type": "string", "enum": ["c", "f"], "default": "c"},
        },
        "required": ["city"],
        "additionalProperties": False,
    }


def test_spec_is_what_the_model_is_told() -> None:
    @tool(id="lookup", description="Look a word up.")
    async def whatever(word: str) -> str:
        return word

    assert whatever.spec == ToolSpec(
        name="lookup", description="Look a word up.", parameters=whatever.input_schema
    )
    assert whatever.spec.parameters["required"] == ["word"]


def test_optional_list_dict_and_unannotated_parameters() -> None:
    @tool
    def f(
        note: str | None = None,
        legacy: Optional[int] = None,  # noqa: UP045 - the old spelling must work too
        tags: list[str] | None = None,
        scores: dict[str, float] | None = None,
        anything=None,
    ) -> None:
        pass

    props = f.input_schema["properties"]
    assert props["note"] == {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None}
    assert props["legacy"] == {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": None}
    assert props["tags"]["anyOf"][0] == {"type": "array", "items": {"type": "string"}}
    assert props["scores"]["anyOf"][0] == {
        "type": "object",
        "additionalProperties": {"type": "number"},
    }
    assert props["anything"] == {"default": None}
    assert "required" not in f.input_schema


def test_no_parameters_is_an_empty_object() -> None:
    @tool
    def ping() -> str:
        """Ping."""
        return "pong"

    assert ping.input_schema == {"type": "object", "properties": {}, "additionalProperties": False}


def test_pydantic_model_parameters_are_inlined_without_titles() -> None:
    @tool
    def send(to: Address, color: Color = Color.RED, title: str = "") -> None:
        pass

    schema = send.input_schema
    assert "$defs" not in schema
    assert schema["properties"]["to"] == {
        "type": "object",
        "description": "A postal address.",
        "properties": {"street": {"type": "string"}, "zip": {"type": "string"}},
        "required": ["street", "zip"],
    }
    assert schema["properties"]["color"] == {
        "type": "string",
        "enum": ["red", "blue"],
        "default": "red",
    }
    # No `title` keyword anywhere, yet a parameter called "title" is still there.
    assert all("title" not in node for node in walk(schema) if "properties" not in node)
    assert "title" in schema["properties"]


def test_recursive_models_keep_their_defs() -> None:
    @tool
    def plant(tree: Node) -> None:
        pass

    schema = plant.input_schema
    assert schema["properties"]["tree"]["properties"]["children"]["items"] == {
        "$ref": "#/$defs/Node"
    }
    assert set(schema["$defs"]) == {"Node"}
    assert schema["$defs"]["Node"]["required"] == ["name"]
    assert all("title" not in node for node in walk(schema) if "properties" not in node)


def test_descriptions_from_annotated_and_from_the_docstring() -> None:
    @tool
    def search(
        query: Annotated[str, Field(description="What to look for.")],
        limit: int = 10,
        kind: Annotated[str, Field(description="Annotated wins.")] = "any",
    ) -> list[str]:
        """Search the catalogue.

        Args:
            query: ignored, Annotated says it already.
            limit (int): At most this many results,
                between 1 and 100.
            kind: ignored too.

        Returns:
            The titles.
        """
        return []

    props = search.input_schema["properties"]
    assert search.description == "Search the catalogue."
    assert props["query"]["description"] == "What to look for."
    assert props["limit"]["description"] == "At most this many results, between 1 and 100."
    assert props["kind"]["description"] == "Annotated wins."


def test_description_is_the_whole_first_paragraph() -> None:
    @tool
    def f() -> None:
        """Line one
        and line two.

        Not this one.
        """

    assert f.description == "Line one and line two."


def test_context_parameter_is_not_in_the_schema() -> None:
    @tool
    def whoami(ctx: RequestContext, verbose: bool = False) -> Any:
        return None

    @tool
    def maybe(c: RequestContext | None = None) -> Any:
        return None

    assert list(whoami.input_schema["properties"]) == ["verbose"]
    assert maybe.input_schema["properties"] == {}


def test_parameter_names_that_clash_with_pydantic_still_work() -> None:
    @tool
    def odd(schema: str, json: int, model_config: bool, _private: str = "x") -> list[Any]:
        return [schema, json, model_config, _private]

    assert list(odd.input_schema["properties"]) == ["schema", "json", "model_config", "_private"]
    result = asyncio.run(odd.execute({"schema": "s", "json": 1, "model_config": True}))
    assert result == ["s", 1, True, "x"]


def test_bad_definitions_fail_when_the_tool_is_made() -> None:
    def star(*args: int) -> None:
        pass

    def stars(**kwargs: int) -> None:
        pass

    def two(a: RequestContext, b: RequestContext) -> None:
        pass

    def unknown(x: NotDefinedAnywhere) -> None:  # type: ignore[name-defined]  # noqa: F821
        pass

    for fn, words in [
        (star, "*args"),
        (stars, "**kwargs"),
        (two, "two RequestContext"),
        (unknown, "NotDefinedAnywhere"),
    ]:
        with pytest.raises(TypeError, match=re.escape(words)):
            tool(fn)
    with pytest.raises(ValueError, match="tool id"):
        tool(lambda: None)
    with pytest.raises(ValueError, match="tool id"):
        tool(id="has space")(star)


def test_an_unrepresentable_type_fails_when_the_tool_is_made() -> None:
    class Opaque:
        pass

    def f(x: Opaque) -> None:
        pass

    f.__annotations__["x"] = Opaque  # resolved already: the failure is pydantic's
    with pytest.raises(TypeError, match="tool 'f'"):
        tool(f)


# --- validation ---------------------------------------------------------------------------


@tool
def book(
    city: str, nights: int, guests: list[str] | None = None, address: Address | None = None
) -> str:
    """Book a room."""
    return f"{city}:{nights}"


async def test_missing_field() -> None:
    with pytest.raises(ToolInputError) as caught:
        await book.execute({"nights": 2})
    assert str(caught.value) == "city: Field required"
    assert caught.value.errors == [{"loc": ("city",), "msg": "Field required", "type": "missing"}]
    assert caught.value.tool_id == "book"
    assert isinstance(caught.value, ValueError)


async def test_wrong_type_extra_field_and_nested_paths_in_one_message() -> None:
    with pytest.raises(ToolInputError) as caught:
        await book.execute(
            {
                "city": 7,
                "nights": 2,
                "guests": ["ada", 3],
                "address": {"street": "x"},
                "breakfast": True,
            }
        )
    assert str(caught.value) == (
        "city: Input should be a valid string; "
        "guests[1]: Input should be a valid string; "
        "address.zip: Field required; "
        "breakfast: Extra inputs are not permitted"
    )
    assert [e["type"] for e in caught.value.errors] == [
        "string_type",
        "string_type",
        "missing",
        "extra_forbidden",
    ]
    # No echo of the input (it may be large or secret).
    assert all(set(e) == {"loc", "msg", "type"} for e in caught.value.errors)


async def test_literal_and_not_an_object() -> None:
    @tool
    def pick(size: Literal["s", "m"]) -> str:
        return size

    with pytest.raises(ToolInputError, match=r"^size: Input should be 's' or 'm'$"):
        await pick.execute({"size": "xl"})
    with pytest.raises(ToolInputError, match=r"^input: Input should be an object$"):
        await pick.execute(["s"])  # type: ignore[arg-type]


async def test_bad_input_never_runs_the_tool() -> None:
    calls: list[int] = []

    @tool
    def count(n: int) -> int:
        calls.append(n)
        return n

    with pytest.raises(ToolInputError):
        await count.execute({"n": "many"})
    assert calls == []
    assert await count.execute({"n": 1}) == 1
    assert calls == [1]


# --- coercion: strict JSON types by default ----------------------------------------------


@tool
def typed(n: int = 0, x: float = 0.0, flag: bool = False, s: str = "") -> list[Any]:
    return [n, x, flag, s]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"n": "3"}, "n: Input should be a valid integer"),
        ({"n": 3.0}, "n: Input should be a valid integer"),
        ({"n": 3.5}, "n: Input should be a valid integer"),
        ({"flag": "true"}, "flag: Input should be a valid boolean"),
        ({"flag": 1}, "flag: Input should be a valid boolean"),
        ({"s": 3}, "s: Input should be a valid string"),
        ({"x": "1.5"}, "x: Input should be a valid number"),
    ],
)
async def test_strict_by_default_rejects_look_alike_values(
    args: dict[str, Any], message: str
) -> None:
    with pytest.raises(ToolInputError) as caught:
        await typed.execute(args)
    assert str(caught.value) == message


async def test_strict_accepts_what_json_cannot_say_otherwise() -> None:
    # An integer is a number; dates, UUIDs and enums travel as strings in JSON.
    assert await typed.execute({"x": 2}) == [0, 2.0, False, ""]

    seen: list[Any] = []

    @tool
    def when(day: datetime.date, ref: uuid.UUID, color: Color) -> None:
        seen.extend([day, ref, color])

    ref = uuid.uuid4()
    await when.execute({"day": "2025-02-03", "ref": str(ref), "color": "blue"})
    assert seen == [datetime.date(2025, 2, 3), ref, Color.BLUE]
    # Python callers may pass the Python objects themselves.
    seen.clear()
    await when.execute({"day": datetime.date(2025, 2, 3), "ref": ref, "color": Color.BLUE})
    assert seen == [datetime.date(2025, 2, 3), ref, Color.BLUE]


async def test_lax_mode_is_opt_in() -> None:
    @tool(strict=False)
    def lax(n: int, flag: bool) -> list[Any]:
        return [n, flag]

    assert await lax.execute({"n": "3", "flag": "true"}) == [3, True]
    with pytest.raises(ToolInputError, match="n: Input should be a valid integer"):
        await lax.execute({"n": "three", "flag": True})
    with pytest.raises(ToolInputError, match="extra: Extra inputs are not permitted"):
        await lax.execute({"n": 1, "flag": True, "extra": 1})


# --- execution ----------------------------------------------------------------------------


async def test_sync_and_async_functions() -> None:
    @tool
    def add(a: int, b: int) -> int:
        return a + b

    @tool
    async def mul(a: int, b: int) -> int:
        await asyncio.sleep(0)
        return a * b

    assert await add.execute({"a": 2, "b": 3}) == 5
    assert await mul.execute({"a": 2, "b": 3}) == 6
    assert add.fn(1, 1) == 2  # still the plain function underneath


async def test_a_sync_tool_runs_off_the_event_loop() -> None:
    loop = asyncio.get_running_loop()
    started = asyncio.Event()
    release = threading.Event()
    loop_thread = threading.get_ident()

    @tool
    def blocking() -> list[Any]:
        loop.call_soon_threadsafe(started.set)
        # Only the event loop can set `release`: on the loop this would wait 2 s for nothing.
        return [release.wait(timeout=2), threading.get_ident() != loop_thread]

    task = asyncio.create_task(blocking.execute({}))
    await asyncio.wait_for(started.wait(), timeout=2)
    release.set()
    assert await task == [True, True]


async def test_positional_only_parameters() -> None:
    @tool
    def pos(a: int, /, b: int = 1) -> list[int]:
        return [a, b]

    assert await pos.execute({"a": 5}) == [5, 1]


async def test_exceptions_propagate_unchanged() -> None:
    boom = RuntimeError("upstream down")

    @tool
    def fails() -> None:
        raise boom

    @tool
    async def fails_async(n: int) -> None:
        # Not a ToolInputError: the tool's own ValueError is the tool's business.
        raise ValueError(f"bad {n}")

    with pytest.raises(RuntimeError) as caught:
        await fails.execute({})
    assert caught.value is boom
    with pytest.raises(ValueError, match="bad 1") as caught_value:
        await fails_async.execute({"n": 1})
    assert not isinstance(caught_value.value, ToolInputError)


# --- the request context ------------------------------------------------------------------


@tool
def whoami(ctx: RequestContext) -> Any:
    """Who is calling."""
    return {"user": ctx.user, "resource": ctx.resource_id}


@tool
async def delete_everything(confirm: bool, context: RequestContext) -> str:
    """Only admins may."""
    if "admin" not in context.roles:
        raise PermissionError("admins only")
    return "deleted" if confirm else "kept"


async def test_context_is_injected() -> None:
    context = RequestContext(user={"id": "u1", "name": "Ada"}, resource_id="u1")
    assert await whoami.execute({}, context) == {
        "user": {"id": "u1", "name": "Ada"},
        "resource": "u1",
    }


async def test_a_tool_refuses_a_user_by_raising() -> None:
    with pytest.raises(PermissionError, match="admins only"):
        await delete_everything.execute({"confirm": True}, RequestContext(user={"id": "u2"}))
    admin = RequestContext(user={"id": "u1"}, roles=("admin",))
    assert await delete_everything.execute({"confirm": True}, admin) == "deleted"


async def test_context_falls_back_to_the_bound_one() -> None:
    with bind_context(RequestContext(user="bound", resource_id="r")):
        assert await whoami.execute({}) == {"user": "bound", "resource": "r"}
    # Outside a request: an empty context, never someone else's.
    assert await whoami.execute({}) == {"user": None, "resource": None}


async def test_the_given_context_is_bound_while_the_tool_runs_even_in_a_thread() -> None:
    @tool
    def deep() -> Any:
        # Helper code far from the tool's parameters reads the ambient context.
        return [current_context().user, threading.get_ident()]

    with bind_context(RequestContext(user="outer")):
        user, ident = await deep.execute({}, RequestContext(user="given"))
        assert current_context().user == "outer"  # restored afterwards
    assert user == "given"
    assert ident != threading.get_ident()


# --- class form and direct construction ---------------------------------------------------


class GetForecast(Tool):
    """The forecast for a city, day by day."""

    id = "get_forecast"

    class Input(BaseModel):
        city: str
        days: int = Field(1, ge=1, le=7, description="How many days.")

    async def run(self, input: GetForecast.Input, context: RequestContext) -> list[Forecast]:
        start = datetime.date(2025, 1, 1)
        return [
            Forecast(city=input.city, day=start + datetime.timedelta(days=i), high=20.5)
            for i in range(input.days)
        ]


async def test_class_based_tool() -> None:
    forecast = GetForecast()
    assert forecast.id == "get_forecast"
    assert forecast.description == "The forecast for a city, day by day."
    assert forecast.input_schema == {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "days": {
                "type": "integer",
                "default": 1,
                "minimum": 1,
                "maximum": 7,
                "description": "How many days.",
            },
        },
        "required": ["city"],
        "additionalProperties": False,
    }
    assert await forecast.execute({"city": "Oslo", "days": 2}) == [
        {"city": "Oslo", "day": "2025-01-01", "high": 20.5},
        {"city": "Oslo", "day": "2025-01-02", "high": 20.5},
    ]
    with pytest.raises(ToolInputError, match="days: Input should be less than or equal to 7"):
        await forecast.execute({"city": "Oslo", "days": 8})
    with pytest.raises(ToolInputError, match="when: Extra inputs are not permitted"):
        await forecast.execute({"city": "Oslo", "when": "now"})


class Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")
    q: str


async def test_an_input_model_that_chose_its_extra_keeps_it() -> None:
    class Search(Tool):
        id = "search"
        description = "Search."
        Input = Lenient

        async def run(self, input: Lenient, context: RequestContext) -> str:
            return input.q

    search = Search()
    assert "additionalProperties" not in search.input_schema
    assert await search.execute({"q": "x", "noise": 1}) == "x"


async def test_class_with_a_dict_schema_gets_a_light_check() -> None:
    class Remote(Tool):
        id = "remote"
        description = "Forwarded to a server that validates for itself."
        input_schema = {  # noqa: RUF012
            "type": "object",
            "properties": {"q": {"type": "string"}, "n": {"type": ["integer", "null"]}},
            "required": ["q"],
            "additionalProperties": False,
        }

        async def run(self, input: dict[str, Any], context: RequestContext) -> Any:
            return input

    remote = Remote()
    assert remote.input_schema == Remote.input_schema
    assert await remote.execute({"q": "x", "n": None}) == {"q": "x", "n": None}
    with pytest.raises(ToolInputError) as caught:
        await remote.execute({"n": True, "z": 1})
    assert str(caught.value) == (
        "q: Field required; n: Input should be of type integer or null; "
        "z: Extra inputs are not permitted"
    )


def test_class_definition_errors() -> None:
    class NoId(Tool):
        async def run(self, input: Any, context: RequestContext) -> None:
            pass

    class Both(Tool):
        id = "both"
        Input = Lenient
        input_schema = {"type": "object"}  # noqa: RUF012

        async def run(self, input: Any, context: RequestContext) -> None:
            pass

    class NoRun(Tool):
        id = "no_run"

    with pytest.raises(ValueError, match="tool id None"):
        NoId()
    with pytest.raises(TypeError, match="not both"):
        Both()
    with pytest.raises(TypeError, match="define run"):
        NoRun()


async def test_tool_built_directly_from_a_model_and_a_function() -> None:
    seen: list[Any] = []

    def lookup(input: Address) -> str:  # sync, input only
        seen.append(input)
        return input.zip

    async def lookup_for(input: Address, context: RequestContext) -> list[Any]:
        return [input.street, context.user]

    plain = Tool(id="lookup", description="Find a zip.", input_schema=Address, fn=lookup)
    assert plain.description == "Find a zip."
    assert plain.input_schema["required"] == ["street", "zip"]
    assert plain.input_schema["additionalProperties"] is False
    assert await plain.execute({"street": "Main", "zip": "0150"}) == "0150"
    assert isinstance(seen[0], Address)

    with_context = Tool(id="lookup_for", input_schema=Address, fn=lookup_for)
    assert with_context.description == ""
    result = await with_context.execute({"street": "Main", "zip": "1"}, RequestContext(user="u"))
    assert result == ["Main", "u"]


def test_tool_built_directly_needs_a_schema_and_an_object_one() -> None:
    with pytest.raises(TypeError, match=r"use tool\(fn\)"):
        Tool(id="x", fn=lambda input: input)
    with pytest.raises(TypeError, match='"type": "object"'):
        Tool(id="x", input_schema={"type": "string"}, fn=lambda input: input)
    with pytest.raises(TypeError, match="pydantic model or a dict"):
        Tool(id="x", input_schema=int, fn=lambda input: input)  # type: ignore[arg-type]


def test_decorated_tools_are_tools() -> None:
    assert isinstance(book, FunctionTool)
    assert isinstance(book, Tool)
    assert repr(book) == "<FunctionTool 'book'>"


# --- results --------------------------------------------------------------------------------


@dataclasses.dataclass
class Point:
    x: int
    y: int


async def test_results_are_json_ready() -> None:
    @tool
    def shapes() -> Any:
        return {
            "model": Forecast(city="Rome", day=datetime.date(2025, 5, 1), high=30),
            "dataclass": Point(1, 2),
            "tuple": (1, 2),
            "when": datetime.datetime(2025, 5, 1, 12, 0, tzinfo=datetime.UTC),
            "color": Color.RED,
        }

    assert await shapes.execute({}) == {
        "model": {"city": "Rome", "day": "2025-05-01", "high": 30.0},
        "dataclass": {"x": 1, "y": 2},
        "tuple": [1, 2],
        "when": "2025-05-01T12:00:00Z",
        "color": "red",
    }


async def test_a_result_that_is_not_json_is_a_tool_output_error() -> None:
    @tool
    def leaky() -> Any:
        return {"lock": threading.Lock()}

    with pytest.raises(ToolOutputError, match="tool 'leaky'"):
        await leaky.execute({})


def test_mapping_arguments_of_any_kind() -> None:
    from types import MappingProxyType

    args: Mapping[str, Any] = MappingProxyType({"city": "Rome", "nights": 1})
    assert asyncio.run(book.execute(args)) == "Rome:1"
