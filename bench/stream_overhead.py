"""What Bastion adds around a model that answers at once: POST /api/agents/{id}/stream.

Run (from the repository root, in the venv; about 9 minutes on a quiet machine, at most 30):

    python bench/stream_overhead.py [--rounds 5] [--duration 8] [--json results.json]

Needs PostgreSQL at $BENCH_PG_URL (default postgresql://postgres@127.0.0.1:5432/test, a role
that may CREATE DATABASE) and the `bench` extra (uvloop, httptools).

The agent is `Agent(model=LocalModel())` (no delay) and the input one user message of 8
words, so one run is 10 text-delta events and a finish (529 bytes of SSE). Five server
processes (bench/_server_apps.py: uvicorn, one worker, uvloop + httptools, no access log):

    asgi-sse               the floor: a raw ASGI callable that reads the JSON body and streams
                           the same agent's events, encoded to the same bytes, one `send` per
                           event; no framework, no auth, no checks
    starlette-sse          the same as a bare Starlette route (StreamingResponse): what one
                           writes without Bastion
    unprotected            Bastion, auth=None
    identity-cache         Bastion, IdentityAuth(Identity on PostgreSQL, cookie cache on), the
                           default trust_cookie_cache="reads": a POST is checked against
                           storage (security item S16), so this is one session read a stream
    identity-cache-always  the same with trust_cookie_cache="always": the cookie cache stands
                           for the session on a POST too (no storage read)

The client (in this process, on uvloop, raw HTTP/1.1 keep-alive connections) runs closed
loops of back-to-back streams — 16 concurrent, then 1 — and times each stream from the
moment its request is written to (TTFB) the arrival of the first byte of the first event
(`event:`) and (total) the end of the chunked body. Every stream must answer 200 and the
first of each variant exactly the events the agent yields in-process.

**Overhead**, the figure held against the target (< 5 ms p99 at 16 streams): a variant's p99
(and p50) minus the floor's, measured in the same round (variants interleaved in a rotated
order), median over the rounds in which others used at most 10% of the CPUs during both runs
("clean rounds"; over all rounds when there is none, said so). The medians over all rounds
are printed too, and the added server CPU time per stream times the concurrency: what the
added work alone should add to the latency of a saturated server. Both sides run the same
agent and model, over the same uvicorn, and send the same bytes, so the difference is
Bastion: routing, the auth pipeline and provider, body checks, its SSE response. The
difference to the Starlette route is printed too. At 16 concurrent streams on one server
process the latencies are mostly queueing (each stream waits for the others' CPU time), so
an added millisecond of p99 there is roughly 1/16 ms of CPU per stream. The model's own time
(the agent's stream consumed in-process, no HTTP) is printed, as is the server's CPU time
per stream (/proc) minus that model time: the server's own work around the model, uvicorn
included. Database CPU counts only the PostgreSQL backends connected to the scratch
database.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any

import uvloop
from _harness import (
    BenchError,
    CpuMeter,
    Server,
    install_limits,
    log,
    machine,
    scratch_database,
    seed,
    sign_in_cookie,
    table,
    wait_for_quiet,
    write_json,
)
from _server_apps import AGENT_ID, VARIANTS, DatabaseMeter, app_server

ORDER = ("asgi-sse", "starlette-sse", "unprotected", "identity-cache", "identity-cache-always")
FLOOR = "asgi-sse"  # the overhead held against the target is measured from here
STARLETTE = "starlette-sse"
BASELINES = (FLOOR, STARLETTE)
MESSAGE = "please repeat these eight words back to me"
BODY = json.dumps({"messages": MESSAGE}).encode()
PATH = f"/api/agents/{AGENT_ID}/stream"
TARGET_MS = 5.0
TIME_LIMIT = 1800  # seconds, for the whole run
STREAM_TIMEOUT = 30.0


# -- the model's own time, in-process -------------------------------------------------


def expected_events() -> list[tuple[str, Any]]:
    """(event, data) of one run, from the agent itself."""
    from _server_apps import _agent

    async def collect() -> list[tuple[str, Any]]:
        return [(e.event, e.data()) async for e in _agent().stream(MESSAGE)]

    return asyncio.run(collect())


def model_time(iterations: int) -> dict[str, float]:
    """The agent's stream and the bare model's, consumed in-process one after the other on
    uvloop: µs to the first event and to the end (p50, p99), and CPU µs per stream."""
    from _server_apps import _agent

    from bastion.server.models import Message

    agent = _agent()
    transcript = [Message(role="system", content=agent.instructions), Message("user", MESSAGE)]

    async def one_agent() -> tuple[float, float]:
        start = time.perf_counter()
        first = 0.0
        async for _ in agent.stream(MESSAGE):
            if not first:
                first = time.perf_counter()
        return first - start, time.perf_counter() - start

    async def one_model() -> tuple[float, float]:
        start = time.perf_counter()
        first = 0.0
        async for _ in agent.model.stream(transcript, ()):
            if not first:
                first = time.perf_counter()
        return first - start, time.perf_counter() - start

    async def run(one: Any) -> dict[str, float]:
        for _ in range(200):
            await one()
        cpu = time.process_time()
        samples = [await one() for _ in range(iterations)]
        cpu = time.process_time() - cpu
        firsts = sorted(1e6 * s[0] for s in samples)
        totals = sorted(1e6 * s[1] for s in samples)
        return {
            "first_p50_us": percentile(firsts, 0.5),
            "first_p99_us": percentile(firsts, 0.99),
            "total_p50_us": percentile(totals, 0.5),
            "total_p99_us": percentile(totals, 0.99),
            "cpu_us": 1e6 * cpu / iterations,
        }

    async def both() -> dict[str, float]:
        agent_figures = await run(one_agent)
        model_figures = await run(one_model)
        return {**agent_figures, **{f"model_{k}": v for k, v in model_figures.items()}}

    return uvloop.run(both())


# -- the client ----------------------------------------------------------------------


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection; `stream()` sends the request and times the answer."""

    def __init__(self) -> None:
        self.transport: Any = None  # uvloop's TCPTransport is not an asyncio.Transport
        self._buffer = bytearray()
        self._head_end = -1
        self._first = 0.0
        self._done: asyncio.Future[tuple[float, float, bytes]] | None = None
        self._start = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    async def stream(self, request: bytes) -> tuple[float, float, bytes]:
        """(seconds to the first event, seconds to the end, the raw answer)."""
        assert self.transport is not None
        self._buffer.clear()
        self._head_end = -1
        self._first = 0.0
        self._done = asyncio.get_running_loop().create_future()
        self._start = time.perf_counter()
        self.transport.write(request)
        return await asyncio.wait_for(self._done, STREAM_TIMEOUT)

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        buffer = self._buffer
        buffer += data
        if self._head_end < 0:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            self._head_end = end + 4
            if not buffer.startswith(b"HTTP/1.1 200 "):
                self._fail(BenchError(f"answered {bytes(buffer[:400])!r}"))
                return
        if not self._first and buffer.find(b"event:", self._head_end) >= 0:
            self._first = now
        # The chunked body's last-chunk: the stream is over.
        if buffer.endswith(b"\r\n0\r\n\r\n") and self._done is not None:
            if not self._first:
                self._fail(BenchError(f"a stream without events: {bytes(buffer[:400])!r}"))
                return
            done, self._done = self._done, None
            done.set_result((self._first - self._start, now - self._start, bytes(buffer)))

    def _fail(self, error: Exception) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_exception(error)
        self._done = None

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(BenchError(f"connection lost: {exc!r}"))


def dechunk(raw: bytes) -> tuple[str, bytes]:
    """(the head, the body) of a chunked HTTP answer."""
    head, _, rest = raw.partition(b"\r\n\r\n")
    body = bytearray()
    while True:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            return head.decode(), bytes(body)
        body += rest[:size]
        rest = rest[size + 2 :]


def parse_events(body: bytes) -> list[tuple[str, Any]]:
    events = []
    for block in body.decode().split("\n\n"):
        if not block:
            continue
        lines = dict(line.split(": ", 1) for line in block.split("\n"))
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def request_bytes(port: int, cookie: str | None) -> bytes:
    lines = [
        f"POST {PATH} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Content-Type: application/json",
        f"Content-Length: {len(BODY)}",
    ]
    if cookie:
        lines.append(f"Cookie: {cookie}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + BODY


async def load(
    port: int,
    request: bytes,
    concurrency: int,
    warm_up: float,
    duration: float,
    meters: Sequence[CpuMeter | DatabaseMeter],
) -> tuple[list[tuple[float, float]], bytes]:
    """Closed loops of streams on `concurrency` connections: the (ttfb, total) seconds of
    the streams started and finished within the measured window, and one raw answer."""
    loop = asyncio.get_running_loop()
    connections = []
    for _ in range(concurrency):
        _, protocol = await loop.create_connection(_Connection, "127.0.0.1", port)
        connections.append(protocol)
    first_answer = (await connections[0].stream(request))[2]
    samples: list[tuple[float, float]] = []
    begin = time.perf_counter() + warm_up
    end = begin + duration
    measuring = False

    async def client(connection: _Connection) -> None:
        nonlocal measuring
        while True:
            started = time.perf_counter()
            if started >= end:
                return
            if started >= begin and not measuring:
                measuring = True
                for meter in meters:
                    meter.start()
            ttfb, total, _ = await connection.stream(request)
            if started >= begin and started + total <= end:
                samples.append((ttfb, total))

    try:
        await asyncio.gather(*(client(c) for c in connections))
    finally:
        for connection in connections:
            if connection.transport is not None:
                connection.transport.close()
    return samples, first_answer


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of sorted `values`."""
    if not values:
        return float("nan")
    index = max(0, min(len(values) - 1, int(q * len(values) + 0.999999) - 1))
    return values[index]


# -- the measurement -----------------------------------------------------------------


def measure(
    variant: str,
    server: Server,
    concurrency: int,
    warm_up: float,
    duration: float,
    expected: list[tuple[str, Any]],
) -> dict[str, Any]:
    cookie = sign_in_cookie(server) if variant.startswith("identity") else None
    port = int(server.origin.rsplit(":", 1)[1])
    request = request_bytes(port, cookie)
    quiet = wait_for_quiet(patience=20)
    meter = CpuMeter(server.pid, server.database_url or None)
    database = DatabaseMeter(server.database_url or None)
    samples, raw = uvloop.run(
        load(port, request, concurrency, warm_up, duration, (meter, database))
    )
    used = meter.stop()
    database_s = database.stop()
    head, body = dechunk(raw)
    if parse_events(body) != expected:
        raise BenchError(f"{variant}: other events than the agent's: {body[:400]!r}")
    if "set-cookie" in head.lower():  # a cookie rewritten per request would not be steady
        raise BenchError(f"{variant}: answered a Set-Cookie: {head}")
    if not samples:
        raise BenchError(f"{variant}: no stream finished within the window")
    ttfb = sorted(1000 * s[0] for s in samples)
    total = sorted(1000 * s[1] for s in samples)
    streams = len(samples)
    result: dict[str, Any] = {
        "variant": variant,
        "concurrency": concurrency,
        "streams": streams,
        "streams_per_s": round(streams / duration, 1),
        "ttfb_p50_ms": percentile(ttfb, 0.5),
        "ttfb_p99_ms": percentile(ttfb, 0.99),
        "total_p50_ms": percentile(total, 0.5),
        "total_p99_ms": percentile(total, 0.99),
        "total_max_ms": total[-1],
        "load_before": round(quiet, 3),
        "cpu": used,
        "cpu_ms_per_stream": {
            k.removesuffix("_cpu_s"): round(1000 * v / streams, 3)
            for k, v in used.items()
            if k.endswith("_cpu_s")
        },
        "database_cpu_ms_per_stream": round(1000 * database_s / streams, 3),
    }
    log(
        f"{variant} c={concurrency}: {result['streams_per_s']:.0f} streams/s, "
        f"ttfb p50/p99 {result['ttfb_p50_ms']:.2f}/{result['ttfb_p99_ms']:.2f} ms, "
        f"total p50/p99 {result['total_p50_ms']:.2f}/{result['total_p99_ms']:.2f} ms, "
        f"server {result['cpu_ms_per_stream']['server']:.3f} ms CPU/stream, "
        f"others {100 * used['foreign_fraction']:.0f}% of the CPUs"
    )
    return result


KEYS = ("ttfb_p50_ms", "ttfb_p99_ms", "total_p50_ms", "total_p99_ms")


CLEAN = 0.10  # of all CPUs used by others: at most this during both runs, a clean pair


def _clean(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return bool(max(a["cpu"]["foreign_fraction"], b["cpu"]["foreign_fraction"]) <= CLEAN)


def summarise(
    rounds: list[dict[str, dict[str, Any]]], concurrency: int, model_cpu_ms: float
) -> list[dict[str, Any]]:
    """Per variant at `concurrency`: medians over the rounds of its figures and of its
    per-round differences to each baseline (also over the clean rounds alone)."""
    summary = []
    for variant in ORDER:
        runs = [r[variant] for r in rounds if variant in r]
        if not runs:
            continue
        row: dict[str, Any] = {"variant": variant, "what": VARIANTS[variant]}
        for key in (*KEYS, "streams_per_s"):
            row[key] = float(statistics.median(r[key] for r in runs))
        for baseline in BASELINES:
            pairs = [(r[variant], r[baseline]) for r in rounds if baseline in r]
            for key in KEYS:
                diffs = [v[key] - b[key] for v, b in pairs]
                clean = [v[key] - b[key] for v, b in pairs if _clean(v, b)]
                name = f"added_{key}_vs_{baseline}"
                row[name] = float(statistics.median(diffs)) if diffs else None
                row[f"{name}_rounds"] = [round(d, 2) for d in diffs]
                row[f"{name}_clean"] = float(statistics.median(clean)) if clean else None
                row[f"{name}_clean_rounds"] = len(clean)
            cpu = [
                v["cpu_ms_per_stream"]["server"] - b["cpu_ms_per_stream"]["server"]
                for v, b in pairs
            ]
            row[f"added_server_cpu_ms_vs_{baseline}"] = float(statistics.median(cpu))
        server = float(statistics.median(r["cpu_ms_per_stream"]["server"] for r in runs))
        row["server_cpu_ms"] = server
        row["server_cpu_ms_around_model"] = server - model_cpu_ms
        row["database_cpu_ms"] = float(
            statistics.median(r["database_cpu_ms_per_stream"] for r in runs)
        )
        row["client_cpu_ms"] = float(
            statistics.median(r["cpu_ms_per_stream"]["driver"] for r in runs)
        )
        row["foreign_max"] = max(r["cpu"]["foreign_fraction"] for r in runs)
        summary.append(row)
    return summary


def report(summary: list[dict[str, Any]], concurrency: int) -> str:
    """Two tables: the figures of each variant, and what each adds to the floor."""
    figures = table(
        [
            "variant",
            "streams/s",
            "TTFB p50 / p99",
            "total p50 / p99",
            "server CPU ms/stream",
            "of which around the model",
            "database CPU ms/stream",
            "client CPU ms/stream",
            "others' CPU (max)",
        ],
        [
            [
                r["variant"],
                f"{r['streams_per_s']:.0f}",
                f"{r['ttfb_p50_ms']:.2f} / {r['ttfb_p99_ms']:.2f}",
                f"{r['total_p50_ms']:.2f} / {r['total_p99_ms']:.2f}",
                f"{r['server_cpu_ms']:.3f}",
                f"{r['server_cpu_ms_around_model']:.3f}",
                f"{r['database_cpu_ms']:.3f}",
                f"{r['client_cpu_ms']:.3f}",
                f"{100 * r['foreign_max']:.0f}%",
            ]
            for r in summary
        ],
    )

    def clean(row: dict[str, Any], key: str) -> str:
        value = row[f"added_{key}_vs_{FLOOR}_clean"]
        if value is None:
            return "no clean round"
        return f"{value:+.2f} ({row[f'added_{key}_vs_{FLOOR}_clean_rounds']})"

    added = table(
        [
            f"variant (minus {FLOOR})",
            "added TTFB p99",
            "added total p50",
            "added total p99",
            "added TTFB p99, clean rounds (n)",
            "added total p99, clean rounds (n)",
            "added server CPU ms/stream",
            f"x {concurrency}",
            "added total p99 vs Starlette",
        ],
        [
            [
                r["variant"],
                f"{r[f'added_ttfb_p99_ms_vs_{FLOOR}']:+.2f}",
                f"{r[f'added_total_p50_ms_vs_{FLOOR}']:+.2f}",
                f"{r[f'added_total_p99_ms_vs_{FLOOR}']:+.2f}",
                clean(r, "ttfb_p99_ms"),
                clean(r, "total_p99_ms"),
                f"{r[f'added_server_cpu_ms_vs_{FLOOR}']:+.3f}",
                f"{concurrency * r[f'added_server_cpu_ms_vs_{FLOOR}']:+.2f}",
                "—"
                if r["variant"] == STARLETTE
                else f"{r[f'added_total_p99_ms_vs_{STARLETTE}']:+.2f}",
            ]
            for r in summary
            if r["variant"] != FLOOR
        ],
    )
    return figures + "\n\n" + added


def main() -> int:
    parser = argparse.ArgumentParser(description="stream: what Bastion adds around the model")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=float, default=8.0, help="seconds at c=16")
    parser.add_argument("--single-duration", type=float, default=4.0, help="seconds at c=1")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--loop", default="uvloop", choices=("uvloop", "asyncio"))
    parser.add_argument("--http", default="httptools", choices=("httptools", "h11"))
    args = parser.parse_args()
    install_limits(TIME_LIMIT)
    about = machine()
    log(f"source {about['source']}, {about['cpus']} CPUs, {about['versions']}")

    expected = expected_events()
    model = model_time(5000)
    log(
        "the agent's stream in-process: first event p50/p99 "
        f"{model['first_p50_us']:.1f}/{model['first_p99_us']:.1f} µs, whole stream "
        f"{model['total_p50_us']:.1f}/{model['total_p99_us']:.1f} µs, "
        f"{model['cpu_us']:.1f} µs CPU (the bare model: {model['model_total_p50_us']:.1f} µs)"
    )
    model_cpu_ms = model["cpu_us"] / 1000

    loads = [(args.concurrency, 2.0, args.duration), (1, 1.0, args.single_duration)]
    rounds: dict[int, list[dict[str, dict[str, Any]]]] = {c: [] for c, _, _ in loads}
    with scratch_database() as database_url:
        seed(database_url)
        with contextlib.ExitStack() as stack:
            servers = {
                v: stack.enter_context(
                    app_server(v, database_url=database_url, loop=args.loop, http=args.http)
                )
                for v in ORDER
            }
            for number in range(args.rounds):
                order = ORDER[number % len(ORDER) :] + ORDER[: number % len(ORDER)]
                log(f"round {number + 1}/{args.rounds}: {', '.join(order)}")
                for concurrency, warm_up, duration in loads:
                    rounds[concurrency].append(
                        {
                            v: measure(v, servers[v], concurrency, warm_up, duration, expected)
                            for v in order
                        }
                    )

    summaries = {c: summarise(rounds[c], c, model_cpu_ms) for c in rounds}
    print()
    print(
        f"POST {PATH}, LocalModel (no delay), {len(expected)} events, {args.rounds} interleaved "
        f"rounds, medians ({about['date']}, {about['source']}, {about['cpus']} CPUs)"
    )
    print(
        f"The agent's own stream in-process: {model['total_p50_us']:.0f} µs "
        f"(p99 {model['total_p99_us']:.0f}), {model['cpu_us']:.0f} µs CPU; first event after "
        f"{model['first_p50_us']:.0f} µs. Times in ms; 'added' = minus {FLOOR} (or Starlette),"
        " same round, median over the rounds."
    )
    for concurrency, summary in summaries.items():
        print()
        print(f"{concurrency} concurrent stream{'s' if concurrency > 1 else ''}:")
        print()
        print(report(summary, concurrency))
    print()
    for row in summaries[args.concurrency]:
        if row["variant"] in BASELINES:
            continue
        worst_all = max(row[f"added_{k}_vs_{FLOOR}"] for k in ("ttfb_p99_ms", "total_p99_ms"))
        clean = [row[f"added_{k}_vs_{FLOOR}_clean"] for k in ("ttfb_p99_ms", "total_p99_ms")]
        worst = max(clean) if None not in clean else worst_all
        basis = "clean rounds" if None not in clean else "all rounds (no clean round)"
        verdict = "met" if worst < TARGET_MS else "MISSED"
        print(
            f"target < {TARGET_MS:g} ms added p99 (vs {FLOOR}) at c={args.concurrency}: "
            f"{row['variant']} {worst:+.2f} ms over {basis} — {verdict} "
            f"(all rounds {worst_all:+.2f}; added server CPU x {args.concurrency}: "
            f"{args.concurrency * row[f'added_server_cpu_ms_vs_{FLOOR}']:+.2f} ms)"
        )
    write_json(
        args.json,
        {
            "machine": about,
            "message": MESSAGE,
            "events": len(expected),
            "model": model,
            "summary": {str(c): s for c, s in summaries.items()},
            "rounds": {str(c): r for c, r in rounds.items()},
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
