"""What `generate` and `stream` share: the request body of a run, and the conversation it
reads from and writes to.

    run = await read_run(request, context, agent, memory)
    generation = await agent.generate(run.transcript, context=context, max_steps=run.max_steps)
    await run.save(generation.messages)

With a `threadId` (or Mastra's `memory: {thread}`), the thread is the caller's (created,
empty, if it does not exist yet; another owner's answers 404 before the model runs), its
history goes before the new messages, and `save` appends the new messages and what the
agent produced, in one all-or-nothing write, only once the run has finished. A run that
fails, or whose client hangs up, leaves the thread as it was.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from ...auth.context import RequestContext
from ...identity.db import DatabaseUnavailable
from ..agents import Agent
from ..memory import Memory
from ..memory.checks import check_message
from ..models import Message
from .common import HTTPError, merge_request_context, read_json_object
from .router import database_unavailable
from .scope import MEMORY_NOT_CONFIGURED, memory_errors, resource_id_of

__all__ = ["Run", "parse_messages", "read_run"]

logger = logging.getLogger("bastion.server")

_ROLES = ("user", "assistant", "system")


def parse_messages(value: Any) -> list[Message]:
    """`messages` of a request: one string (a user message) or a list of
    `{"role": "user" | "assistant" | "system", "content": str}`."""
    if value is None:
        raise HTTPError(400, "messages is required")
    if isinstance(value, str):
        return [Message(role="user", content=value)]
    if not isinstance(value, list):
        raise HTTPError(400, "messages must be a string or a list of messages")
    if not value:
        raise HTTPError(400, "messages must not be empty")
    messages: list[Message] = []
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise HTTPError(400, f"messages[{index}] must be an object")
        role, content = item.get("role"), item.get("content")
        if role not in _ROLES:
            raise HTTPError(400, f"messages[{index}].role must be one of: {', '.join(_ROLES)}")
        if not isinstance(content, str):
            raise HTTPError(400, f"messages[{index}].content must be a string")
        messages.append(Message(role=role, content=content))
    return messages


def _max_steps(value: Any, agent: Agent) -> int | None:
    if value is None:
        return None
    # A client may lower the agent's step limit, never raise it (each step is a model call).
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= agent.max_steps:
        raise HTTPError(400, f"maxSteps must be an integer from 1 to {agent.max_steps}")
    return value


def _text(value: Any, name: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise HTTPError(400, f"{name} must be a string")
    return value


def _same(first: str | None, second: str | None, names: str) -> str | None:
    """One value given in two places: both spellings must agree."""
    if first is not None and second is not None and first != second:
        raise HTTPError(400, f"{names} name different values")
    return first if first is not None else second


def _thread_and_resource(body: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """The run's `threadId` and the client's claimed `resourceId`.

    Either at the top (Bastion's own clients, and Mastra's deprecated options) or as Mastra's
    `memory: {thread, resource}`, which @mastra/client-js sends (`thread` a string or
    `{id, ...}`). The claimed resource is only checked against the caller later
    (scope.resource_id_of): it never replaces an authenticated caller's own.
    """
    thread_id = _text(body.get("threadId"), "threadId")
    claimed = _text(body.get("resourceId"), "resourceId")
    memory = body.get("memory")
    if memory is None:
        return thread_id, claimed
    if not isinstance(memory, dict):
        raise HTTPError(400, "memory must be an object")
    thread = memory.get("thread")
    if isinstance(thread, dict):
        thread = thread.get("id")
        if not isinstance(thread, str):
            raise HTTPError(400, "memory.thread.id must be a string")
    elif thread is not None and not isinstance(thread, str):
        raise HTTPError(400, "memory.thread must be a string or an object with an id")
    resource = _text(memory.get("resource"), "memory.resource")
    return (
        _same(thread_id, thread, "threadId and memory.thread"),
        _same(claimed, resource, "resourceId and memory.resource"),
    )


@dataclass(frozen=True, slots=True)
class Run:
    """One run's input: the caller's new messages after the thread's history (if any)."""

    messages: list[Message]
    max_steps: int | None
    history: list[Message]
    thread_id: str | None = None
    memory: Memory | None = None

    @property
    def transcript(self) -> list[Message]:
        return [*self.history, *self.messages]

    async def save(self, produced: Sequence[Message]) -> None:
        """Append the new messages and what the agent `produced` to the thread (if any).

        Once the model has finished, the exchange is kept even if the client hangs up
        during the write (which cancels the stream): the write completes, then the
        cancellation goes on. The store writes all or nothing in any case.
        """
        if self.memory is None or self.thread_id is None:
            return
        try:
            await _uncancellable(
                self.memory.append_messages(self.thread_id, [*self.messages, *produced])
            )
        except DatabaseUnavailable as exc:  # down, read-only or full: 503, and nothing saved
            logger.error("could not save thread %s: %s", self.thread_id, exc)
            raise database_unavailable() from None
        except Exception as exc:
            logger.error(
                "could not save thread %s: %s", self.thread_id, type(exc).__name__, exc_info=exc
            )
            raise HTTPError(500, "The conversation could not be saved") from None

    def thread_json(self) -> dict[str, str]:
        """`{"threadId": ...}` for the answer, when the run used a thread."""
        return {"threadId": self.thread_id} if self.thread_id is not None else {}


async def _uncancellable(write: Coroutine[Any, Any, Any]) -> None:
    """Run `write` to its end even if the caller is cancelled meanwhile; then the caller's
    cancellation goes on (asyncio.shield alone would leave the write running unawaited)."""
    task = asyncio.ensure_future(write)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait([task])
        if not task.cancelled() and task.exception() is not None:
            logger.error("a write to memory failed after the run was cancelled")
        raise


async def read_run(
    request: Request, context: RequestContext, agent: Agent, memory: Memory | None
) -> Run:
    """The body of a generate or stream request, checked, with the thread's history loaded.
    Merges the client's `requestContext` into `context`."""
    body = await read_json_object(request)
    messages = parse_messages(body.get("messages"))
    max_steps = _max_steps(body.get("maxSteps"), agent)
    thread_id, claimed = _thread_and_resource(body)
    merge_request_context(context, body)
    if thread_id is None:
        if claimed is not None and context.authenticated:
            resource_id_of(context, claimed)  # naming another resource is refused anyway
        return Run(messages, max_steps, [])
    if memory is None:
        raise HTTPError(400, f"{MEMORY_NOT_CONFIGURED}: threadId cannot be used")
    owner = resource_id_of(context, claimed)
    with memory_errors():
        for message in messages:  # refused now, not after the model has run
            check_message(message, memory.db.dialect)
        await memory.get_or_create_thread(thread_id, owner)
        history = await memory.history(thread_id)
    return Run(messages, max_steps, history, thread_id, memory)
