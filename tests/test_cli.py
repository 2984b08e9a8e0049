"""The `bastion` command, through its real entry point where it matters."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from bastion import __version__
from bastion.cli import main
from tests.services import scratch_database


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The installed console script, as a user runs it."""
    bastion = Path(sys.executable).with_name("bastion")
    return subprocess.run(
        [str(bastion), *args], capture_output=True, text=True, timeout=120, env=env
    )


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"bastion, version {__version__}"


def test_secret_is_random_hex() -> None:
    first, second = CliRunner().invoke(main, ["secret"]), CliRunner().invoke(main, ["secret"])
    assert re.fullmatch(r"[0-9a-f]{64}\n", first.output)
    assert first.output != second.output


def test_migrate_the_default_sqlite_file_twice(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    first = subprocess.run(
        [str(Path(sys.executable).with_name("bastion")), "migrate"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert first.returncode == 0, first.stderr
    assert first.stdout == (
        "Done: create tables user, session, account, verification, bastion_thread,"
        " bastion_message.\n"
    )
    assert (tmp_path / "bastion.db").exists()
    second = subprocess.run(
        [str(Path(sys.executable).with_name("bastion")), "migrate"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert second.returncode == 0
    assert second.stdout == "Nothing to do: the database is up to date.\n"


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql", "mysql"])
async def test_migrate_sql_prints_and_runs_nothing(dialect: str) -> None:
    async with scratch_database(dialect) as url:
        printed = run("migrate", "--database", url, "--sql")
        assert printed.returncode == 0, printed.stderr
        assert printed.stdout.count("CREATE TABLE") == 6
        assert printed.stdout.rstrip().endswith(";")
        applied = run("migrate", "--database", url)
        assert applied.stdout.startswith("Done: create tables user")  # --sql created none
        again = run("migrate", "--database", url)
        assert again.stdout == "Nothing to do: the database is up to date.\n"
        quiet = run("migrate", "--database", url, "--sql")
        assert quiet.stdout == ""
        assert quiet.stderr == "Nothing to do: the database is up to date.\n"


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("oracle://scott:tiger@db/app", "unsupported database URL scheme 'oracle'"),
        (
            "postgresql://postgres:tiger@127.0.0.1:1/app",
            "cannot connect to postgresql://postgres:***@127.0.0.1:1/app",
        ),
        (
            "mysql://root:tiger@127.0.0.1:1/app",
            "cannot connect to mysql://root:***@127.0.0.1:1/app",
        ),
        ("postgresql://postgres:tiger@nohost.invalid/app", "cannot connect to"),
        (
            "sqlite:////nonexistent/folder/app.db",
            "cannot connect to sqlite:////nonexistent/folder/app.db: the folder",
        ),
    ],
)
def test_bad_database_is_one_masked_line_and_exit_1(url: str, says: str) -> None:
    result = run("migrate", "--database", url)
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and says in lines[0]
    assert "tiger" not in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("dialect", ["postgresql", "mysql"])
async def test_wrong_credentials_are_one_masked_line(dialect: str) -> None:
    async with scratch_database(dialect) as url:
        wrong = re.sub(r"://([^@/]+)@", "://nobody:tiger@", url)
        result = run("migrate", "--database", wrong)
        assert result.returncode == 1
        assert len(result.stderr.splitlines()) == 1
        assert "nobody:***@" in result.stderr and "tiger" not in result.stderr


def test_serve_runs_the_embedded_identity(tmp_path: Path) -> None:
    import socket
    import time

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    bastion = Path(sys.executable).with_name("bastion")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    server = subprocess.Popen(
        [str(bastion), "serve", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        signed_up = httpx.post(
            f"{base}/api/auth/sign-up/email",
            json={"name": "Ada", "email": "ada@example.com", "password": "password123"},
        )
        assert signed_up.status_code == 200
        token = signed_up.json()["token"]
        session = httpx.get(
            f"{base}/api/auth/get-session", headers={"authorization": f"Bearer {token}"}
        )
        assert session.json()["user"]["email"] == "ada@example.com"
        assert (tmp_path / "bastion.db").exists()
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=20)
    assert "development secret" in output  # no BASTION_SECRET: said loudly
    assert "Traceback" not in output
