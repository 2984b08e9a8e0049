"""Two-factor and social sign-in: better-auth 1.7.25 asks a second factor only of the
password sign-ins (its hook matches /sign-in/email, /sign-in/username and
/sign-in/phone-number), so a social callback of a user with two-factor on ends as any other
does: the redirect, with the session. Never a JSON challenge where a browser follows a
redirect."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest

from bastion.identity import two_factor
from tests.identity.social.flows import identity_client, session_of, social_sign_in
from tests.identity.social.standins import GitHubStandin, github_standin


@pytest.fixture(scope="module")
def gh() -> Iterator[GitHubStandin]:
    with github_standin() as standin:
        yield standin


async def test_a_social_callback_of_a_two_factor_user_redirects_with_a_session(
    gh: GitHubStandin,
) -> None:
    providers = {
        "github": {
            "client_id": "gh-client",
            "client_secret": "gh-secret",
            "authorization_endpoint": gh.authorize_url,
            "token_endpoint": gh.token_url,
            "userinfo_endpoint": gh.user_url,
            "emails_endpoint": gh.emails_url,
        }
    }
    plugins = [two_factor(allow_passwordless=True)]
    async with identity_client(social_providers=providers, plugins=plugins) as (_, client):
        first = await social_sign_in(client, "github", "octocat", callbackURL="/dash")
        assert first.status_code == 302
        # A user without a password turns two-factor on (allow_passwordless) and proves it.
        enabled = await client.post("/api/auth/two-factor/enable", json={})
        assert enabled.status_code == 200, enabled.text
        secret = parse_qs(urlsplit(enabled.json()["totpURI"]).query)["secret"][0]
        verified = await client.post(
            "/api/auth/two-factor/verify-totp", json={"code": pyotp.TOTP(secret).now()}
        )
        assert verified.status_code == 200
        found = await session_of(client)
        assert found is not None and found["user"]["twoFactorEnabled"] is True

        client.cookies.clear()
        again = await social_sign_in(client, "github", "octocat", callbackURL="/dash")
        assert again.status_code == 302 and again.headers["location"] == "/dash"
        cookies = again.headers.get_list("set-cookie")
        assert not [c for c in cookies if c.startswith("better-auth.two_factor=")]
        assert [c for c in cookies if c.startswith("better-auth.session_token=")]
        found = await session_of(client)
        assert found is not None and found["user"]["email"] == "octocat@example.com"
