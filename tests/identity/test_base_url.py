"""The base URL of links we mail, when no base_url is configured (spec §1.1): derived
from the request, and from X-Forwarded-Proto/-Host only with advanced.trusted_proxy_headers
(otherwise a client could pick the host a password-reset link points to)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.identity.conftest import running

FORWARDED = {"x-forwarded-proto": "https", "x-forwarded-host": "auth.example.com"}


async def _reset_link(headers: dict[str, str], **advanced: Any) -> str:
    links: list[str] = []

    async def send_reset_password(data: dict[str, Any], request: Any) -> None:
        links.append(data.url)

    async with running(
        base_url=None,
        advanced=advanced,
        email_and_password={"enabled": True, "send_reset_password": send_reset_password},
    ) as (_, client):
        await client.post(
            "/sign-up/email",
            json={"email": "ada@example.com", "password": "password1234", "name": "Ada"},
        )
        client.cookies.clear()  # no session cookie: no Origin check on this request
        response = await client.post(
            "/request-password-reset", json={"email": "ada@example.com"}, headers=headers
        )
        assert response.status_code == 200, response.text
    assert len(links) == 1
    return links[0]


async def test_the_link_follows_the_request_host() -> None:
    link = await _reset_link({})
    assert link.startswith("http://localhost:3000/api/auth/reset-password/")


async def test_forwarded_headers_are_ignored_unless_trusted() -> None:
    link = await _reset_link(FORWARDED)
    assert link.startswith("http://localhost:3000/api/auth/reset-password/")


async def test_trusted_proxy_headers_set_scheme_and_host() -> None:
    link = await _reset_link(FORWARDED, trusted_proxy_headers=True)
    assert link.startswith("https://auth.example.com/api/auth/reset-password/")


@pytest.mark.parametrize(
    "host", ["evil.example/path", "a b", "host:99999999", "user@evil.example", ""]
)
async def test_a_malformed_forwarded_host_falls_back_to_the_request(host: str) -> None:
    headers = {"x-forwarded-proto": "javascript", "x-forwarded-host": host}
    link = await _reset_link(headers, trusted_proxy_headers=True)
    assert link.startswith("http://localhost:3000/api/auth/reset-password/")


async def test_the_first_hop_of_a_list_is_used() -> None:
    headers = {"x-forwarded-proto": "https, http", "x-forwarded-host": "a.example, b.example"}
    link = await _reset_link(headers, trusted_proxy_headers=True)
    assert link.startswith("https://a.example/api/auth/reset-password/")
