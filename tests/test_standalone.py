"""The embedded default of `bastion serve` and what `bastion serve` does with an app
(`bastion.standalone`, `bastion.serving`), in-process over httpx.ASGITransport."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from bastion.identity import Identity
from bastion.server import Bastion
from bastion.serving import (
    MIGRATE_ENV,
    TARGET_ENV,
    LoadError,
    ServedApp,
    child_app,
    load,
    serving,
)
from bastion.standalone import create_app

SECRET = "test-secret-0123456789abcdef0123456789abcdef"
BASE = "http://127.0.0.1:4111"


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        return {row[0] for row in db.execute("select name from sqlite_master where type='table'")}


@asynccontextmanager
async def running(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The app inside its lifespan, and a client on it."""
    assert isinstance(app, ServedApp)
    async with (
        app.lifespan(),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http,
    ):
        yield http


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def sign_up(http: httpx.AsyncClient, name: str, email: str) -> httpx.Response:
    signed_up = await http.post(
        "/api/auth/sign-up/email", json={"name": name, "email": email, "password": "horse battery"}
    )
    assert signed_up.status_code == 200, signed_up.text
    return signed_up


# -- the embedded default ------------------------------------------------------------------


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"BASTION_SECRET": SECRET, "DATABASE_URL": f"sqlite:///{tmp_path}/bastion.db"}


async def test_default_app_migrates_at_start_up(env: dict[str, str], tmp_path: Path) -> None:
    app = create_app(env)
    assert not (tmp_path / "bastion.db").exists()
    async with running(app) as http:
        assert (await http.get("/health")).json() == {"status": "ok"}
    assert {"user", "session", "account", "verification"} <= tables(tmp_path / "bastion.db")
    assert {"bastion_thread", "bastion_message"} <= tables(tmp_path / "bastion.db")


async def test_default_app_agent_knows_the_signed_up_user(env: dict[str, str]) -> None:
    async with running(create_app(env)) as http:
        assert (await http.get("/api/agents")).status_code == 401
        signed_up = await sign_up(http, "Ada Lovelace", "ada@example.com")
        user_id = signed_up.json()["user"]["id"]
        token = signed_up.headers["set-auth-token"]
        assert http.cookies.get("better-auth.session_token")

        by_cookie = await http.get("/api/agents")
        assert by_cookie.status_code == 200
        agent = by_cookie.json()["assistant"]
        assert agent["modelId"] == "local/demo"
        assert set(agent["tools"]) == {"whoami", "get_time"}

        http.cookies.clear()
        assert (await http.get("/api/agents")).status_code == 401
        assert (await http.get("/api/agents", headers=bearer(token))).status_code == 200

        said = await http.post(
            "/api/agents/assistant/generate", json={"messages": "Who am I?"}, headers=bearer(token)
        )
        assert said.status_code == 200, said.text
        result = said.json()["toolResults"][0]
        assert result["toolName"] == "whoami"
        assert result["result"] == {
            "id": user_id,
            "name": "Ada Lovelace",
            "email": "ada@example.com",
        }
        assert "Ada Lovelace" in said.json()["text"]

        # The raw token of the sign-up body works as a bearer token too (Mastra #19110).
        raw = signed_up.json()["token"]
        timed = await http.post(
            "/api/agents/assistant/generate",
            json={"messages": "what time is it?"},
            headers=bearer(raw),
        )
        assert timed.status_code == 200, timed.text
        now = datetime.fromisoformat(timed.json()["toolResults"][0]["result"])
        assert abs((datetime.now(UTC) - now).total_seconds()) < 60


async def test_default_app_keeps_threads_per_user(env: dict[str, str]) -> None:
    async with running(create_app(env)) as http:
        ada = (await sign_up(http, "Ada", "ada@example.com")).headers["set-auth-token"]
        http.cookies.clear()
        bob = (await sign_up(http, "Bob", "bob@example.com")).headers["set-auth-token"]
        http.cookies.clear()
        said = await http.post(
            "/api/agents/assistant/generate",
            json={"messages": "who am i", "threadId": "first-chat"},
            headers=bearer(ada),
        )
        assert said.status_code == 200, said.text
        threads = await http.get("/api/memory/threads", headers=bearer(ada))
        assert [t["id"] for t in threads.json()] == ["first-chat"]
        messages = await http.get("/api/memory/threads/first-chat/messages", headers=bearer(ada))
        roles = [m["role"] for m in messages.json()["messages"]]
        assert roles == ["user", "assistant", "tool", "assistant"]
        assert (await http.get("/api/memory/threads", headers=bearer(bob))).json() == []
        foreign = await http.get("/api/memory/threads/first-chat/messages", headers=bearer(bob))
        assert foreign.status_code == 404


async def test_default_app_whoami_tool_is_per_user(env: dict[str, str]) -> None:
    async with running(create_app(env)) as http:
        ada = (await sign_up(http, "Ada", "ada@example.com")).headers["set-auth-token"]
        http.cookies.clear()
        bob = (await sign_up(http, "Bob", "bob@example.com")).headers["set-auth-token"]
        http.cookies.clear()
        for token, name in ((ada, "Ada"), (bob, "Bob")):
            said = await http.post("/api/tools/whoami/execute", json={}, headers=bearer(token))
            assert said.json()["result"]["name"] == name
        anonymous = await http.post("/api/tools/whoami/execute", json={})
        assert anonymous.status_code == 401


def test_default_app_needs_a_secret_in_production(env: dict[str, str]) -> None:
    del env["BASTION_SECRET"]
    with pytest.raises(ValueError, match="BASTION_SECRET"):
        create_app({**env, "BASTION_ENV": "production"})


def test_default_app_keeps_a_generated_secret_beside_its_database(
    env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    del env["BASTION_SECRET"]
    with caplog.at_level("WARNING", logger="bastion.identity"):
        identity = create_app(env).app.identity
    assert identity is not None
    kept = Path(env["DATABASE_URL"].removeprefix("sqlite:///") + ".secret")
    assert identity.options.secret == kept.read_text().strip()
    assert str(kept) in caplog.text
    assert identity.options.secret not in caplog.text  # the place, never the secret


# -- serving: lifespans ----------------------------------------------------------------------


async def lifespan_events(app: Any) -> list[dict[str, Any]]:
    """Drive the ASGI lifespan protocol as a server does: startup, then shutdown if it
    started. What the app sent back, in order."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    sent: list[dict[str, Any]] = []
    started = asyncio.Event()

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        started.set()

    await inbox.put({"type": "lifespan.startup"})
    task = asyncio.create_task(
        app({"type": "lifespan", "asgi": {"version": "3.0"}}, inbox.get, send)
    )
    await asyncio.wait_for(started.wait(), 10)
    if sent[-1]["type"] == "lifespan.startup.complete":
        await inbox.put({"type": "lifespan.shutdown"})
    await asyncio.wait_for(task, 10)
    return sent


async def test_lifespan_protocol_migrates_then_closes(env: dict[str, str], tmp_path: Path) -> None:
    app = create_app(env)
    events = await lifespan_events(app)
    assert [e["type"] for e in events] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]
    assert "user" in tables(tmp_path / "bastion.db")


async def test_unreachable_database_fails_start_up_in_one_line(env: dict[str, str]) -> None:
    app = create_app({**env, "DATABASE_URL": "sqlite:////nonexistent/folder/bastion.db"})
    events = await lifespan_events(app)
    assert [e["type"] for e in events] == ["lifespan.startup.failed"]
    message = events[0]["message"]
    assert message.startswith("cannot start: cannot connect to sqlite:////nonexistent/folder")
    assert "\n" not in message


async def test_serving_an_identity_migrates_and_closes(tmp_path: Path) -> None:
    identity = Identity(
        secret=SECRET,
        database=f"sqlite:///{tmp_path}/id.db",
        email_and_password={"enabled": True},
        env={},
    )
    served = serving(identity)
    assert isinstance(served, ServedApp) and served.app is identity
    async with running(served) as http:
        signed_up = await http.post(
            "/api/auth/sign-up/email",
            json={"name": "Ada", "email": "ada@example.com", "password": "horse battery"},
        )
        assert signed_up.status_code == 200, signed_up.text
    assert "session" in tables(tmp_path / "id.db")


async def test_no_migrate_leaves_the_database_alone(env: dict[str, str], tmp_path: Path) -> None:
    served = serving(create_app(env), migrate=False)  # create_app's own choice is replaced
    assert isinstance(served, ServedApp)
    async with running(served) as http:
        answer = await http.post(
            "/api/auth/sign-up/email",
            json={"name": "Ada", "email": "ada@example.com", "password": "horse battery"},
        )
        assert answer.status_code >= 500  # no tables: the database layer refuses
    assert "user" not in tables(tmp_path / "bastion.db")


@pytest.mark.parametrize("migrate", ["0", "1"])
async def test_worker_processes_migrate_only_when_told(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, migrate: str
) -> None:
    """What each worker of `bastion serve --workers N` runs: the parent has migrated (0),
    or a --reload child migrates at each restart (1)."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv(TARGET_ENV, "")
    monkeypatch.setenv(MIGRATE_ENV, migrate)
    app = child_app()
    assert isinstance(app, ServedApp) and isinstance(app.app, Bastion)
    async with app.lifespan():
        pass
    assert ("user" in tables(tmp_path / "bastion.db")) is (migrate == "1")


def test_other_apps_are_served_unchanged() -> None:
    starlette = Starlette()
    assert serving(starlette) is starlette
    bastion = Bastion()
    served = serving(bastion)
    assert isinstance(served, ServedApp) and served.app is bastion
    again = serving(served, migrate=False)
    assert isinstance(again, ServedApp) and again.app is bastion


# -- load: module:attr ------------------------------------------------------------------------


@pytest.fixture
def modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder on sys.path for throw-away modules (forgotten afterwards)."""
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        if name.startswith("servetest_"):
            del sys.modules[name]


def write(folder: Path, name: str, source: str) -> None:
    (folder / f"{name}.py").write_text(textwrap.dedent(source))


def test_load_an_app_a_nested_attribute_and_a_factory(modules: Path) -> None:
    write(
        modules,
        "servetest_ok",
        """
        from bastion.server import Bastion
        from starlette.applications import Starlette

        app = Bastion(name="plain")

        class Holder:
            app = Starlette()

        def make_app():
            return Bastion(name="made")

        async def asgi(scope, receive, send):
            pass
        """,
    )
    import servetest_ok  # type: ignore[import-not-found]

    assert load("servetest_ok:app") is servetest_ok.app
    assert load("servetest_ok:Holder.app") is servetest_ok.Holder.app
    made = load("servetest_ok:make_app")
    assert isinstance(made, Bastion) and made.name == "made"
    assert load("servetest_ok:asgi") is servetest_ok.asgi  # three parameters: an app


@pytest.mark.parametrize(
    ("target", "source", "says"),
    [
        ("servetest_x", "", "'servetest_x' is not MODULE:ATTR (for example myapp:app)"),
        (":app", "", "is not MODULE:ATTR"),
        ("servetest_absent:app", None, "no module named 'servetest_absent' (run bastion serve"),
        ("servetest_pkg.absent:app", None, "no module named 'servetest_pkg'"),
        ("servetest_a:nope", "app = 1\n", "servetest_a has no attribute 'nope'"),
        ("servetest_b:app", "app = 'text'\n", "it is a str, not an ASGI app"),
        (
            "servetest_c:app",
            "x = 1\nraise RuntimeError('no config')\n",
            "importing servetest_c failed: RuntimeError: no config (servetest_c.py:2)",
        ),
        (
            "servetest_d:app",
            "import servetest_missing_dependency\n",
            "importing servetest_d failed: ModuleNotFoundError: No module named "
            "'servetest_missing_dependency' (servetest_d.py:1)",
        ),
        (
            "servetest_e:app",
            "def broken(:\n",
            "importing servetest_e failed: SyntaxError: invalid syntax (servetest_e.py:1)",
        ),
        (
            "servetest_f:make",
            "def make():\n    raise KeyError('DATABASE_URL')\n",
            "calling make() failed: KeyError: 'DATABASE_URL' (servetest_f.py:2)",
        ),
    ],
)
def test_load_errors_are_one_line(
    modules: Path, target: str, source: str | None, says: str
) -> None:
    if source is not None:
        write(modules, target.split(":")[0], source)
    with pytest.raises(LoadError) as error:
        load(target)
    assert says in str(error.value)
    assert "\n" not in str(error.value)
