"""CPU time per request of the identity app itself, without HTTP: a tool for profiling.

    python bench/inprocess.py [--requests 20000] [--concurrency 16] [--rounds 3]
                              [--sessions 20000] [--profile out.prof]

Calls the ASGI app (`identity.app`) directly — no socket, no uvicorn — with `--concurrency`
callers on uvloop, on a scratch PostgreSQL database `bastion_bench_*` (dropped at the end), and
prints the process CPU time per request (the lowest of `--rounds` rounds) for: `/ok`;
get-session with a valid cookie, without and with the cookie cache; `Store.find_session`
alone; and get-session with the cookie cache where each request carries the next of
`--sessions` distinct session cookies (default 20,000: more than the memo of verified values
holds, so each is verified afresh; made as bench/get_session.py makes them, from the
sign-in's own, for sessions the cache vouches for without storage). These are the app's own
costs (plus this script's few µs of ASGI plumbing); the figures of docs/benchmarks.md add
those of the HTTP server (≈ 0.04-0.05 ms per request on the benchmark machine).
`--profile` writes a cProfile of the get-session runs (open it with `python -m pstats`).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import uvloop
from _harness import EMAIL, PASSWORD, SECRET, install_limits, log, scratch_database, seed

from bastion.identity import Identity, bearer
from bastion.identity.cookies import (
    encode_cookie_cache,
    parse_cookie_header,
    sign_cookie_value,
    verify_cookie_cache,
)
from bastion.identity.crypto import generate_id

ORIGIN = "http://127.0.0.1:8000"


def _scope(method: str, path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8000"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


async def call(
    app: Any, method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes = b""
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(_scope(method, path, headers), receive, send)
    return sent[0]["status"], sent[0]["headers"], sent[1]["body"]


async def sign_in(app: Any) -> list[tuple[bytes, bytes]]:
    body = f'{{"email":"{EMAIL}","password":"{PASSWORD}"}}'.encode()
    status, headers, _ = await call(
        app,
        "POST",
        "/api/auth/sign-in/email",
        [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        body,
    )
    assert status == 200, status
    cookie = "; ".join(v.decode().split(";", 1)[0] for k, v in headers if k == b"set-cookie")
    return [(b"cookie", cookie.encode())]


async def cpu_per_call(
    fn: Callable[[], Awaitable[Any]], requests: int, concurrency: int, rounds: int
) -> tuple[float, float]:
    """(CPU ms per call, wall ms per call) with `concurrency` tasks sharing `requests` calls:
    the lowest of `rounds` rounds (others' load only ever adds)."""
    for _ in range(min(200, requests)):  # warm-up
        await fn()
    best = (float("inf"), float("inf"))
    for _ in range(rounds):
        left = requests

        async def worker() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                await fn()

        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        best = min(best, (1000 * cpu / requests, 1000 * wall / requests))
    return best


async def measure(
    database_url: str, args: argparse.Namespace, cache: bool, profile: cProfile.Profile | None
) -> None:
    identity = Identity(
        secret=SECRET,
        base_url=ORIGIN,
        database=database_url,
        email_and_password={"enabled": True},
        session={"cookie_cache": {"enabled": cache}},
        rate_limit={"enabled": False},
        plugins=[bearer()],
        env={},
    )
    app = identity.app
    try:
        headers = await sign_in(app)
        status, _, body = await call(app, "GET", "/api/auth/get-session", headers)
        assert status == 200 and body != b"null", (status, body)
        found = await identity.api.get_session(headers={"cookie": headers[0][1].decode()})
        token = found["session"]["token"]

        async def get_session() -> None:
            status, _, _ = await call(app, "GET", "/api/auth/get-session", headers)
            assert status == 200

        async def ok() -> None:
            await call(app, "GET", "/api/auth/ok", [])

        async def find_session() -> None:
            assert await identity.store.find_session(token) is not None

        runs = (args.requests, args.concurrency, args.rounds)
        if not cache:
            cpu, wall = await cpu_per_call(ok, *runs)
            print(f"/ok                      {cpu:8.4f} ms CPU  {wall:7.3f} ms wall")
            cpu, wall = await cpu_per_call(find_session, *runs)
            print(f"Store.find_session       {cpu:8.4f} ms CPU  {wall:7.3f} ms wall")
        if profile is not None:
            profile.enable()
        cpu, wall = await cpu_per_call(get_session, *runs)
        if profile is not None:
            profile.disable()
        label = "+cache" if cache else ""
        print(f"get-session {label:<12} {cpu:8.4f} ms CPU  {wall:7.3f} ms wall")
        if cache and args.sessions:
            many = distinct_sessions(headers[0][1].decode(), args.sessions)
            turn = 0

            async def get_many() -> None:
                nonlocal turn
                turn += 1
                status, _, body = await call(
                    app, "GET", "/api/auth/get-session", many[turn % len(many)]
                )
                assert status == 200 and body != b"null", (status, body)

            cpu, wall = await cpu_per_call(get_many, *runs)
            label = f"+cache, {args.sessions} sessions"
            print(f"get-session {label:<12} {cpu:8.4f} ms CPU  {wall:7.3f} ms wall")
    finally:
        await identity.close()


def distinct_sessions(cookie: str, count: int) -> list[list[tuple[bytes, bytes]]]:
    """`count` Cookie headers, each a session of its own with its own session_data: the
    sign-in's cookie cache re-encoded with a new session id and token."""
    jar = parse_cookie_header(cookie)
    data_name = next(name for name in jar if name.endswith("session_data"))
    token_name = next(name for name in jar if name.endswith("session_token"))
    verified = verify_cookie_cache(SECRET, jar[data_name])
    assert verified is not None, "the sign-in's session_data does not verify"
    payload, expires_at = verified
    now_ms = int(time.time() * 1000)
    made = []
    for _ in range(count):
        token = generate_id()
        session = {**payload["session"], "id": generate_id(), "token": token}
        data = encode_cookie_cache(
            SECRET, session, payload["user"], max(int(expires_at - now_ms) // 1000, 1), now_ms
        )
        line = f"{token_name}={sign_cookie_value(SECRET, token)}; {data_name}={data}"
        made.append([(b"cookie", line.encode())])
    return made


async def run(database_url: str, args: argparse.Namespace) -> None:
    profile = cProfile.Profile() if args.profile else None
    for cache in (False, True):
        await measure(database_url, args, cache, profile)
    if profile is not None:
        profile.dump_stats(args.profile)
        log(f"wrote {args.profile}")


def main() -> int:
    parser = argparse.ArgumentParser(description="CPU per request of the identity app, in-process")
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3, help="report the lowest of these")
    parser.add_argument("--profile", help="write a cProfile of the get-session runs here")
    parser.add_argument(
        "--sessions",
        type=int,
        default=20_000,
        help="distinct sessions of the last row (0: no such row)",
    )
    args = parser.parse_args()
    install_limits(900)
    with scratch_database() as database_url:
        seed(database_url)
        uvloop.run(run(database_url, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
