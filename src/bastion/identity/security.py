"""The open-redirect and Origin/CSRF rules (spec §6.3, §6.4, S19), as pure checks that
return a problem, and the endpoint guards that raise it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .endpoint import Ctx
from .errors import APIError, Code
from .origins import TrustedOrigins

__all__ = [
    "REDIRECT_FIELDS",
    "OriginProblem",
    "RedirectProblem",
    "check_form_csrf",
    "check_origin",
    "check_redirect_fields",
    "form_csrf",
    "query_callback_url",
    "router_checks",
]

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# ------------------------------------------------------------- open redirect (§6.3)


@dataclass(frozen=True, slots=True)
class RedirectProblem:
    """A redirect field that failed. `field` is the wire name (`redirectTo`); `status` is
    400 for a non-string value (`code` None: better-auth sends only the message) or 403
    for an untrusted one, with the field's code.
    """

    field: str
    status: int
    code: Code | None
    message: str


#: (wire field, label in messages, code when untrusted), in better-auth's checking order.
REDIRECT_FIELDS: tuple[tuple[str, str, Code], ...] = (
    ("callbackURL", "callbackURL", Code.INVALID_CALLBACK_URL),
    ("redirectTo", "redirectURL", Code.INVALID_REDIRECT_URL),
    ("errorCallbackURL", "errorCallbackURL", Code.INVALID_ERROR_CALLBACK_URL),
    ("newUserCallbackURL", "newUserCallbackURL", Code.INVALID_NEW_USER_CALLBACK_URL),
)


def _js_truthy(value: object) -> bool:
    """JavaScript truthiness: `[]` and `{}` are true; None, False, 0, NaN and "" false."""
    if value is None or value is False or value == "":
        return False
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value == value and value != 0  # NaN != NaN
    return True


def _query_value(query: Mapping[str, object], key: str) -> object:
    """A query parameter; repeated ones come back as a list (a non-string, as in
    better-call), when `query` is a multi-dict with `getlist` (Starlette's QueryParams)."""
    getlist = getattr(query, "getlist", None)
    if callable(getlist):
        values = list(getlist(key))
        if len(values) != 1:
            return values or None
        return values[0]
    return query.get(key)


def check_redirect_fields(
    body: Mapping[str, object] | None,
    query: Mapping[str, object],
    trusted: TrustedOrigins,
) -> RedirectProblem | None:
    """The router-wide open-redirect rule (spec §6.3), for non-GET/HEAD/OPTIONS requests.

    Checks `callbackURL` (body, else query), `redirectTo`, `errorCallbackURL` and
    `newUserCallbackURL` of the raw body in that order; relative paths are allowed.
    Falsy values (JS sense) are skipped. A body that is not a mapping has no fields.
    """
    fields = body if isinstance(body, Mapping) else {}
    for name, label, code in REDIRECT_FIELDS:
        value = fields.get(name)
        if name == "callbackURL" and not _js_truthy(value):
            value = _query_value(query, name)
        if not _js_truthy(value):
            continue
        if not isinstance(value, str):
            return RedirectProblem(name, 400, None, f"Invalid {label}: expected a string")
        if not trusted.is_trusted(value, allow_relative=True):
            return RedirectProblem(name, 403, code, code.message)
    return None


# --------------------------------------------------------------- Origin / CSRF (§6.4)


@dataclass(frozen=True, slots=True)
class OriginProblem:
    """A refused request: 403 with MISSING_OR_NULL_ORIGIN, INVALID_ORIGIN or
    CROSS_SITE_NAVIGATION_LOGIN_BLOCKED (`code`) and its message."""

    status: int
    code: Code
    message: str

    @classmethod
    def of(cls, code: Code) -> OriginProblem:
        return cls(403, code, code.message)


def _require_trusted_origin(
    headers: Mapping[str, str], trusted: TrustedOrigins
) -> OriginProblem | None:
    # A literal "null" Origin does not fall back to the Referer; an empty one does.
    origin = headers.get("origin") or headers.get("referer") or ""
    if not origin or origin == "null":
        return OriginProblem.of(Code.MISSING_OR_NULL_ORIGIN)
    if not trusted.is_trusted(origin):
        return OriginProblem.of(Code.INVALID_ORIGIN)
    return None


def check_origin(
    method: str, headers: Mapping[str, str], trusted: TrustedOrigins
) -> OriginProblem | None:
    """Rule A (`validateOrigin`): a state-changing request that carries any `Cookie`
    header (even an unrelated cookie) needs an `Origin`, else a `Referer`, that is trusted.

    `headers` is looked up with lower-case names: pass Starlette's `Headers` (which is
    case-insensitive) or a dict with lower-case keys. GET, HEAD and OPTIONS pass; requests
    without cookies (bearer, server-to-server) pass. The caller skips this when
    `disable_csrf_check` (or, alone, `disable_origin_check`) is set.
    """
    if method in _SAFE_METHODS or "cookie" not in headers:
        return None
    return _require_trusted_origin(headers, trusted)


def check_form_csrf(
    method: str, headers: Mapping[str, str], trusted: TrustedOrigins
) -> OriginProblem | None:
    """Rule B (`formCsrfMiddleware`), for sign-up/sign-in style endpoints a browser form
    may post to without cookies (login CSRF):

    * with a `Cookie` header, rule A;
    * else with any non-blank `Sec-Fetch-Site`/`-Mode`/`-Dest`: `site=cross-site` with
      `mode=navigate` is refused whatever the Origin; otherwise the Origin (or Referer)
      must be present and trusted;
    * else an Origin or Referer, when sent, must be trusted (`null` is refused);
    * else (curl, server-to-server) the request passes.

    Header names as for `check_origin`; the Fetch-Metadata values are compared
    case-insensitively.
    """
    if method in _SAFE_METHODS:
        return None
    if "cookie" in headers:
        return _require_trusted_origin(headers, trusted)
    site = (headers.get("sec-fetch-site") or "").strip().lower()
    mode = (headers.get("sec-fetch-mode") or "").strip().lower()
    dest = (headers.get("sec-fetch-dest") or "").strip().lower()
    if site or mode or dest:
        if site == "cross-site" and mode == "navigate":
            return OriginProblem.of(Code.CROSS_SITE_NAVIGATION_LOGIN_BLOCKED)
        return _require_trusted_origin(headers, trusted)
    if headers.get("origin") or headers.get("referer"):
        return _require_trusted_origin(headers, trusted)
    return None


# --------------------------------------------------------------------------- guards


def _raise(problem: OriginProblem | RedirectProblem) -> None:
    raise APIError(problem.status, problem.code, problem.message)


async def router_checks(ctx: Ctx[Any]) -> None:
    """On every state-changing request: the Origin check, then the redirect fields."""
    if ctx.method in _SAFE_METHODS:
        return
    advanced = ctx.options.advanced
    trusted = await ctx.trusted_origins()
    if not advanced.disable_csrf_check:
        problem = check_origin(ctx.method, ctx.received_headers, trusted)
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
    trusted = await ctx.trusted_origins()
    problem = check_form_csrf(ctx.method, ctx.received_headers, trusted)
    if problem is not None:
        _raise(problem)


async def query_callback_url(ctx: Ctx[Any]) -> None:
    """GET endpoints that redirect check their own ?callbackURL (spec §6.3)."""
    url = ctx.query.get("callbackURL")
    if not url or ctx.options.advanced.disable_origin_check:
        return
    trusted = await ctx.trusted_origins()
    if not trusted.is_trusted(url, allow_relative=True):
        raise APIError(403, Code.INVALID_CALLBACK_URL)
