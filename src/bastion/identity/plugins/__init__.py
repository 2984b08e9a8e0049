"""The plugin contract: endpoints, schema, hooks, rate rules, error codes, database hooks and a
start-up step, as data.

    Plugin(
        id="greeting",
        endpoints=[Endpoint("/greeting", ("GET",), greet, name="greeting", use=[session_required])],
        error_codes=GreetingCode,               # an ErrorCode enum: merged, clashes refused
        after=[EndpointHook(lambda e: "sign-in" in e.tags, log_sign_in)],
        init=check_keys,                         # (AuthContext) -> None, sync or async
    )

Hooks are matched to endpoints once, when the Identity is built. `sign_in_checks` run when a
sign-in has proved who the user is, before the session is made (`complete_sign_in`): one
that returns a value answers the request with it and no session is created — how a second
factor is asked for. `before` hooks run before
validation (one that returns a value answers with it), `after` hooks once the handler has run
(they may change `ctx.returned` or raise an APIError), and `on_response` hooks last, when the
answer is decided: the place for headers derived from it, such as the bearer token.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..context import AuthContext
    from ..db import TableSpec
    from ..endpoint import Ctx, Endpoint
    from ..errors import ErrorCode
    from ..ratelimit import RateRule
    from ..social import SocialProvider
    from ..store import DatabaseHooks

__all__ = ["EndpointHook", "Plugin", "SignInCheck"]

SignInCheck = Callable[["Ctx[Any]", dict[str, Any]], Awaitable[Any]]
"""`(ctx, user) -> None` to let the sign-in go on, or the answer to give instead."""


@dataclass(frozen=True, slots=True)
class EndpointHook:
    """`run(ctx)` for every endpoint `match` accepts."""

    match: Callable[[Endpoint], bool]
    run: Callable[[Ctx[Any]], Awaitable[Any]]


@dataclass(frozen=True)
class Plugin:
    """`rate_limits`: `(path matcher, rule)` pairs for paths of other plugins or of core
    (a plugin's own endpoints declare theirs). `database_hooks`: as the Identity's option,
    `{"user": {"create": {"before": fn, "after": fn}}}`, run after the Identity's own."""

    id: str
    endpoints: Sequence[Endpoint] = ()
    schema: Mapping[str, TableSpec] = field(default_factory=dict)
    before: Sequence[EndpointHook] = ()
    after: Sequence[EndpointHook] = ()
    on_response: Sequence[EndpointHook] = ()
    rate_limits: Sequence[tuple[Callable[[str], bool] | str, RateRule]] = ()
    error_codes: type[ErrorCode] | None = None
    database_hooks: DatabaseHooks = field(default_factory=dict)
    init: Callable[[AuthContext], Awaitable[None] | None] | None = None
    sign_in_checks: Sequence[SignInCheck] = ()
    # Providers served by /sign-in/social, /callback/{id} and /link-social (generic OAuth).
    social_providers: Sequence[SocialProvider] = ()
