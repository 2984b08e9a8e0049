"""The client side of examples/sessions.py: sign in with email and password, keep the session
token, and call the agent with `Authorization: Bearer <session token>` — what a script, a
CLI or another server does instead of a browser's cookie.

    python examples/sessions_client.py --email ada@example.com --password correct-horse \\
        --sign-up --name Ada
    python examples/sessions_client.py --email ada@example.com --password correct-horse \\
        "who am i?"

The first call answers 403 until the address is verified: open the link of the
verification mail (printed on the server's console by default), then run it again.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import httpx


async def sign_up(http: httpx.AsyncClient, name: str, email: str, password: str) -> str:
    """Create the account; its first session's token."""
    body = {"name": name, "email": email, "password": password}
    return _token(http, await http.post("/api/auth/sign-up/email", json=body))


async def sign_in(http: httpx.AsyncClient, email: str, password: str) -> str:
    """A new session's token."""
    body = {"email": email, "password": password}
    return _token(http, await http.post("/api/auth/sign-in/email", json=body))


def _token(http: httpx.AsyncClient, response: httpx.Response) -> str:
    response.raise_for_status()
    # A script keeps the token, not the cookie the server also set: drop the cookie, so
    # that the bearer token alone carries the session.
    http.cookies.clear()
    token: str = response.json()["token"]
    return token


async def ask(http: httpx.AsyncClient, token: str, question: str) -> httpx.Response:
    """Run the `assistant` agent as the token's user."""
    return await http.post(
        "/api/agents/assistant/generate",
        json={"messages": question},
        headers={"Authorization": f"Bearer {token}"},
    )


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("question", nargs="?", default="who am i?")
    parser.add_argument("--url", default="http://127.0.0.1:4111", help="the Bastion server")
    parser.add_argument("--email", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--sign-up", action="store_true", help="create the account first")
    parser.add_argument("--name", default="", help="your name, with --sign-up")
    args = parser.parse_args(argv)
    async with httpx.AsyncClient(base_url=args.url) as http:
        if args.sign_up:
            token = await sign_up(http, args.name or args.email, args.email, args.password)
        else:
            token = await sign_in(http, args.email, args.password)
        answer = await ask(http, token, args.question)
    if answer.status_code == 403:
        print("403: verify your email address first (open the link of the mail)", file=sys.stderr)
        return 1
    answer.raise_for_status()
    generation: dict[str, Any] = answer.json()
    print(generation["text"])
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
