"""GET /ok and GET /error."""

from __future__ import annotations

import html
import re
from typing import Any

from ..endpoint import Ctx, Endpoint, RawResponse

__all__ = ["ENDPOINTS"]


async def ok(ctx: Ctx[Any]) -> dict[str, Any]:
    return {"ok": True}


_SAFE = re.compile(r"[A-Za-z0-9_'\-]+")  # matched whole: `$` would let "CODE\n" through


async def error_page(ctx: Ctx[Any]) -> RawResponse:
    code = ctx.query.get("error") or "UNKNOWN"
    if not isinstance(code, str) or not _SAFE.fullmatch(code):
        code = "UNKNOWN"
    description = ctx.query.get("error_description")
    text = html.escape(description) if isinstance(description, str) else ""
    # text/html without a charset parameter, as better-auth; the page declares its own.
    return RawResponse(
        '<!DOCTYPE html><html><head><meta charset="utf-8"><title>Error</title></head>'
        f"<body><h1>Something went wrong</h1><p><code>{html.escape(code)}</code></p>"
        f"<p>{text}</p></body></html>",
        media_type="text/html",
    )


ENDPOINTS = (
    Endpoint("/ok", ("GET",), ok, name="ok"),
    Endpoint("/error", ("GET",), error_page, name="error"),
)
