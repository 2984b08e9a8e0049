"""The request runner: a request's `Ctx`, and the pipeline of spec §1.4 from the parsed body
on — origin checks, before-hooks, validation, guards, the handler, after-hooks.

Plugin hooks are matched to endpoints once, here at construction, not on every request.
The same runner serves HTTP (`identity.app`) and in-process calls (`identity.api`).
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request

from .._callbacks import call_user
from .context import AuthContext
from .db import DatabaseUnavailable
from .endpoint import (
    APIResponse,
    Ctx,
    Endpoint,
    Redirect,
    SignInAnswered,
    response_of,
    validate,
)
from .errors import APIError, Code, service_unavailable
from .plugins import EndpointHook, Plugin
from .security import router_checks
from .storage import StorageUnavailable

__all__ = ["Runner", "failure"]

logger = logging.getLogger("bastion.identity")

_NO_STORE = {"cache-control": "no-store", "pragma": "no-cache"}


class Runner:
    def __init__(
        self, context: AuthContext, endpoints: Sequence[Endpoint], plugins: Sequence[Plugin]
    ) -> None:
        self.context = context
        options = context.options
        self._user_before = options.hooks.get("before")
        self._user_after = options.hooks.get("after")
        self._before = _match(endpoints, [h for p in plugins for h in p.before])
        self._after = _match(endpoints, [h for p in plugins for h in p.after])
        self._final = _match(endpoints, [h for p in plugins for h in p.on_response])

    def new_ctx(
        self,
        endpoint: Endpoint,
        *,
        method: str,
        headers: Mapping[str, str],
        raw_body: Any = None,
        query: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        request: Request | None = None,
        client_ip: str | None = None,
    ) -> Ctx[Any]:
        options = self.context.options
        base_url = options.base_url
        if base_url is None and request is not None:
            base_url = _request_origin(request, options.advanced.trusted_proxy_headers)
        return Ctx(
            context=self.context,
            endpoint=endpoint,
            headers=headers,
            method=method,
            raw_body=raw_body,
            query=dict(query or {}),
            params=dict(params or {}),
            request=request,
            client_ip=client_ip,
            base_url=_with_base_path(base_url or "http://localhost", options.base_path),
        )

    async def run(self, endpoint: Endpoint, ctx: Ctx[Any]) -> APIResponse:
        """The answer to `ctx`; never raises for a request."""
        try:
            response = await self._run(endpoint, ctx)
            final = self._final[endpoint.name]
            if final:  # the answer is decided: these may add headers (set-auth-token)
                sent = dict(ctx.response_headers)
                for hook in final:
                    await hook.run(ctx)
                if ctx.response_headers != sent:  # most answers: none added
                    response.headers.update(
                        {k: v for k, v in ctx.response_headers.items() if sent.get(k) != v}
                    )
            return response
        except Exception as exc:  # a request never answers a traceback
            ctx.error = failure(endpoint.path, exc)
            return response_of(ctx, ctx.error)

    async def _run(self, endpoint: Endpoint, ctx: Ctx[Any]) -> APIResponse:
        error: APIError | None = None
        location: str | None = None
        try:
            if ctx.request is not None:  # in-process calls skip them, as auth.api calls do
                await router_checks(ctx)
            answered = False
            if self._user_before is not None:
                result = await call_user(self._user_before, ctx)
                if result is not None:
                    ctx.returned, answered = result, True
            for hook in self._before[endpoint.name]:
                if answered:
                    break
                result = await hook.run(ctx)
                if result is not None:
                    ctx.returned, answered = result, True
            if not answered:
                validate(endpoint, ctx)
                for guard in endpoint.use:
                    await guard(ctx)
                if endpoint.no_store:  # set by the handler, so not on the router's errors
                    ctx.response_headers.update(_NO_STORE)
                ctx.returned = await endpoint.handler(ctx)
        except Redirect as redirect:
            location = redirect.location
        except SignInAnswered as answered_instead:  # a plugin took the sign-in over
            ctx.returned = answered_instead.answer
        except APIError as exc:
            error = exc
        ctx.error = error
        try:
            if self._user_after is not None:
                await call_user(self._user_after, ctx)
            for hook in self._after[endpoint.name]:
                await hook.run(ctx)
        except APIError as exc:
            error, location = exc, None
            ctx.error = error
        return response_of(ctx, error, location)


def _match(
    endpoints: Sequence[Endpoint], hooks: Sequence[EndpointHook]
) -> dict[str, tuple[EndpointHook, ...]]:
    return {e.name: tuple(h for h in hooks if h.match(e)) for e in endpoints}


def failure(path: str, exc: Exception) -> APIError:
    """The answer to an exception that escaped an endpoint: 503 when a storage did not
    answer, else 500; logged here, never sent to the client."""
    if isinstance(exc, DatabaseUnavailable | StorageUnavailable):
        logger.error("identity %s: %s", path, exc)
        return service_unavailable(secondary_storage=isinstance(exc, StorageUnavailable))
    logger.exception("identity %s failed", path)
    return APIError(500, Code.INTERNAL_SERVER_ERROR)


_FORWARDED_HOST = re.compile(r"[A-Za-z0-9.-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")


def _request_origin(request: Request, trust_forwarded: bool) -> str:
    scheme, host = request.url.scheme, request.url.netloc
    if trust_forwarded:
        # The first hop is the client-facing one; a malformed value falls back to the request.
        proto = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
        forwarded_host = request.headers.get("x-forwarded-host", "").split(",")[0].strip()
        if proto in ("http", "https"):
            scheme = proto
        if _FORWARDED_HOST.fullmatch(forwarded_host):
            host = forwarded_host
    return f"{scheme}://{host}"


# Every request asks it, nearly always with the same two strings (urlsplit costs ~1 µs);
# bounded, since an origin taken from a request's Host header is the client's choice.
@functools.lru_cache(maxsize=64)
def _with_base_path(base_url: str, base_path: str) -> str:
    parts = urlsplit(base_url)
    if parts.path not in ("", "/"):
        return base_url.rstrip("/")
    return f"{parts.scheme}://{parts.netloc}{base_path}"
