"""Guards over the origin checks of `origins` (spec §6.3, §6.4): CSRF and open redirects."""

from __future__ import annotations

from typing import Any

from .endpoint import Ctx
from .errors import APIError, Code
from .origins import check_form_csrf, check_origin, check_redirect_fields

__all__ = ["form_csrf", "query_callback_url", "router_checks"]

_SAFE = {"GET", "HEAD", "OPTIONS"}


def _raise(problem: Any) -> None:
    code = Code[problem.code] if problem.code in Code.__members__ else None
    raise APIError(problem.status, code, problem.message)


async def router_checks(ctx: Ctx[Any]) -> None:
    """On every state-changing request: the Origin check, then the redirect fields."""
    if ctx.method in _SAFE:
        return
    advanced = ctx.options.advanced
    trusted = await ctx.identity.trusted_origins(ctx)
    if not advanced.disable_csrf_check:
        problem = check_origin(ctx.method, ctx.headers, trusted)
        if problem is not None:
            _raise(problem)
    if not advanced.disable_origin_check:
        body = ctx.raw_body if isinstance(ctx.raw_body, dict) else None
        redirect = check_redirect_fields(body, ctx.query, trusted)
        if redirect is not None:
            _raise(redirect)


async def form_csrf(ctx: Ctx[Any]) -> None:
    """Sign-in and sign-up: Fetch-Metadata and Origin, even without cookies (S19)."""
    if ctx.options.advanced.disable_csrf_check:
        return
    problem = check_form_csrf(ctx.method, ctx.headers, await ctx.identity.trusted_origins(ctx))
    if problem is not None:
        _raise(problem)


async def query_callback_url(ctx: Ctx[Any]) -> None:
    """GET endpoints that redirect check their own ?callbackURL (spec §6.3)."""
    url = ctx.query.get("callbackURL")
    if not url or ctx.options.advanced.disable_origin_check:
        return
    trusted = await ctx.identity.trusted_origins(ctx)
    if not trusted.is_trusted(url, allow_relative=True):
        raise APIError(403, Code.INVALID_CALLBACK_URL)
