"""The request bodies and queries of the API's routes, as models for its OpenAPI document.

The handlers read their input by hand (runs.py, memory.py, tools.py), for error messages
that name the field the way the API always has; these models state the same rules, and
the schemathesis run in the tests (tests/server/test_openapi_doc.py) sends what they
allow and what they do not to the handlers, so the two cannot drift apart unnoticed.
Unknown keys are ignored by the handlers, so the models allow them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ExecuteBody",
    "MessageIn",
    "MessagesQuery",
    "NewThreadBody",
    "ResourceQuery",
    "RunBody",
    "RunMemory",
    "ThreadChangeBody",
    "ThreadRef",
    "ThreadsQuery",
]

# `limit` and `offset`: digits only, at most nine of them (paging.py's `count`).
Count = Annotated[int, Field(ge=0, le=999_999_999)]


class _Input(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class MessageIn(_Input):
    role: Literal["user", "assistant", "system"]
    content: str


class ThreadRef(_Input):
    id: str


class RunMemory(_Input):
    """Mastra's spelling of `threadId` and `resourceId` (what @mastra/client-js sends)."""

    thread: str | ThreadRef | None = None
    resource: str | None = None


class RunBody(_Input):
    """`generate` and `stream`: one user message as a string, or a list of messages."""

    messages: str | Annotated[list[MessageIn], Field(min_length=1)]
    max_steps: Annotated[int, Field(ge=1)] | None = Field(None, alias="maxSteps")
    thread_id: str | None = Field(None, alias="threadId")
    resource_id: str | None = Field(None, alias="resourceId")
    request_context: dict[str, Any] | None = Field(None, alias="requestContext")
    memory: RunMemory | None = None


class ExecuteBody(_Input):
    """A tool's input under `data` (its input schema is in `GET /api/tools/{toolId}`)."""

    data: dict[str, Any] = Field(default_factory=dict)
    request_context: dict[str, Any] | None = Field(None, alias="requestContext")


class NewThreadBody(_Input):
    title: str | None = None
    thread_id: str | None = Field(None, alias="threadId")
    metadata: dict[str, Any] | None = None
    resource_id: str | None = Field(None, alias="resourceId")


class ThreadChangeBody(_Input):
    title: str | None = None
    metadata: dict[str, Any] | None = None
    resource_id: str | None = Field(None, alias="resourceId")


class ResourceQuery(_Input):
    resource_id: str | None = Field(None, alias="resourceId")


class ThreadsQuery(ResourceQuery):
    """`limit`/`offset`, or Mastra's `page` (from 0) and `perPage` (`false`: all), not both."""

    limit: Count | None = None
    offset: Count | None = None
    page: Count | None = None
    per_page: Count | Literal["false"] | None = Field(None, alias="perPage")


class MessagesQuery(ResourceQuery):
    limit: Count | None = None
