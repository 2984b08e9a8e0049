"""Options: dataclasses or plain dicts, defaults from the environment, a refused dev secret."""

from __future__ import annotations

import pytest

from bastion.identity import EmailAndPassword, Identity, IdentityOptions, InsecureSecret


def test_plain_dicts_become_option_dataclasses() -> None:
    options = IdentityOptions.build(
        {"email_and_password": {"enabled": True}, "session": {"cookie_cache": {"enabled": True}}}
    )
    assert options.email_and_password == EmailAndPassword(enabled=True)
    assert options.session.cookie_cache.enabled is True
    assert options.session.expires_in == 604800  # better-auth's defaults for the rest
    assert options.email_and_password.min_password_length == 8


def test_unknown_and_invalid_options_are_refused() -> None:
    with pytest.raises(TypeError, match="no option 'emailAndPassword'"):
        IdentityOptions.build({"emailAndPassword": {}})
    with pytest.raises(TypeError, match="no option 'enable'"):
        IdentityOptions.build({"email_and_password": {"enable": True}})
    with pytest.raises(ValueError, match="min_password_length"):
        EmailAndPassword(min_password_length=20, max_password_length=10)
    with pytest.raises(ValueError, match="base_path"):
        IdentityOptions(base_path="api/auth/")


def test_secret_from_the_environment_in_order() -> None:
    both = {
        "BASTION_SECRET": "from-bastion-" + "x" * 32,
        "BETTER_AUTH_SECRET": "from-ba-" + "y" * 32,
    }
    assert IdentityOptions().resolve(both).secret == both["BASTION_SECRET"]
    only_ba = {"BETTER_AUTH_SECRET": both["BETTER_AUTH_SECRET"]}
    assert IdentityOptions().resolve(only_ba).secret == only_ba["BETTER_AUTH_SECRET"]
    assert IdentityOptions(secret="given").resolve(both).secret == "given"


def test_missing_secret_is_left_to_the_identity_and_refused_in_production() -> None:
    assert IdentityOptions().resolve({}).secret is None  # the Identity makes one
    with pytest.raises(InsecureSecret, match="BASTION_SECRET"):
        IdentityOptions().resolve({"BASTION_ENV": "production"})
    with pytest.raises(InsecureSecret):
        IdentityOptions(production=True).resolve({})


def test_base_url_from_the_environment() -> None:
    options = IdentityOptions().resolve(
        {"BETTER_AUTH_URL": "https://auth.example.com/", "BASTION_SECRET": "s" * 32}
    )
    assert options.base_url == "https://auth.example.com"


def test_identity_takes_keywords_or_one_options_object() -> None:
    identity = Identity(env={}, secret="s" * 32, email_and_password={"enabled": True})
    assert identity.options.email_and_password.enabled
    options = IdentityOptions(secret="s" * 32)
    assert Identity(options, env={}).options.secret == "s" * 32
    with pytest.raises(TypeError, match="either"):
        Identity(options, env={}, secret="t" * 32)


def test_endpoint_conflicts_are_refused_at_construction() -> None:
    from bastion.identity import Endpoint, Plugin

    async def handler(ctx: object) -> None:
        return None

    clash = Plugin(id="clash", endpoints=[Endpoint("/ok", ("GET",), handler, name="my_ok")])
    with pytest.raises(ValueError, match="GET /ok is served twice"):
        Identity(env={}, secret="s" * 32, plugins=[clash])
    with pytest.raises(ValueError, match="plugin is given twice"):
        Identity(env={}, secret="s" * 32, plugins=[Plugin(id="a"), Plugin(id="a")])


def test_a_malformed_trusted_origin_fails_at_construction() -> None:
    with pytest.raises(ValueError):
        Identity(env={}, secret="s" * 32, trusted_origins=["https://app.example.com/some/path"])


async def test_trusted_origins_from_a_callable_per_request() -> None:
    from tests.identity.conftest import running

    async def origins(request: object) -> list[str]:
        return ["https://app.example.com", "not a usable entry"]

    async with running(trusted_origins=origins) as (_, client):
        body = {"name": "A", "email": "a@example.com", "password": "password123"}
        ok = await client.post(
            "/sign-up/email", json=body, headers={"origin": "https://app.example.com"}
        )
        assert ok.status_code == 200
        body["email"] = "b@example.com"
        evil = await client.post(
            "/sign-up/email", json=body, headers={"origin": "https://evil.example"}
        )
        assert evil.status_code == 403 and evil.json()["code"] == "INVALID_ORIGIN"
