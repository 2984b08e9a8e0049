"""Social sign-in with GitHub, against the GitHub stand-in on 127.0.0.1: the redirect flow,
account linking (S34), the state (S19), the account routes, and the faults of a provider
(each ends in the error redirect, with nothing half-written)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from bastion.identity.db import Field
from bastion.identity.symmetric import decrypt, looks_encrypted
from tests.identity.social.flows import (
    ORIGIN,
    SECRET,
    at_provider,
    back,
    count,
    identity_client,
    redirect_error,
    session_of,
    social_sign_in,
    start,
)
from tests.identity.social.standins import GitHubStandin, github_standin


@pytest.fixture(scope="module")
def gh() -> Iterator[GitHubStandin]:
    with github_standin() as standin:
        yield standin


@pytest.fixture(autouse=True)
def no_faults(gh: GitHubStandin) -> Iterator[None]:
    gh.faults.reset()
    yield
    gh.faults.reset()


def github(gh: GitHubStandin, client_id: str = "gh-client", **extra: Any) -> dict[str, Any]:
    secrets = {"gh-client": "gh-secret", "Iv1.gh-app": "gh-app-secret"}
    return {
        "github": {
            "client_id": client_id,
            "client_secret": secrets.get(client_id, "wrong"),
            "authorization_endpoint": gh.authorize_url,
            "token_endpoint": gh.token_url,
            "userinfo_endpoint": gh.user_url,
            "emails_endpoint": gh.emails_url,
            **extra,
        }
    }


async def sign_up(client: Any, email: str, password: str = "password-123") -> dict[str, Any]:
    response = await client.post(
        "/api/auth/sign-up/email", json={"email": email, "password": password, "name": "Local"}
    )
    assert response.status_code == 200, response.text
    user: dict[str, Any] = response.json()["user"]
    return user


async def test_the_authorization_url_is_githubs_with_pkce_and_a_bound_state(
    gh: GitHubStandin,
) -> None:
    async with identity_client(social_providers=github(gh)) as (_, client):
        response = await client.post(
            "/api/auth/sign-in/social", json={"provider": "github", "callbackURL": "/dash"}
        )
    assert response.status_code == 200
    body = response.json()
    assert body["redirect"] is True
    assert response.headers["location"] == body["url"]
    url = body["url"]
    assert url.startswith(gh.authorize_url + "?response_type=code&client_id=gh-client&state=")
    assert "scope=read%3Auser+user%3Aemail" in url
    assert "redirect_uri=http%3A%2F%2F127.0.0.1%3A4111%2Fapi%2Fauth%2Fcallback%2Fgithub" in url
    assert "code_challenge_method=S256&code_challenge=" in url
    (state_cookie,) = response.headers.get_list("set-cookie")
    assert state_cookie.startswith("better-auth.state=")
    assert "Max-Age=300" in state_cookie and "HttpOnly" in state_cookie
    # The PKCE verifier never leaves the server: only its S256 challenge is in the URL.
    assert "code_verifier" not in url


async def test_a_new_github_user_signs_in_with_the_primary_verified_address(
    gh: GitHubStandin,
) -> None:
    async with identity_client(social_providers=github(gh)) as (identity, client):
        response = await social_sign_in(
            client, "github", "private-pat", callbackURL="/dash", newUserCallbackURL="/welcome"
        )
        assert response.status_code == 302
        assert response.headers["location"] == "/welcome"  # a new user
        found = await session_of(client)
        assert found is not None
        user = found["user"]
        assert user["email"] == "pat@example.com"  # /user/emails' primary, not the first
        assert user["emailVerified"] is True
        assert user["name"] == "Pat Private"
        accounts = (await client.get("/api/auth/list-accounts")).json()
        assert [(a["providerId"], a["accountId"]) for a in accounts] == [("github", "1001")]
        assert "accessToken" not in accounts[0]
        # The same GitHub identity again: the same user, to callbackURL this time.
        client.cookies.clear()
        again = await social_sign_in(
            client, "github", "private-pat", callbackURL="/dash", newUserCallbackURL="/welcome"
        )
        assert again.headers["location"] == "/dash"
        assert (await session_of(client))["user"]["id"] == user["id"]  # type: ignore[index]
        assert await count(identity, "user") == 1
        assert await count(identity, "account") == 1


async def test_a_profile_without_a_name_is_named_by_its_login(gh: GitHubStandin) -> None:
    async with identity_client(social_providers=github(gh)) as (_, client):
        await social_sign_in(client, "github", "nameless")
        found = await session_of(client)
    assert found is not None and found["user"]["name"] == "nameless"


async def test_S34_an_unverified_provider_address_never_takes_over_a_local_user(
    gh: GitHubStandin,
) -> None:
    """The regression test for better-auth's linking-takeover advisory: GitHub reports
    uma@example.com as unverified; the local user with that address stays untouched."""
    async with identity_client(social_providers=github(gh)) as (identity, client):
        local = await sign_up(client, "uma@example.com")
        await identity.store.update_user(local["id"], {"emailVerified": True})
        client.cookies.clear()
        response = await social_sign_in(client, "github", "unverified-uma", errorCallbackURL="/e")
        assert response.headers["location"] == "/e?error=account_not_linked"
        assert await session_of(client) is None
        accounts = await identity.store.list_accounts(local["id"])
        assert [a["providerId"] for a in accounts] == ["credential"]
        assert await count(identity, "user") == 1
        assert await count(identity, "session") == 1  # the sign-up's own


async def test_S34_a_verified_address_links_into_a_verified_local_user(gh: GitHubStandin) -> None:
    async with identity_client(social_providers=github(gh)) as (identity, client):
        local = await sign_up(client, "octocat@example.com")
        await identity.store.update_user(local["id"], {"emailVerified": True})
        client.cookies.clear()
        response = await social_sign_in(client, "github", "octocat", callbackURL="/dash")
        assert response.headers["location"] == "/dash"
        found = await session_of(client)
        assert found is not None and found["user"]["id"] == local["id"]
        providers = sorted(a["providerId"] for a in await identity.store.list_accounts(local["id"]))
        assert providers == ["credential", "github"]


async def test_S34_no_implicit_link_into_a_local_user_whose_address_is_unverified(
    gh: GitHubStandin,
) -> None:
    """Someone may have signed up with the address before its owner: their account must not
    receive the owner's GitHub identity (require_local_email_verified, the default)."""
    async with identity_client(social_providers=github(gh)) as (identity, client):
        await sign_up(client, "octocat@example.com")  # never verified
        client.cookies.clear()
        response = await social_sign_in(client, "github", "octocat")
        assert redirect_error(response) == "account_not_linked"
        assert await count(identity, "account") == 1  # the password account only


@pytest.mark.parametrize(
    ("linking", "error"),
    [
        ({"disable_implicit_linking": True}, "account_not_linked"),
        ({"enabled": False}, "account_not_linked"),
        ({"trusted_providers": ["github"]}, None),  # trusted: its unverified address counts
    ],
)
async def test_linking_options_decide_an_unverified_identity(
    gh: GitHubStandin, linking: dict[str, Any], error: str | None
) -> None:
    account = {"account_linking": {**linking}}
    async with identity_client(social_providers=github(gh), account=account) as (identity, client):
        local = await sign_up(client, "uma@example.com")
        await identity.store.update_user(local["id"], {"emailVerified": True})
        client.cookies.clear()
        response = await social_sign_in(client, "github", "unverified-uma")
        assert redirect_error(response) == error
        linked = len(await identity.store.list_accounts(local["id"])) == 2
        assert linked is (error is None)


async def test_sign_up_can_be_turned_off_or_made_explicit(gh: GitHubStandin) -> None:
    async with identity_client(social_providers=github(gh, disable_sign_up=True)) as (i, client):
        response = await social_sign_in(client, "github", "octocat")
        assert redirect_error(response) == "signup_disabled"
        assert await count(i, "user") == 0
    options = github(gh, disable_implicit_sign_up=True)
    async with identity_client(social_providers=options) as (i, client):
        assert redirect_error(await social_sign_in(client, "github", "octocat")) == (
            "signup_disabled"
        )
        response = await social_sign_in(client, "github", "octocat", requestSignUp=True)
        assert redirect_error(response) is None
        assert await count(i, "user") == 1


async def test_map_profile_to_user_adds_fields(gh: GitHubStandin) -> None:
    def mapping(profile: dict[str, Any]) -> dict[str, Any]:
        return {"name": f"{profile['login']} on GitHub"}

    async with identity_client(social_providers=github(gh, map_profile_to_user=mapping)) as (
        _,
        client,
    ):
        await social_sign_in(client, "github", "octocat")
        found = await session_of(client)
    assert found is not None and found["user"]["name"] == "octocat on GitHub"


# -- S19: the state -------------------------------------------------------------------------


async def test_S19_a_state_works_once(gh: GitHubStandin) -> None:
    async with identity_client(social_providers=github(gh)) as (identity, client):
        url = await start(client, "github")
        callback = await at_provider(url, "octocat")
        assert redirect_error(await back(client, callback)) is None
        client.cookies.clear()
        replayed = await back(client, callback)
        assert redirect_error(replayed) == "state_mismatch"
        assert await count(identity, "session") == 1


async def test_S19_a_state_is_bound_to_the_browser_that_started_it(gh: GitHubStandin) -> None:
    """Login CSRF: an attacker's callback URL, opened in the victim's browser (which holds
    no state cookie of that flow), signs nobody in."""
    async with identity_client(social_providers=github(gh)) as (identity, attacker):
        url = await start(attacker, "github")
        callback = await at_provider(url, "octocat")
        attacker.cookies.clear()  # the victim's browser: no state cookie
        response = await back(attacker, callback)
        assert redirect_error(response) == "state_mismatch"
        assert await count(identity, "session") == 0
        assert await count(identity, "user") == 0


async def test_S19_missing_tampered_and_expired_states_are_refused(gh: GitHubStandin) -> None:
    async with identity_client(social_providers=github(gh)) as (identity, client):
        missing = await client.get("/api/auth/callback/github", params={"code": "x"})
        assert (
            missing.headers["location"]
            == "http://127.0.0.1:4111/api/auth/error?error=state_not_found"
        )
        url = await start(client, "github")
        callback = await at_provider(url, "octocat")
        state = callback.params["state"]
        # Another last character, whatever it was ("x" left one state in 64 as it was).
        tampered = dict(callback.params, state=state[:-1] + ("y" if state[-1] == "x" else "x"))
        response = await client.get("/api/auth/callback/github", params=tampered)
        assert redirect_error(response) == "state_mismatch"
        # Ten minutes later the state is dead, even with its cookie.
        url = await start(client, "github")
        callback = await at_provider(url, "octocat")
        now = identity.now()
        identity.context.now = lambda: now.__class__.fromtimestamp(
            now.timestamp() + 601, now.tzinfo
        )
        identity.store.now = identity.context.now
        assert redirect_error(await back(client, callback)) == "state_mismatch"
        assert await count(identity, "user") == 0


async def test_the_cookie_state_strategy_keeps_nothing_in_the_database(gh: GitHubStandin) -> None:
    account = {"store_state_strategy": "cookie"}
    async with identity_client(social_providers=github(gh), account=account) as (identity, client):
        url = await start(client, "github")
        assert await count(identity, "verification") == 0
        assert any(c.name == "better-auth.oauth_state" for c in client.cookies.jar)
        callback = await at_provider(url, "octocat")
        assert redirect_error(await back(client, callback)) is None
        assert await session_of(client) is not None
        client.cookies.clear()
        assert redirect_error(await back(client, callback)) == "state_mismatch"


# -- faults of the provider -------------------------------------------------------------------


async def test_the_providers_own_error_goes_to_the_error_callback(gh: GitHubStandin) -> None:
    async with identity_client(social_providers=github(gh)) as (identity, client):
        url = await start(client, "github", errorCallbackURL="/oops?from=gh")
        callback = await at_provider(url, "octocat", cancel=True)
        response = await back(client, callback)
        location = response.headers["location"]
        assert location.startswith("/oops?from=gh&error=access_denied")
        assert await count(identity, "user") == 0


@pytest.mark.parametrize(
    ("fault", "value", "error"),
    [
        ("token_error", "bad_verification_code", "invalid_code"),
        ("token_status", 500, "invalid_code"),
        ("token_delay", 3.0, "invalid_code"),  # slower than the provider's timeout
        ("user_status", 500, "unable_to_get_user_info"),
        ("user_delay", 3.0, "unable_to_get_user_info"),
    ],
)
async def test_a_failing_provider_ends_in_the_error_redirect_with_nothing_written(
    gh: GitHubStandin, fault: str, value: Any, error: str
) -> None:
    async with identity_client(social_providers=github(gh, timeout=1.0)) as (identity, client):
        url = await start(client, "github")
        callback = await at_provider(url, "octocat")
        setattr(gh.faults, fault, value)
        response = await back(client, callback)
        assert redirect_error(response) == error
        assert [await count(identity, m) for m in ("user", "account", "session")] == [0, 0, 0]
        assert not any(c.name.endswith("session_token") for c in client.cookies.jar)


async def test_a_provider_that_is_down_ends_in_the_error_redirect(gh: GitHubStandin) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    down = github(gh, token_endpoint=f"http://127.0.0.1:{port}/login/oauth/access_token")
    async with identity_client(social_providers=down) as (identity, client):
        response = await social_sign_in(client, "github", "octocat")
        assert redirect_error(response) == "invalid_code"
        assert await count(identity, "user") == 0


async def test_unknown_providers(gh: GitHubStandin) -> None:
    async with identity_client(social_providers=github(gh)) as (_, client):
        response = await client.post("/api/auth/sign-in/social", json={"provider": "gitlab"})
        assert response.status_code == 404
        assert response.json() == {"message": "Provider not found", "code": "PROVIDER_NOT_FOUND"}
        # A live state at another provider's callback: the provider is checked there.
        url = await start(client, "github")
        callback = await at_provider(url, "octocat")
        response = await client.get("/api/auth/callback/gitlab", params=callback.params)
        assert redirect_error(response) == "oauth_provider_not_found"


async def test_form_post_callbacks_come_back_as_a_get(gh: GitHubStandin) -> None:
    async with identity_client(social_providers=github(gh)) as (_, client):
        response = await client.post(
            "/api/auth/callback/github",
            data={"state": "s1", "code": "c1", "ignored": "x"},
            headers={"origin": ORIGIN},
        )
    assert response.status_code == 302
    assert response.headers["location"] == (
        "http://127.0.0.1:4111/api/auth/callback/github?code=c1&state=s1"
    )


# -- tokens and the account routes ----------------------------------------------------------


async def test_tokens_are_stored_encrypted_in_better_auths_format(gh: GitHubStandin) -> None:
    account = {"encrypt_oauth_tokens": True}
    async with identity_client(social_providers=github(gh), account=account) as (identity, client):
        await social_sign_in(client, "github", "octocat")
        (row,) = await identity.db.find_many("account")
        stored = row["accessToken"]
        assert looks_encrypted(stored) and not stored.startswith("gho_")
        plain = decrypt(SECRET, stored)
        assert plain.startswith("gho_")
        response = await client.post("/api/auth/get-access-token", json={"accountId": row["id"]})
        assert response.status_code == 200
        assert response.json()["accessToken"] == plain


async def test_link_social_and_unlink(gh: GitHubStandin) -> None:
    async with identity_client(social_providers=github(gh)) as (identity, client):
        user = await sign_up(client, "octocat@example.com")
        response = await client.post(
            "/api/auth/link-social", json={"provider": "github", "callbackURL": "/settings"}
        )
        assert response.status_code == 200
        callback = await at_provider(response.json()["url"], "octocat")
        linked = await back(client, callback)
        assert linked.headers["location"] == "/settings"
        accounts = (await client.get("/api/auth/list-accounts")).json()
        assert sorted(a["providerId"] for a in accounts) == ["credential", "github"]
        github_account = next(a for a in accounts if a["providerId"] == "github")
        assert github_account["userId"] == user["id"]
        # The identity is this user's now: another user cannot link it.
        client.cookies.clear()
        await sign_up(client, "other@example.com")
        response = await client.post("/api/auth/link-social", json={"provider": "github"})
        callback = await at_provider(response.json()["url"], "octocat")
        assert redirect_error(await back(client, callback)) == "email_does_not_match"
        # Unlink: the password account stays; the last sign-in method cannot go.
        client.cookies.clear()
        await client.post(
            "/api/auth/sign-in/email",
            json={"email": "octocat@example.com", "password": "password-123"},
        )
        response = await client.post(
            "/api/auth/unlink-account", json={"accountId": github_account["id"]}
        )
        assert response.json() == {"status": True}
        (credential,) = (await client.get("/api/auth/list-accounts")).json()
        response = await client.post(
            "/api/auth/unlink-account", json={"accountId": credential["id"]}
        )
        assert response.status_code == 400
        assert response.json()["code"] == "FAILED_TO_UNLINK_LAST_ACCOUNT"
        assert await count(identity, "account") == 2  # octocat's password, other's password


async def test_link_social_needs_a_session(gh: GitHubStandin) -> None:
    async with identity_client(social_providers=github(gh)) as (_, client):
        response = await client.post("/api/auth/link-social", json={"provider": "github"})
    assert response.status_code == 401


async def test_a_github_app_token_is_refreshed(gh: GitHubStandin) -> None:
    async with identity_client(social_providers=github(gh, "Iv1.gh-app")) as (identity, client):
        await social_sign_in(client, "github", "octocat")
        (row,) = await identity.db.find_many("account")
        assert row["refreshToken"].startswith("ghr_")
        response = await client.post("/api/auth/refresh-token", json={"accountId": row["id"]})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["accessToken"] != row["accessToken"] and body["accessToken"].startswith("ghu_")
        assert body["accountId"] == row["id"] and body["providerId"] == "github"
        (after,) = await identity.db.find_many("account")
        assert after["accessToken"] == body["accessToken"]
        # An access token about to expire is refreshed by get-access-token first.
        await identity.store.update_account(row["id"], {"accessTokenExpiresAt": identity.now()})
        response = await client.post("/api/auth/get-access-token", json={"accountId": row["id"]})
        assert response.status_code == 200
        assert response.json()["accessToken"] not in (row["accessToken"], body["accessToken"])
        # A refresh the provider refuses: 400, the stored tokens untouched.
        gh.faults.token_error = "bad_refresh_token"
        (before,) = await identity.db.find_many("account")
        response = await client.post("/api/auth/refresh-token", json={"accountId": row["id"]})
        assert response.status_code == 400
        assert response.json()["code"] == "FAILED_TO_REFRESH_ACCESS_TOKEN"
        (unchanged,) = await identity.db.find_many("account")
        assert unchanged["accessToken"] == before["accessToken"]


async def test_account_info_reads_the_provider(gh: GitHubStandin) -> None:
    async with identity_client(social_providers=github(gh)) as (identity, client):
        await social_sign_in(client, "github", "octocat")
        (row,) = await identity.db.find_many("account")
        response = await client.get("/api/auth/account-info", params={"accountId": row["id"]})
        assert response.status_code == 200
        body = response.json()
        assert body["user"]["email"] == "octocat@example.com"
        assert body["data"]["login"] == "octocat"
        assert body["account"] == {"id": row["id"], "providerId": "github", "accountId": "583231"}
        client.cookies.clear()
        response = await client.get("/api/auth/account-info", params={"accountId": row["id"]})
        assert response.status_code == 401 and response.content == b""


async def test_override_user_info_on_sign_in_takes_the_providers_profile(
    gh: GitHubStandin,
) -> None:
    options = github(gh, override_user_info_on_sign_in=True)
    gh.add_user("renamed", id=7007, name="Before", email="renamed@example.com")
    async with identity_client(social_providers=options) as (_, client):
        await social_sign_in(client, "github", "renamed")
        gh.users["renamed"]["name"] = "After"
        client.cookies.clear()
        await social_sign_in(client, "github", "renamed")
        found = await session_of(client)
    assert found is not None and found["user"]["name"] == "After"


async def test_a_replayed_code_with_a_fresh_state_is_refused_by_the_provider(
    gh: GitHubStandin,
) -> None:
    async with identity_client(social_providers=github(gh)) as (identity, client):
        first = await at_provider(await start(client, "github"), "octocat")
        assert redirect_error(await back(client, first)) is None
        client.cookies.clear()
        fresh = await at_provider(await start(client, "github"), "octocat")
        replayed = dict(fresh.params, code=first.params["code"])  # the used code, a live state
        response = await client.get("/api/auth/callback/github", params=replayed)
        assert redirect_error(response) == "invalid_code"
        assert await count(identity, "session") == 1  # the first flow's only


async def test_profile_fields_the_schema_refuses_are_dropped_not_a_failure(
    gh: GitHubStandin,
) -> None:
    def mapping(profile: dict[str, Any]) -> dict[str, Any]:
        return {"plan": "pro", "role": "admin", "age": "not a number"}

    fields = {
        "plan": Field(type="string", required=False),
        "role": Field(type="string", required=False, input=False),
        "age": Field(type="number", required=False),
    }
    options = github(gh, map_profile_to_user=mapping)
    user = {"additional_fields": fields}
    async with identity_client(social_providers=options, user=user) as (identity, client):
        response = await social_sign_in(client, "github", "octocat")
        assert redirect_error(response) is None
        (row,) = await identity.db.find_many("user")
    assert (row["plan"], row["role"], row["age"]) == ("pro", None, None)


async def test_a_user_the_schema_cannot_create_ends_in_unable_to_create_user(
    gh: GitHubStandin,
) -> None:
    """A required additional field no profile gives: the error redirect, not a 500."""
    user = {"additional_fields": {"plan": Field(type="string", required=True)}}
    async with identity_client(social_providers=github(gh), user=user) as (identity, client):
        response = await social_sign_in(client, "github", "octocat")
        assert redirect_error(response) == "unable_to_create_user"
        assert [await count(identity, m) for m in ("user", "account", "session")] == [0, 0, 0]


def test_a_provider_without_endpoints_is_refused_at_construction() -> None:
    from bastion.identity import Identity

    with pytest.raises(ValueError, match="'githb': give discovery_url"):
        Identity(
            database="sqlite://",
            secret=SECRET,
            env={},
            social_providers={"githb": {"client_id": "a", "client_secret": "b"}},
        )


async def test_additional_params_may_not_set_what_the_flow_sets(gh: GitHubStandin) -> None:
    """better-auth's body schema refuses them: before the provider is looked up."""
    message = (
        "[body.additionalParams] additionalParams cannot include reserved OAuth parameters: "
        "state, client_id, redirect_uri, response_type, code_challenge, code_challenge_method, "
        "nonce, scope"
    )
    async with identity_client(social_providers=github(gh)) as (_, client):
        for provider in ("github", "gitlab"):
            response = await client.post(
                "/api/auth/sign-in/social",
                json={"provider": provider, "additionalParams": {"foo": "1", "nonce": "n"}},
            )
            assert response.status_code == 400
            assert response.json() == {"message": message, "code": "VALIDATION_ERROR"}
        url = await start(client, "github", additionalParams={"foo": "bar"})
        assert url.endswith("&foo=bar")


@pytest.mark.parametrize(
    ("selection", "message"),
    [
        ({"providerId": "github"}, "[body] Invalid input"),
        ({}, "[body] Invalid input"),
        ({"accountId": 5}, "[body] Invalid input"),
        ({"accountId": "{id}", "userId": None}, "[body] Invalid input"),
        ({"accountId": "{id}", "useAccountCookie": True}, "[body] Invalid input"),
        ({"accountId": "{id}", "providerId": "github"}, '[body] Unrecognized key: "providerId"'),
        ({"accountId": "{id}", "b": 1, "a": 2}, '[body] Unrecognized keys: "b", "a"'),
        ({"useAccountCookie": True, "x": 1}, '[body] Unrecognized key: "x"'),
        ([1], "[body] Invalid input"),
        (None, "[body] Invalid input"),
    ],
)
async def test_an_account_is_selected_by_its_id_alone(
    gh: GitHubStandin, selection: Any, message: str
) -> None:
    """better-auth 1.7.25's account selection: {accountId, userId?} or {useAccountCookie:
    true, userId?}, both strict; zod's messages for the union."""
    async with identity_client(social_providers=github(gh)) as (identity, client):
        await social_sign_in(client, "github", "octocat")
        (row,) = await identity.db.find_many("account")
        if isinstance(selection, dict):
            selection = {k: row["id"] if v == "{id}" else v for k, v in selection.items()}
        for path in ("/api/auth/get-access-token", "/api/auth/refresh-token"):
            response = await client.post(path, json=selection)
            assert response.status_code == 400
            assert response.json() == {"message": message, "code": "VALIDATION_ERROR"}
        response = await client.post("/api/auth/get-access-token", json={"useAccountCookie": True})
        assert response.json()["code"] == "ACCOUNT_NOT_FOUND"  # Bastion sets no account cookie
        response = await client.get("/api/auth/account-info", params={"providerId": "github"})
        assert response.json() == {"message": "[query] Invalid input", "code": "VALIDATION_ERROR"}


async def test_without_a_callback_url_or_a_base_url_the_flow_does_not_start(
    gh: GitHubStandin,
) -> None:
    import httpx

    from bastion.identity import Identity

    identity = Identity(database="sqlite://", secret=SECRET, env={}, social_providers=github(gh))
    transport = httpx.ASGITransport(app=identity.app)
    async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as client:
        response = await client.post("/api/auth/sign-in/social", json={"provider": "github"})
    await identity.close()
    assert response.status_code == 400
    assert response.json() == {
        "message": "callbackURL is required",
        "code": "CALLBACK_URL_REQUIRED",
    }


async def test_a_token_another_secret_encrypted_is_not_answered(gh: GitHubStandin) -> None:
    account = {"encrypt_oauth_tokens": True}
    async with identity_client(social_providers=github(gh), account=account) as (identity, client):
        await social_sign_in(client, "github", "octocat")
        (row,) = await identity.db.find_many("account")
        from bastion.identity.symmetric import encrypt

        await identity.store.update_account(
            row["id"], {"accessToken": encrypt("another-secret", "gho_x")}
        )
        response = await client.post("/api/auth/get-access-token", json={"accountId": row["id"]})
    assert response.status_code == 400
    assert response.json()["code"] == "FAILED_TO_GET_ACCESS_TOKEN"


async def test_update_user_info_on_link_takes_the_linked_profile(gh: GitHubStandin) -> None:
    account = {"account_linking": {"update_user_info_on_link": True}}
    async with identity_client(social_providers=github(gh), account=account) as (_, client):
        await sign_up(client, "octocat@example.com")
        response = await client.post("/api/auth/link-social", json={"provider": "github"})
        await back(client, await at_provider(response.json()["url"], "octocat"))
        found = await session_of(client)
    assert found is not None and found["user"]["name"] == "The Octocat"


async def test_additional_data_cannot_pose_as_the_flows_own_state(gh: GitHubStandin) -> None:
    """additionalData rides along in the state, but never under the flow's own names: a
    sign-in that says it is a link (to someone else's user) or names its own error page is
    still a plain sign-in."""
    async with identity_client(social_providers=github(gh)) as (identity, client):
        victim = await sign_up(client, "victim@example.com")
        client.cookies.clear()
        forged = {
            "link": {"userId": victim["id"], "email": "octocat@example.com"},
            "errorURL": "https://evil.example/steal",
            "callbackURL": "https://evil.example/",
            "keep": "me",
        }
        url = await start(client, "github", callbackURL="/dash", additionalData=forged)
        (row,) = await identity.db.find_many("verification")
        assert '"keep":"me"' in row["value"] and "evil.example" not in row["value"]
        assert '"link"' not in row["value"]
        response = await back(client, await at_provider(url, "octocat"))
        assert response.headers["location"] == "/dash"  # signed in as octocat, not linked
        victims = await identity.store.list_accounts(victim["id"])
        assert [a["providerId"] for a in victims] == ["credential"]


def test_an_identity_serves_sign_ins_from_a_second_event_loop(gh: GitHubStandin) -> None:
    """A script that calls asyncio.run twice with one Identity: the provider client of the
    first loop is not reused in the second (its connections belong to the closed loop)."""
    import asyncio

    import httpx

    from bastion.identity import Identity

    identity = Identity(
        database="sqlite://",
        secret=SECRET,
        base_url=f"{ORIGIN}/api/auth",
        env={},
        social_providers=github(gh),
    )

    async def one_sign_in() -> str | None:
        await identity.migrate()
        transport = httpx.ASGITransport(app=identity.app)
        async with httpx.AsyncClient(
            transport=transport, base_url=ORIGIN, headers={"origin": ORIGIN}
        ) as client:
            return redirect_error(await social_sign_in(client, "github", "octocat"))

    try:
        assert asyncio.run(one_sign_in()) is None
        assert asyncio.run(one_sign_in()) is None
    finally:
        asyncio.run(identity.close())
