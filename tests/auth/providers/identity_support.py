"""What the IdentityAuth tests share: Starlette requests built from real headers, the
credentials a real sign-up hands out, and a count of database connections."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import event, text
from starlette.requests import Request

from bastion.auth.pipeline import pending_headers
from bastion.identity import Identity

PASSWORD = "correct horse battery staple"


def request(
    headers: Mapping[str, str] | None = None, *, method: str = "GET", path: str = "/api/agents"
) -> Request:
    """A Starlette request as the pipeline hands it to a provider."""
    raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "scheme": "http",
        "query_string": b"",
        "headers": raw,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 4111),
        "http_version": "1.1",
    }
    return Request(scope)


def set_cookie_lines(req: Request) -> list[str]:
    """The Set-Cookie lines the provider left for the response."""
    return [value for name, value in pending_headers(req.scope) if name == "set-cookie"]


@dataclass
class Credentials:
    """What one sign-in gives a client: the session cookies, the signed bearer token
    (`set-auth-token`) and the raw token of the body."""

    cookies: dict[str, str]
    signed: str
    raw: str
    user_id: str

    @property
    def cookie_header(self) -> str:
        return "; ".join(f"{name}={value}" for name, value in self.cookies.items())

    def cookie(self, **extra: str) -> dict[str, str]:
        return {"cookie": self.cookie_header, **extra}


def credentials(response: httpx.Response) -> Credentials:
    assert response.status_code == 200, response.text
    cookies = {}
    for line in response.headers.get_list("set-cookie"):
        name, _, rest = line.partition("=")
        value = rest.split(";", 1)[0]
        if value and "Max-Age=0" not in line:
            cookies[name] = value
    body = response.json()
    return Credentials(
        cookies, response.headers["set-auth-token"], body["token"], body["user"]["id"]
    )


async def sign_up(
    client: httpx.AsyncClient, email: str = "ada@example.com", **extra: Any
) -> Credentials:
    body = {"name": "Ada", "email": email, "password": PASSWORD, **extra}
    return credentials(await _post(client, "/sign-up/email", body))


async def sign_in(
    client: httpx.AsyncClient, email: str = "ada@example.com", **extra: Any
) -> Credentials:
    body = {"email": email, "password": PASSWORD, **extra}
    return credentials(await _post(client, "/sign-in/email", body))


async def _post(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> httpx.Response:
    """A POST without the client's cookie jar: each test says which cookies go where."""
    origin = str(client.base_url).split("/api/auth", 1)[0]
    response = await client.send(
        client.build_request("POST", path, json=body, headers={"origin": origin})
    )
    client.cookies.clear()
    return response


@asynccontextmanager
async def sessions_table_gone(identity: Identity) -> AsyncIterator[None]:
    """The session table renamed away: any session read fails, on every dialect and through
    any connection. What still answers inside this block did not read the database."""
    async with identity.db.connect() as conn:
        await conn.execute(text("ALTER TABLE session RENAME TO session_gone"))
        await conn.commit()
    try:
        yield
    finally:
        async with identity.db.connect() as conn:
            await conn.execute(text("ALTER TABLE session_gone RENAME TO session"))
            await conn.commit()


class Checkouts:
    """How many database connections the Identity's pool lent (any read or write)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, *_: Any) -> None:
        self.count += 1


@contextmanager
def counting_checkouts(identity: Identity) -> Iterator[Checkouts]:
    checkouts = Checkouts()
    pool = identity.db.engine.sync_engine.pool
    event.listen(pool, "checkout", checkouts)
    try:
        yield checkouts
    finally:
        event.remove(pool, "checkout", checkouts)
