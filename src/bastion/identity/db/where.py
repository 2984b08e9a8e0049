"""Conditions for the adapter's queries, as data: `eq("email", e) & gt("expiresAt", now)`.

A plain mapping is shorthand for equality on every key: `{"userId": uid}`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

__all__ = [
    "AllOf",
    "AnyOf",
    "Condition",
    "Operator",
    "Where",
    "and_",
    "contains",
    "ends_with",
    "eq",
    "gt",
    "gte",
    "in_",
    "lt",
    "lte",
    "ne",
    "not_in",
    "or_",
    "starts_with",
]

Operator = Literal[
    "eq", "ne", "lt", "lte", "gt", "gte", "in", "not_in", "contains", "starts_with", "ends_with"
]


class _Combinable:
    __slots__ = ()

    def __and__(self, other: Where) -> AllOf:
        return and_(self, other)  # type: ignore[arg-type]

    def __or__(self, other: Where) -> AnyOf:
        return or_(self, other)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Condition(_Combinable):
    field: str
    op: Operator
    value: Any


@dataclass(frozen=True, slots=True)
class AllOf(_Combinable):
    parts: tuple[Where, ...]


@dataclass(frozen=True, slots=True)
class AnyOf(_Combinable):
    parts: tuple[Where, ...]


Where: TypeAlias = Condition | AllOf | AnyOf | Mapping[str, Any]


def eq(field: str, value: Any) -> Condition:
    return Condition(field, "eq", value)


def ne(field: str, value: Any) -> Condition:
    return Condition(field, "ne", value)


def lt(field: str, value: Any) -> Condition:
    return Condition(field, "lt", value)


def lte(field: str, value: Any) -> Condition:
    return Condition(field, "lte", value)


def gt(field: str, value: Any) -> Condition:
    return Condition(field, "gt", value)


def gte(field: str, value: Any) -> Condition:
    return Condition(field, "gte", value)


def in_(field: str, values: Iterable[Any]) -> Condition:
    return Condition(field, "in", tuple(values))


def not_in(field: str, values: Iterable[Any]) -> Condition:
    return Condition(field, "not_in", tuple(values))


def contains(field: str, value: str) -> Condition:
    return Condition(field, "contains", value)


def starts_with(field: str, value: str) -> Condition:
    return Condition(field, "starts_with", value)


def ends_with(field: str, value: str) -> Condition:
    return Condition(field, "ends_with", value)


def and_(*parts: Where) -> AllOf:
    return AllOf(parts)


def or_(*parts: Where) -> AnyOf:
    return AnyOf(parts)
