"""Whose memory a request may touch: the owner (resource id) and the thread checks that
every memory route and every run with a `threadId` share.

The owner of an authenticated caller is `RequestContext.resource_id`, what the auth
pipeline computed (`map_user_to_resource_id`, by default the user's id); a `resourceId`
the client sends is never taken instead of it. A client that names a different resource is
refused with 403 rather than silently ignored, so a client bug shows up at once instead of
as threads that seem to vanish. Only a request that the pipeline left anonymous (no auth
configured, or a memory path made public) names its resource itself.

A thread of another owner is answered exactly as a missing one, 404 "Thread not found", so
thread ids cannot be probed (Mastra's GHSA-cw45-899f-pvrr).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from ...auth.context import RequestContext
from ..memory import (
    InvalidMemoryInput,
    Memory,
    Thread,
    ThreadAccessDenied,
    ThreadExists,
    ThreadNotFound,
)
from .common import HTTPError

__all__ = [
    "MEMORY_NOT_CONFIGURED",
    "THREAD_NOT_FOUND",
    "claimed_resource_id",
    "memory_errors",
    "owned_thread",
    "resource_id_of",
]

logger = logging.getLogger("bastion.server")

MEMORY_NOT_CONFIGURED = "Memory is not configured"
THREAD_NOT_FOUND = "Thread not found"


def resource_id_of(context: RequestContext, claimed: Any) -> str:
    """The resource id the request acts for. `claimed` is the client's `resourceId` (None
    when it sent none)."""
    if claimed is not None and not isinstance(claimed, str):
        raise HTTPError(400, "resourceId must be a string")
    if context.authenticated:
        owner = context.resource_id
        if not owner:  # fail closed: never fall back to what the client says
            raise HTTPError(403, "No resource id for this user")
        if claimed is not None and claimed != owner:
            raise HTTPError(403, "resourceId does not match the authenticated user")
        return owner
    if not claimed:
        raise HTTPError(400, "resourceId is required")
    return claimed


def claimed_resource_id(query: Mapping[str, str], body: Mapping[str, Any] | None = None) -> Any:
    """The client's `resourceId`: from the JSON body, else the query string."""
    if body is not None and body.get("resourceId") is not None:
        return body["resourceId"]
    return query.get("resourceId")


@contextmanager
def memory_errors() -> Iterator[None]:
    """The store's errors as API answers: an unknown or foreign thread 404, a taken id 409,
    a value the store cannot keep 400."""
    try:
        yield
    except ThreadNotFound as exc:
        if isinstance(exc, ThreadAccessDenied):  # worth a line in the log: a probe, or a bug
            logger.info("refused a thread of another resource")
        raise HTTPError(404, THREAD_NOT_FOUND) from None
    except ThreadExists:
        raise HTTPError(409, "Thread already exists") from None
    except InvalidMemoryInput as exc:
        raise HTTPError(400, str(exc)) from None


async def owned_thread(memory: Memory, thread_id: str, resource_id: str) -> Thread:
    """The thread if `resource_id` owns it, else HTTPError 404."""
    with memory_errors():
        return await memory.get_owned_thread(thread_id, resource_id)
