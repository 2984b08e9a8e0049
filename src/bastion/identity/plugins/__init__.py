"""The plugin contract: endpoints, schema, hooks, rate rules and error codes, as data."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..db import TableSpec
    from ..endpoint import Ctx, Endpoint
    from ..errors import ErrorCode
    from ..ratelimit import RateRule

__all__ = ["Hook", "Plugin"]


@dataclass(frozen=True, slots=True)
class Hook:
    """`run(ctx)` for every endpoint `match` accepts. A before-hook that returns something
    other than None answers the request with it; an after-hook may change `ctx.returned`."""

    match: Callable[[Endpoint], bool]
    run: Callable[[Ctx[Any]], Awaitable[Any]]


@dataclass(frozen=True)
class Plugin:
    id: str
    endpoints: Sequence[Endpoint] = ()
    schema: Mapping[str, TableSpec] = field(default_factory=dict)
    before: Sequence[Hook] = ()
    after: Sequence[Hook] = ()
    rate_limits: Sequence[tuple[Callable[[str], bool], RateRule]] = ()
    error_codes: type[ErrorCode] | None = None
