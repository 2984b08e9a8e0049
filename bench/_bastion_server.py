"""One Bastion identity server process for the benchmarks (started by bench/_harness.py).

    python bench/_bastion_server.py --database postgresql://postgres@127.0.0.1:5432/db \
        --port 8001 [--cookie-cache] [--loop uvloop|asyncio] [--http httptools|h11] \
        [--server uvicorn|bastion|granian]

Serves `Identity(email_and_password enabled, bearer plugin, rate limiting off)` at /api/auth
in this very process (one worker, no access log), so that its pid is the one whose CPU and
memory are read; on 127.0.0.1 only. The server:

    uvicorn   uvicorn with its own protocol classes (`--loop`, `--http`)
    bastion   uvicorn with the protocol classes of `bastion serve`: its deadlines for slow
              clients, head-size and concurrency limits, no proxy headers (`--loop`, `--http`)
    granian   granian's embedded server (its Rust HTTP/1.1 core; the app on uvloop)

Options come from the command line: this file is the edge.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import uvicorn

from bastion._http_server import HttpLimits, HttpProtocol
from bastion.identity import Identity, bearer

SECRET = "bastion-bench-secret-0123456789abcdef0123456789abcdef"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--database", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cookie-cache", action="store_true")
    parser.add_argument("--loop", default="uvloop", choices=("uvloop", "asyncio"))
    parser.add_argument("--http", default="httptools", choices=("httptools", "h11"))
    parser.add_argument("--server", default="uvicorn", choices=("uvicorn", "bastion", "granian"))
    args = parser.parse_args()

    origin = f"http://127.0.0.1:{args.port}"
    identity = Identity(
        secret=SECRET,
        base_url=origin,
        database=args.database,
        email_and_password={"enabled": True},
        session={"cookie_cache": {"enabled": args.cookie_cache}},
        rate_limit={"enabled": False},  # as the better-auth server runs (RATE_LIMIT unset)
        plugins=[bearer()],
    )
    if args.server == "granian":
        serve_granian(identity.app, args.port)
        return
    limits = HttpLimits()
    http: Any = args.http if args.server == "uvicorn" else HttpProtocol(args.http, limits)
    uvicorn.run(
        identity.app,
        host="127.0.0.1",
        port=args.port,
        workers=1,
        loop=args.loop,
        http=http,
        lifespan="on",
        access_log=False,
        log_level="warning",
        **(
            {}
            if args.server == "uvicorn"
            else {  # as bastion._http_server.run sets them
                "limit_concurrency": limits.limit_concurrency,
                "timeout_keep_alive": limits.idle_timeout,
                "h11_max_incomplete_event_size": limits.max_head_size,
                "proxy_headers": False,
            }
        ),
    )


def serve_granian(app: Any, port: int) -> None:
    """granian in this process (its embedded server), one Rust runtime thread, ASGI with the
    lifespan, the app's coroutines on uvloop as granian's `--loop auto` would choose."""
    import uvloop
    from granian.constants import Interfaces
    from granian.log import LogLevels
    from granian.server.embed import Server

    server = Server(
        app,
        address="127.0.0.1",
        port=port,
        interface=Interfaces.ASGI,
        log_level=LogLevels.warning,
        log_access=False,
    )
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    asyncio.run(server.serve())


if __name__ == "__main__":
    main()
