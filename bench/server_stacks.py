"""Server stacks: the same app served by uvicorn + h11 on asyncio, uvicorn + httptools on
uvloop (each with uvicorn's protocol classes and with `bastion serve`'s), and granian.

Run (from the repository root, in the venv; about 6 minutes with two rounds):

    python bench/server_stacks.py [--rounds 2] [--duration 10] [--json results.json]

Needs PostgreSQL at $BENCH_PG_URL (default postgresql://postgres@127.0.0.1:5432/test, a role
that may CREATE DATABASE), wrk (apt-get install wrk), uvloop, httptools and granian
(pip install -e '.[bench]').

The app is bench/_bastion_server.py's Identity with the cookie cache on, one process, one
worker, no access log, on one scratch database `bastion_bench_*` (dropped at the end). Each
stack serves it in turn, and the rounds interleave (stack 1, 2, … then again), so that a
machine that gets busier or quieter meanwhile weighs on every stack alike. In each, after a
3 s warm-up, `wrk -t1 -c16 -d10s --latency` on

    get-session   GET /api/auth/get-session with the signed session_data cookie (answered
                  from the cookie: no database round trip)
    ok            GET /api/auth/ok

Each run waits (15 s at most) for the machine to calm down, and is measured once: on a shared
machine the interleaved rounds, not retries, are what evens the noise out; the table gives
the share of the CPUs other programs used during the median run. Prints each stack's
requests/s per round and their median, with p50/p99 and the server's CPU per request of the
median run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from dataclasses import dataclass
from typing import Any

from _harness import (
    BenchError,
    CpuMeter,
    Server,
    bastion_server,
    check_session,
    install_limits,
    log,
    machine,
    scratch_database,
    seed,
    sign_in_cookie,
    table,
    wait_for_quiet,
    write_json,
    wrk,
)

CONNECTIONS = 16
DURATION = 10
WARM_UP = 3
QUIET_PATIENCE = 15  # seconds to wait for a calm machine before each run; then measured anyway


@dataclass(frozen=True)
class Stack:
    name: str
    server: str  # bench/_bastion_server.py --server
    loop: str
    http: str


STACKS = [
    Stack("uvicorn + h11, asyncio", "uvicorn", "asyncio", "h11"),
    Stack("bastion serve: h11, asyncio", "bastion", "asyncio", "h11"),
    Stack("uvicorn + httptools, uvloop", "uvicorn", "uvloop", "httptools"),
    Stack("bastion serve: httptools, uvloop", "bastion", "uvloop", "httptools"),
    Stack("granian (embedded), uvloop", "granian", "uvloop", "httptools"),
]


def measure(server: Server, url: str, headers: list[str], duration: int) -> dict[str, Any]:
    wrk(url, connections=CONNECTIONS, duration=WARM_UP, headers=headers)

    wait_for_quiet(patience=QUIET_PATIENCE)
    cpu = CpuMeter(server.pid, server.database_url)
    cpu.start()
    result = wrk(url, connections=CONNECTIONS, duration=duration, headers=headers)
    used = cpu.stop()
    if result.non_2xx or result.socket_errors:
        raise BenchError(f"{server.name}: {result.non_2xx} non-2xx, {result.socket_errors} errors")
    requests = max(result.requests, 1)
    return {
        **result.as_dict(),
        "server_cpu_ms_per_request": round(1000 * used["server_cpu_s"] / requests, 3),
        "foreign_fraction": used["foreign_fraction"],
    }


def one_round(database_url: str, stack: Stack, duration: int) -> dict[str, Any]:
    with bastion_server(
        database_url,
        cookie_cache=True,
        loop=stack.loop,
        http=stack.http,
        server=stack.server,
        name=stack.name,
    ) as server:
        cookie = sign_in_cookie(server)
        check_session(server, cookie)
        runs = {
            "get-session": measure(
                server, f"{server.base}/get-session", [f"Cookie: {cookie}"], duration
            ),
            "ok": measure(server, f"{server.base}/ok", [], duration),
        }
        check_session(server, cookie)
    log(
        f"{stack.name}: get-session {runs['get-session']['rps']:.0f} req/s, "
        f"ok {runs['ok']['rps']:.0f} req/s"
    )
    return runs


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run whose req/s is the median (the lower middle one of an even count)."""
    ordered = sorted(runs, key=lambda r: r["rps"])
    return ordered[(len(ordered) - 1) // 2]


def main() -> int:
    parser = argparse.ArgumentParser(description="server stacks side by side")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--duration", type=int, default=DURATION)
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    install_limits(120 + args.rounds * len(STACKS) * 2 * (args.duration + WARM_UP + 40))
    about = machine()
    log(f"source {about['source']}, {about['cpus']} CPUs, {about['versions']}")

    results: dict[str, list[dict[str, Any]]] = {s.name: [] for s in STACKS}
    with scratch_database() as database_url:
        seed(database_url)
        for round_ in range(1, args.rounds + 1):
            log(f"round {round_} of {args.rounds}")
            for stack in STACKS:
                results[stack.name].append(one_round(database_url, stack, args.duration))

    rows = []
    for stack in STACKS:
        row: list[Any] = [stack.name]
        for path in ("get-session", "ok"):
            runs = [r[path] for r in results[stack.name]]
            mid = median_run(runs)
            each = " / ".join(f"{r['rps']:.0f}" for r in runs)
            row += [
                f"{statistics.median(r['rps'] for r in runs):,.0f} ({each})",
                f"{mid['p50_ms']:.2f} / {mid['p99_ms']:.2f}",
                f"{mid['server_cpu_ms_per_request']:.3f}",
                f"{mid['foreign_fraction']:.0%}",
            ]
        rows.append(row)
    print(
        f"\nwrk -t1 -c{CONNECTIONS} -d{args.duration}s --latency after {WARM_UP} s warm-up, "
        f"{args.rounds} interleaved rounds; req/s: median (each round)\n"
    )
    print(
        table(
            [
                "stack",
                "get-session (cookie cache) req/s",
                "p50 / p99 ms",
                "server CPU ms/req",
                "others' CPU",
                "/ok req/s",
                "p50 / p99 ms",
                "server CPU ms/req",
                "others' CPU",
            ],
            rows,
        )
    )
    write_json(
        args.json,
        {
            "machine": about,
            "settings": {**vars(args), "connections": CONNECTIONS, "warm_up": WARM_UP},
            "results": results,
        },
    )
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        log(f"error: {exc}")
        sys.exit(1)
