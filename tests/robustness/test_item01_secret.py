"""Issue 11, item 1: no published secret (security S35).

Without a configured secret, `bastion serve` used to sign with a constant from the source, so
anyone could mint email-verification and change-email tokens. Now a random secret is made at
the first start and kept beside the SQLite database (mode 0600), and `/verify-email` refuses
change-email tokens when changing the address is switched off.
"""

from __future__ import annotations

import logging
import stat
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from bastion.identity import Identity, InsecureSecret
from bastion.identity.crypto import sign_jwt
from bastion.standalone import create_app

BASE = "http://127.0.0.1:4111"
# The constant older releases signed with when no secret was configured.
PUBLISHED = "bastion-development-secret-do-not-use-in-production"
SECRET = "item01-configured-secret-0123456789abcdef0123"


@asynccontextmanager
async def serving(identity: Identity) -> AsyncIterator[httpx.AsyncClient]:
    await identity.migrate()
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=identity.app), base_url=BASE
        ) as http:
            yield http
    finally:
        await identity.close()


def no_secret_env(tmp_path: Path) -> dict[str, str]:
    return {"DATABASE_URL": f"sqlite:///{tmp_path / 'bastion.db'}", "PORT": "4111"}


async def sign_up(http: httpx.AsyncClient, email: str) -> dict[str, Any]:
    answer = await http.post(
        "/api/auth/sign-up/email",
        json={"name": "Victim", "email": email, "password": "correct-horse"},
    )
    assert answer.status_code == 200, answer.text
    user: dict[str, Any] = answer.json()["user"]
    return user


def kept_secret(tmp_path: Path) -> str:
    return (tmp_path / "bastion.db.secret").read_text().strip()


async def test_item1_a_forged_token_with_the_published_constant_is_refused(
    tmp_path: Path,
) -> None:
    identity = create_app(no_secret_env(tmp_path)).app.identity
    assert identity is not None
    async with serving(identity) as http:
        victim = await sign_up(http, "victim@example.com")
        verify = sign_jwt(PUBLISHED, {"email": "victim@example.com"}, 3600)
        answer = await http.get("/api/auth/verify-email", params={"token": verify})
        assert answer.status_code == 401
        assert answer.json()["code"] == "INVALID_TOKEN"
        steal = sign_jwt(
            PUBLISHED,
            {
                "email": "victim@example.com",
                "updateTo": "attacker@example.com",
                "userId": victim["id"],
            },
            3600,
        )
        answer = await http.get("/api/auth/verify-email", params={"token": steal})
        assert answer.status_code == 401
        user = await identity.store.find_user_by_id(victim["id"])
        assert user is not None
        assert user["email"] == "victim@example.com"
        assert user["emailVerified"] is False


async def test_item1_the_secret_is_made_once_kept_beside_the_database_and_reused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    env = no_secret_env(tmp_path)
    with caplog.at_level(logging.WARNING, logger="bastion.identity"):
        first = create_app(env).app.identity
    path = tmp_path / "bastion.db.secret"
    assert first is not None
    assert first.options.secret == kept_secret(tmp_path)
    assert len(kept_secret(tmp_path)) == 64
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert str(path) in caplog.text  # said on the console, with the place
    async with serving(first) as http:
        signed_up = await http.post(
            "/api/auth/sign-up/email",
            json={"name": "Ada", "email": "ada@example.com", "password": "correct-horse"},
        )
        cookie = signed_up.headers["set-cookie"].split(";", 1)[0]
    # A restart reads the same secret: the signed session cookie still works.
    second = create_app(env).app.identity
    assert second is not None
    assert second.options.secret == first.options.secret
    async with serving(second) as http:
        session = await http.get("/api/auth/get-session", headers={"cookie": cookie})
        assert session.json()["user"]["email"] == "ada@example.com"


def test_item1_processes_starting_at_once_agree_on_one_secret(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    secrets: list[str | None] = []
    start = threading.Barrier(8)

    def start_one() -> None:
        start.wait()
        secrets.append(Identity(database=url, env={}).options.secret)

    threads = [threading.Thread(target=start_one) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(secrets) == 8
    assert set(secrets) == {(tmp_path / "shared.db.secret").read_text().strip()}
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no leftovers


def test_item1_databases_that_cannot_keep_a_file_get_a_random_secret_per_process(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="bastion.identity"):
        one = Identity(database="sqlite://", env={})
        two = Identity(database="sqlite://", env={})
    assert one.options.secret != two.options.secret
    assert one.options.secret is not None
    assert len(one.options.secret) == 64
    assert "lives as long as this process" in caplog.text


def test_item1_a_configured_secret_writes_no_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bastion.db'}"
    identity = Identity(database=url, env={"BASTION_SECRET": SECRET})
    assert identity.options.secret == SECRET
    assert not (tmp_path / "bastion.db.secret").exists()


def test_item1_production_refuses_a_missing_secret(tmp_path: Path) -> None:
    env = {**no_secret_env(tmp_path), "BASTION_ENV": "production"}
    with pytest.raises(InsecureSecret, match="BASTION_SECRET"):
        create_app(env)
    assert not (tmp_path / "bastion.db.secret").exists()


def test_item1_an_unusable_secret_file_is_refused_with_its_path(tmp_path: Path) -> None:
    (tmp_path / "bastion.db.secret").write_text("short\n")
    with pytest.raises(InsecureSecret, match=r"bastion\.db\.secret"):
        create_app(no_secret_env(tmp_path))


async def test_item1_verify_email_refuses_change_email_tokens_when_change_email_is_off(
    tmp_path: Path,
) -> None:
    """Even with the server's own secret (a leaked or older token), a link cannot change an
    address while `user.change_email.enabled` is off — better-auth 1.7.25 runs it anyway."""
    identity = Identity(
        database=f"sqlite:///{tmp_path / 'db.sqlite'}",
        secret=SECRET,
        email_and_password={"enabled": True},
        env={},
    )
    async with serving(identity) as http:
        victim = await sign_up(http, "victim@example.com")
        for request_type in (None, "change-email-verification", "change-email-confirmation"):
            claims = {
                "email": "victim@example.com",
                "updateTo": "attacker@example.com",
                "userId": victim["id"],
            }
            if request_type:
                claims["requestType"] = request_type
            token = sign_jwt(SECRET, claims, 3600)
            answer = await http.get("/api/auth/verify-email", params={"token": token})
            assert answer.status_code == 401, request_type
            assert answer.json()["code"] == "INVALID_TOKEN"
            redirected = await http.get(
                "/api/auth/verify-email", params={"token": token, "callbackURL": "/done"}
            )
            assert redirected.status_code == 302
            assert redirected.headers["location"] == "/done?error=INVALID_TOKEN"
        user = await identity.store.find_user_by_id(victim["id"])
        assert user is not None
        assert user["email"] == "victim@example.com"


async def test_item1_change_email_tokens_still_work_when_change_email_is_on(
    tmp_path: Path,
) -> None:
    identity = Identity(
        database=f"sqlite:///{tmp_path / 'db.sqlite'}",
        secret=SECRET,
        email_and_password={"enabled": True},
        user={"change_email": {"enabled": True}},
        env={},
    )
    async with serving(identity) as http:
        user = await sign_up(http, "old@example.com")
        token = sign_jwt(
            SECRET,
            {
                "email": "old@example.com",
                "updateTo": "new@example.com",
                "userId": user["id"],
                "requestType": "change-email-verification",
            },
            3600,
        )
        answer = await http.get("/api/auth/verify-email", params={"token": token})
        assert answer.status_code == 200, answer.text
        moved = await identity.store.find_user_by_id(user["id"])
        assert moved is not None
        assert moved["email"] == "new@example.com"
