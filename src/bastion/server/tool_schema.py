"""From Python to a tool's input: a function signature to a pydantic model, and JSON Schemas
cleaned for language models.

Used by `bastion.server.tools`; nothing here runs per call except `check_against_schema`.
"""

from __future__ import annotations

import copy
import inspect
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic.errors import PydanticUserError
from pydantic.fields import FieldInfo

from ..auth.context import RequestContext

__all__ = [
    "SignatureModel",
    "check_against_schema",
    "check_schema_dict",
    "clean_schema",
    "model_schema",
    "parse_docstring",
    "signature_model",
    "strict_model",
]

Issue = dict[str, Any]


# --- docstrings -------------------------------------------------------------------------

_SECTION = re.compile(r"^([A-Z][A-Za-z ]*):\s*$")
_ARG_SECTIONS = {"Args", "Arguments", "Parameters", "Params"}
# `name (type): text`, `name: text`, `*args: text`
_ARG_LINE = re.compile(r"^\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """The first paragraph (one line) and the Google-style `Args:` descriptions of a docstring."""
    if not doc:
        return "", {}
    lines = inspect.cleandoc(doc).splitlines()
    summary: list[str] = []
    for line in lines:
        if not line.strip() or _SECTION.match(line):
            break
        summary.append(line.strip())

    params: dict[str, str] = {}
    in_args = False
    current: str | None = None
    indent: int | None = None
    for line in lines:
        stripped = line.strip()
        if not stripped:
            continue
        depth = len(line) - len(line.lstrip())
        if depth == 0:
            header = _SECTION.match(line)
            in_args = header is not None and header.group(1) in _ARG_SECTIONS
            current, indent = None, None
            continue
        if not in_args:
            continue
        if indent is None:
            indent = depth
        if depth <= indent:
            match = _ARG_LINE.match(stripped)
            current = match.group(1) if match else None
            if match:
                params[match.group(1)] = match.group(2).strip()
        elif current is not None:
            params[current] = f"{params[current]} {stripped}".strip()
    return " ".join(summary), params


# --- signature -> model -----------------------------------------------------------------


@dataclass(frozen=True)
class SignatureModel:
    """What a function's signature turned into: its input model and how to call it back."""

    model: type[BaseModel]
    # (parameter name, model field name), in signature order.
    fields: tuple[tuple[str, str], ...]
    positional_only: tuple[str, ...]
    context_parameter: str | None


def _is_context(hint: Any) -> bool:
    if get_origin(hint) is Annotated:
        hint = get_args(hint)[0]
    if hint is RequestContext:
        return True
    if get_origin(hint) in (Union, types.UnionType):
        members = [arg for arg in get_args(hint) if arg is not type(None)]
        return len(members) == 1 and members[0] is RequestContext
    return False


def _has_description(hint: Any) -> bool:
    if get_origin(hint) is not Annotated:
        return False
    return any(isinstance(m, FieldInfo) and m.description for m in hint.__metadata__)


def _type_hints(fn: Callable[..., Any], tool_id: str) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn, include_extras=True)
    except TypeError:
        # Not a plain function (a callable object, a partial): use what the signature says.
        return {}
    except NameError as exc:
        raise TypeError(f"tool {tool_id!r}: cannot resolve a type hint ({exc})") from exc


def signature_model(
    fn: Callable[..., Any], tool_id: str, descriptions: Mapping[str, str]
) -> SignatureModel:
    """One pydantic model for the parameters of `fn`, built once when the tool is made.

    Model fields are named p0, p1, ... with the parameter name as alias: a parameter may then
    be called `schema`, `json`, `model_config` or `_id` without clashing with BaseModel.
    """
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"tool {tool_id!r}: cannot read the signature of {fn!r}") from exc
    hints = _type_hints(fn, tool_id)

    definitions: dict[str, Any] = {}
    fields: list[tuple[str, str]] = []
    positional_only: list[str] = []
    context_parameter: str | None = None
    for index, (name, parameter) in enumerate(signature.parameters.items()):
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            raise TypeError(f"tool {tool_id!r}: *args and **kwargs cannot be described ({name})")
        if parameter.kind is parameter.POSITIONAL_ONLY:
            positional_only.append(name)
        hint = hints.get(name, parameter.annotation)
        if hint is inspect.Parameter.empty:
            hint = Any
        if _is_context(hint):
            if context_parameter is not None:
                raise TypeError(f"tool {tool_id!r}: two RequestContext parameters")
            context_parameter = name
            continue
        default = ... if parameter.default is inspect.Parameter.empty else parameter.default
        # Passing description=None would erase one given in Annotated[..., Field(...)].
        if _has_description(hint) or name not in descriptions:
            info = Field(default, alias=name)
        else:
            info = Field(default, alias=name, description=descriptions[name])
        field_name = f"p{index}"
        definitions[field_name] = (hint, info)
        fields.append((name, field_name))

    try:
        model = create_model(
            f"{tool_id}_input", __config__=ConfigDict(extra="forbid"), **definitions
        )
    except PydanticUserError as exc:
        raise TypeError(f"tool {tool_id!r}: {exc}") from exc
    return SignatureModel(model, tuple(fields), tuple(positional_only), context_parameter)


def strict_model(model: type[BaseModel]) -> type[BaseModel]:
    """`model`, or a subclass that rejects unknown keys unless `model` chose its own `extra`.

    An LLM that invents a parameter should hear so, not have it silently dropped.
    """
    if "extra" in model.model_config:
        return model
    namespace = {
        "__module__": model.__module__,
        "__qualname__": model.__qualname__,
        "__doc__": model.__doc__,
        "model_config": ConfigDict(extra="forbid"),
    }
    return typing.cast(type[BaseModel], type(model.__name__, (model,), namespace))


# --- schemas ----------------------------------------------------------------------------

# Keys whose value is a name -> schema map, and keys whose value is data, not a schema.
_SCHEMA_MAPS = frozenset({"properties", "patternProperties", "$defs", "definitions"})
_DATA_KEYS = frozenset({"default", "enum", "const", "examples", "required"})
_DEFS_REF = "#/$defs/"


class _Cleaner:
    """Drops `title` and inlines `$ref`s; only recursive models stay in `$defs`."""

    def __init__(self, defs: Mapping[str, Any]) -> None:
        self.defs = defs
        self.kept: set[str] = set()

    def schema(self, node: Mapping[str, Any], stack: frozenset[str]) -> dict[str, Any]:
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_DEFS_REF):
            name = ref[len(_DEFS_REF) :]
            if name in self.defs and name not in stack:
                target = self.schema(self.defs[name], stack | {name})
                # The field's own keys (description, default) win over the model's.
                siblings = self.keys({k: v for k, v in node.items() if k != "$ref"}, stack)
                return {**target, **siblings}
            self.kept.add(name)
        return self.keys(node, stack)

    def keys(self, node: Mapping[str, Any], stack: frozenset[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "title" or key == "$defs":
                continue
            if key in _DATA_KEYS:
                out[key] = copy.deepcopy(value)
            elif key in _SCHEMA_MAPS and isinstance(value, Mapping):
                out[key] = {n: self.any(s, stack) for n, s in value.items()}
            else:
                out[key] = self.any(value, stack)
        return out

    def any(self, value: Any, stack: frozenset[str]) -> Any:
        if isinstance(value, Mapping):
            return self.schema(value, stack)
        if isinstance(value, list):
            return [self.any(item, stack) for item in value]
        return value


def clean_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A pydantic JSON Schema without `title` clutter and with its `$defs` inlined.

    Small models follow a self-contained schema better, and a form can be drawn from it.
    Recursive models cannot be inlined: those stay in `$defs`, referenced as usual.
    """
    cleaner = _Cleaner(schema.get("$defs", {}))
    out = cleaner.schema(schema, frozenset())
    defs: dict[str, Any] = {}
    while pending := sorted(cleaner.kept - defs.keys()):
        for name in pending:
            defs[name] = cleaner.keys(cleaner.defs[name], frozenset({name}))
    if defs:
        out["$defs"] = defs
    return out


def model_schema(model: type[BaseModel], tool_id: str) -> dict[str, Any]:
    try:
        schema = model.model_json_schema()
    except PydanticUserError as exc:
        raise TypeError(f"tool {tool_id!r}: no JSON Schema for its input ({exc})") from exc
    return clean_schema(schema)


def check_schema_dict(schema: Mapping[str, Any], tool_id: str) -> dict[str, Any]:
    """A copy of a hand-written input schema, which must describe an object."""
    if schema.get("type") != "object":
        raise TypeError(f'tool {tool_id!r}: input_schema must have "type": "object"')
    if not isinstance(schema.get("properties", {}), Mapping):
        raise TypeError(f'tool {tool_id!r}: input_schema "properties" must be an object')
    return copy.deepcopy(dict(schema))


_JSON_TYPES: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "array": lambda v: isinstance(v, list | tuple),
    "object": lambda v: isinstance(v, Mapping),
    "null": lambda v: v is None,
}


def check_against_schema(schema: Mapping[str, Any], args: Mapping[str, Any]) -> list[Issue]:
    """The light check of a hand-written schema: required keys, unknown keys, top-level types.

    Nested values are not checked: a tool with a dict schema validates its own input.
    """
    properties: Mapping[str, Any] = schema.get("properties", {})
    issues: list[Issue] = [
        {"loc": (name,), "msg": "Field required", "type": "missing"}
        for name in schema.get("required", ())
        if name not in args
    ]
    for name, value in args.items():
        prop = properties.get(name)
        if prop is None:
            if schema.get("additionalProperties") is False:
                msg = "Extra inputs are not permitted"
                issues.append({"loc": (name,), "msg": msg, "type": "extra_forbidden"})
            continue
        expected = prop.get("type") if isinstance(prop, Mapping) else None
        allowed = [expected] if isinstance(expected, str) else list(expected or ())
        known = [t for t in allowed if t in _JSON_TYPES]
        if known and not any(_JSON_TYPES[t](value) for t in known):
            msg = f"Input should be of type {' or '.join(known)}"
            issues.append({"loc": (name,), "msg": msg, "type": "type_error"})
    return issues
