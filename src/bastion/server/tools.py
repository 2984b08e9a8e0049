"""Tools: what an agent's model may call, each with a JSON Schema and validated input.

Three ways to make one, all giving a `Tool`:

    @tool                                    # schema from the signature, text from the docstring
    async def get_weather(city: str, days: int = 3) -> Forecast: ...

    class GetWeather(Tool):                  # an Input model and `run`
        id = "get_weather"
        description = "The forecast for a city."
        class Input(BaseModel):
            city: str
        async def run(self, input: Input, context: RequestContext) -> Forecast: ...

    Tool(id="get_weather", description="...", input_schema=Input, fn=forecast)

`await tool.execute(args, context)` validates `args` (ToolInputError), runs the tool with the
request context bound (sync code in a worker thread) and returns a JSON-ready value. What the
tool raises propagates unchanged: raising is how a tool refuses a caller (the server answers
403 to a PermissionError).

`requires_permission="refunds:create"` (one permission, or a list meaning "any of") is
checked against the caller's RBAC grants (`RequestContext.permissions`) before anything
else: a caller without it gets `ToolPermissionDenied` (a PermissionError) and the tool's
body never runs, whether it is called over HTTP (403) or by an agent during a run (the model
gets a "Permission denied" result). A tool that declares one needs `Bastion(rbac=...)`:
without RBAC no caller holds a permission, and the server refuses to start.

Validation is pydantic's strict mode on JSON data: a value must have the type the schema
announces ("3" is not an integer, "true" not a boolean); an integer is a valid number, and
JSON's strings are parsed into dates, UUIDs and enums. `strict=False` turns on pydantic's
lax coercions. Keys the schema does not list are rejected (`additionalProperties: false`).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, overload

from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticSerializationError, to_json, to_jsonable_python

from .._callbacks import as_async
from ..auth.context import RequestContext, bind_context, current_context
from ..auth.rbac import has_any_permission
from ..identity._untrusted import InvalidInput, check_value
from .models import ToolSpec
from .tool_schema import (
    check_against_schema,
    check_schema_dict,
    model_schema,
    parse_docstring,
    signature_model,
    strict_model,
)

__all__ = [
    "FunctionTool",
    "Tool",
    "ToolInputError",
    "ToolOutputError",
    "ToolPermissionDenied",
    "authorize_tool",
    "tool",
    "tool_permission",
]

# What model APIs accept as a function name (OpenAI, Anthropic); it is also a URL segment.
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


class ToolInputError(ValueError):
    """The arguments do not fit the tool's input schema (the server answers 400).

    `errors` holds one dict per problem, `{"loc": ("items", 0, "name"), "msg": "Field
    required", "type": "missing"}`; the message says the same in words:
    `items[0].name: Field required`.
    """

    def __init__(self, tool_id: str, errors: Sequence[Mapping[str, Any]]) -> None:
        self.tool_id = tool_id
        self.errors: list[dict[str, Any]] = [
            {"loc": tuple(e["loc"]), "msg": str(e["msg"]), "type": str(e["type"])} for e in errors
        ]
        super().__init__("; ".join(f"{_path(e['loc'])}: {e['msg']}" for e in self.errors))


class ToolOutputError(TypeError):
    """A tool returned something that cannot be turned into JSON (a bug in the tool)."""


class ToolPermissionDenied(PermissionError):
    """The caller lacks the tool's `requires_permission` (the server answers 403 over HTTP;
    an agent's model gets a refusal result). `required` lists the permissions, any one of
    which would do."""

    def __init__(self, tool_id: str, required: Sequence[str]) -> None:
        self.tool_id = tool_id
        self.required = tuple(required)
        super().__init__("Missing required permission: " + " or ".join(self.required))


def _permissions(value: str | Sequence[str] | None, tool_id: str) -> tuple[str, ...] | None:
    """`requires_permission` as a tuple, checked when the tool is made."""
    if value is None:
        return None
    found = (value,) if isinstance(value, str) else tuple(value)
    if not found or not all(isinstance(p, str) and p for p in found):
        raise ValueError(f"tool {tool_id!r}: requires_permission lists permission strings")
    return found


def tool_permission(tool: object) -> tuple[str, ...] | None:
    """What a tool requires: its `requires_permission` (any tool object may declare one)."""
    value = getattr(tool, "requires_permission", None)
    if value is None:
        return None
    return (value,) if isinstance(value, str) else tuple(value)


def authorize_tool(tool: object, context: RequestContext) -> None:
    """Raise ToolPermissionDenied unless the caller's grants cover the tool's permission."""
    required = tool_permission(tool)
    if required and not has_any_permission(context.permissions, required):
        raise ToolPermissionDenied(str(getattr(tool, "id", "?")), required)


def _path(loc: tuple[str | int, ...]) -> str:
    if not loc:
        return "input"
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text


def _check_id(tool_id: object, owner: str) -> str:
    if not isinstance(tool_id, str) or not _ID.fullmatch(tool_id):
        raise ValueError(
            f"{owner}: tool id {tool_id!r} must be 1-64 letters, digits, '_' or '-' (pass id=...)"
        )
    return tool_id


class Tool:
    """A tool: `id`, `description`, `input_schema` (JSON Schema), `spec`, `execute`.

    Subclass it with class attributes `id`, `description` (else the class docstring), and
    `Input` (a pydantic model) or `input_schema` (a JSON Schema dict), and define
    `async def run(self, input, context)`. Or build one: `Tool(id=..., description=...,
    input_schema=Model, fn=callable)`, where `fn(input)` or `fn(input, context)` may be sync.

    `input` is an instance of the model. With a dict schema it is the plain dict, checked
    only for required keys, unknown keys and the JSON type of each top-level value: meant for
    schemas that come from elsewhere (e.g. a remote MCP tool that validates its own input).
    """

    id: str
    description: str
    input_schema: dict[str, Any]
    strict: bool = True
    requires_permission: tuple[str, ...] | None = None

    def __init__(
        self,
        *,
        id: str | None = None,
        description: str | None = None,
        input_schema: type[BaseModel] | Mapping[str, Any] | None = None,
        fn: Callable[..., Any] | None = None,
        strict: bool | None = None,
        requires_permission: str | Sequence[str] | None = None,
    ) -> None:
        cls = type(self)
        self.id = _check_id(id if id is not None else getattr(cls, "id", None), cls.__name__)
        # The argument, else a subclass's class attribute (a string or a list).
        self.requires_permission = _permissions(
            requires_permission
            if requires_permission is not None
            else getattr(cls, "requires_permission", None),
            self.id,
        )
        if description is None:
            description = getattr(cls, "description", None)
        if description is None:
            description = parse_docstring(cls.__dict__.get("__doc__"))[0] if cls is not Tool else ""
        self.description = description
        if strict is not None:
            self.strict = strict

        source = input_schema if input_schema is not None else self._class_schema(fn)
        self._model: type[BaseModel] | None
        if isinstance(source, type) and issubclass(source, BaseModel):
            self._model = strict_model(source)
            self.input_schema = model_schema(self._model, self.id)
        elif isinstance(source, Mapping):
            self._model = None
            self.input_schema = check_schema_dict(source, self.id)
        else:
            raise TypeError(f"tool {self.id!r}: input_schema must be a pydantic model or a dict")

        if fn is None and cls.run is Tool.run:
            raise TypeError(f"tool {self.id!r}: define run() or pass fn=")
        self._fn = fn
        self._call_fn = as_async(fn) if fn is not None else None
        self._fn_takes_context = fn is not None and _takes_two(fn)
        self._spec = ToolSpec(self.id, self.description, self.input_schema)

    def _class_schema(self, fn: Callable[..., Any] | None) -> type[BaseModel] | Mapping[str, Any]:
        model: Any = getattr(type(self), "Input", None)
        schema: Any = getattr(type(self), "input_schema", None)
        if model is not None and schema is not None:
            raise TypeError(f"tool {self.id!r}: give Input or input_schema, not both")
        if model is not None:
            return model  # type: ignore[no-any-return]
        if schema is not None:
            return schema  # type: ignore[no-any-return]
        if fn is not None:
            raise TypeError(
                f"tool {self.id!r}: give input_schema, or use tool(fn) to read the signature"
            )
        return {"type": "object", "properties": {}, "additionalProperties": False}

    @property
    def spec(self) -> ToolSpec:
        """What a model is told about this tool (its `parameters` dict is shared: read only)."""
        return self._spec

    def validate(self, args: Mapping[str, Any]) -> Any:
        """`args` checked against the input schema: the `input` that `run` receives."""
        if not isinstance(args, Mapping):
            issue = {"loc": (), "msg": "Input should be an object", "type": "model_type"}
            raise ToolInputError(self.id, [issue])
        try:
            # Strings a JSON encoder refuses (lone surrogates), NULs and deep nesting, named
            # plainly, before an encoder's own error could show its internals.
            check_value(args)
        except InvalidInput as exc:
            issue = {"loc": exc.path, "msg": exc.reason.capitalize(), "type": "value_error"}
            raise ToolInputError(self.id, [issue]) from None
        if self._model is None:
            issues = check_against_schema(self.input_schema, args)
            if issues:
                raise ToolInputError(self.id, issues)
            return dict(args)
        try:
            # Through JSON, so strict mode judges JSON types (a date is an ISO string).
            data = to_json(dict(args))
            return self._model.model_validate_json(data, strict=self.strict or None)
        except PydanticSerializationError:
            issue = {"loc": (), "msg": "Input is not JSON data", "type": "json"}
            raise ToolInputError(self.id, [issue]) from None
        except ValidationError as exc:
            errors = exc.errors(include_url=False, include_input=False, include_context=False)
            raise ToolInputError(self.id, errors) from None

    async def execute(self, args: Mapping[str, Any], context: RequestContext | None = None) -> Any:
        """Validate `args`, run the tool and return its result as JSON-ready data.

        `context` defaults to the one the request pipeline bound (`current_context()`), and
        is bound while the tool runs. Raises ToolPermissionDenied first when the caller lacks
        `requires_permission`, ToolInputError before running on bad input, ToolOutputError
        on a result that is not JSON data; anything the tool raises propagates as is.
        """
        if context is None:
            context = current_context()
        # First: a refused caller learns nothing of the input schema either.
        authorize_tool(self, context)
        input = self.validate(args)
        with bind_context(context):
            result = await self.run(input, context)
        try:
            return to_jsonable_python(result)
        except PydanticSerializationError as exc:
            raise ToolOutputError(
                f"tool {self.id!r} returned data that is not JSON: {exc}"
            ) from exc

    async def run(self, input: Any, context: RequestContext) -> Any:
        """The tool's work, on validated `input`. Subclasses override it, or pass `fn=`."""
        if self._call_fn is None:
            raise NotImplementedError(f"{type(self).__name__} must define run() or get fn=")
        args = (input, context) if self._fn_takes_context else (input,)
        return await self._call_fn(*args)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id!r}>"


def _takes_two(fn: Callable[..., Any]) -> bool:
    """Whether `fn` accepts (input, context) rather than (input) alone."""
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return True
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2 or any(p.kind is p.VAR_POSITIONAL for p in parameters)


class FunctionTool(Tool):
    """A tool made from a typed function by `@tool`; the function stays callable as `.fn`.

    Parameters become the input schema (defaults, Optional, Literal, lists, dicts, pydantic
    models, `Annotated[str, Field(description=...)]`; descriptions also come from a
    Google-style `Args:` section). A parameter annotated `RequestContext` is not part of the
    schema: it receives the request context.
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        id: str | None = None,
        description: str | None = None,
        strict: bool = True,
        requires_permission: str | Sequence[str] | None = None,
    ) -> None:
        summary, descriptions = parse_docstring(inspect.getdoc(fn))
        tool_id = _check_id(id if id is not None else getattr(fn, "__name__", None), repr(fn))
        self._signature = signature_model(fn, tool_id, descriptions)
        super().__init__(
            id=tool_id,
            description=description if description is not None else summary,
            input_schema=self._signature.model,
            strict=strict,
            requires_permission=requires_permission,
        )
        self.fn = fn
        self._call_function = as_async(fn)

    async def run(self, input: Any, context: RequestContext) -> Any:
        signature = self._signature
        kwargs = {name: getattr(input, field) for name, field in signature.fields}
        if signature.context_parameter is not None:
            kwargs[signature.context_parameter] = context
        args = [kwargs.pop(name) for name in signature.positional_only]
        return await self._call_function(*args, **kwargs)


@overload
def tool(
    fn: Callable[..., Any],
    /,
    *,
    id: str | None = None,
    description: str | None = None,
    strict: bool = True,
    requires_permission: str | Sequence[str] | None = None,
) -> FunctionTool: ...


@overload
def tool(
    fn: None = None,
    /,
    *,
    id: str | None = None,
    description: str | None = None,
    strict: bool = True,
    requires_permission: str | Sequence[str] | None = None,
) -> Callable[[Callable[..., Any]], FunctionTool]: ...


def tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    id: str | None = None,
    description: str | None = None,
    strict: bool = True,
    requires_permission: str | Sequence[str] | None = None,
) -> FunctionTool | Callable[[Callable[..., Any]], FunctionTool]:
    """Make a Tool of a typed function (sync or async): `@tool` or `@tool(id=..., ...)`.

    The id defaults to the function's name, the description to its docstring's first
    paragraph. `strict=False` accepts pydantic's lax coercions ("3" for an integer).
    `requires_permission=` is the RBAC permission a caller needs (see the module's text).
    """

    def decorate(fn: Callable[..., Any]) -> FunctionTool:
        return FunctionTool(
            fn,
            id=id,
            description=description,
            strict=strict,
            requires_permission=requires_permission,
        )

    if fn is not None:
        return decorate(fn)

    return decorate
