"""Agent-server processes for bench/server_auth.py and bench/stream_overhead.py.

Not a benchmark itself. Two halves:

* run as a script, it is one server process (uvicorn, one worker, no access log, 127.0.0.1):

      python bench/_server_apps.py --variant identity-cache --port 8001 \\
          --database postgresql://postgres@127.0.0.1:5432/db [--loop uvloop] [--http httptools]

  serving one of VARIANTS — a `Bastion` with one LocalModel agent (`echo`) and the auth of
  the variant, or a bare Starlette SSE endpoint streaming the same agent — in this very
  process, so that its pid is the one whose CPU is read;
* imported by a benchmark, `app_server(...)` starts such a process and `auth0_issuer()`
  starts the local Auth0 look-alike (tests/e2e/node/mock-auth0.mjs), each removed when its
  block ends (also on an error, Ctrl-C or SIGTERM; on SIGKILL they die with the driver).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
from _harness import (
    BENCH,
    CLOCK_TICKS,
    NODE_DIR,
    ROOT,
    SECRET,
    BenchError,
    Server,
    _logged_process,
    free_port,
    node_ready,
    wait_ready,
)

AGENT_ID = "echo"
AUDIENCE = "https://api.bench.test"

# variant -> what it serves (the label printed in the reports)
VARIANTS = {
    "unprotected": "Bastion, auth=None",
    "identity-cache": "Bastion, IdentityAuth, cookie cache on",
    "identity-cache-always": "Bastion, IdentityAuth, cookie cache on, trust_cookie_cache='always'",
    "identity": "Bastion, IdentityAuth, no cookie cache",
    "identity-cache-org": "Bastion, IdentityAuth + organization(), cookie cache on, no RBAC",
    "identity-cache-org-rbac": (
        "Bastion, IdentityAuth + organization(), cookie cache on, OrganizationRBAC"
    ),
    "auth0": "Bastion, Auth0Auth (RS256, local issuer)",
    "starlette-sse": "bare Starlette SSE endpoint (StreamingResponse), no auth",
    "asgi-sse": "raw ASGI SSE endpoint, no framework, no auth (the floor)",
}
NEEDS_DATABASE = frozenset(
    {"identity-cache", "identity-cache-always", "identity", *(v for v in VARIANTS if "-org" in v)}
)


def bench_organization() -> Any:
    """The organization plugin of the org variants: better-auth's default roles, each also
    allowed to read and run agents (GET /api/agents requires agents:read)."""
    from bastion.identity.plugins.organization import (
        DEFAULT_STATEMENTS,
        admin_ac,
        create_access_control,
        member_ac,
        organization,
        owner_ac,
    )

    ac = create_access_control({**DEFAULT_STATEMENTS, "agents": ["read", "execute"]})
    agents = {"agents": ["read", "execute"]}
    roles = {
        name: ac.new_role({**role.statements, **agents})
        for name, role in (("owner", owner_ac), ("admin", admin_ac), ("member", member_ac))
    }
    return organization(ac=ac, roles=roles)


# -- the server side -----------------------------------------------------------------


def _agent() -> Any:
    from bastion.server import Agent, LocalModel

    return Agent(name="Echo", id=AGENT_ID, instructions="Repeat the user.", model=LocalModel())


def _bastion(variant: str, origin: str, database: str | None, issuer: str | None) -> Any:
    from bastion.auth import Auth0Auth, IdentityAuth, OrganizationRBAC
    from bastion.auth.providers.identity import TrustCookieCache
    from bastion.identity import Identity
    from bastion.server import Bastion

    agent = _agent()
    if variant == "unprotected":
        return Bastion(agents=[agent])
    if variant == "auth0":
        if issuer is None:
            raise SystemExit("--issuer is required for auth0")
        return Bastion(agents=[agent], auth=Auth0Auth(issuer=issuer, audience=AUDIENCE))
    if database is None:
        raise SystemExit(f"--database is required for {variant}")
    identity = Identity(
        secret=SECRET,
        base_url=origin,
        database=database,
        email_and_password={"enabled": True},
        session={"cookie_cache": {"enabled": variant != "identity"}},
        rate_limit={"enabled": False},  # one client signs in per measurement
        plugins=[bench_organization()] if "-org" in variant else [],
    )
    trust: TrustCookieCache = "always" if variant == "identity-cache-always" else "reads"
    auth = IdentityAuth(identity, trust_cookie_cache=trust)
    if variant == "identity-cache-org-rbac":
        return Bastion(agents=[agent], auth=auth, rbac=OrganizationRBAC(identity))
    return Bastion(agents=[agent], auth=auth)


def _starlette_sse() -> Any:
    """What one writes without Bastion: a Starlette route that streams the same agent's
    events, encoded to the same bytes by the same encoder as Bastion's (pydantic-core's
    compact JSON, so that the encoder is not what differs), with no auth and no checks."""
    from pydantic_core import to_json
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, StreamingResponse
    from starlette.routing import Route

    agent = _agent()

    async def stream(request: Request) -> StreamingResponse:
        body = await request.json()

        async def events() -> AsyncIterator[bytes]:
            async for event in agent.stream(body["messages"]):
                data = to_json(event.data())
                yield b"event: " + event.event.encode() + b"\ndata: " + data + b"\n\n"

        return StreamingResponse(
            events(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/health", health),
            Route(f"/api/agents/{AGENT_ID}/stream", stream, methods=["POST"]),
        ]
    )


def _asgi_sse() -> Any:
    """The floor: the same events behind the thinnest HTTP layer there is — a raw ASGI
    callable, one `send` per event, no routing, no disconnect watch, no checks; the
    events encoded as Bastion encodes them (pydantic-core's compact JSON)."""
    from pydantic_core import to_json

    agent = _agent()
    head = [
        (b"content-type", b"text/event-stream; charset=utf-8"),
        (b"cache-control", b"no-cache"),
        (b"x-accel-buffering", b"no"),
    ]

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                kind = message["type"].rsplit(".", 1)[1]  # startup / shutdown
                await send({"type": f"lifespan.{kind}.complete"})
                if kind == "shutdown":
                    return
        if scope["type"] != "http":
            return
        if scope["path"] == "/health":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        messages = json.loads(body)["messages"]
        await send({"type": "http.response.start", "status": 200, "headers": head})
        async for event in agent.stream(messages):
            data = to_json(event.data())
            chunk = b"event: " + event.event.encode() + b"\ndata: " + data + b"\n\n"
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    return app


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--variant", required=True, choices=sorted(VARIANTS))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database")
    parser.add_argument("--issuer")
    parser.add_argument("--loop", default="uvloop", choices=("uvloop", "asyncio"))
    parser.add_argument("--http", default="httptools", choices=("httptools", "h11"))
    args = parser.parse_args()
    origin = f"http://127.0.0.1:{args.port}"
    if args.variant == "starlette-sse":
        app = _starlette_sse()
    elif args.variant == "asgi-sse":
        app = _asgi_sse()
    else:
        app = _bastion(args.variant, origin, args.database, args.issuer)
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        workers=1,
        loop=args.loop,
        http=args.http,
        lifespan="on",
        access_log=False,
        log_level="warning",
    )


# -- the driver side -----------------------------------------------------------------


@contextlib.contextmanager
def app_server(
    variant: str,
    *,
    database_url: str | None = None,
    issuer: str | None = None,
    loop: str = "uvloop",
    http: str = "httptools",
) -> Iterator[Server]:
    """`python bench/_server_apps.py --variant <variant>` in its own process."""
    port = free_port()
    argv = [sys.executable, str(BENCH / "_server_apps.py"), "--variant", variant]
    argv += ["--port", str(port), "--loop", loop, "--http", http]
    if variant in NEEDS_DATABASE:
        if database_url is None:
            raise BenchError(f"{variant} needs a database")
        argv += ["--database", database_url]
    if issuer is not None:
        argv += ["--issuer", issuer]
    env = {k: v for k, v in os.environ.items() if k != "BASTION_ENV"}  # development mode
    with _logged_process(variant, argv, env=env, cwd=ROOT) as (process, path):
        server = Server(variant, f"http://127.0.0.1:{port}", process, path, database_url or "")
        wait_ready(server, 30, "/health")
        server.memory_at_start = server.memory()
        yield server


@contextlib.contextmanager
def auth0_issuer() -> Iterator[str]:
    """`node tests/e2e/node/mock-auth0.mjs` on a free port; yields its issuer URL
    (`http://127.0.0.1:<port>/`, with the trailing slash Auth0 puts in `iss`)."""
    node = node_ready()
    if not (NODE_DIR / "node_modules" / "oauth2-mock-server").is_dir():
        raise BenchError(f"needs the Node peers installed: cd {NODE_DIR} && npm ci")
    env = {**os.environ, "PORT": "0", "EXIT_ON_STDIN_CLOSE": "1", "AUDIENCE": AUDIENCE}
    with _logged_process("mock-auth0", [node, "mock-auth0.mjs"], env=env, cwd=NODE_DIR) as (
        process,
        path,
    ):
        assert process.stdout is not None
        readable, _, _ = select.select([process.stdout], [], [], 60)
        line = process.stdout.readline() if readable else b""
        if not line:
            tail = Path(path).read_text(errors="replace")[-3000:]
            raise BenchError(f"mock-auth0 did not start:\n{tail}")
        ready = json.loads(line)
        if ready.get("ready") is not True:
            raise BenchError(f"mock-auth0: {ready}")
        yield str(ready["issuer"])


class DatabaseMeter:
    """CPU time of the PostgreSQL backends connected to one database (the scratch one):
    the database work of the server under test, and nobody else's. (The harness's CpuMeter
    also counts the postmaster's reaped children, i.e. the backends of other databases that
    exited meanwhile: on a machine shared with other test suites, not ours.)"""

    def __init__(self, database_url: str | None) -> None:
        self.name = database_url.rsplit("/", 1)[1] if database_url else None

    def _ticks(self) -> dict[int, int]:
        if self.name is None:
            return {}
        ticks: dict[int, int] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if (entry / "comm").read_text().strip() != "postgres":
                    continue
                title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                if f" {self.name} " not in title:
                    continue
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, UnicodeDecodeError):
                continue
            ticks[int(entry.name)] = int(fields[11]) + int(fields[12])
        return ticks

    def start(self) -> None:
        self._start = self._ticks()

    def stop(self) -> float:
        """CPU-seconds the database's backends used since start() (new backends: all)."""
        end = self._ticks()
        grown = sum(t - self._start.get(pid, 0) for pid, t in end.items())
        return grown / CLOCK_TICKS


def auth0_token(issuer: str) -> str:
    """An access token for AUDIENCE by the client-credentials grant (RS256, typ JWT, 1 h)."""
    response = httpx.post(
        issuer + "oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "test-client",
            "client_secret": "test-secret",
            "audience": AUDIENCE,
        },
        timeout=10,
    )
    if response.status_code != 200:
        raise BenchError(f"mock-auth0 token: {response.status_code} {response.text}")
    return str(response.json()["access_token"])


if __name__ == "__main__":
    main()
