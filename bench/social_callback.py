"""The social sign-in callback's own server time, without the provider's round trips.

Run (from the repository root, in the venv; about 30 s):

    python bench/social_callback.py [--flows 200] [--database sqlite|postgresql]

Needs Node with tests/e2e/node installed (the OpenID Provider stand-in,
tests/e2e/node/oidc-login-provider.mjs: panva's oidc-provider, in its own process), and for
`--database postgresql` PostgreSQL at $BENCH_PG_URL.

Each flow is what a browser does: POST /sign-in/social (generic OIDC provider with
discovery), the provider's login form, then GET /callback/corp, on the Identity's ASGI app
in this process (no HTTP server: the figures are the app's own). The callback validates and
consumes the state, exchanges the code at the provider, verifies the ID token against the
provider's keys (the JWKS cache is warm after the first flow), finds or creates the user
and account, and creates the session with its cookies. Its wall time includes the provider's
answers (the token endpoint, in the Node process); the CPU time of this process during the
callback does not: that is Bastion's own work for the callback (the HTTP client's share of
the provider calls included). The first flow of each kind is a warm-up and not counted.

Prints the median and p90 of both, for a first sign-in (a new user and account) and a
returning one (the account found, its tokens updated).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _harness import log, machine, scratch_database
from tests.identity.social.login_pages import sign_in
from tests.identity.social.standins import oidc_provider

from bastion.identity import Identity, generic_oauth

ORIGIN = "http://127.0.0.1:4111"
SECRET = "bastion-bench-secret-0123456789abcdef0123456789abcdef"


async def flows(identity: Identity, count: int, login_of: Any) -> tuple[list[float], list[float]]:
    """`count` sign-ins; the callback's CPU and wall time (ms) of each."""
    cpu: list[float] = []
    wall: list[float] = []
    transport = httpx.ASGITransport(app=identity.app)
    async with httpx.AsyncClient(
        transport=transport, base_url=ORIGIN, headers={"origin": ORIGIN}
    ) as client:
        for number in range(count):
            client.cookies.clear()
            started = await client.post(
                "/api/auth/sign-in/social", json={"provider": "corp", "callbackURL": "/"}
            )
            callback = await asyncio.to_thread(sign_in, started.json()["url"], login_of(number))
            path = urlsplit(callback.url).path
            cpu_start, wall_start = time.process_time(), time.perf_counter()
            response = await client.get(path, params=callback.params)
            cpu.append(1000 * (time.process_time() - cpu_start))
            wall.append(1000 * (time.perf_counter() - wall_start))
            location = response.headers.get("location", "")
            if response.status_code != 302 or "error=" in location:
                raise SystemExit(f"flow {number}: {response.status_code} {location}")
    return cpu[1:], wall[1:]


def summary(values: list[float]) -> str:
    ordered = sorted(values)
    p90 = ordered[int(0.9 * (len(ordered) - 1))]
    return f"median {statistics.median(ordered):6.2f} ms   p90 {p90:6.2f} ms"


async def run(args: argparse.Namespace, database: str) -> None:
    users = {
        f"user{n}": {"email": f"user{n}@example.com", "email_verified": True, "name": f"U{n}"}
        for n in range(args.flows + 1)
    }
    client = {
        "client_id": "bench-app",
        "client_secret": "bench-secret",
        "token_endpoint_auth_method": "client_secret_post",
        "redirect_uris": [f"{ORIGIN}/api/auth/callback/corp"],
    }
    with oidc_provider(clients=[client], users=users) as idp:
        identity = Identity(
            secret=SECRET,
            base_url=f"{ORIGIN}/api/auth",
            database=database,
            env={},
            plugins=[
                generic_oauth(
                    config=[
                        {
                            "provider_id": "corp",
                            "discovery_url": idp.discovery_url,
                            "client_id": "bench-app",
                            "client_secret": "bench-secret",
                            "scopes": ["openid", "email", "profile"],
                        }
                    ]
                )
            ],
        )
        await identity.migrate()
        try:
            first_cpu, first_wall = await flows(identity, args.flows + 1, lambda n: f"user{n}")
            again_cpu, again_wall = await flows(identity, args.flows + 1, lambda n: f"user{n}")
        finally:
            await identity.close()
    print(f"\nGET /callback/{{id}}, {args.flows} flows each, database {args.database}")
    print(f"first sign-in     CPU {summary(first_cpu)}   wall {summary(first_wall)}")
    print(f"returning user    CPU {summary(again_cpu)}   wall {summary(again_wall)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--flows", type=int, default=200)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    args = parser.parse_args()
    log(f"machine: {machine()}")
    if args.database == "sqlite":
        asyncio.run(run(args, "sqlite+aiosqlite:///:memory:"))
    else:
        with scratch_database() as url:
            asyncio.run(run(args, url))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
