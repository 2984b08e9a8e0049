"""One bounded GET of a key set or discovery document, and how long its answer may be
cached. No redirects are followed; a body larger than `max_bytes` is a failure."""

from __future__ import annotations

import httpx

__all__ = ["FetchFailed", "Fetched", "fetch_document", "max_age"]


class FetchFailed(Exception):
    """The answer is unusable (status, size, content); recorded by the cache, never raised
    to a verifier."""


Fetched = tuple[int, httpx.Headers, bytes]


async def fetch_document(
    client: httpx.AsyncClient | None,
    url: str,
    *,
    etag: str | None,
    http_timeout: float,
    max_bytes: int,
) -> Fetched:
    """Status, headers and body (empty unless 200) of a GET of `url`, with `If-None-Match`
    when an `etag` is known; through `client`, or a client of its own (with `http_timeout`)
    when None. The caller bounds the whole fetch."""
    headers = {"Accept": "application/json"}
    if etag:
        headers["If-None-Match"] = etag
    if client is not None:
        return await _read(client, url, headers, max_bytes)
    async with httpx.AsyncClient(timeout=http_timeout, follow_redirects=False) as own:
        return await _read(own, url, headers, max_bytes)


async def _read(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], max_bytes: int
) -> Fetched:
    async with client.stream("GET", url, headers=headers, follow_redirects=False) as response:
        body = bytearray()
        if response.status_code == 200:
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > max_bytes:
                    raise FetchFailed(f"document larger than {max_bytes} bytes")
        return response.status_code, response.headers, bytes(body)


def max_age(headers: httpx.Headers) -> float | None:
    """Seconds a response may be cached by its Cache-Control, or None when it does not say;
    0 for no-store / no-cache."""
    value = headers.get("cache-control")
    if not value:
        return None
    found: float | None = None
    for directive in value.lower().split(","):
        name, _, argument = directive.strip().partition("=")
        if name in ("no-store", "no-cache"):
            return 0.0
        if name == "max-age":
            try:
                found = max(0.0, float(int(argument.strip().strip('"'))))
            except ValueError:
                continue
    return found
