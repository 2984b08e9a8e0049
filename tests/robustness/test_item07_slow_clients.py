"""Issue 11, item 7: slow clients cannot hold the server (security check S42,
"slow-client timeouts").

uvicorn alone waited forever for a request to begin, for its head and for its body, so a
connection that sent nothing, or a byte now and then, stayed open indefinitely; an aborted
upload logged a `ClientDisconnect` traceback. `bastion serve` now closes a connection that
stays silent (`--idle-timeout`) or does not deliver its head in time (`--header-timeout`),
answers 408 to a body that does not arrive in time (`--body-timeout`), refuses an oversized
head, answers 503 past `--limit-concurrency`, and takes hang-ups quietly. Both HTTP
implementations are covered: httptools (the default) and h11 (the fallback where httptools
cannot be installed).

Each test drives a real `bastion serve` subprocess with raw sockets, with 1-second limits.
"""

from __future__ import annotations

import json
import select
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.test_cli import SECRET, Server, bastion_serve

IMPLEMENTATIONS = ["h11", "httptools"]
SHORT = ["--header-timeout", "1", "--idle-timeout", "1", "--body-timeout", "1"]
PATIENCE = 10.0  # seconds a test waits for the server to act on a 1-second limit

SLOW_APP = f'''
import asyncio
from pathlib import Path

from bastion.auth import SimpleAuth
from bastion.identity import Identity
from bastion.server import Agent, Bastion, LocalModel, route, tool


@tool
async def pause(seconds: float) -> dict[str, float]:
    """Wait this long, then say so."""
    await asyncio.sleep(seconds)
    return {{"waited": seconds}}


async def echo(request):
    return await request.json()  # a custom route reads the body itself


app = Bastion(
    agents=[Agent(name="slow", instructions="", model=LocalModel(), tools=[pause])],
    routes=[route("/echo", echo, methods=["POST"])],
    auth=SimpleAuth({{"key-1": {{"id": "robot"}}}}),
    identity=Identity(
        secret="{SECRET}",
        database=f"sqlite:///{{Path(__file__).with_name('identity.db')}}",
        email_and_password={{"enabled": True}},
    ),
)
'''

# A JSON upload to each body reader: the Identity's, the agent server's, a custom route's.
UPLOADS = {
    "identity": "POST /api/auth/sign-in/email HTTP/1.1\r\nHost: t\r\n",
    "agent server": (
        "POST /api/agents/slow/generate HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer key-1\r\n"
    ),
    "custom route": "POST /api/echo HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer key-1\r\n",
}


@contextmanager
def serve_slow_app(folder: Path, *args: str) -> Iterator[Server]:
    (folder / "slow_app.py").write_text(SLOW_APP)
    with bastion_serve("slow_app:app", *args, cwd=folder, env={"BASTION_SECRET": SECRET}) as up:
        yield up


@pytest.fixture(scope="module", params=IMPLEMENTATIONS)
def slow_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """One server per HTTP implementation for the tests that only look at the wire."""
    with serve_slow_app(tmp_path_factory.mktemp("slow"), "--http", request.param, *SHORT) as up:
        yield up


# -- raw sockets ---------------------------------------------------------------------------


def connect(server: Server) -> socket.socket:
    url = urlsplit(server.url)
    assert url.hostname is not None and url.port is not None
    return socket.create_connection((url.hostname, url.port), timeout=PATIENCE)


def until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection; fails if it does not
    close within PATIENCE seconds."""
    received = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return received
        except TimeoutError:
            raise AssertionError(f"still open after {PATIENCE} s; received {received!r}") from None
        if not chunk:
            return received
        received += chunk


def answered(sock: socket.socket, wait: float) -> bool:
    """Whether the server sent something (or closed) within `wait` seconds."""
    readable, _, _ = select.select([sock], [], [], wait)
    return bool(readable)


def trickle(sock: socket.socket, pieces: list[bytes], every: float) -> int:
    """Send `pieces` one by one, `every` seconds apart, until the server answers or closes;
    how many were sent."""
    for sent, piece in enumerate(pieces):
        try:
            sock.sendall(piece)
        except (BrokenPipeError, ConnectionResetError):
            return sent
        if answered(sock, every):
            return sent + 1
    return len(pieces)


def response(sock: socket.socket) -> tuple[bytes, bytes]:
    """One response with a Content-Length: (head, body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed mid-response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "closed mid-body"
        body += chunk
    return head, body


# -- the deadlines ---------------------------------------------------------------------------


def test_item07_a_connection_that_sends_nothing_is_closed(slow_server: Server) -> None:
    with connect(slow_server) as sock:
        assert until_closed(sock) == b""


def test_item07_trickled_headers_are_cut_off(slow_server: Server) -> None:
    # 40 header lines a quarter second apart: the head would take 10 s to arrive.
    pieces = [b"GET /health HTTP/1.1\r\n"] + [b"X-Slow-%d: yes\r\n" % i for i in range(40)]
    with connect(slow_server) as sock:
        sent = trickle(sock, [*pieces, b"\r\n"], every=0.25)
        assert sent < len(pieces)  # cut off before the head was complete
        assert until_closed(sock) == b""  # closed, nothing answered


@pytest.mark.parametrize("reader", list(UPLOADS))
def test_item07_a_stalled_body_gets_408(slow_server: Server, reader: str) -> None:
    head = UPLOADS[reader] + "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    with connect(slow_server) as sock:
        sock.sendall(head.encode() + b'{"email":')  # and nothing more
        assert until_closed(sock).startswith(b"HTTP/1.1 408 ")


@pytest.mark.parametrize("reader", list(UPLOADS))
def test_item07_a_trickled_body_gets_408(slow_server: Server, reader: str) -> None:
    head = UPLOADS[reader] + "Content-Type: application/json\r\nContent-Length: 40\r\n\r\n"
    body = b'{"messages": "a body that comes slowly"}'
    assert len(body) == 40
    with connect(slow_server) as sock:
        sock.sendall(head.encode())
        # A byte every quarter second keeps arriving, but the whole would take 10 s.
        sent = trickle(sock, [body[i : i + 1] for i in range(len(body))], every=0.25)
        assert sent < len(body)
        assert until_closed(sock).startswith(b"HTTP/1.1 408 ")


def test_item07_an_oversized_head_is_refused(slow_server: Server) -> None:
    head = b"GET /health HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 1_000_000 + b"\r\n\r\n"
    with connect(slow_server) as sock:
        trickle(sock, [head[i : i + 16384] for i in range(0, len(head), 16384)], every=0)
        assert until_closed(sock).startswith(b"HTTP/1.1 400 ")


def test_item07_keep_alive_works_then_an_idle_connection_is_closed(slow_server: Server) -> None:
    with connect(slow_server) as sock:
        for _ in range(3):
            sock.sendall(b"GET /api/auth/ok HTTP/1.1\r\nHost: t\r\n\r\n")
            head, body = response(sock)
            assert head.startswith(b"HTTP/1.1 200 ")
            assert json.loads(body) == {"ok": True}
        assert until_closed(sock) == b""  # silent after the third answer


def test_item07_a_busy_kept_alive_connection_outlives_the_deadlines(slow_server: Server) -> None:
    # Each request comes 0.6 s after the previous answer, within the 1 s limits, for 3 s in
    # all: each deadline restarts with each request, and none left over from an earlier one
    # closes the connection.
    with connect(slow_server) as sock:
        for _ in range(5):
            time.sleep(0.6)
            sock.sendall(b"GET /api/auth/ok HTTP/1.1\r\nHost: t\r\n\r\n")
            head, body = response(sock)
            assert head.startswith(b"HTTP/1.1 200 ")
            assert json.loads(body) == {"ok": True}
        assert until_closed(sock) == b""  # then idle: closed


def test_item07_normal_requests_and_a_stream_longer_than_the_timeouts(
    slow_server: Server,
) -> None:
    with httpx.Client(base_url=slow_server.url, timeout=PATIENCE) as http:
        signed_up = http.post(
            "/api/auth/sign-up/email",
            json={"name": "Ada", "email": "ada@example.com", "password": "password123"},
        )
        assert signed_up.status_code == 200, signed_up.text
        # The tool waits 2 s: twice every limit, while the stream is in progress.
        with http.stream(
            "POST",
            "/api/agents/slow/stream",
            json={"messages": 'use pause {"seconds": 2}'},
            headers={"authorization": "Bearer key-1"},
        ) as streamed:
            assert streamed.status_code == 200
            text = "".join(streamed.iter_text())
        assert '"result":{"waited":2.0}' in text
        assert "event: finish" in text


# -- quiet hang-ups ----------------------------------------------------------------------------


@pytest.mark.parametrize("http", IMPLEMENTATIONS)
def test_item07_hang_ups_and_timeouts_log_no_traceback(tmp_path: Path, http: str) -> None:
    with serve_slow_app(tmp_path, "--http", http, *SHORT) as server:
        for head in UPLOADS.values():  # an upload aborted half way
            with connect(server) as sock:
                sock.sendall(
                    head.encode()
                    + b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
                    + b'{"email":'
                )
            with connect(server) as sock:  # one cut off by the body timeout
                sock.sendall(
                    head.encode() + b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
                )
                assert until_closed(sock).startswith(b"HTTP/1.1 408 ")
        with connect(server) as sock:  # a stream left while its tool runs
            body = json.dumps({"messages": 'use pause {"seconds": 3600}'}).encode()
            sock.sendall(
                b"POST /api/agents/slow/stream HTTP/1.1\r\nHost: t\r\n"
                b"Authorization: Bearer key-1\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
            )
            received = b""
            while b"event: tool-call" not in received:
                chunk = sock.recv(65536)
                assert chunk, received
                received += chunk
        assert httpx.get(f"{server.url}/api/auth/ok").status_code == 200
    # Stopped: the stream's task ended with its client (else the shutdown would wait).
    assert "Traceback" not in server.output, server.output
    assert "ERROR" not in server.output, server.output
    assert "Application shutdown complete" in server.output


# -- the concurrency limit ---------------------------------------------------------------------


@pytest.mark.parametrize("http", IMPLEMENTATIONS)
def test_item07_past_the_concurrency_limit_is_a_clean_503(tmp_path: Path, http: str) -> None:
    with serve_slow_app(tmp_path, "--http", http, "--limit-concurrency", "2") as server:
        body = json.dumps({"messages": 'use pause {"seconds": 3600}'}).encode()
        with connect(server) as busy:  # one stream in progress
            busy.sendall(
                b"POST /api/agents/slow/stream HTTP/1.1\r\nHost: t\r\n"
                b"Authorization: Bearer key-1\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
            )
            assert busy.recv(65536).startswith(b"HTTP/1.1 200 ")
            refused = httpx.get(f"{server.url}/api/auth/ok")
            assert refused.status_code == 503
            assert refused.text == "Service Unavailable"
            assert refused.headers["connection"] == "close"
        # The stream's client is gone: the server serves again once it has noticed.
        deadline = time.monotonic() + PATIENCE
        while httpx.get(f"{server.url}/api/auth/ok").status_code == 503:
            assert time.monotonic() < deadline, "still 503 after the stream ended"
            time.sleep(0.05)
    assert "Traceback" not in server.output


def test_item07_workers_get_the_same_limits(tmp_path: Path) -> None:
    with serve_slow_app(tmp_path, "--workers", "2", *SHORT) as server:
        # New connections, so that either worker may take them.
        for _ in range(4):
            with connect(server) as sock:
                assert until_closed(sock) == b""
            with connect(server) as sock:
                sock.sendall(
                    UPLOADS["identity"].encode()
                    + b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
                )
                assert until_closed(sock).startswith(b"HTTP/1.1 408 ")
    assert server.output.count("Started server process") == 2
