"""Issue 11, item 10 (part): a duplicated credential is refused, not resolved by order.

With `?apiKey=a&apiKey=b` the last one used to win, and with two `Authorization` headers the
first: a proxy in front that checks or logs the other one would then disagree with the
server on who is calling. Either is a 400 in the agent server's `{"error": ...}` shape with
the RFC 6750 `invalid_request` challenge, before any provider runs.

Security check S46: "one credential per request" — a credential parameter or
header sent more than once is refused with 400 invalid_request, never resolved by order.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from bastion.auth import SimpleAuth
from bastion.server import Bastion

BASE = "http://localhost:4111"


class Counting(SimpleAuth):
    """SimpleAuth that counts the tokens it is asked about."""

    def __init__(self, tokens: dict[str, Any]) -> None:
        super().__init__(tokens)
        self.asked: list[str] = []

    async def authenticate_token(self, token: str, request: Any) -> Any:
        self.asked.append(token)
        return await super().authenticate_token(token, request)


async def get(app: Bastion, url: str, headers: list[tuple[str, str]] | None = None) -> Any:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http:
        return await http.get(url, headers=headers or [])


def assert_invalid_request(answer: httpx.Response) -> None:
    assert answer.status_code == 400, answer.text
    assert answer.headers["www-authenticate"] == 'Bearer error="invalid_request"'
    assert set(answer.json()) == {"error"}


@pytest.mark.parametrize(
    "query",
    [
        "apiKey=key-ana&apiKey=key-bob",
        "apiKey=key-bob&apiKey=key-ana",
        "apiKey=key-ana&apiKey=key-ana",  # the same twice: still ambiguous to a proxy
        "apiKey=key-ana&api%4Bey=key-bob",  # the name percent-encoded
    ],
)
async def test_item10_a_repeated_api_key_is_refused(query: str) -> None:
    auth = Counting({"key-ana": {"id": "ana"}, "key-bob": {"id": "bob"}})
    answer = await get(Bastion(auth=auth), f"/api/tools?{query}")
    assert_invalid_request(answer)
    assert answer.json()["error"] == "Send the apiKey query parameter once"
    assert auth.asked == []  # refused before any provider looked at a token


async def test_item10_several_authorization_headers_are_refused() -> None:
    auth = Counting({"key-ana": {"id": "ana"}, "key-bob": {"id": "bob"}})
    answer = await get(
        Bastion(auth=auth),
        "/api/tools",
        [("authorization", "Bearer key-ana"), ("authorization", "Bearer key-bob")],
    )
    assert_invalid_request(answer)
    assert answer.json()["error"] == "Send one Authorization header"
    assert auth.asked == []


async def test_item10_one_credential_still_passes() -> None:
    app = Bastion(auth=SimpleAuth({"key-ana": {"id": "ana"}}))
    assert (await get(app, "/api/tools?apiKey=key-ana")).status_code == 200
    assert (await get(app, "/api/tools?apiKey=key-ana&x=%20")).status_code == 200
    assert (await get(app, "/api/tools", [("authorization", "Bearer key-ana")])).status_code == 200
    # The header wins over the query parameter, as in Mastra: two carriers, one each.
    both = await get(app, "/api/tools?apiKey=nope", [("authorization", "Bearer key-ana")])
    assert both.status_code == 200
    # A public route never looks at credentials, duplicated or not.
    assert (await get(app, "/api?apiKey=a&apiKey=b")).status_code != 400
