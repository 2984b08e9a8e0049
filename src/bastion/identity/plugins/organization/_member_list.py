"""list-members' query: paging, sorting and one filter over the member table, as better-auth
1.7.25 reads them — except that what better-auth turns into a 500 (an unknown field, a value
the column cannot hold, `in` with a single value) is a 400 here, or a one-element list.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, get_args

from pydantic import BaseModel, ConfigDict, field_validator
from pydantic import Field as PydanticField
from pydantic_core import PydanticCustomError

from ...db import Condition, Field, Operator, Schema
from ...errors import APIError, Code

__all__ = ["ListMembersQuery", "MemberListing", "listing_of"]

_OPERATORS: tuple[str, ...] = get_args(Operator)
_TEXT_OPERATORS = frozenset({"contains", "starts_with", "ends_with"})
_LIST_OPERATORS = frozenset({"in", "not_in"})
_SCALAR = (str, int, float, bool)
_MAX_ROWS = 2**31 - 1


def _options(values: tuple[str, ...]) -> str:
    return "Invalid option: expected one of " + "|".join(f'"{v}"' for v in values)


class ListMembersQuery(BaseModel):
    """Over HTTP every value is a string (a repeated key, a list); in-process calls may pass
    numbers and booleans, as better-auth's schema allows."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)

    limit: Any = None
    offset: Any = None
    sort_by: str | None = PydanticField(None, alias="sortBy", strict=True)
    sort_direction: Any = PydanticField(None, alias="sortDirection")
    filter_field: str | None = PydanticField(None, alias="filterField", strict=True)
    filter_operator: Any = PydanticField(None, alias="filterOperator")
    filter_value: Any = PydanticField(None, alias="filterValue")
    organization_id: str | None = PydanticField(None, alias="organizationId", strict=True)
    organization_slug: str | None = PydanticField(None, alias="organizationSlug", strict=True)

    @field_validator("limit", "offset")
    @classmethod
    def _number_or_string(cls, value: Any) -> Any:
        if value is None or (isinstance(value, str | int | float) and not isinstance(value, bool)):
            return value
        raise PydanticCustomError("union", "Invalid input")

    @field_validator("sort_direction")
    @classmethod
    def _direction(cls, value: Any) -> Any:
        if value is None or value in ("asc", "desc"):
            return value
        raise PydanticCustomError("enum", _options(("asc", "desc")))

    @field_validator("filter_operator")
    @classmethod
    def _operator(cls, value: Any) -> Any:
        if value is None or value in _OPERATORS:
            return value
        raise PydanticCustomError("enum", _options(_OPERATORS))

    @field_validator("filter_value")
    @classmethod
    def _value(cls, value: Any) -> Any:
        if value is None or isinstance(value, _SCALAR):
            return value
        if isinstance(value, list) and (
            all(isinstance(v, str) for v in value)
            or all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
        ):
            return value
        raise PydanticCustomError("union", "Invalid input")


@dataclass(frozen=True, slots=True)
class MemberListing:
    """What to ask the database for. `nothing`: better-auth's filter with no value compares
    with NULL and matches no row."""

    filter: Condition | None
    order_by: str | None
    limit: int
    offset: int
    nothing: bool = False


def _count(value: Any) -> int | None:
    """JavaScript's Number(value) when it is a usable row count, else None (the default)."""
    if value is None or value == "":
        return None
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(number) or number < 0 or number != int(number):
        return None
    # Beyond any organization's size, and within every database's LIMIT/OFFSET range.
    return min(int(number), _MAX_ROWS)


def _refuse(name: str, text: str) -> APIError:
    return APIError(400, Code.VALIDATION_ERROR, f"[query.{name}] {text}")


def _field(schema: Schema, name: str, where: str) -> Field:
    field = schema.fields("member").get(name)
    # A field never returned (returned=False) is not one a client may probe either.
    if field is None or not field.returned:
        raise _refuse(where, f"Field {name} not found in model member")
    return field


def _date(value: Any) -> datetime:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(value)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value / 1000, UTC)
    parsed = datetime.fromisoformat(value.strip())
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _typed(field: Field, value: Any) -> Any:
    """The value as the column holds it (better-auth's adapter converts numbers and booleans
    the same way; a date it hands to the database as text)."""
    if field.type == "string":
        return str(value).lower() if isinstance(value, bool) else str(value)
    if field.type == "boolean":
        return value if isinstance(value, bool) else str(value) == "true"
    if field.type == "number":
        if isinstance(value, bool):
            raise ValueError(value)
        number = float(value)
        return int(number) if number.is_integer() else number
    if field.type == "date":
        return _date(value)
    raise ValueError(value)  # json and array columns: no comparison means anything


def _condition(schema: Schema, query: ListMembersQuery) -> Condition | None:
    name = query.filter_field
    assert name is not None
    field = _field(schema, name, "filterField")
    operator: Operator = query.filter_operator or "eq"
    value = query.filter_value
    if operator in _TEXT_OPERATORS and field.type != "string":
        raise _refuse("filterOperator", f"{operator} compares text; {name} is a {field.type}")
    if operator in _LIST_OPERATORS:
        values = value if isinstance(value, list) else [value]
    elif isinstance(value, list):
        raise _refuse("filterValue", f"{operator} compares one value, not a list")
    else:
        values = [value]
    try:
        typed = [_typed(field, v) for v in values]
    except (TypeError, ValueError, OverflowError):
        raise _refuse("filterValue", f"Invalid value for {name} ({field.type})") from None
    return Condition(name, operator, typed if operator in _LIST_OPERATORS else typed[0])


def listing_of(schema: Schema, query: ListMembersQuery, default_limit: int) -> MemberListing:
    """`default_limit`: membershipLimit when it is a number, else 100 (better-auth's)."""
    order_by = None
    if query.sort_by:
        _field(schema, query.sort_by, "sortBy")
        order_by = ("-" if query.sort_direction == "desc" else "") + query.sort_by
    limit = _count(query.limit) or default_limit  # 0 is "not given", as in JavaScript
    offset = _count(query.offset) or 0
    if not query.filter_field:
        return MemberListing(None, order_by, limit, offset)
    if query.filter_value is None:
        _field(schema, query.filter_field, "filterField")
        return MemberListing(None, order_by, limit, offset, nothing=True)
    return MemberListing(_condition(schema, query), order_by, limit, offset)
