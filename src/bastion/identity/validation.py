"""Request bodies and queries as pydantic models, with better-auth's (zod's) error messages.

`[body.email] Invalid email address`, `[body.name] Invalid input: expected string, received
undefined`: the message names where the value was and what was wrong, issues joined by "; ".
"""

from __future__ import annotations

import re
from types import UnionType
from typing import Annotated, Any, ClassVar, Literal, Union, get_args, get_origin

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import PydanticCustomError

__all__ = [
    "MAX_EMAIL_LENGTH",
    "MAX_FIELD_LENGTH",
    "MAX_IMAGE_LENGTH",
    "MAX_NAME_LENGTH",
    "Body",
    "Email",
    "Image",
    "Name",
    "NonEmpty",
    "describe_errors",
    "is_email",
    "js_type",
]

# What a user or session may store, in characters. better-auth sets no limits; these keep
# what every get-session returns (and the cookie cache carries) small.
MAX_EMAIL_LENGTH = 254  # the longest address SMTP can carry (RFC 5321 §4.5.3.1.3)
MAX_NAME_LENGTH = 256
MAX_IMAGE_LENGTH = 16_384  # a URL, or a small `data:` URL (apps keep avatars so)
MAX_FIELD_LENGTH = 4096  # an additional field: a string, or a json/array value as JSON text

# zod 4's default email pattern: what better-auth's sign-up accepts. Matched whole
# (`fullmatch`): with `match` and `$`, "victim@example.com\n" passed, as `$` also matches
# before a final newline.
_EMAIL = re.compile(
    r"(?!\.)(?!.*\.\.)([A-Za-z0-9_'+\-\.]*)[A-Za-z0-9_+-]@([A-Za-z0-9][A-Za-z0-9\-]*\.)+[A-Za-z]{2,}"
)


def is_email(value: str) -> bool:
    """Whether zod's `z.email()` accepts `value` (sign-in checks it by hand: INVALID_EMAIL)."""
    return _EMAIL.fullmatch(value) is not None


def _email(value: str) -> str:
    if not is_email(value):
        raise PydanticCustomError("email", "Invalid email address")
    return value


Email = Annotated[str, Field(max_length=MAX_EMAIL_LENGTH), AfterValidator(_email)]
Name = Annotated[str, Field(max_length=MAX_NAME_LENGTH)]
Image = Annotated[str, Field(max_length=MAX_IMAGE_LENGTH)]
NonEmpty = Annotated[str, Field(min_length=1)]  # zod's z.string().nonempty()


class Body(BaseModel):
    """Base of request models: strict types as zod's, unknown keys kept for hooks and fields."""

    model_config = ConfigDict(strict=True, extra="allow", populate_by_name=True, frozen=True)

    # What the schema is, in zod's words, for a body that is not a JSON object: one message
    # per branch of the union (sign-up's body is an object-or-record, for additional fields).
    # Empty: a union of objects, which zod reports as a bare `[body] Invalid input`.
    expects: ClassVar[tuple[str, ...]] = ("object",)


_EXPECTED = {
    "string_type": "string",
    "bool_type": "boolean",
    "int_type": "number",
    "float_type": "number",
    "int_from_float": "number",
    "dict_type": "object",
    "model_type": "object",
    "model_attributes_type": "object",
    "list_type": "array",
}


def js_type(value: Any) -> str:
    """What JavaScript's typeof-style name for a JSON value is, as zod reports it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def describe_errors(
    error: ValidationError, model: type[BaseModel], where: Literal["body", "query"]
) -> str:
    parts = []
    for issue in error.errors():
        loc = ".".join(str(p) for p in issue["loc"])
        prefix = f"[{where}.{loc}]" if loc else f"[{where}]"
        kind = issue["type"]
        if kind == "missing":
            expected = _expected_for(model, str(issue["loc"][0]))
            text = f"Invalid input: expected {expected}, received undefined"
        elif kind in _EXPECTED:
            expected = _EXPECTED[kind]
            if kind == "dict_type" and _is_record(model, issue["loc"]):
                expected = "record"  # a z.record field, as zod names it
            text = f"Invalid input: expected {expected}, received {js_type(issue['input'])}"
        elif kind == "string_too_short":
            text = f"Too small: expected string to have >={issue['ctx']['min_length']} characters"
        elif kind == "string_too_long":
            text = f"Too big: expected string to have <={issue['ctx']['max_length']} characters"
        else:
            text = issue["msg"]
        parts.append(f"{prefix} {text}")
    return "; ".join(parts)


def _is_record(model: type[BaseModel], loc: tuple[str | int, ...]) -> bool:
    """Whether the field at `loc` (through nested models) is a dict: zod's z.record."""
    annotation: Any = model
    for part in loc:
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return False
        found = [
            info.annotation
            for name, info in annotation.model_fields.items()
            if part in (name, info.alias)
        ]
        if not found:
            return False
        annotation = _unwrap_optional(found[0])
    return annotation is dict or get_origin(annotation) is dict


def _unwrap_optional(annotation: Any) -> Any:
    """`X | None` and `Annotated[X, ...]` as X."""
    arguments = [a for a in get_args(annotation) if a is not type(None)]
    if get_origin(annotation) in (Union, UnionType) and len(arguments) == 1:
        annotation = arguments[0]
    if get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return annotation


def _expected_for(model: type[BaseModel], name: str) -> str:
    for field_name, info in model.model_fields.items():
        if name in (field_name, info.alias):
            annotation = info.annotation
            if annotation is bool:
                return "boolean"
            if annotation in (int, float):
                return "number"
            if annotation is dict or get_origin(annotation) is dict:
                return "record"  # zod's z.record
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                return "object"
            return "string"
    return "string"
