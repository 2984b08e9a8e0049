"""The event-stream parser (sse.py) against the WHATWG rules, fed in every possible split,
and over a real Starlette SSE endpoint (uvicorn on a port, and in-process)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp

from bastion.client import ServerSentEvent, SSEDecoder, aiter_sse, iter_sse
from tests.client.servers import thread_served

E = ServerSentEvent

CASES: list[tuple[str, bytes, list[ServerSentEvent]]] = [
    ("one event", b"data: hello\n\n", [E("message", "hello")]),
    ("named", b"event: text-delta\ndata: {}\n\n", [E("text-delta", "{}")]),
    ("multi-line data", b"data: a\ndata:  b\ndata\n\n", [E("message", "a\n b\n")]),
    ("crlf", b"event: x\r\ndata: 1\r\n\r\ndata: 2\r\n\r\n", [E("x", "1"), E("message", "2")]),
    ("cr only", b"data: 1\r\rdata: 2\r\r", [E("message", "1"), E("message", "2")]),
    (
        "comments are skipped",
        b": keep-alive\n:\ndata: x\n: in between\ndata: y\n\n",
        [E("message", "x\ny")],
    ),
    ("one space only is dropped", b"data:  two\ndata:none\n\n", [E("message", " two\nnone")]),
    ("colon in value", b'data: {"a": "b:c"}\n\n', [E("message", '{"a": "b:c"}')]),
    ("unknown fields", b"foo: bar\nevent: y\nDATA: no\ndata: z\n\n", [E("y", "z")]),
    (
        "a block without data dispatches nothing and forgets its name",
        b"event: lost\n\ndata: kept\n\n",
        [E("message", "kept")],
    ),
    ("an empty data line is data", b"data:\n\n", [E("message", "")]),
    (
        "the id carries over",
        b"id: 7\ndata: a\n\ndata: b\n\nid\ndata: c\n\n",
        [E("message", "a", "7"), E("message", "b", "7"), E("message", "c", "")],
    ),
    (
        "an id with NUL is ignored",
        b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n",
        [
            E("message", "a", "1"),
            E("message", "b", "1"),
        ],
    ),
    ("bom", b"\xef\xbb\xbfdata: a\n\n", [E("message", "a")]),
    ("unterminated last event is dropped", b"data: a\n\ndata: b\n", [E("message", "a")]),
    ("utf-8", "data: héllo ☃ 𝄞\n\n".encode(), [E("message", "héllo ☃ 𝄞")]),
    ("u+2028 is not a line end", "data: a\u2028b\n\n".encode(), [E("message", "a\u2028b")]),
    ("bad utf-8 is replaced", b"data: \xff\n\n", [E("message", "\ufffd")]),
]


def _feed(chunks: list[bytes]) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    return [event for chunk in chunks for event in decoder.feed(chunk)]


@pytest.mark.parametrize(("raw", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_parse(raw: bytes, expected: list[ServerSentEvent]) -> None:
    assert _feed([raw]) == expected


@pytest.mark.parametrize(("raw", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_parse_in_any_split(raw: bytes, expected: list[ServerSentEvent]) -> None:
    """Chunks may end anywhere: inside a field, a UTF-8 character or a CRLF pair."""
    assert _feed([raw[i : i + 1] for i in range(len(raw))]) == expected
    for cut in range(len(raw) + 1):
        assert _feed([raw[:cut], b"", raw[cut:]]) == expected, cut


def test_a_crlf_split_across_chunks_is_one_line_end() -> None:
    # Were the LF taken as a second line end, the blank line would dispatch "a" alone.
    assert _feed([b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"]) == [E("message", "a\nb")]


def test_retry() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"retry: 1500\n\n") == []
    assert decoder.retry == 1500
    decoder.feed(b"retry: soon\nretry: \xd9\xa3\n\n")  # not ASCII digits: ignored
    assert decoder.retry == 1500


# -- over HTTP ------------------------------------------------------------------------------

# Written in pieces that cut lines, a CRLF and a multi-byte character apart.
STREAM_CHUNKS = [
    b": opening comment\n",
    b"event: text-delta\r",
    b'\ndata: {"text": "caf\xc3',
    b'\xa9"}\r\n\r\n',
    b"event: finish\nda",
    b"ta: line one\ndata: line two\n",
    b"\n",
    b"data: unterminated",
]
EXPECTED = [E("text-delta", '{"text": "café"}'), E("finish", "line one\nline two")]


async def _events(request: Request) -> StreamingResponse:
    async def body() -> AsyncIterator[bytes]:
        for chunk in STREAM_CHUNKS:
            yield chunk
            await asyncio.sleep(0.005)

    return StreamingResponse(body(), media_type="text/event-stream")


@asynccontextmanager
async def _sse_app(origin: str) -> AsyncIterator[ASGIApp]:
    yield Starlette(routes=[Route("/events", _events)])


def test_iter_sse_over_a_real_server() -> None:
    with (
        thread_served(_sse_app) as origin,
        httpx.Client() as http,
        http.stream("GET", f"{origin}/events") as response,
    ):
        assert response.headers["content-type"].startswith("text/event-stream")
        assert list(iter_sse(response.iter_bytes())) == EXPECTED


async def test_aiter_sse_over_a_real_server() -> None:
    with thread_served(_sse_app) as origin:
        async with httpx.AsyncClient() as http, http.stream("GET", f"{origin}/events") as response:
            assert [e async for e in aiter_sse(response.aiter_bytes())] == EXPECTED


async def test_aiter_sse_in_process() -> None:
    async with (
        _sse_app("http://test") as app,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as http,
        http.stream("GET", "http://test/events") as response,
    ):
        assert [e async for e in aiter_sse(response.aiter_bytes())] == EXPECTED
