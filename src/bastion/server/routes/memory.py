"""`/api/memory/threads`: a caller's conversation threads and their messages.

Every route acts for one owner, `resource_id_of(context, ...)` (scope.py): the
authenticated caller's resource id, never one the client names. A thread of another owner
is "Thread not found". Without `Bastion(memory=...)` the routes answer 404 "Memory is not
configured" (after the auth pipeline, like any route).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.requests import Request

from ..._openapi import Doc
from ...auth.context import RequestContext
from ..memory import UNSET, Memory
from .bodies import MessagesQuery, NewThreadBody, ResourceQuery, ThreadChangeBody, ThreadsQuery
from .common import HTTPError, json_response, read_json_object
from .paging import message_limit, thread_window
from .router import Router
from .scope import (
    MEMORY_NOT_CONFIGURED,
    claimed_resource_id,
    memory_errors,
    owned_thread,
    resource_id_of,
)

__all__ = ["add_memory_routes"]


def _optional_text(body: Mapping[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise HTTPError(400, f"{key} must be a string")
    return value


def _metadata(body: Mapping[str, Any]) -> dict[str, Any] | None:
    value = body.get("metadata")
    if value is not None and not isinstance(value, dict):
        raise HTTPError(400, "metadata must be an object")
    return value


def add_memory_routes(router: Router, memory: Memory | None) -> None:
    def store() -> Memory:
        if memory is None:
            raise HTTPError(404, MEMORY_NOT_CONFIGURED)
        return memory

    async def list_threads(request: Request, context: RequestContext) -> Any:
        threads = store()
        query = request.query_params
        owner = resource_id_of(context, query.get("resourceId"))
        limit, offset = thread_window(query)
        with memory_errors():
            found = await threads.list_threads(owner, limit=limit, offset=offset)
        return [thread.to_json() for thread in found]

    async def create_thread(request: Request, context: RequestContext) -> Any:
        threads = store()
        body = await read_json_object(request)
        owner = resource_id_of(context, claimed_resource_id(request.query_params, body))
        title, thread_id = _optional_text(body, "title"), _optional_text(body, "threadId")
        metadata = _metadata(body)
        with memory_errors():
            thread = await threads.create_thread(
                owner, title=title, metadata=metadata, id=thread_id
            )
        return json_response(thread.to_json(), 201)

    async def get_thread(request: Request, context: RequestContext) -> Any:
        threads = store()
        owner = resource_id_of(context, request.query_params.get("resourceId"))
        thread = await owned_thread(threads, request.path_params["threadId"], owner)
        return thread.to_json()

    async def update_thread(request: Request, context: RequestContext) -> Any:
        threads = store()
        body = await read_json_object(request)
        owner = resource_id_of(context, claimed_resource_id(request.query_params, body))
        title = _optional_text(body, "title") if "title" in body else UNSET
        metadata = _metadata(body)
        thread_id = request.path_params["threadId"]
        await owned_thread(threads, thread_id, owner)
        with memory_errors():
            thread = await threads.update_thread(thread_id, title=title, metadata=metadata)
        return thread.to_json()

    async def delete_thread(request: Request, context: RequestContext) -> Any:
        threads = store()
        owner = resource_id_of(context, request.query_params.get("resourceId"))
        thread_id = request.path_params["threadId"]
        await owned_thread(threads, thread_id, owner)
        await threads.delete_thread(thread_id)
        return {"ok": True}

    async def list_messages(request: Request, context: RequestContext) -> Any:
        threads = store()
        owner = resource_id_of(context, request.query_params.get("resourceId"))
        limit = message_limit(request.query_params)
        thread_id = request.path_params["threadId"]
        await owned_thread(threads, thread_id, owner)
        with memory_errors():
            messages = await threads.list_messages(thread_id, limit=limit)
        return {"messages": [message.to_json() for message in messages]}

    # 400: a bad value or resourceId; 403: another user's resourceId; 404: no memory, or
    # not the caller's thread; 503: the database is down.
    errors = (400, 403, 404, 503)
    tags = ("Memory",)
    threads, thread = "/api/memory/threads", "/api/memory/threads/{threadId}"
    router.add(
        threads,
        ["GET"],
        list_threads,
        doc=Doc("The caller's threads", tags, query=ThreadsQuery, errors=errors),
    )
    router.add(
        threads,
        ["POST"],
        create_thread,
        doc=Doc(
            "Create a thread",
            tags,
            body=NewThreadBody,
            query=ResourceQuery,
            status=201,
            errors=(*errors, 409),
        ),
    )
    router.add(
        thread, ["GET"], get_thread, doc=Doc("A thread", tags, query=ResourceQuery, errors=errors)
    )
    router.add(
        thread,
        ["PATCH"],
        update_thread,
        doc=Doc(
            "Rename a thread or change its metadata",
            tags,
            body=ThreadChangeBody,
            query=ResourceQuery,
            errors=errors,
        ),
    )
    router.add(
        thread,
        ["DELETE"],
        delete_thread,
        doc=Doc("Delete a thread", tags, query=ResourceQuery, errors=errors),
    )
    router.add(
        thread + "/messages",
        ["GET"],
        list_messages,
        doc=Doc("A thread's messages", tags, query=MessagesQuery, errors=errors),
    )
