"""Figure 2: POST /api/auth/sign-in/email against the scrypt bound, and get-session meanwhile.

Run (from the repository root, in the venv; about 3 minutes on a quiet machine, at most 15):

    python bench/sign_in.py [--json results.json]

Needs PostgreSQL at $BENCH_PG_URL (default postgresql://postgres@127.0.0.1:5432/test, a role
that may CREATE DATABASE), wrk (apt-get install wrk), and uvloop + httptools
(pip install uvloop httptools).

1. The scrypt bound: how many password checks per second one Bastion process does —
   `PasswordHasher()` (default concurrency: one per CPU) verifying better-auth's scrypt
   (N=16384, r=16, p=1) with 4x more callers than slots, in a fresh process on the server's
   event loop (uvloop), for 5 s after a 1 s warm-up. Nothing else of ours runs meanwhile.
   Measured again at the end, to show the machine's drift; the figure uses the first.
2. Sign-in through HTTP: one Bastion server (uvicorn, one worker, uvloop + httptools,
   email/password + bearer, rate limiting off) on a scratch database `bastion_bench_*`
   (dropped at the end); `wrk -t1 -cC -d10s --timeout 10s --latency` posting alice's correct
   password without Origin or cookie, C = 4 and 16, after a 3 s warm-up, the server drained
   between runs. Requests/s over the bound is the figure (target >= 0.9).
3. The event loop under that load: get-session with a valid cookie by a second wrk
   (`-t1 -cP -d10s --latency`), alone, then while a sign-in wrk (c=16, started 1 s before and
   ending 1 s after) saturates the hash pool; P = 1 (a latency probe: a stalled loop shows up
   as a slow request) and 16 (figure 1's load). Target: p99 < 50 ms.
4. The server's peak RSS (VmHWM, /proc/<pid>/status) at the end.

Each measured run is repeated (3 attempts at most, after waiting up to 30 s for calm) while
other programs used more than 10% of the CPUs during it; the table shows that share.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from _harness import (
    CLOCK_TICKS,
    PASSWORD,
    SIGN_IN_LUA,
    BenchError,
    CpuMeter,
    Server,
    Wrk,
    WrkResult,
    bastion_server,
    check_session,
    install_limits,
    log,
    machine,
    process_ticks,
    scratch_database,
    seed,
    sign_in_cookie,
    steady,
    table,
    write_json,
)

DURATION = 10
WARM_UP = 3
PROBES = (1, 16)  # connections of the get-session wrk: a latency probe, and figure 1's load
SIGN_IN_CONNECTIONS = (4, 16)
TIME_LIMIT = 900  # seconds, for the whole run (waits for a calm machine included)


# -- 1. the scrypt bound, in its own process -----------------------------------------


async def _hash_rate(seconds: float, warm_up: float) -> dict[str, Any]:
    from bastion.identity.crypto import PasswordHasher

    hasher = PasswordHasher()
    stored = await hasher.hash(PASSWORD)
    done: list[float] = []
    stop = time.monotonic() + warm_up + seconds

    async def caller() -> None:
        while time.monotonic() < stop:
            if not await hasher.verify(stored, PASSWORD):
                raise AssertionError("the password did not verify")
            done.append(time.monotonic())

    start = time.monotonic()
    cpu0 = time.process_time()
    await asyncio.gather(*(caller() for _ in range(4 * hasher.max_concurrency)))
    cpu = time.process_time() - cpu0
    window_start = start + warm_up
    counted = [t for t in done if window_start <= t <= stop]
    return {
        "hashes_per_s": round(len(counted) / seconds, 2),
        "hashes": len(counted),
        "seconds": seconds,
        "max_concurrency": hasher.max_concurrency,
        "cpu_s_per_hash": round(cpu / max(len(done), 1), 4),
    }


def scrypt_bound(seconds: float = 5.0, warm_up: float = 1.0) -> dict[str, Any]:
    """Run `_hash_rate` in a fresh Python process (see `--scrypt-bound`)."""
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--scrypt-bound",
            str(seconds),
            "--scrypt-warm-up",
            str(warm_up),
        ],
        capture_output=True,
        text=True,
        timeout=seconds + warm_up + 60,
        check=False,
    )
    if out.returncode != 0:
        raise BenchError(f"the scrypt bound failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- 2-4. through HTTP ---------------------------------------------------------------


def _summary(name: str, result: WrkResult, cpu: dict[str, float], attempts: int) -> dict[str, Any]:
    out = {"run": name, **result.as_dict(), "cpu": cpu, "attempts": attempts}
    log(
        f"{name}: {result.rps:.1f} req/s, p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms"
        f"{f', {result.non_2xx} non-2xx' if result.non_2xx else ''}"
        f"{f', {result.socket_errors} socket errors' if result.socket_errors else ''}"
    )
    return out


def _drain(server: Server) -> None:
    """Let sign-ins that wrk gave up on finish hashing before the next run: wait (at most
    20 s) until the server uses under a tenth of a CPU."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        before = process_ticks(server.pid)
        time.sleep(0.5)
        if (process_ticks(server.pid) - before) / CLOCK_TICKS < 0.05:
            return


def sign_in_wrk(server: Server, connections: int, duration: int) -> Wrk:
    return Wrk(
        f"{server.base}/sign-in/email",
        connections=connections,
        duration=duration,
        script=SIGN_IN_LUA,
        timeout=10,
    )


def get_session_wrk(server: Server, cookie: str, duration: int, connections: int) -> Wrk:
    return Wrk(
        f"{server.base}/get-session",
        connections=connections,
        duration=duration,
        headers=[f"Cookie: {cookie}"],
    )


def _timed(
    server: Server, *starters: Callable[[], Wrk]
) -> tuple[list[WrkResult], dict[str, float]]:
    """Start the wrk runs (the first one 1 s ahead), wait for all; their CPU figures."""
    cpu = CpuMeter(server.pid, server.database_url)
    cpu.start()
    runs = [starters[0]()]
    if len(starters) > 1:
        time.sleep(1.0)  # the hash pool is full before the others start, and stays full after
        runs += [start() for start in starters[1:]]
    results = [r.result() for r in reversed(runs)][::-1]
    return results, cpu.stop()


def measure(server: Server, duration: int, probes: Sequence[int]) -> list[dict[str, Any]]:
    runs = []
    cookie = sign_in_cookie(server)
    check_session(server, cookie)
    sign_in_wrk(server, 4, WARM_UP).result()
    _drain(server)
    for connections in SIGN_IN_CONNECTIONS:

        def sign_in(c: int = connections) -> tuple[list[WrkResult], dict[str, float]]:
            try:
                return _timed(server, lambda: sign_in_wrk(server, c, duration))
            finally:
                _drain(server)

        (result,), cpu, attempts = steady(f"sign-in c={connections}", sign_in)
        runs.append(_summary(f"sign-in c={connections}", result, cpu, attempts))

    get_session_wrk(server, cookie, WARM_UP, max(probes)).result()
    for probe in probes:

        def alone(c: int = probe) -> tuple[list[WrkResult], dict[str, float]]:
            return _timed(server, lambda: get_session_wrk(server, cookie, duration, c))

        def both(c: int = probe) -> tuple[list[WrkResult], dict[str, float]]:
            try:
                return _timed(
                    server,
                    lambda: sign_in_wrk(server, 16, duration + 2),
                    lambda: get_session_wrk(server, cookie, duration, c),
                )
            finally:
                _drain(server)

        (quiet,), cpu, attempts = steady(f"get-session c={probe} alone", alone)
        runs.append(_summary(f"get-session c={probe}, alone", quiet, cpu, attempts))
        (signed, during), cpu, attempts = steady(f"get-session c={probe} during sign-in", both)
        runs.append(_summary(f"get-session c={probe}, during sign-in c=16", during, cpu, attempts))
        runs.append(_summary(f"sign-in c=16, during get-session c={probe}", signed, cpu, attempts))
    check_session(server, cookie)
    for run in runs:
        if run["non_2xx"] or run["socket_errors"]:
            raise BenchError(
                f"{run['run']}: {run['non_2xx']} non-2xx, {run['socket_errors']} socket errors"
            )
    return runs


def main() -> int:
    parser = argparse.ArgumentParser(description="sign-in vs the scrypt bound")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--duration", type=int, default=DURATION)
    parser.add_argument(
        "--probes",
        type=lambda text: [int(c) for c in text.split(",")],
        default=list(PROBES),
        help="connections of the get-session wrk, comma-separated (default: %(default)s)",
    )
    parser.add_argument("--loop", default="uvloop", choices=("uvloop", "asyncio"))
    parser.add_argument("--http", default="httptools", choices=("httptools", "h11"))
    parser.add_argument("--scrypt-bound", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--scrypt-warm-up", type=float, default=1.0, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.scrypt_bound is not None:  # the child process of scrypt_bound()
        import uvloop

        print(json.dumps(uvloop.run(_hash_rate(args.scrypt_bound, args.scrypt_warm_up))))
        return 0

    install_limits(TIME_LIMIT)
    about = machine()
    log(f"source {about['source']}, {about['cpus']} CPUs, {about['versions']}")

    def hash_rate() -> tuple[dict[str, Any], dict[str, float]]:
        cpu = CpuMeter(None)
        cpu.start()
        return scrypt_bound(), cpu.stop()

    bound, bound_cpu, bound_attempts = steady("scrypt bound", hash_rate)
    bound.update(cpu=bound_cpu, attempts=bound_attempts)
    log(
        f"scrypt bound: {bound['hashes_per_s']} hashes/s "
        f"(max_concurrency {bound['max_concurrency']}, {os.cpu_count()} CPUs)"
    )
    with scratch_database() as database_url:
        seed(database_url)
        with bastion_server(
            database_url, cookie_cache=False, loop=args.loop, http=args.http
        ) as server:
            runs = measure(server, args.duration, args.probes)
            memory = {**server.memory(), "VmHWM_at_start": server.memory_at_start["VmHWM"]}
    log(f"bastion VmHWM {memory['VmHWM'] / 1024:.0f} MiB")
    # Once more at the end, to show how much the machine itself drifted meanwhile (the
    # figure stays the ratio to the first measurement).
    after, after_cpu, after_attempts = steady("scrypt bound, again", hash_rate)
    after.update(cpu=after_cpu, attempts=after_attempts)
    log(f"scrypt bound at the end: {after['hashes_per_s']} hashes/s")

    rows = []
    for run in runs:
        fraction = (
            f"{run['rps'] / bound['hashes_per_s']:.2f}" if run["run"].startswith("sign-in") else ""
        )
        rows.append(
            [
                run["run"],
                f"{run['rps']:.1f}",
                f"{run['p50_ms']:.1f}",
                f"{run['p99_ms']:.1f}",
                f"{run['max_ms']:.1f}",
                fraction,
                "{:.0%}".format(run["cpu"]["foreign_fraction"]),
            ]
        )
    print(
        f"\nscrypt bound: {bound['hashes_per_s']} hashes/s in one process "
        f"(PasswordHasher max_concurrency={bound['max_concurrency']}); "
        f"{after['hashes_per_s']} hashes/s measured again at the end\n"
    )
    headers = ["run", "req/s", "p50 ms", "p99 ms", "max ms", "/ scrypt bound", "others' CPU"]
    print(table(headers, rows))
    print(
        f"\nBastion server peak RSS (VmHWM): {memory['VmHWM'] / 1024:.0f} MiB at the end, "
        f"{memory['VmHWM_at_start'] / 1024:.0f} MiB once started\n"
    )
    by_name = {r["run"]: r for r in runs}
    verdicts = {
        f"sign-in c={c} >= 0.9 x scrypt bound": by_name[f"sign-in c={c}"]["rps"]
        >= 0.9 * bound["hashes_per_s"]
        for c in SIGN_IN_CONNECTIONS
    }
    for probe in args.probes:
        during = by_name[f"get-session c={probe}, during sign-in c=16"]
        verdicts[f"get-session c={probe} p99 < 50 ms during sign-in"] = during["p99_ms"] < 50
    for target, met in verdicts.items():
        print(f"target {target}: {'met' if met else 'MISSED'}")
    write_json(
        args.json,
        {
            "machine": about,
            "settings": {**vars(args), "warm_up": WARM_UP},
            "scrypt_bound": bound,
            "scrypt_bound_at_the_end": after,
            "runs": runs,
            "bastion_memory_kib": memory,
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
