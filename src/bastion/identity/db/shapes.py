"""The shape of a `Where`: what decides its SQL, apart from the values it binds.

Two conditions with the same shape compile to the same SQL, so the adapter builds the statement
for a shape once and binds each call's values to it (building a SELECT and computing its
SQLAlchemy cache key cost more than running it; docs/benchmarks.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .where import AllOf, AnyOf, Condition, Where

__all__ = ["Shape", "where_shape"]

Shape = tuple[Any, ...]  # hashable: nested tuples of strings, None and booleans

# Operators whose SQL is the same whatever the value; `in`, `not_in` (an empty list is
# TRUE/FALSE) and the LIKE family (the value becomes an escaped pattern) are not reused.
_BOUND = frozenset({"eq", "ne", "lt", "lte", "gt", "gte"})


def where_shape(where: Where | None) -> tuple[Shape, list[Any]] | None:
    """`(shape, values)`: values in the order the shape binds them; None when the SQL of
    `where` depends on a value (then the statement is built for this call only)."""
    values: list[Any] = []
    shape = _shape(where, values)
    return None if shape is None else (shape, values)


def _shape(where: Where | None, values: list[Any]) -> Shape | None:
    if where is None:
        return ("all",)
    if isinstance(where, Condition):
        return _condition(where.field, where.op, where.value, values)
    if isinstance(where, AllOf | AnyOf):
        parts = []
        for part in where.parts:
            shape = _shape(part, values)
            if shape is None:
                return None
            parts.append(shape)
        return ("and" if isinstance(where, AllOf) else "or", tuple(parts))
    if isinstance(where, Mapping):
        parts = []
        for name, value in where.items():
            shape = _condition(name, "eq", value, values)
            if shape is None:
                return None
            parts.append(shape)
        return ("and", tuple(parts))
    return None


def _condition(field: str, op: str, value: Any, values: list[Any]) -> Shape | None:
    if not isinstance(field, str) or op not in _BOUND:
        return None
    if op in ("eq", "ne") and (value is None or isinstance(value, bool)):
        # `IS NULL`, and `= true` as SQLAlchemy writes a boolean literal: part of the SQL.
        return ("c", field, op, value)
    values.append(value)
    return ("c", field, op)
