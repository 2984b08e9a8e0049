"""Calling a user's callback that may be sync or async: one rule for every callback Bastion
takes (mailers, hooks, tools, custom routes, `authorize_user`, rules, option callables).

A coroutine function (or an object with `async def __call__`, or a partial of either) is
awaited; a plain function runs in a worker thread, so a blocking one (an SMTP client, a
database driver, `time.sleep`) never stalls the event loop, with the caller's contextvars;
an awaitable it returns is awaited too. On cancellation the caller stops waiting and the
thread finishes on its own.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio.to_thread

__all__ = ["as_async", "call_user", "is_async_callable"]

T = TypeVar("T")


def is_async_callable(callback: Any) -> bool:
    while isinstance(callback, functools.partial):
        callback = callback.func
    if inspect.iscoroutinefunction(callback):
        return True
    method = getattr(callback, "__call__", None)  # noqa: B004 - an object's async __call__
    return method is not None and inspect.iscoroutinefunction(method)


async def call_user(callback: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    if is_async_callable(callback):
        return await callback(*args, **kwargs)
    result = await anyio.to_thread.run_sync(
        functools.partial(callback, *args, **kwargs), abandon_on_cancel=True
    )
    if inspect.isawaitable(result):
        return await result
    return result


def as_async(callback: Callable[..., T | Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    """`callback` as a coroutine function, its kind decided once rather than per call."""
    if is_async_callable(callback):
        return callback  # type: ignore[return-value]

    async def call(*args: Any, **kwargs: Any) -> T:
        result: T = await call_user(callback, *args, **kwargs)
        return result

    return call
