"""What one connection may take, and the timers that enforce it: the pieces the two
HTTP/1.1 protocol classes (`_h11_protocol`, `_httptools_protocol`) share. How they fit
together is told in `bastion._http_server`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "REQUEST_TIMEOUT",
    "Cycle",
    "Deadline",
    "HttpLimits",
    "body_too_slow",
    "close_quietly",
]


@dataclass(frozen=True, kw_only=True, slots=True)
class HttpLimits:
    """What one connection may take: timeouts in seconds, sizes in bytes."""

    header_timeout: int = 10
    idle_timeout: int = 5
    body_timeout: int = 30  # 1 MiB (the largest body Bastion reads) at >= 35 KB/s
    limit_concurrency: int | None = 1000  # per process; None: no limit
    max_head_size: int = 16 * 1024  # h11's default, and Node's

    def __post_init__(self) -> None:
        for name in ("header_timeout", "idle_timeout", "body_timeout", "max_head_size"):
            _check_positive(name, getattr(self, name))
        if self.limit_concurrency is not None:
            _check_positive("limit_concurrency", self.limit_concurrency)


def _check_positive(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive whole number, not {value!r}")


class Cycle(Protocol):
    """The parts of uvicorn's RequestResponseCycle (h11 and httptools alike) a deadline uses."""

    response_started: bool
    response_complete: bool
    disconnected: bool
    message_event: asyncio.Event


REQUEST_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: 15\r\n"
    b"connection: close\r\n"
    b"\r\n"
    b"Request Timeout"
)


class Deadline:
    """One timer of a connection: `arm` starts it unless it runs already, `cancel` stops
    it; when it fires, `expire` runs once. `stop` when the connection is gone.

    A connection arms and cancels its deadlines on every request, and a timer of the event
    loop costs ~3 µs to schedule and cancel (uvloop). So `cancel` only forgets the due time
    and the timer is left to run: when it fires with nothing due it ends, and with a later
    due time (armed again meanwhile) it is scheduled for that time. At most one timer per
    deadline is ever pending, and `expire` still runs exactly when the deadline passes.
    """

    __slots__ = ("_due", "_expire", "_handle", "_loop", "_seconds")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, seconds: float, expire: Callable[[], None]
    ) -> None:
        self._loop = loop
        self._seconds = seconds
        self._expire = expire
        self._due: float | None = None  # loop time at which `expire` runs, if armed
        self._handle: asyncio.TimerHandle | None = None

    @property
    def armed(self) -> bool:
        return self._due is not None

    def arm(self) -> None:
        if self._due is None:
            self._due = self._loop.time() + self._seconds
            if self._handle is None:
                self._handle = self._loop.call_at(self._due, self._fire)

    def cancel(self) -> None:
        self._due = None

    def stop(self) -> None:
        """Cancel, and drop the timer too (it holds the connection until it fires)."""
        self._due = None
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _fire(self) -> None:
        self._handle = None
        due = self._due
        if due is None:
            return
        # Cancelled and armed again since this timer was set (1 ms: a loop's timers are
        # kept in whole milliseconds, and may fire that much early).
        if self._loop.time() + 0.001 < due:
            self._handle = self._loop.call_at(due, self._fire)
            return
        self._due = None
        self._expire()


def close_quietly(transport: asyncio.Transport) -> None:
    """A head that did not come in time: close, as uvicorn's keep-alive timeout does."""
    if not transport.is_closing():
        transport.close()


def body_too_slow(transport: asyncio.Transport, cycle: Cycle | None) -> None:
    """A body that did not come in time: 408 when the app has not answered yet, then close.
    The app's next `receive` says `http.disconnect` and whatever it sends is dropped."""
    if transport.is_closing():
        return
    if cycle is not None and not cycle.response_complete:
        if not cycle.response_started:
            transport.write(REQUEST_TIMEOUT)
        cycle.disconnected = True
        cycle.message_event.set()
    transport.close()
