"""What the API's handlers share: the error type, JSON in and out, body parsing."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic_core import PydanticSerializationError, to_json
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from ...auth.context import RequestContext, strip_reserved
from ...errors import HTTPError
from ...identity._untrusted import InvalidInput, NotJSON, describe_path, parse_json

__all__ = [
    "JSON",
    "HTTPError",
    "json_response",
    "merge_request_context",
    "read_json_object",
]

DEFAULT_MAX_BODY = 1024 * 1024


class JSON(Response):
    """JSON through pydantic-core: dates, UUIDs, dataclasses and models render as JSON data;
    NaN and infinities as null (JSON has no such numbers)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        try:
            return to_json(content, inf_nan_mode="null")
        except PydanticSerializationError as exc:
            raise TypeError(f"the response is not JSON data: {exc}") from exc


def json_response(
    content: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return JSON(content, status_code=status, headers=headers)


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


async def read_json_object(request: Request, limit: int = DEFAULT_MAX_BODY) -> dict[str, Any]:
    """The body as a JSON object (an empty body is `{}`).

    `Content-Type: application/json` is required: a cross-site form can send a cookie but
    not that header without a CORS preflight, so this also keeps cookie sessions safe from
    cross-site requests.
    """
    if not _is_json(request.headers.get("content-type")):
        raise HTTPError(415, "Content-Type must be application/json")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPError(413, "Request body too large")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise HTTPError(413, "Request body too large")
            chunks.append(chunk)
    except ClientDisconnect:  # hung up, or cut off by the server's body timeout
        raise HTTPError(400, "The client disconnected before the body arrived") from None
    raw = b"".join(chunks)
    if not raw.strip():
        return {}
    try:
        body = parse_json(raw)
    except NotJSON:
        raise HTTPError(400, "Invalid JSON body") from None
    except InvalidInput as exc:  # too deep, a NUL, a lone surrogate: refused before use
        raise HTTPError(
            400, f"{describe_path(exc.path, 'The request body')} {exc.reason}"
        ) from None
    if not isinstance(body, dict):
        raise HTTPError(400, "The request body must be a JSON object")
    return body


def merge_request_context(context: RequestContext, body: Mapping[str, Any]) -> None:
    """A client's `requestContext` into the context, without the keys only the pipeline sets."""
    values = body.get("requestContext")
    if values is None:
        return
    if not isinstance(values, dict):
        raise HTTPError(400, "requestContext must be an object")
    context.values.update(strip_reserved(values))
