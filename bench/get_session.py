"""Figure 1: GET /api/auth/get-session with a valid cookie — Bastion vs TypeScript better-auth.

Run (from the repository root, in the venv; about 1.5 minutes on a quiet machine, at most 15):

    python bench/get_session.py [--json results.json]

Needs PostgreSQL at $BENCH_PG_URL (default postgresql://postgres@127.0.0.1:5432/test, a role
that may CREATE DATABASE), wrk (apt-get install wrk), Node with tests/e2e/node installed
(cd tests/e2e/node && npm_config_nodedir=/usr npm ci), and uvloop + httptools
(pip install uvloop httptools).

In one run, on one scratch database `bastion_bench_*` (dropped at the end), one server
process at a time, each measured with `wrk -t1 -c16 -d10s --latency` after a 3 s warm-up:

    bastion           uvicorn, one worker, uvloop + httptools; email/password + bearer
    better-auth       better-auth 1.7.25 (tests/e2e/node/ba-peer.mjs serve), same database
    bastion +cache    session.cookie_cache enabled (the signed session_data cookie is sent)
    better-auth +cache  COOKIE_CACHE=1

Both servers run in development mode with rate limiting off. Each gets its own cookie from
its own sign-in, checked to answer the session (not `null`) before and after the load.
Prints requests/s, p50, p99, the ratios to better-auth without the cache (targets: bastion
>= 2x, bastion +cache >= 10x), database transactions per request and connections opened
during the run (pg_stat_database), CPU time per request of the server, PostgreSQL and wrk,
and the peak RSS (VmHWM) of each server process.

Each measured run is repeated (3 attempts at most, after waiting up to 30 s for calm) while
other programs used more than 10% of the CPUs during it; the table shows that share.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from _harness import (
    BenchError,
    CpuMeter,
    Server,
    WrkResult,
    bastion_server,
    better_auth_server,
    check_session,
    db_counters,
    install_limits,
    log,
    machine,
    scratch_database,
    seed,
    sign_in_cookie,
    steady,
    table,
    write_json,
    wrk,
)

CONNECTIONS = 16
DURATION = 10
WARM_UP = 3
TIME_LIMIT = 900  # seconds, for the whole run (waits for a calm machine included)


def measure(server: Server, database_url: str, connections: int, duration: int) -> dict[str, Any]:
    cookie = sign_in_cookie(server)
    size = check_session(server, cookie)
    url = f"{server.base}/get-session"
    headers = [f"Cookie: {cookie}"]
    wrk(url, connections=connections, duration=WARM_UP, headers=headers)

    def run() -> tuple[tuple[WrkResult, dict[str, int]], dict[str, float]]:
        time.sleep(0.5)
        before = db_counters(database_url)
        cpu = CpuMeter(server.pid, server.database_url)
        cpu.start()
        result = wrk(url, connections=connections, duration=duration, headers=headers)
        used = cpu.stop()
        time.sleep(1.2)  # backends report their statistics at most once a second
        after = db_counters(database_url)
        return (result, {k: after[k] - before[k] for k in after}), used

    (result, counted), used, attempts = steady(server.name, run)
    check_session(server, cookie)
    if result.non_2xx or result.socket_errors:
        raise BenchError(f"{server.name}: {result.non_2xx} non-2xx, {result.socket_errors} errors")
    memory = server.memory()
    log(
        f"{server.name}: {result.rps:.0f} req/s, p50 {result.p50_ms:.2f} ms, "
        f"p99 {result.p99_ms:.2f} ms, VmHWM {memory['VmHWM'] / 1024:.0f} MiB"
    )
    requests = max(result.requests, 1)
    return {
        "server": server.name,
        "pid": server.pid,
        **result.as_dict(),
        "db_xacts_per_request": round(counted["xacts"] / requests, 2),
        "db_connections_opened": counted["sessions"],
        "cpu": used,
        "cpu_ms_per_request": {
            k.removesuffix("_cpu_s"): round(1000 * v / requests, 3)
            for k, v in used.items()
            if k.endswith("_cpu_s")
        },
        "attempts": attempts,
        "body_bytes": size,
        "vmhwm_kib": memory["VmHWM"],
        "vmhwm_at_start_kib": server.memory_at_start["VmHWM"],
        "vmrss_kib": memory["VmRSS"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description="get-session: Bastion vs better-auth")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--loop", default="uvloop", choices=("uvloop", "asyncio"))
    parser.add_argument("--http", default="httptools", choices=("httptools", "h11"))
    parser.add_argument("--connections", type=int, default=CONNECTIONS)
    parser.add_argument("--duration", type=int, default=DURATION)
    parser.add_argument("--only", choices=("bastion", "better-auth"), help="one server only")
    args = parser.parse_args()
    install_limits(TIME_LIMIT)
    about = machine()
    log(f"source {about['source']}, {about['cpus']} CPUs, {about['versions']}")

    runs: list[dict[str, Any]] = []
    with scratch_database() as database_url:
        seed(database_url)
        for cache in (False, True):
            if args.only != "better-auth":
                with bastion_server(
                    database_url, cookie_cache=cache, loop=args.loop, http=args.http
                ) as server:
                    runs.append(measure(server, database_url, args.connections, args.duration))
            if args.only != "bastion":
                with better_auth_server(database_url, cookie_cache=cache) as server:
                    runs.append(measure(server, database_url, args.connections, args.duration))

    by_name = {r["server"]: r for r in runs}
    baseline = by_name.get("better-auth", {}).get("rps")
    rows = []
    for r in runs:
        ratio = f"{r['rps'] / baseline:.2f}x" if baseline else "-"
        rows.append(
            [
                r["server"],
                f"{r['rps']:.0f}",
                f"{r['p50_ms']:.2f}",
                f"{r['p99_ms']:.2f}",
                ratio,
                r["db_xacts_per_request"],
                r["db_connections_opened"],
                f"{r['vmhwm_at_start_kib'] / 1024:.0f} → {r['vmhwm_kib'] / 1024:.0f}",
                "{server} / {postgres} / {wrk}".format(**r["cpu_ms_per_request"]),
                "{:.0%} ({:.0%})".format(r["cpu"]["busy_fraction"], r["cpu"]["foreign_fraction"]),
            ]
        )
    print(
        f"\nGET /api/auth/get-session, wrk -t1 -c{args.connections} -d{args.duration}s "
        f"--latency after {WARM_UP} s warm-up; uvicorn loop={args.loop} http={args.http}\n"
    )
    print(
        table(
            [
                "server",
                "req/s",
                "p50 ms",
                "p99 ms",
                "vs better-auth",
                "db xacts/req",
                "db conns opened",
                "VmHWM MiB start → end",
                "CPU ms/req: server / postgres / wrk",
                "CPUs busy (others)",
            ],
            rows,
        )
    )
    verdicts = {}
    if baseline and "bastion" in by_name:
        verdicts["bastion >= 2x better-auth"] = by_name["bastion"]["rps"] >= 2 * baseline
    if baseline and "bastion +cache" in by_name:
        verdicts["bastion +cache >= 10x better-auth"] = (
            by_name["bastion +cache"]["rps"] >= 10 * baseline
        )
    print()
    for target, met in verdicts.items():
        print(f"target {target}: {'met' if met else 'MISSED'}")
    write_json(
        args.json,
        {
            "machine": about,
            "settings": {**vars(args), "warm_up": WARM_UP},
            "runs": runs,
            "targets": verdicts,
        },
    )
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        log(f"error: {exc}")
        sys.exit(1)
