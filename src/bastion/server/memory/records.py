"""Threads and stored messages as typed records, and their JSON shapes (docs/http-api.md)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from ...identity.db.types import format_iso
from ..models import Message, Role, ToolCall

__all__ = ["StoredMessage", "Thread"]


@dataclass(frozen=True, slots=True)
class Thread:
    id: str
    resource_id: str
    title: str | None
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime

    def to_json(self) -> dict[str, Any]:
        """`{"id", "resourceId", "title", "metadata", "createdAt", "updatedAt"}`, dates as
        JavaScript's toISOString() writes them, as the identity endpoints do."""
        return {
            "id": self.id,
            "resourceId": self.resource_id,
            "title": self.title,
            "metadata": self.metadata,
            "createdAt": format_iso(self.created_at),
            "updatedAt": format_iso(self.updated_at),
        }

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Thread:
        return cls(
            id=row["id"],
            resource_id=row["resourceId"],
            title=row["title"],
            metadata=row["metadata"] if row["metadata"] is not None else {},
            created_at=row["createdAt"],
            updated_at=row["updatedAt"],
        )


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A models.Message as a thread keeps it: with an id, its thread and a time."""

    id: str
    thread_id: str
    role: Role
    content: str
    tool_calls: tuple[ToolCall, ...]
    tool_call_id: str | None
    name: str | None
    created_at: datetime

    def to_message(self) -> Message:
        return Message(
            role=self.role,
            content=self.content,
            tool_calls=self.tool_calls,
            tool_call_id=self.tool_call_id,
            name=self.name,
        )

    def to_json(self) -> dict[str, Any]:
        """`{"id", "threadId", "role", "content", "toolCalls"?, "toolCallId"?, "createdAt"}`;
        tool calls in the Generation shape `{"toolCallId", "toolName", "args"}`."""
        out: dict[str, Any] = {
            "id": self.id,
            "threadId": self.thread_id,
            "role": self.role,
            "content": self.content,
        }
        if self.tool_calls:
            out["toolCalls"] = tool_calls_json(self.tool_calls)
        if self.tool_call_id is not None:
            out["toolCallId"] = self.tool_call_id
        out["createdAt"] = format_iso(self.created_at)
        return out

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> StoredMessage:
        calls = row["toolCalls"] or ()
        return cls(
            id=row["id"],
            thread_id=row["threadId"],
            # Written only after the role was checked (store.py), so the cast holds.
            role=cast(Role, row["role"]),
            content=row["content"],
            tool_calls=tuple(
                ToolCall(id=c["toolCallId"], name=c["toolName"], arguments=c["args"]) for c in calls
            ),
            tool_call_id=row["toolCallId"],
            name=row["name"],
            created_at=row["createdAt"],
        )


def tool_calls_json(calls: tuple[ToolCall, ...]) -> list[dict[str, Any]]:
    """As stored in `toolCalls` and shown by the API: the Generation's tool-call shape."""
    return [{"toolCallId": c.id, "toolName": c.name, "args": c.arguments} for c in calls]
