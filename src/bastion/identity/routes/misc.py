"""GET /ok and GET /error."""

from __future__ import annotations

import html
import re
from typing import Any

from ..endpoint import Ctx, Endpoint

__all__ = ["ENDPOINTS", "ErrorPage"]


async def ok(ctx: Ctx[Any]) -> dict[str, Any]:
    return {"ok": True}


class ErrorPage(str):
    """A handler result rendered as text/html rather than JSON."""


_SAFE = re.compile(r"[A-Za-z0-9_'\-]+")  # matched whole: `$` would let "CODE\n" through


async def error_page(ctx: Ctx[Any]) -> ErrorPage:
    code = ctx.query.get("error") or "UNKNOWN"
    if not isinstance(code, str) or not _SAFE.fullmatch(code):
        code = "UNKNOWN"
    description = ctx.query.get("error_description")
    text = html.escape(description) if isinstance(description, str) else ""
    return ErrorPage(
        '<!DOCTYPE html><html><head><meta charset="utf-8"><title>Error</title></head>'
        f"<body><h1>Something went wrong</h1><p><code>{html.escape(code)}</code></p>"
        f"<p>{text}</p></body></html>"
    )


ENDPOINTS = (
    Endpoint("/ok", ("GET",), ok, name="ok"),
    Endpoint("/error", ("GET",), error_page, name="error"),
)
