"""Calling a user's callback that may be sync or async.

One rule for every callback Bastion takes (mailers, hooks, `authorize_user`, option
callables): a coroutine function is awaited; a plain function runs in a worker thread, so a
blocking one (an SMTP client, a database driver, `time.sleep`) never stalls the event loop;
an awaitable it returns is awaited too.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import anyio.to_thread

__all__ = ["call_user"]


async def call_user(callback: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    if _is_async(callback):
        return await callback(*args, **kwargs)
    result = await anyio.to_thread.run_sync(functools.partial(callback, *args, **kwargs))
    if inspect.isawaitable(result):
        return await result
    return result


def _is_async(callback: Callable[..., Any]) -> bool:
    if inspect.iscoroutinefunction(callback):
        return True
    method = getattr(callback, "__call__", None)  # noqa: B004 - an object with async __call__
    return method is not None and inspect.iscoroutinefunction(method)
