"""Instructions per request of the session reads, counted by callgrind.

    python bench/instructions.py [--requests 2000] [--sessions 12000] [--loads ok,hit,...]
        [--src PATH]

Needs valgrind (apt-get install valgrind). A VM's speed drifts by 20% from one minute to the
next, more than most changes to the code under measure; callgrind counts the instructions the
CPU runs instead, which repeat to within ~1% whatever else the machine does. It calls the ASGI
app (`identity.app`, or an agent server's) in one process as bench/inprocess.py does,
sequentially, on a scratch SQLite file (the cookie cache answers without storage), for six
loads:

    /ok            GET /api/auth/ok with the session's cookies: the floor of the app
    +cache         get-session with the cookie cache, one session: the memo of verified
                   Cookie headers answers after the first request
    +cache, N      get-session where each request carries the next of N distinct sessions
                   (default 12,000: more than the memos of verified values and Cookie
                   headers hold, 1,024 and 10,000), each verified afresh
    agents         the agent server's GET /api/agents, unprotected (figure 4's floor)
    agents-identity  the same with IdentityAuth(identity) on that Identity: the session's
                   cookies, the cookie cache trusted (figure 4's identity-cache)
    agents-org-rbac  the same with the organization() plugin and OrganizationRBAC(identity),
                   the session's organization active (figure 4's identity-cache-org-rbac)

Each load runs twice under `valgrind --tool=callgrind`, with `--requests` and with 500
requests (after the same warm-up of max(N, 3000) requests); the difference divided by the
difference in requests is the cost of one request, without start-up. `--loads` measures some
of them only (default: all six). PYTHONHASHSEED is fixed:
string hashes change the layout of dicts, and with it a few % of the count. `--src` measures
another checkout's `src` (through PYTHONPATH), to compare two versions of the code.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
FEW = 500  # requests of the shorter run
WARM_UP = 3000
LOADS = ("ok", "hit", "miss", "agents", "agents-identity", "agents-org-rbac")
LABELS = {
    "ok": "/ok",
    "hit": "get-session +cache",
    "miss": "get-session +cache, N sessions",
    "agents": "agents, unprotected",
    "agents-identity": "agents, IdentityAuth +cache",
    "agents-org-rbac": "agents, +organization RBAC",
}


async def _child(load: str, requests: int, sessions: int) -> None:
    """The measured process: an Identity on SQLite, one sign-up, then the load."""
    sys.path.insert(0, str(BENCH))
    from _harness import SECRET
    from _server_apps import bench_organization
    from inprocess import ORIGIN, call, distinct_sessions

    from bastion.auth import IdentityAuth, OrganizationRBAC
    from bastion.identity import Identity, bearer
    from bastion.server import Agent, Bastion, LocalModel

    with tempfile.TemporaryDirectory() as folder:
        identity = Identity(
            secret=SECRET,
            base_url=ORIGIN,
            database=f"sqlite+aiosqlite:///{folder}/bench.db",
            # Not scrypt: one sign-up under valgrind would take longer than the loads.
            email_and_password={
                "enabled": True,
                "password": {
                    "hash": lambda password: "plain:" + password,
                    "verify": lambda given: given["hash"] == "plain:" + given["password"],
                },
            },
            # An hour, not the default five minutes: a run under valgrind on a slow machine
            # must not outlive the cookie caches it made at its start.
            session={"cookie_cache": {"enabled": True, "max_age": 3600}},
            rate_limit={"enabled": False},
            plugins=[bearer(), bench_organization()] if load == "agents-org-rbac" else [bearer()],
            env={},
        )
        try:
            await identity.migrate()
            app = identity.app
            body = b'{"email":"bench@example.com","password":"password-123","name":"Bench"}'
            status, headers, _ = await call(
                app,
                "POST",
                "/api/auth/sign-up/email",
                [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))],
                body,
            )
            assert status == 200, status
            cookie = "; ".join(
                v.decode().split(";", 1)[0] for k, v in headers if k == b"set-cookie"
            )
            if load == "agents-org-rbac":
                cookie = await _active_organization(app, cookie)
            if load == "miss":
                many = distinct_sessions(cookie, sessions)
            else:
                many = [[(b"cookie", cookie.encode())]]
            path = "/api/auth/ok" if load == "ok" else "/api/auth/get-session"
            if load.startswith("agents"):  # figure 4's servers, in one process
                agent = Agent(name="Echo", id="echo", instructions="Echo.", model=LocalModel())
                auth = IdentityAuth(identity) if load != "agents" else None
                rbac = OrganizationRBAC(identity) if load == "agents-org-rbac" else None
                app, path = Bastion(agents=[agent], auth=auth, rbac=rbac), "/api/agents"
            for turn in range(max(WARM_UP, len(many))):
                await call(app, "GET", path, many[turn % len(many)])
            for turn in range(requests):
                status, _, answer = await call(app, "GET", path, many[turn % len(many)])
                assert status == 200 and answer not in (b"null", b"{}"), (status, answer)
        finally:
            await identity.close()


async def _active_organization(app: Any, cookie: str) -> str:
    """The cookies of the signed-in session once it has created an organization and made
    it active (the session's cookie cache then names it)."""
    from inprocess import ORIGIN, call

    jar = dict(pair.split("=", 1) for pair in cookie.split("; "))

    async def post(path: str, body: dict[str, str]) -> Any:
        data = json.dumps(body).encode()
        headers = [
            (b"cookie", "; ".join(f"{k}={v}" for k, v in jar.items()).encode()),
            (b"origin", ORIGIN.encode()),
            (b"content-type", b"application/json"),
            (b"content-length", b"%d" % len(data)),
        ]
        status, answer_headers, answer = await call(app, "POST", path, headers, data)
        assert status == 200, (path, status, answer)
        for name, value in answer_headers:
            if name == b"set-cookie":
                key, _, rest = value.decode().partition("=")
                jar[key] = rest.split(";", 1)[0]
        return json.loads(answer)

    created = await post("/api/auth/organization/create", {"name": "Bench", "slug": "bench"})
    await post("/api/auth/organization/set-active", {"organizationId": created["id"]})
    return "; ".join(f"{k}={v}" for k, v in jar.items())


def _count(load: str, requests: int, sessions: int, src: str | None) -> int:
    """Instructions of one whole run of the child under callgrind."""
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    if src:
        env["PYTHONPATH"] = src
    command = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        __file__,
        "--child",
        load,
        "--requests",
        str(requests),
        "--sessions",
        str(sessions),
    ]
    ran = subprocess.run(command, env=env, capture_output=True, text=True, timeout=3600)
    found = re.search(r"Collected : (\d+)", ran.stderr)
    if ran.returncode != 0 or found is None:
        raise SystemExit(f"callgrind run failed ({load}, {requests}):\n{ran.stderr[-2000:]}")
    return int(found.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description="callgrind instructions per request")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--sessions", type=int, default=12000, help="N of the last load")
    parser.add_argument("--loads", default=",".join(LOADS), help=f"of {','.join(LOADS)}")
    parser.add_argument("--src", help="a checkout's src directory to measure instead")
    parser.add_argument("--child", choices=LOADS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        asyncio.run(_child(args.child, args.requests, args.sessions))
        return 0
    if args.requests <= FEW:
        parser.error(f"--requests must be more than {FEW}")
    if shutil.which("valgrind") is None:
        parser.error("needs valgrind: apt-get install valgrind")
    asked = args.loads.split(",")
    if not set(asked) <= set(LOADS):
        parser.error(f"--loads: some of {','.join(LOADS)}, not {args.loads!r}")
    loads = [load for load in LOADS if load in asked]
    runs = [(load, n) for load in loads for n in (FEW, args.requests)]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        counts = dict(
            zip(
                runs,
                pool.map(lambda run: _count(*run, args.sessions, args.src), runs),
                strict=True,
            )
        )
    print(f"source: {args.src or 'this checkout'}; N = {args.sessions}")
    per = {}
    for load in loads:
        per[load] = (counts[load, args.requests] - counts[load, FEW]) / (args.requests - FEW)
        print(f"{LABELS[load]:<32} {per[load]:>10,.0f} instructions per request")
    if "ok" in per and "hit" in per:
        print(f"get-session +cache over /ok      {per['hit'] - per['ok']:>10,.0f}")
        print(f"/ok / get-session +cache         {per['ok'] / per['hit']:>10.3f}")
    if "hit" in per and "miss" in per:
        print(f"a session not in the memo costs  {per['miss'] - per['hit']:>10,.0f} more")
    if "agents" in per and "agents-identity" in per:
        ratio = per["agents"] / per["agents-identity"]
        print(f"agents unprotected / IdentityAuth {ratio:>9.3f}")
    if "agents-identity" in per and "agents-org-rbac" in per:
        ratio = per["agents-identity"] / per["agents-org-rbac"]
        print(f"IdentityAuth / organization RBAC  {ratio:>9.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
