"""Input checks, done before anything is written, so that a value a database would refuse
fails the same way (InvalidMemoryInput) on every dialect and never half-way through a write.

What the databases refuse: PostgreSQL any NUL character in text or jsonb, and NaN in jsonb;
MySQL ids over 36 characters (varchar(36)), indexed strings over 255 (varchar(255)), and
`text` values over 65,535 bytes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, get_args

from ...identity.db import Dialect
from ..models import Message, Role
from .errors import InvalidMemoryInput
from .records import tool_calls_json

__all__ = [
    "check_message",
    "check_metadata",
    "check_resource_id",
    "check_text",
    "check_thread_id",
    "is_thread_id",
]

# Ids travel in URL paths (/api/memory/threads/{threadId}) and fit MySQL's varchar(36):
# UUIDs, nanoids and better-auth's 32-character ids all qualify.
_THREAD_ID = re.compile(r"[A-Za-z0-9_-]{1,36}")
_MAX_RESOURCE_ID = 255
_MYSQL_TEXT_BYTES = 65_535
_ROLES: frozenset[str] = frozenset(get_args(Role))


def is_thread_id(value: object) -> bool:
    return isinstance(value, str) and _THREAD_ID.fullmatch(value) is not None


def check_thread_id(value: object) -> str:
    if not is_thread_id(value):
        raise InvalidMemoryInput("a thread id is 1 to 36 characters of A-Z, a-z, 0-9, _ and -")
    return str(value)


def check_resource_id(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidMemoryInput("a resource id is a non-empty string")
    if len(value) > _MAX_RESOURCE_ID or "\x00" in value:
        raise InvalidMemoryInput(
            f"a resource id has at most {_MAX_RESOURCE_ID} characters and no NUL"
        )
    return value


def check_text(value: object, what: str, dialect: Dialect, *, long: bool = False) -> str:
    if not isinstance(value, str):
        raise InvalidMemoryInput(f"{what} must be a string")
    if "\x00" in value:
        raise InvalidMemoryInput(f"{what} contains a NUL character")
    # Most text is far below the limit in characters, and 4 bytes is the most one takes.
    if (
        dialect == "mysql"
        and not long
        and len(value) * 4 > _MYSQL_TEXT_BYTES
        and len(value.encode()) > _MYSQL_TEXT_BYTES
    ):
        raise InvalidMemoryInput(
            f"{what} is over {_MYSQL_TEXT_BYTES} bytes, the most a MySQL text column holds"
        )
    return value


def check_metadata(value: object) -> dict[str, Any]:
    """A JSON object, returned as a copy: what is stored is what the caller gets back, and
    a caller changing its dict afterwards changes neither."""
    if not isinstance(value, Mapping):
        raise InvalidMemoryInput("metadata must be a JSON object")
    copy = _json_copy(value, "metadata")
    assert isinstance(copy, dict)
    return copy


def check_message(message: Message, dialect: Dialect) -> dict[str, Any]:
    """The row fields of one message (all but id, threadId, seq and createdAt)."""
    if not isinstance(message, Message):
        raise InvalidMemoryInput(f"expected a Message, got {type(message).__name__}")
    if message.role not in _ROLES:
        raise InvalidMemoryInput(f"unknown message role {message.role!r}")
    for call in message.tool_calls:
        check_text(call.id, "a tool call id", dialect)
        check_text(call.name, "a tool name", dialect)
        if not isinstance(call.arguments, Mapping):
            raise InvalidMemoryInput("tool call arguments must be a JSON object")
    calls = _json_copy(tool_calls_json(message.tool_calls), "tool call arguments")
    return {
        "role": message.role,
        "content": check_text(message.content, "message content", dialect, long=True),
        "toolCalls": calls or None,
        "toolCallId": _optional_text(message.tool_call_id, "a tool call id", dialect),
        "name": _optional_text(message.name, "a message name", dialect),
    }


def _optional_text(value: str | None, what: str, dialect: Dialect) -> str | None:
    return None if value is None else check_text(value, what, dialect)


def _json_copy(value: Any, what: str) -> Any:
    try:
        text = json.dumps(value, allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise InvalidMemoryInput(f"{what} must be JSON: {exc}") from None
    copy = json.loads(text)
    if _has_nul(copy):
        raise InvalidMemoryInput(f"{what} contains a NUL character")
    return copy


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any("\x00" in k or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False
