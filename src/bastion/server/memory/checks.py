"""Input checks, done before anything is written, so that a value a database would refuse
fails the same way (InvalidMemoryInput) on every dialect and never half-way through a write.

What the databases refuse: PostgreSQL any NUL character in text or jsonb, and NaN in jsonb;
every driver a lone surrogate (not encodable as UTF-8); MySQL ids over 36 characters
(varchar(36)), indexed strings over 255 (varchar(255)), and `text` values over 65,535 bytes.

What would be stored but not read back: JSON nested deeper than the responses can be
written (pydantic-core stops at about 255 levels, and a thread list adds two), so metadata
and tool arguments are held to the request bodies' `MAX_JSON_DEPTH`. Titles and metadata
are also bounded in size: every thread list returns them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, get_args

from ...identity._untrusted import (
    MAX_JSON_DEPTH,
    InvalidInput,
    check_value,
    describe_path,
    string_problem,
)
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
    "check_title",
    "is_thread_id",
]

# Ids travel in URL paths (/api/memory/threads/{threadId}) and fit MySQL's varchar(36):
# UUIDs, nanoids and better-auth's 32-character ids all qualify.
_THREAD_ID = re.compile(r"[A-Za-z0-9_-]{1,36}")
_MAX_RESOURCE_ID = 255
_MAX_TITLE = 1024  # characters
_MAX_METADATA_BYTES = 64 * 1024  # as JSON in UTF-8
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
    if len(value) > _MAX_RESOURCE_ID or string_problem(value) is not None:
        raise InvalidMemoryInput(
            f"a resource id has at most {_MAX_RESOURCE_ID} characters, no NUL and no lone surrogate"
        )
    return value


def check_text(value: object, what: str, dialect: Dialect, *, long: bool = False) -> str:
    if not isinstance(value, str):
        raise InvalidMemoryInput(f"{what} must be a string")
    problem = string_problem(value)
    if problem is not None:
        raise InvalidMemoryInput(f"{what} {problem}")
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


def check_title(value: object, dialect: Dialect) -> str | None:
    """A thread title (None: no title), at most 1,024 characters."""
    if value is None:
        return None
    title = check_text(value, "a thread title", dialect)
    if len(title) > _MAX_TITLE:
        raise InvalidMemoryInput(f"a thread title has at most {_MAX_TITLE} characters")
    return title


def check_metadata(value: object) -> dict[str, Any]:
    """A JSON object, returned as a copy: what is stored is what the caller gets back, and
    a caller changing its dict afterwards changes neither. At most MAX_JSON_DEPTH levels
    deep, and 64 KiB as JSON."""
    if not isinstance(value, Mapping):
        raise InvalidMemoryInput("metadata must be a JSON object")
    copy = _json_copy(value, "metadata", _MAX_METADATA_BYTES)
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
    # Stored as [{"toolCallId", "toolName", "args": …}]: two levels above the arguments.
    calls = _json_copy(
        tool_calls_json(message.tool_calls), "tool calls", max_depth=MAX_JSON_DEPTH + 2
    )
    return {
        "role": message.role,
        "content": check_text(message.content, "message content", dialect, long=True),
        "toolCalls": calls or None,
        "toolCallId": _optional_text(message.tool_call_id, "a tool call id", dialect),
        "name": _optional_text(message.name, "a message name", dialect),
    }


def _optional_text(value: str | None, what: str, dialect: Dialect) -> str | None:
    return None if value is None else check_text(value, what, dialect)


def _json_copy(
    value: Any, what: str, max_bytes: int | None = None, max_depth: int = MAX_JSON_DEPTH
) -> Any:
    try:
        # First, and without recursion: json.dumps raises RecursionError on a deep value.
        check_value(value, max_depth=max_depth)
    except InvalidInput as exc:
        raise InvalidMemoryInput(f"{describe_path(exc.path, what)} {exc.reason}") from None
    try:
        text = json.dumps(value, allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise InvalidMemoryInput(f"{what} must be JSON: {exc}") from None
    # A character is at most 4 bytes: most values are decided without encoding them.
    if max_bytes is not None and len(text) * 4 > max_bytes and len(text.encode()) > max_bytes:
        raise InvalidMemoryInput(f"{what} is over {max_bytes} bytes as JSON")
    return json.loads(text)
