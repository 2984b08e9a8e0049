"""What the benchmarks share: a scratch PostgreSQL database, the two servers, wrk, /proc.

Not a benchmark itself (see get_session.py and sign_in.py). Everything here talks to
127.0.0.1 only, and every process and database it creates is removed by the context
managers that create it, also on an error, Ctrl-C, SIGTERM or the run's time limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
NODE_DIR = ROOT / "tests" / "e2e" / "node"
ADMIN_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
T = TypeVar("T")
SECRET = "bastion-bench-secret-0123456789abcdef0123456789abcdef"  # as _bastion_server.py
EMAIL = "alice@example.com"
PASSWORD = "correct-horse-battery"

# wrk calls done() once, after its own report; one JSON line is easier to trust than its text.
REPORT_LUA = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,' ..
    '"write":%d,"status":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
    '"max_us":%d,"mean_us":%.1f}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
    e.status, e.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, latency.mean))
end
"""

SIGN_IN_LUA = f"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{{"email":"{EMAIL}","password":"{PASSWORD}"}}'
"""


class BenchError(RuntimeError):
    """The benchmark could not run as it should (a server failed, a cookie was refused…)."""


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- the time limit and signals ------------------------------------------------------


def _raise_exit(signum: int, _frame: Any) -> None:
    raise SystemExit(f"stopped by signal {signum}")


def _raise_timeout(_signum: int, _frame: Any) -> None:
    raise TimeoutError("the benchmark ran past its time limit")


def install_limits(seconds: int) -> None:
    """SIGTERM/SIGHUP unwind like Ctrl-C (so `finally:` cleans up); past `seconds`, stop."""
    signal.signal(signal.SIGTERM, _raise_exit)
    signal.signal(signal.SIGHUP, _raise_exit)
    signal.signal(signal.SIGALRM, _raise_timeout)
    signal.alarm(seconds)


def _die_with_parent() -> None:
    """preexec_fn: Linux SIGKILLs the child if this process dies without cleaning up."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


# -- the scratch database ------------------------------------------------------------


async def _admin(statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(ADMIN_URL.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@contextlib.contextmanager
def scratch_database() -> Iterator[str]:
    """A new database `bastion_bench_<pid>_<hex>` on the admin URL's server; dropped after."""
    name = f"bastion_bench_{os.getpid()}_{secrets.token_hex(3)}"
    base = ADMIN_URL.rsplit("/", 1)[0]
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    log(f"created database {name}")
    try:
        yield f"{base}/{name}"
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        log(f"dropped database {name}")


def seed(database_url: str) -> None:
    """Bastion's tables and one user (alice) with a password, in-process."""
    from bastion.identity import Identity

    async def run() -> None:
        identity = Identity(
            secret=SECRET, database=database_url, email_and_password={"enabled": True}
        )
        try:
            await identity.migrate()
            await identity.api.sign_up_email(
                body={"email": EMAIL, "password": PASSWORD, "name": "Alice"}
            )
        finally:
            await identity.close()

    asyncio.run(run())


def db_counters(database_url: str) -> dict[str, int]:
    """The database's transactions (committed + rolled back) and sessions (connections
    opened) so far, from pg_stat_database."""
    import asyncpg

    name = database_url.rsplit("/", 1)[1]

    async def run() -> dict[str, int]:
        conn = await asyncpg.connect(ADMIN_URL)
        try:
            await conn.execute("SELECT pg_stat_clear_snapshot()")
            row = await conn.fetchrow(
                "SELECT xact_commit + xact_rollback AS xacts, sessions"
                " FROM pg_stat_database WHERE datname = $1",
                name,
            )
            return {"xacts": int(row["xacts"] or 0), "sessions": int(row["sessions"] or 0)}
        finally:
            await conn.close()

    return asyncio.run(run())


# -- servers -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    name: str
    origin: str  # http://127.0.0.1:<port>
    process: subprocess.Popen[bytes]
    log_path: Path
    database_url: str
    memory_at_start: dict[str, int] = field(default_factory=dict)  # once ready, before load

    @property
    def base(self) -> str:
        return f"{self.origin}/api/auth"

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, limit: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-limit:]
        except OSError:
            return ""

    def memory(self) -> dict[str, int]:
        """VmHWM (peak resident set) and VmRSS of the server process, in KiB."""
        out: dict[str, int] = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                out[key] = int(value.split()[0])
        return out


def _stop(process: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    if process.stdin is not None:
        with contextlib.suppress(OSError):
            process.stdin.close()
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
    process.wait()


@contextlib.contextmanager
def _logged_process(
    name: str, argv: Sequence[str], *, env: dict[str, str], cwd: Path
) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    with tempfile.TemporaryDirectory(prefix="bastion-bench-") as folder:
        log_path = Path(folder) / f"{name}.log"
        with log_path.open("wb") as stderr:
            process = subprocess.Popen(
                list(argv),
                cwd=cwd,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                preexec_fn=_die_with_parent,
            )
        try:
            yield process, log_path
        finally:
            _stop(process)


def wait_ready(server: Server, within: float, path: str = "/api/auth/ok") -> None:
    """Until `path` on the server answers 200; BenchError if it exits or takes longer."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise BenchError(
                f"{server.name} exited ({server.process.returncode}):\n{server.log_tail()}"
            )
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{server.origin}{path}", timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    raise BenchError(f"{server.name} not ready within {within} s:\n{server.log_tail()}")


@contextlib.contextmanager
def bastion_server(
    database_url: str,
    *,
    cookie_cache: bool,
    loop: str = "uvloop",
    http: str = "httptools",
    server: str = "uvicorn",
    name: str | None = None,
) -> Iterator[Server]:
    """`python bench/_bastion_server.py`: one worker, in its own process; `server` is
    uvicorn, bastion (uvicorn as `bastion serve` runs it) or granian."""
    port = free_port()
    argv = [
        sys.executable,
        str(BENCH / "_bastion_server.py"),
        "--database",
        database_url,
        "--port",
        str(port),
        "--loop",
        loop,
        "--http",
        http,
        "--server",
        server,
    ]
    if cookie_cache:
        argv.append("--cookie-cache")
    name = name or "bastion" + (" +cache" if cookie_cache else "")
    env = {k: v for k, v in os.environ.items() if k != "BASTION_ENV"}  # development mode
    with _logged_process("bastion", argv, env=env, cwd=ROOT) as (process, path):
        up = Server(name, f"http://127.0.0.1:{port}", process, path, database_url)
        wait_ready(up, 30)
        up.memory_at_start = up.memory()
        yield up


def node_ready() -> str:
    node = shutil.which("node")
    if node is None:
        raise BenchError("needs Node.js (node) for the better-auth server")
    if not (NODE_DIR / "node_modules" / "better-auth").is_dir():
        raise BenchError(
            f"needs the better-auth peer installed: cd {NODE_DIR} && npm_config_nodedir=/usr npm ci"
        )
    return node


@contextlib.contextmanager
def better_auth_server(database_url: str, *, cookie_cache: bool) -> Iterator[Server]:
    """The real TypeScript better-auth (`node tests/e2e/node/ba-peer.mjs serve`)."""
    node = node_ready()
    port = free_port()
    env = {
        **os.environ,
        "DB_KIND": "postgres",
        "DB_URL": database_url.replace("postgresql+asyncpg://", "postgresql://"),
        "PORT": str(port),
        "BETTER_AUTH_SECRET": SECRET,
        "EXIT_ON_STDIN_CLOSE": "1",
    }
    for name in ("RATE_LIMIT", "NODE_ENV", "BA_OPTIONS"):  # defaults, as Bastion runs
        env.pop(name, None)
    if cookie_cache:
        env["COOKIE_CACHE"] = "1"
    else:
        env.pop("COOKIE_CACHE", None)
    argv = [node, "ba-peer.mjs", "serve"]
    with _logged_process("better-auth", argv, env=env, cwd=NODE_DIR) as (process, path):
        assert process.stdout is not None
        name = "better-auth" + (" +cache" if cookie_cache else "")
        server = Server(name, f"http://127.0.0.1:{port}", process, path, database_url)
        line = process.stdout.readline()  # {"ready":true,"url":…} once listening
        if not line:
            process.wait(10)
            raise BenchError(f"better-auth exited ({process.returncode}):\n{server.log_tail()}")
        ready = json.loads(line)
        if ready.get("ready") is not True:
            raise BenchError(f"better-auth: {ready}")
        wait_ready(server, 30)
        server.memory_at_start = server.memory()
        yield server


# -- sessions ------------------------------------------------------------------------


def sign_in_cookie(server: Server) -> str:
    """A Cookie header with every cookie a fresh sign-in sets (session_token, session_data)."""
    response = httpx.post(
        f"{server.base}/sign-in/email", json={"email": EMAIL, "password": PASSWORD}, timeout=30
    )
    if response.status_code != 200:
        raise BenchError(f"{server.name} sign-in: {response.status_code} {response.text}")
    pairs = []
    for line in response.headers.get_list("set-cookie"):
        head, _, attributes = line.partition(";")
        name, _, value = head.partition("=")
        if value and "max-age=0" not in attributes.lower():
            pairs.append(f"{name.strip()}={value.strip()}")
    if not pairs:
        raise BenchError(f"{server.name} sign-in set no cookie")
    return "; ".join(pairs)


def check_session(server: Server, cookie: str) -> int:
    """get-session with the cookie answers the session (not `null`); its body size."""
    response = httpx.get(f"{server.base}/get-session", headers={"cookie": cookie}, timeout=10)
    body = response.json() if response.status_code == 200 else None
    if not isinstance(body, dict) or body.get("user", {}).get("email") != EMAIL:
        raise BenchError(f"{server.name} get-session: {response.status_code} {response.text}")
    return len(response.content)


def copy_sessions(database_url: str, cookie: str, count: int) -> list[tuple[str, str]]:
    """`count` more sessions of the signed-in user: the session row of `cookie` copied with a
    new id and token each (what `count` sign-ins would have written, without their scrypt
    hashes). Returns their (id, token)."""
    import asyncpg

    from bastion.identity.cookies import cookie_name, parse_cookie_header, unsign_cookie_value
    from bastion.identity.crypto import generate_id

    raw = parse_cookie_header(cookie).get(cookie_name(name="session_token"), "")
    token = unsign_cookie_value(SECRET, raw)
    if token is None:
        raise BenchError("the sign-in's session_token does not verify")
    made = [(generate_id(32), generate_id(32)) for _ in range(count)]

    async def run() -> None:
        conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            row = await conn.fetchrow('SELECT * FROM "session" WHERE token = $1', token)
            if row is None:
                raise BenchError("the sign-in's session is not in the database")
            columns = list(row.keys())
            records = [
                tuple({**dict(row), "id": i, "token": t}[c] for c in columns) for i, t in made
            ]
            await conn.copy_records_to_table("session", records=records, columns=columns)
        finally:
            await conn.close()

    asyncio.run(run())
    log(f"inserted {count} session rows")
    return made


# -- wrk -----------------------------------------------------------------------------


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    non_2xx: int
    socket_errors: int  # connect + read + write + timeout
    timeouts: int
    bytes_per_request: float

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def wrk_available() -> str:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise BenchError("needs wrk: apt-get install wrk")
    return wrk


class Wrk:
    """One wrk run, started now; `result()` waits for it."""

    def __init__(
        self,
        url: str,
        *,
        connections: int,
        duration: int,
        headers: Sequence[str] = (),
        script: str = "",
        timeout: int | None = None,
        threads: int = 1,
    ) -> None:
        if not url.startswith("http://127.0.0.1:"):
            raise ValueError(f"benchmarks target 127.0.0.1 only, not {url}")
        self._dir = tempfile.TemporaryDirectory(prefix="bastion-wrk-")
        lua = Path(self._dir.name) / "run.lua"
        lua.write_text(script + REPORT_LUA)
        argv = [wrk_available(), f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency"]
        if timeout is not None:
            argv.append(f"--timeout={timeout}s")
        for header in headers:
            argv += ["-H", header]
        argv += ["-s", str(lua), url]
        self.command = " ".join(argv)
        self._duration = duration
        self._process = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=_die_with_parent
        )

    def result(self) -> WrkResult:
        try:
            out, err = self._process.communicate(timeout=self._duration + 30)
        except BaseException:
            self._process.kill()
            self._process.wait()
            raise
        finally:
            self._dir.cleanup()
        text = out.decode(errors="replace")
        line = next((ln for ln in text.splitlines() if ln.startswith("WRK_JSON ")), None)
        if self._process.returncode != 0 or line is None:
            raise BenchError(f"wrk failed ({self._process.returncode}): {text}{err.decode()}")
        data = json.loads(line.removeprefix("WRK_JSON "))
        seconds = data["duration_us"] / 1e6
        requests = data["requests"]
        return WrkResult(
            requests=requests,
            seconds=round(seconds, 2),
            rps=round(requests / seconds, 1),
            p50_ms=data["p50_us"] / 1000,
            p90_ms=data["p90_us"] / 1000,
            p99_ms=data["p99_us"] / 1000,
            max_ms=data["max_us"] / 1000,
            non_2xx=data["status"],
            socket_errors=data["connect"] + data["read"] + data["write"] + data["timeout"],
            timeouts=data["timeout"],
            bytes_per_request=round(data["bytes"] / requests, 1) if requests else 0.0,
        )


def wrk(url: str, **kwargs: Any) -> WrkResult:
    return Wrk(url, **kwargs).result()


# -- CPU accounting ------------------------------------------------------------------

CLOCK_TICKS = _TICK = os.sysconf("SC_CLK_TCK")


def _process_ticks(pid: int, *, children: bool = False) -> int:
    """utime + stime of a process (all its threads), in clock ticks, and with `children`
    also those of its children that it has reaped (cutime + cstime); 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks


def _postgres_ticks(database: str | None) -> dict[int, int]:
    """pid → ticks of the PostgreSQL server's own processes (with, for the postmaster, the
    times of the backends it has reaped: connections opened and closed during a run count)
    and of the live backends connected to `database`. Other databases' live backends (the
    machine may be shared) are left out."""
    ticks: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != "postgres":
                continue
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        backend = "(" in title  # "postgres: 15/main: user db 127.0.0.1(port) idle"
        if not backend or (database is not None and f" {database} " in title):
            ticks[int(entry.name)] = _process_ticks(int(entry.name), children=not backend)
    return ticks


process_ticks = _process_ticks


def _grown(before: dict[int, int], after: dict[int, int]) -> int:
    """Ticks gained by the processes seen at the end (those started meanwhile: all theirs)."""
    return sum(t - before.get(pid, 0) for pid, t in after.items())


def _machine_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of all CPUs since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values[:8]) - idle, sum(values[:8])


def _rusage_s(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


class CpuMeter:
    """Who used the CPUs between `start()` and `stop()`, in CPU-seconds: the server,
    PostgreSQL (its own processes, the scratch database's backends, and backends of any
    database that exited meanwhile), wrk (the children this process reaped meanwhile),
    this driver, and `foreign`: everything else — other people's work on a shared
    machine, and the kernel's own."""

    def __init__(self, server_pid: int | None, database_url: str | None = None) -> None:
        self.server_pid = server_pid if server_pid is not None else -1  # -1: no server
        self.database = database_url.rsplit("/", 1)[1] if database_url else None

    def start(self) -> None:
        self._t0 = time.monotonic()
        self._server0 = _process_ticks(self.server_pid)
        self._pg0 = _postgres_ticks(self.database)
        self._wrk0 = _rusage_s(resource.RUSAGE_CHILDREN)
        self._self0 = _rusage_s(resource.RUSAGE_SELF)
        self._busy0, self._total0 = _machine_ticks()

    def stop(self) -> dict[str, float]:
        """Call it after the wrk runs of the window have been waited for."""
        busy1, total1 = _machine_ticks()
        wall = time.monotonic() - self._t0
        server = (_process_ticks(self.server_pid) - self._server0) / _TICK
        postgres = _grown(self._pg0, _postgres_ticks(self.database)) / _TICK
        wrk = _rusage_s(resource.RUSAGE_CHILDREN) - self._wrk0
        driver = _rusage_s(resource.RUSAGE_SELF) - self._self0
        busy = (busy1 - self._busy0) / _TICK
        capacity = (total1 - self._total0) / _TICK
        foreign = max(busy - server - postgres - wrk - driver, 0.0)
        return {
            "wall_s": round(wall, 2),
            "busy_fraction": round(busy / capacity, 3) if capacity else 0.0,
            "server_cpu_s": round(server, 2),
            "postgres_cpu_s": round(postgres, 2),
            "wrk_cpu_s": round(wrk, 2),
            "driver_cpu_s": round(driver, 2),
            "foreign_cpu_s": round(foreign, 2),
            "foreign_fraction": round(foreign / capacity, 3) if capacity else 0.0,
        }


def background_load(seconds: float = 2.0) -> float:
    """The fraction of all CPUs busy over `seconds`, measured now (before a run starts)."""
    busy0, total0 = _machine_ticks()
    time.sleep(seconds)
    busy1, total1 = _machine_ticks()
    return (busy1 - busy0) / max(total1 - total0, 1)


def wait_for_quiet(limit: float = 0.15, patience: float = 60.0) -> float:
    """Wait (at most `patience` seconds) until other work uses under `limit` of the CPUs:
    the machine may be shared. Returns the last load seen; the run goes on either way."""
    deadline = time.monotonic() + patience
    load = background_load()
    while load > limit and time.monotonic() < deadline:
        log(f"the machine is busy ({100 * load:.0f}% of the CPUs); waiting for it to calm down")
        load = background_load(3.0)
    if load > limit:
        log(f"warning: measuring on a busy machine ({100 * load:.0f}% of the CPUs in use)")
    return load


FOREIGN_LIMIT = 0.10  # of all CPUs: more than this used by others spoils a run


def steady(
    what: str, run: Callable[[], tuple[T, dict[str, float]]], attempts: int = 3
) -> tuple[T, dict[str, float], int]:
    """`run()` → (result, CpuMeter figures), measured again (up to `attempts` times in all,
    after waiting for calm) while other programs used more than FOREIGN_LIMIT of the CPUs.
    Returns the last result, its CPU figures and the number of attempts made."""
    for attempt in range(1, attempts + 1):
        wait_for_quiet(patience=30)
        result, cpu = run()
        if cpu["foreign_fraction"] <= FOREIGN_LIMIT:
            return result, cpu, attempt
        log(
            f"{what}: other programs used {100 * cpu['foreign_fraction']:.0f}% of the CPUs "
            f"during the run" + ("; measuring again" if attempt < attempts else "; kept, flagged")
        )
    return result, cpu, attempts


# -- the report ----------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kib = 0
    with contextlib.suppress(OSError):
        mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    versions: dict[str, str] = {"python": sys.version.split()[0]}
    for package in ("uvicorn", "uvloop", "httptools", "starlette", "sqlalchemy", "asyncpg"):
        with contextlib.suppress(Exception):
            from importlib.metadata import version

            versions[package] = version(package)
    with contextlib.suppress(Exception):
        versions["wrk"] = subprocess.run(
            ["wrk", "-v"], capture_output=True, text=True, check=False
        ).stdout.split()[1]
    with contextlib.suppress(Exception):
        versions["node"] = subprocess.run(
            ["node", "--version"], capture_output=True, text=True, check=False
        ).stdout.strip()
    with contextlib.suppress(Exception):
        package = json.loads(
            (NODE_DIR / "node_modules" / "better-auth" / "package.json").read_text()
        )
        versions["better-auth"] = package["version"]
    source = "?"
    with contextlib.suppress(Exception):  # read-only: no index refresh, no lock
        git = ["git", "--no-optional-locks", "-C", str(ROOT)]
        head = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        )
        dirty = subprocess.run([*git, "diff", "--quiet", "HEAD", "--", "src"], check=False)
        source = head.stdout.strip() + (
            " + uncommitted changes in src/" if dirty.returncode else ""
        )
    return {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "source": source,
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "versions": versions,
    }


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def write_json(path: str | None, data: dict[str, Any]) -> None:
    if path:
        Path(path).write_text(json.dumps(data, indent=2) + "\n")
        log(f"wrote {path}")
