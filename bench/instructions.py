"""Instructions per request of the identity app's session reads, counted by callgrind.

    python bench/instructions.py [--requests 2000] [--sessions 3000] [--src PATH]

Needs valgrind (apt-get install valgrind). A VM's speed drifts by 20% from one minute to the
next, more than most changes to the code under measure; callgrind counts the instructions the
CPU runs instead, which repeat to within ~1% whatever else the machine does. It calls the ASGI
app (`identity.app`) in one process as bench/inprocess.py does, sequentially, on a scratch
SQLite file (the cookie cache answers without storage), for three loads:

    /ok            GET /api/auth/ok with the session's cookies: the floor of the app
    +cache         get-session with the cookie cache, one session: the memo of verified
                   cookie values answers after the first request
    +cache, N      get-session where each request carries the next of N distinct sessions
                   (default 3,000: more than the memo of verified values holds, 1,024),
                   each verified afresh

Each load runs twice under `valgrind --tool=callgrind`, with `--requests` and with 500
requests (after the same warm-up of max(N, 3000) requests); the difference divided by the
difference in requests is the cost of one request, without start-up. PYTHONHASHSEED is fixed:
string hashes change the layout of dicts, and with it a few % of the count. `--src` measures
another checkout's `src` (through PYTHONPATH), to compare two versions of the code.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

BENCH = Path(__file__).resolve().parent
FEW = 500  # requests of the shorter run
WARM_UP = 3000
LOADS = ("ok", "hit", "miss")
LABELS = {"ok": "/ok", "hit": "get-session +cache", "miss": "get-session +cache, N sessions"}


async def _child(load: str, requests: int, sessions: int) -> None:
    """The measured process: an Identity on SQLite, one sign-up, then the load."""
    sys.path.insert(0, str(BENCH))
    from _harness import SECRET
    from inprocess import ORIGIN, call, distinct_sessions

    from bastion.identity import Identity, bearer

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
            plugins=[bearer()],
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
            if load == "miss":
                many = distinct_sessions(cookie, sessions)
            else:
                many = [[(b"cookie", cookie.encode())]]
            path = "/api/auth/ok" if load == "ok" else "/api/auth/get-session"
            for turn in range(max(WARM_UP, len(many))):
                await call(app, "GET", path, many[turn % len(many)])
            for turn in range(requests):
                status, _, answer = await call(app, "GET", path, many[turn % len(many)])
                assert status == 200 and answer != b"null", (status, answer)
        finally:
            await identity.close()


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
    parser.add_argument("--sessions", type=int, default=3000, help="N of the last load")
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
    runs = [(load, n) for load in LOADS for n in (FEW, args.requests)]
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
    for load in LOADS:
        per[load] = (counts[load, args.requests] - counts[load, FEW]) / (args.requests - FEW)
        print(f"{LABELS[load]:<32} {per[load]:>10,.0f} instructions per request")
    print(f"get-session +cache over /ok      {per['hit'] - per['ok']:>10,.0f}")
    print(f"a session not in the memo costs  {per['miss'] - per['hit']:>10,.0f} more")
    return 0


if __name__ == "__main__":
    sys.exit(main())
