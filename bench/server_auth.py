"""The cost of auth on the agent server: GET /api/agents, unprotected vs three providers.

Run (from the repository root, in the venv; about 5 minutes on a quiet machine, 8 with
--controls, at most 20):

    python bench/server_auth.py [--rounds 5] [--duration 10] [--json results.json]

Needs PostgreSQL at $BENCH_PG_URL (default postgresql://postgres@127.0.0.1:5432/test, a role
that may CREATE DATABASE), wrk (apt-get install wrk), Node with tests/e2e/node installed
(for mock-auth0.mjs) and the `bench` extra (uvloop, httptools).

Four server processes (bench/_server_apps.py: uvicorn, one worker, uvloop + httptools, no
access log), each a `Bastion` with one LocalModel agent, started once and kept for the run:

    unprotected      auth=None
    identity-cache   IdentityAuth(Identity on PostgreSQL, session cookie cache on); the
                     request carries session_token and session_data (a GET trusts the cache)
    identity         IdentityAuth(Identity on PostgreSQL, no cookie cache): a session read
                     per request
    identity-sessions  the identity server, each request the next of 1,000 sessions in
                     turn (bench/rotate_cookies.lua): the session reads that arrive together
                     share one statement on PostgreSQL, and this shows what that is worth
                     when every read is a different row (no target of its own)
    auth0            Auth0Auth(issuer=<mock-auth0.mjs>, audience=...): an RS256 access token
                     (typ JWT, from the client-credentials grant), the JWKS fetched once and warm
    identity-cache-org       identity-cache with the organization() plugin: the session's
                     active organization is checked (the member row, from the plugin's cache)
    identity-cache-org-rbac  the same, with OrganizationRBAC(identity): GET /api/agents
                     requires agents:read, granted by the member's role (owner)

The organization variants' client signs in, then makes its organization active
(set-active rewrites the cookie cache); they are also compared with identity-cache in the
same round ("vs identity-cache"; target for organization RBAC: >= 0.8). `--variants a,b`
measures only those (unprotected is always measured: every ratio needs it).

Each is measured with `wrk -t1 -c16 -d10s --latency` after a 2 s warm-up, with a fresh
credential per measurement (so no cookie cache expires mid-run), checked to answer the agent
list (200) before and after, and a request without the credential checked to answer 401.
The variants are interleaved, in a rotated order, for `--rounds` rounds; the report gives
medians over the rounds, and for each provider the median of its per-round ratio of req/s
to the unprotected server of the same round (targets: identity-cache >= 0.8, identity
>= 0.35, auth0 >= 0.5); also that median over the clean rounds only (others used at most
10% of the CPUs during both runs), and the ratio of server CPU time per request
(unprotected / variant), which others' load hardly moves. Every wrk run is bracketed by
/proc CPU accounting, so the share of the CPUs others used during it is printed beside it
(the machine may be shared). Database CPU counts only the PostgreSQL backends connected to
the scratch database.

`--controls` adds two rows measured on the unprotected server, sent the identity cookie
header (`unprotected+cookie`, ~1 KB) or the Auth0 bearer header (`unprotected+bearer`),
which it ignores: what the credential's bytes cost HTTP parsing alone, apart from the auth
work.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from _harness import (
    BENCH,
    SECRET,
    BenchError,
    CpuMeter,
    Server,
    copy_sessions,
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
from _server_apps import (
    AGENT_ID,
    VARIANTS,
    DatabaseMeter,
    app_server,
    auth0_issuer,
    auth0_token,
    bench_organization,
)

from bastion.identity.cookies import cookie_name, sign_cookie_value

ORDER = (
    "unprotected",
    "identity-cache",
    "identity",
    "identity-sessions",
    "auth0",
    "identity-cache-org",
    "identity-cache-org-rbac",
)
# --controls: the unprotected server sent the credential header of another variant, which
# it ignores; what those bytes cost HTTP parsing alone. name -> (server, credential of)
CONTROLS = {
    "unprotected+cookie": ("unprotected", "identity-cache"),
    "unprotected+bearer": ("unprotected", "auth0"),
}
# variant -> the variant whose server answers it
SHARES = {"identity-sessions": "identity"}
SESSIONS = 1_000  # of identity-sessions
TOKEN_COOKIE = cookie_name(name="session_token")  # development mode: not __Secure-
ORGANIZATION = ("identity-cache-org", "identity-cache-org-rbac")
# variant -> the variant of the same round it is also compared with
PAIRED = {variant: "identity-cache" for variant in ORGANIZATION}
PAIRED_TARGETS = {"identity-cache-org-rbac": 0.8}
CLEAN = 0.10  # of all CPUs used by others: at most this, and a round counts as clean
TARGETS = {"identity-cache": 0.8, "identity": 0.35, "auth0": 0.5}
CONNECTIONS = 16
DURATION = 10
WARM_UP = 2
TIME_LIMIT = 1200  # seconds, for the whole run


def seed_organization_tables(database_url: str) -> None:
    """The organization plugin's tables (and session columns), in-process."""
    from bastion.identity import Identity

    async def run() -> None:
        identity = Identity(
            secret=SECRET,
            database=database_url,
            email_and_password={"enabled": True},
            plugins=[bench_organization()],
        )
        try:
            await identity.migrate()
        finally:
            await identity.close()

    asyncio.run(run())


def _cookie_pairs(response: httpx.Response, into: dict[str, str]) -> dict[str, str]:
    for line in response.headers.get_list("set-cookie"):
        head, _, attributes = line.partition(";")
        name, _, value = head.partition("=")
        if "max-age=0" in attributes.lower():
            into.pop(name.strip(), None)
        elif value:
            into[name.strip()] = value.strip()
    return into


_ORGANIZATIONS: dict[str, str] = {}  # server origin -> the bench organization's id


def organization_cookie(server: Server) -> str:
    """Sign in, make the bench organization active (created once per server: the same
    database, so the first server's organization serves the second too)."""
    pairs = dict(pair.split("=", 1) for pair in sign_in_cookie(server).split("; "))
    headers = {"origin": server.origin}

    def cookie() -> dict[str, str]:
        return {**headers, "cookie": "; ".join(f"{k}={v}" for k, v in pairs.items())}

    organization_id = _ORGANIZATIONS.get("bench")
    if organization_id is None:
        created = httpx.post(
            f"{server.base}/organization/create",
            json={"name": "Bench", "slug": "bench"},
            headers=cookie(),
            timeout=10,
        )
        if created.status_code != 200:
            raise BenchError(f"{server.name} create: {created.status_code} {created.text}")
        organization_id = _ORGANIZATIONS["bench"] = created.json()["id"]
    active = httpx.post(
        f"{server.base}/organization/set-active",
        json={"organizationId": organization_id},
        headers=cookie(),
        timeout=10,
    )
    if active.status_code != 200:
        raise BenchError(f"{server.name} set-active: {active.status_code} {active.text}")
    _cookie_pairs(active, pairs)
    return "; ".join(f"{k}={v}" for k, v in pairs.items())


@dataclass
class Credential:
    """What wrk sends (headers, or a script that rotates them) and the header lists checked
    before and after the load."""

    headers: list[str]
    script: str = ""
    checked: list[list[str]] = field(default_factory=list)


def credential(variant: str, server: Server, issuer: str, folder: Path) -> Credential:
    """What authenticates the clients of `variant`, served by `server` (fresh each call)."""
    if variant == "unprotected":
        return Credential([], checked=[[]])
    if variant == "auth0":
        headers = [f"Authorization: Bearer {auth0_token(issuer)}"]
    elif variant in ORGANIZATION:
        headers = [f"Cookie: {organization_cookie(server)}"]
    elif variant == "identity-sessions":
        made = copy_sessions(server.database_url, sign_in_cookie(server), SESSIONS)
        lines = [f"{TOKEN_COOKIE}={sign_cookie_value(SECRET, token)}" for _, token in made]
        path = folder / f"cookies-{len(made)}.txt"
        path.write_text("\n".join(lines) + "\n")
        script = f"COOKIES_FILE = {str(path)!r}\n" + (BENCH / "rotate_cookies.lua").read_text()
        sample = [lines[0], lines[-1], *random.sample(lines, 8)]
        return Credential([], script, [[f"Cookie: {line}"] for line in sample])
    else:
        headers = [f"Cookie: {sign_in_cookie(server)}"]
    return Credential(headers, checked=[headers])


def check(variant: str, server: Server, headers: list[str]) -> int:
    """The agent list with the credential (200, the echo agent), 401 without (unless the
    server is unprotected); body size."""
    url = f"{server.origin}/api/agents"
    as_dict = dict(h.split(": ", 1) for h in headers)
    response = httpx.get(url, headers=as_dict, timeout=10)
    if response.status_code != 200 or AGENT_ID not in response.json():
        raise BenchError(f"{variant}: {response.status_code} {response.text[:300]}")
    if "set-cookie" in response.headers:  # would mean a refresh per request: not steady
        raise BenchError(f"{variant}: answered Set-Cookie {response.headers['set-cookie']}")
    if server.name != "unprotected":
        anonymous = httpx.get(url, timeout=10).status_code
        if anonymous != 401:
            raise BenchError(f"{variant}: {anonymous} without a credential, not 401")
    return len(response.content)


def measure(
    variant: str, servers: dict[str, Server], issuer: str, args: argparse.Namespace
) -> dict[str, Any]:
    served_by, credential_of = CONTROLS.get(variant, (SHARES.get(variant, variant), variant))
    server = servers[served_by]
    with tempfile.TemporaryDirectory(prefix="bastion-bench-") as folder:
        sent = credential(
            credential_of, servers[SHARES.get(credential_of, credential_of)], issuer, Path(folder)
        )
        size = max(check(variant, server, headers) for headers in sent.checked)
        url = f"{server.origin}/api/agents"
        load = {"connections": args.connections, "headers": sent.headers, "script": sent.script}
        quiet = wait_for_quiet(patience=20)
        wrk(url, duration=WARM_UP, **load)
        time.sleep(0.3)
        meter = CpuMeter(server.pid, server.database_url or None)
        database = DatabaseMeter(server.database_url or None)
        meter.start()
        database.start()
        result = wrk(url, duration=args.duration, **load)
        used = meter.stop()
        database_s = database.stop()
        for headers in sent.checked:
            check(variant, server, headers)
    if result.non_2xx or result.socket_errors:
        raise BenchError(f"{variant}: {result.non_2xx} non-2xx, {result.socket_errors} errors")
    requests = max(result.requests, 1)
    log(
        f"{variant}: {result.rps:.0f} req/s, p50 {result.p50_ms:.2f} ms, p99 "
        f"{result.p99_ms:.2f} ms, server {1000 * used['server_cpu_s'] / requests:.3f} ms CPU/req, "
        f"others {100 * used['foreign_fraction']:.0f}% of the CPUs"
    )
    return {
        "variant": variant,
        **result.as_dict(),
        "body_bytes": size,
        "load_before": round(quiet, 3),
        "cpu": used,
        "cpu_ms_per_request": {
            k.removesuffix("_cpu_s"): round(1000 * v / requests, 3)
            for k, v in used.items()
            if k.endswith("_cpu_s")
        },
        "database_cpu_ms_per_request": round(1000 * database_s / requests, 3),
    }


def summarise(rounds: list[dict[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Per variant (and control): medians over the rounds, and the per-round ratios to
    unprotected."""
    summary = []
    for variant in (*ORDER, *CONTROLS):
        runs = [r[variant] for r in rounds if variant in r]
        if not runs:
            continue
        paired = [(r[variant], r["unprotected"]) for r in rounds if variant in r]
        ratios = [v["rps"] / u["rps"] for v, u in paired]
        # Rounds in which others used at most CLEAN of the CPUs during both runs.
        clean = [
            v["rps"] / u["rps"]
            for v, u in paired
            if max(v["cpu"]["foreign_fraction"], u["cpu"]["foreign_fraction"]) <= CLEAN
        ]
        # Throughput of a server bound to one core ~ 1 / its CPU per request: this ratio
        # barely moves when others take a share of the CPUs (it does when the VM slows).
        cpu_ratios = [
            u["cpu_ms_per_request"]["server"] / v["cpu_ms_per_request"]["server"] for v, u in paired
        ]

        vs = PAIRED.get(variant)
        paired_ratios = [r[variant]["rps"] / r[vs]["rps"] for r in rounds if vs and vs in r]

        def med(key: str, runs: list[dict[str, Any]] = runs) -> float:
            return float(statistics.median(r[key] for r in runs))

        def cpu(key: str, runs: list[dict[str, Any]] = runs) -> float:
            return float(statistics.median(r["cpu_ms_per_request"][key] for r in runs))

        summary.append(
            {
                "variant": variant,
                "what": VARIANTS.get(variant)
                or (
                    f"{SHARES[variant]}, {SESSIONS} sessions in turn"
                    if variant in SHARES
                    else f"the unprotected server, sent the header of {CONTROLS[variant][1]}"
                ),
                "rps": med("rps"),
                "p50_ms": med("p50_ms"),
                "p99_ms": med("p99_ms"),
                "ratio": statistics.median(ratios) if ratios else None,
                "ratios": [round(x, 3) for x in ratios],
                "ratio_clean": statistics.median(clean) if clean else None,
                "clean_rounds": len(clean),
                "cpu_ratio": statistics.median(cpu_ratios),
                "target": TARGETS.get(variant),
                "vs": vs,
                "ratio_vs": statistics.median(paired_ratios) if paired_ratios else None,
                "ratios_vs": [round(x, 3) for x in paired_ratios],
                "target_vs": PAIRED_TARGETS.get(variant),
                "server_cpu_ms": cpu("server"),
                "database_cpu_ms": float(
                    statistics.median(r["database_cpu_ms_per_request"] for r in runs)
                ),
                "wrk_cpu_ms": cpu("wrk"),
                "foreign_max": max(r["cpu"]["foreign_fraction"] for r in runs),
            }
        )
    return summary


def report(summary: list[dict[str, Any]]) -> str:
    rows = []
    for s in summary:
        ratio = "1.00" if s["variant"] == "unprotected" else f"{s['ratio']:.3f}"
        if s["target"]:
            ratio = f"**{ratio}**"
        spread = ", ".join(f"{x:.2f}" for x in s["ratios"]) if s["variant"] != "unprotected" else ""
        target = (
            f"≥ {s['target']}: {'yes' if s['ratio'] >= s['target'] else 'NO'}"
            if s["target"]
            else ""
        )
        clean = "" if s["variant"] == "unprotected" else "-"
        if s["ratio_clean"] is not None and s["variant"] != "unprotected":
            clean = f"{s['ratio_clean']:.3f} ({s['clean_rounds']})"
        cpu_ratio = "" if s["variant"] == "unprotected" else f"{s['cpu_ratio']:.3f}"
        versus = ""
        if s.get("ratio_vs") is not None:
            versus = f"{s['ratio_vs']:.3f} ({', '.join(f'{x:.2f}' for x in s['ratios_vs'])})"
            if s["target_vs"]:
                met = "yes" if s["ratio_vs"] >= s["target_vs"] else "NO"
                versus = f"**{versus}** ≥ {s['target_vs']}: {met}"
        rows.append(
            [
                s["variant"],
                f"{s['rps']:.0f}",
                ratio,
                spread,
                clean,
                cpu_ratio,
                target,
                versus,
                f"{s['p50_ms']:.2f}",
                f"{s['p99_ms']:.2f}",
                f"{s['server_cpu_ms']:.3f}",
                f"{s['database_cpu_ms']:.3f}",
                f"{100 * s['foreign_max']:.0f}%",
            ]
        )
    return table(
        [
            "variant",
            "req/s",
            "ratio",
            "per round",
            "ratio, clean rounds (n)",
            "server-CPU ratio",
            "target",
            "vs identity-cache (per round)",
            "p50 ms",
            "p99 ms",
            "server CPU ms/req",
            "database CPU ms/req",
            "others' CPU (max)",
        ],
        rows,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description="GET /api/agents: the cost of auth")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=DURATION)
    parser.add_argument("--connections", type=int, default=CONNECTIONS)
    parser.add_argument("--loop", default="uvloop", choices=("uvloop", "asyncio"))
    parser.add_argument("--http", default="httptools", choices=("httptools", "h11"))
    parser.add_argument(
        "--variants",
        help="comma-separated variants to measure (unprotected always is), e.g. "
        "identity-cache,identity-cache-org,identity-cache-org-rbac",
    )
    parser.add_argument(
        "--controls",
        action="store_true",
        help="also measure the unprotected server sent the cookie / bearer header (ignored)",
    )
    args = parser.parse_args()
    install_limits(TIME_LIMIT)
    chosen = ORDER
    if args.variants:
        wanted = {v.strip() for v in args.variants.split(",") if v.strip()}
        unknown = wanted - set(ORDER)
        if unknown:
            parser.error(f"unknown variants: {', '.join(sorted(unknown))}")
        wanted |= {"unprotected", *(PAIRED[v] for v in wanted if v in PAIRED)}
        wanted |= {SHARES[v] for v in wanted if v in SHARES}
        chosen = tuple(v for v in ORDER if v in wanted)
    controls = tuple(c for c, (_, of) in CONTROLS.items() if of in chosen)
    variants = (*chosen, *controls) if args.controls else chosen
    about = machine()
    log(f"source {about['source']}, {about['cpus']} CPUs, {about['versions']}")

    rounds: list[dict[str, dict[str, Any]]] = []
    issuing = auth0_issuer() if "auth0" in chosen else contextlib.nullcontext("")
    with scratch_database() as database_url, issuing as issuer:
        seed(database_url)
        if any(v in ORGANIZATION for v in chosen):
            seed_organization_tables(database_url)
        servers: dict[str, Server] = {}
        with contextlib.ExitStack() as stack:
            for variant in (v for v in chosen if v not in SHARES):
                servers[variant] = stack.enter_context(
                    app_server(
                        variant,
                        database_url=database_url,
                        issuer=issuer,
                        loop=args.loop,
                        http=args.http,
                    )
                )
            for number in range(args.rounds):
                shift = number % len(variants)
                order = variants[shift:] + variants[:shift]
                log(f"round {number + 1}/{args.rounds}: {', '.join(order)}")
                rounds.append({v: measure(v, servers, issuer, args) for v in order})
            memory = {v: s.memory() for v, s in servers.items()}

    summary = summarise(rounds)
    print()
    print(
        f"GET /api/agents, wrk -t1 -c{args.connections} -d{args.duration}s, "
        f"{args.rounds} interleaved rounds, medians ({about['date']}, {about['source']}, "
        f"{about['cpus']} CPUs)"
    )
    print()
    print(report(summary))
    write_json(
        args.json,
        {
            "machine": about,
            "connections": args.connections,
            "duration": args.duration,
            "summary": summary,
            "rounds": rounds,
            "memory_kib": memory,
        },
    )
    missed = [s["variant"] for s in summary if s["target"] and s["ratio"] < s["target"]]
    missed += [
        f"{s['variant']} vs {s['vs']}"
        for s in summary
        if s.get("target_vs") and s["ratio_vs"] is not None and s["ratio_vs"] < s["target_vs"]
    ]
    if missed:
        log(f"targets missed: {', '.join(missed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
