"""The query strings of the memory list routes: Bastion's `limit`/`offset`, and the spellings
Mastra's own client (@mastra/client-js) sends.

Mastra's `page`/`perPage` on the thread list map onto `limit`/`offset`. What Bastion cannot
honour (a metadata filter, another order, paging the messages) is refused with 400 naming
it, never ignored: a client that asked for a filter and got every thread back would act on
the wrong data.
"""

from __future__ import annotations

from collections.abc import Mapping

from .common import HTTPError

__all__ = ["count", "message_limit", "thread_window"]

# Mastra's default page size of a thread list (when `page` comes without `perPage`).
MASTRA_PER_PAGE = 100
# The one order Bastion lists threads in, as Mastra names it.
_THREAD_ORDER = {"orderBy[field]": "updatedAt", "orderBy[direction]": "DESC"}


def count(query: Mapping[str, str], name: str) -> int | None:
    """A non-negative integer of at most nine digits, or None when absent."""
    raw = query.get(name)
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9:
        raise HTTPError(400, f"{name} must be a non-negative integer")
    return int(raw)


def _refuse(query: Mapping[str, str], names: tuple[str, ...], why: str) -> None:
    given = [name for name in names if name in query]
    if given:
        raise HTTPError(400, f"{', '.join(given)} {'is' if len(given) == 1 else 'are'} {why}")


def thread_window(query: Mapping[str, str]) -> tuple[int | None, int]:
    """`(limit, offset)` of `GET /api/memory/threads`: `limit`/`offset`, or Mastra's
    0-based `page` and `perPage` (`perPage=false`: every thread)."""
    _refuse(query, ("metadata",), "not supported: threads cannot be filtered by metadata")
    for name, only in _THREAD_ORDER.items():
        if query.get(name, only) != only:
            raise HTTPError(400, f"{name} must be {only}: threads are listed by updatedAt DESC")
    limit, offset = count(query, "limit"), count(query, "offset")
    if "page" not in query and "perPage" not in query:
        return limit, offset or 0
    if limit is not None or offset is not None:
        raise HTTPError(400, "Use limit and offset, or page and perPage, not both")
    page = count(query, "page") or 0
    if query.get("perPage") == "false":
        if page:
            raise HTTPError(400, "page must be 0 when perPage is false")
        return None, 0
    per_page = count(query, "perPage")
    size = MASTRA_PER_PAGE if per_page is None else per_page
    return size, page * size


def message_limit(query: Mapping[str, str]) -> int | None:
    """`limit` of `GET /api/memory/threads/{threadId}/messages` (the last n messages)."""
    _refuse(
        query,
        ("page", "perPage", "orderBy", "filter", "include"),
        "not supported on messages: use limit (the last n messages, oldest first)",
    )
    return count(query, "limit")
