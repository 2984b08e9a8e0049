"""One Bastion identity server process for the benchmarks (started by bench/_harness.py).

    python bench/_bastion_server.py --database postgresql://postgres@127.0.0.1:5432/db \
        --port 8001 [--cookie-cache] [--loop uvloop|asyncio] [--http httptools|h11]

Serves `Identity(email_and_password enabled, bearer plugin, rate limiting off)` at /api/auth
with uvicorn (one worker, no access log) in this very process, so that its pid is the one
whose CPU and memory are read; on 127.0.0.1 only. Options come from the command line: this
file is the edge.
"""

from __future__ import annotations

import argparse

import uvicorn

from bastion.identity import Identity, bearer

SECRET = "bastion-bench-secret-0123456789abcdef0123456789abcdef"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--database", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cookie-cache", action="store_true")
    parser.add_argument("--loop", default="uvloop", choices=("uvloop", "asyncio"))
    parser.add_argument("--http", default="httptools", choices=("httptools", "h11"))
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
    uvicorn.run(
        identity.app,
        host="127.0.0.1",
        port=args.port,
        workers=1,
        loop=args.loop,
        http=args.http,
        lifespan="on",
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
