"""Issue 11, item 6 (last part): a pooled connection that died with a database restart is
found out before it is used, so the first request after the restart succeeds.

Every kind of connection is warmed first, then the tests' own PostgreSQL
(tests/own_services.py) is restarted with no request in between: SQLAlchemy's pool (writes,
transactions), the adapter's direct asyncpg reads, and IdentityAuth's own lookup connections.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

from bastion.auth import IdentityAuth
from bastion.identity import Identity, bearer
from bastion.server import Bastion, Memory, memory_plugin
from tests.hashing import cheap_password

if TYPE_CHECKING:
    from tests.own_services import OwnPostgres

pytest_plugins = ["tests.own_services"]  # the own_postgres fixture

BASE = "http://localhost:4111"
SECRET = "item06-secret-0123456789abcdef0123456789abcdef"
ORIGIN = {"origin": BASE}
LOGIN = {"email": "ada@example.com", "password": "correct horse battery staple"}


async def test_item06_first_request_after_a_postgres_restart_succeeds(
    own_postgres: OwnPostgres,
) -> None:
    url = await own_postgres.create_database()
    identity = Identity(
        secret=SECRET,
        base_url=BASE,
        database=url,
        email_and_password=cheap_password(),
        plugins=[bearer(), memory_plugin()],
        env={},
    )
    await identity.migrate()
    auth = IdentityAuth(identity)
    memory = Memory(identity.db)
    app = Bastion(auth=auth, memory=memory)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http:
            signed_up = await http.post(
                "/api/auth/sign-up/email", json={"name": "Ada", **LOGIN}, headers=ORIGIN
            )
            assert signed_up.status_code == 200, signed_up.text
            http.cookies.clear()
            token = {"authorization": f"Bearer {signed_up.headers['set-auth-token']}"}

            async def every_path() -> list[int]:
                """A write through the pool, a read through the direct connections, a
                lookup on IdentityAuth's own, a transaction of the memory store."""
                signed_in = await http.post("/api/auth/sign-in/email", json=LOGIN, headers=ORIGIN)
                http.cookies.clear()
                session = await http.get("/api/auth/get-session", headers=token)
                threads = await http.get("/api/memory/threads", headers=token)
                created = await http.post("/api/memory/threads", json={}, headers=token)
                return [
                    signed_in.status_code,
                    session.status_code,
                    threads.status_code,
                    created.status_code,
                ]

            assert await every_path() == [200, 200, 200, 201]
            # Several times each, so that more than one pooled connection is warm.
            for _ in range(3):
                await every_path()
            own_postgres.stop()
            own_postgres.start()
            assert await every_path() == [200, 200, 200, 201]
    finally:
        await auth.aclose()
        await identity.close()
