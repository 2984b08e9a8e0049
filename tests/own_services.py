"""PostgreSQL and Redis processes of the tests' own, for outages: each started on a free port
in a temporary folder, stopped and started again by the test, removed afterwards. Never the
machine's shared services (tests/services.py), which other tests and engineers rely on.

    pytest_plugins = ["tests.own_services"]             # in the test module: the fixtures

    async def test_x(own_postgres: OwnPostgres, own_redis: OwnRedis) -> None:
        url = await own_postgres.create_database()      # a new, empty database on it
        with own_postgres.down():                       # stopped here, running again after
            ...
        own_redis.url                                   # redis://127.0.0.1:PORT/0

Both fixtures are module-scoped (initdb takes seconds): a test that stops a server starts
it again (`down()` does), and keeps to its own database or key prefix. Redis keeps its data
across `down()` (saved at the stop), as PostgreSQL does. A missing binary
(initdb, pg_ctl, redis-server) skips the test naming it, or fails it when
$BASTION_REQUIRE_SERVICES is set. As root, PostgreSQL runs as the `postgres` user (it
refuses root).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator

import pytest

from tests.e2e.bastion_server import free_port
from tests.e2e.node_peer import _die_with_parent
from tests.services import service_missing

__all__ = ["OwnPostgres", "OwnRedis", "own_postgres", "own_redis"]

_START_TIMEOUT = 60.0


def _binary(name: str, kind: str) -> str:
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None
    )
    if found is None:
        service_missing(kind, f"no {name} binary on PATH")
    assert found is not None
    return found


class _Restartable:
    """A server of the tests' own that `down()` stops for the length of a block."""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    @contextlib.contextmanager
    def down(self) -> Iterator[None]:
        """Stopped inside the block, running again after it (whatever the block raised)."""
        self.stop()
        try:
            yield
        finally:
            self.start()


class OwnPostgres(_Restartable):
    """A PostgreSQL server of the tests' own (trust authentication, user `postgres`)."""

    def __init__(self) -> None:
        self._initdb = _binary("initdb", "postgresql")
        self._pg_ctl = _binary("pg_ctl", "postgresql")
        self.port = free_port()
        self.folder = tempfile.mkdtemp(prefix="bastion-own-pg-")
        self.data = os.path.join(self.folder, "data")
        self._as: list[str] = []
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            try:
                account = pwd.getpwnam("postgres")
            except KeyError:
                service_missing("postgresql", "no `postgres` user to run it as (not root)")
                raise
            os.chown(self.folder, account.pw_uid, account.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]
        self._run(
            self._initdb,
            "-D",
            self.data,
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "--encoding=UTF8",
            "--locale=C",
        )
        self.running = False

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        """Start, and return once it accepts connections (`pg_ctl -w`)."""
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.folder}"
            " -c fsync=off -c full_page_writes=off -c synchronous_commit=off"
        )
        log = os.path.join(self.folder, "server.log")
        self._run(self._pg_ctl, "-D", self.data, "-o", options, "-l", log, "-w", "start")
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        """Stop; `fast` ends the open connections as a restart does."""
        if self.running:
            self._run(self._pg_ctl, "-D", self.data, "-m", mode, "-w", "stop")
            self.running = False

    async def create_database(self) -> str:
        """A new, empty database on this server; its URL."""
        import asyncpg

        name = f"own_{secrets.token_hex(6)}"
        conn = await asyncpg.connect(
            host="127.0.0.1", port=self.port, user="postgres", database="postgres", timeout=10
        )
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        return self.url(name)

    def close(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError, OSError):
            self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)

    def _run(self, *command: str) -> None:
        done = subprocess.run(
            [*self._as, *command],
            capture_output=True,
            text=True,
            timeout=_START_TIMEOUT,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"{os.path.basename(command[0])} failed ({done.returncode}):\n"
                f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
            )


class OwnRedis(_Restartable):
    """A redis-server of the tests' own: loopback only, a child process that dies with the
    test run. No persistence while it runs; `stop()` saves the data set and `start()` loads
    it, so a test's sessions outlive the outage it makes (`stop(keep=False)` drops them)."""

    def __init__(self) -> None:
        self._binary = _binary("redis-server", "redis")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.folder = tempfile.mkdtemp(prefix="bastion-own-redis-")
        self._process: subprocess.Popen[str] | None = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start, and return once it logs that it accepts connections."""
        process = subprocess.Popen(
            [
                self._binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--dir",
                self.folder,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            preexec_fn=_die_with_parent(),
        )
        ready = threading.Event()
        lines: list[str] = []

        def drain() -> None:
            # Reads everything the server logs, so its pipe never fills and blocks it.
            assert process.stdout is not None
            for line in process.stdout:
                lines.append(line)
                if "Ready to accept connections" in line:
                    ready.set()
            ready.set()  # the server ended: let start() see it

        threading.Thread(target=drain, daemon=True).start()
        if not ready.wait(_START_TIMEOUT) or process.poll() is not None:
            process.kill()
            process.wait()
            raise RuntimeError("redis-server did not start:\n" + "".join(lines[-40:]))
        self._process = process

    def stop(self, *, keep: bool = True) -> None:
        """Stop; with `keep`, the data set is saved first and loaded by the next start."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        if keep:
            with socket.create_connection(("127.0.0.1", self.port), timeout=10) as conn:
                conn.sendall(b"SHUTDOWN SAVE\r\n")
                conn.recv(1024)  # the server closes the connection as it exits
        else:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(_START_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def close(self) -> None:
        self.stop(keep=False)
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[OwnPostgres]:
    server = OwnPostgres()
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def own_redis() -> Iterator[OwnRedis]:
    server = OwnRedis()
    try:
        server.start()
        yield server
    finally:
        server.close()
