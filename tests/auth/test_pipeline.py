"""The auth pipeline through HTTP (spec §2.4 to §2.11): which paths are protected, where the
token comes from, what a refusal looks like, and which authorization runs."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest
from starlette.requests import HTTPConnection, Request

from bastion.auth import (
    AuthConfig,
    AuthProvider,
    InsufficientScope,
    RequestContext,
    current_context,
)
from bastion.server import Bastion, route
from tests.auth.doubles import Recording, bearer, client

INVALID = {"error": "Invalid or expired token"}
CHALLENGE_INVALID = 'Bearer error="invalid_token"'


def app_with(auth: Any = None, **kw: Any) -> Bastion:
    return Bastion(auth=auth if auth is not None else Recording(), **kw)


# -- which paths are protected -------------------------------------------------------


async def test_without_auth_everything_is_open() -> None:
    async with client(Bastion()) as http:
        assert (await http.get("/api/agents")).status_code == 200
        assert (await http.get("/api/tools")).status_code == 200


async def test_default_protected_and_public_paths() -> None:
    provider = Recording()
    async with client(app_with(provider)) as http:
        assert (await http.get("/api")).status_code == 200
        assert (await http.get("/health")).status_code == 200
        assert (await http.get("/api/agents")).status_code == 401
        assert (await http.get("/api/tools")).status_code == 401
        # /api/auth/* is public: without a mounted Identity it is just not found.
        assert (await http.get("/api/auth/get-session")).status_code == 404
        # Outside /api nothing is protected by default.
        assert (await http.get("/elsewhere")).status_code == 404
    assert provider.tokens == ["", ""], "only the two protected paths ask the provider"


async def test_unknown_protected_path_answers_401_before_404() -> None:
    async with client(app_with()) as http:
        assert (await http.get("/api/no-such-thing")).status_code == 401
        assert (await http.get("/api/no-such-thing", headers=bearer("good"))).status_code == 404
        wrong_method = await http.delete("/api/agents")
        assert wrong_method.status_code == 401
        allowed = await http.delete("/api/agents", headers=bearer("good"))
        assert allowed.status_code == 405
        assert allowed.json() == {"error": "Method not allowed"}
        assert allowed.headers["allow"] == "GET"


async def test_provider_public_paths_are_added_to_the_defaults() -> None:
    app = app_with(Recording(public=["/api/tools", ("/api/agents/:id", "GET")]))
    async with client(app) as http:
        assert (await http.get("/api/tools")).status_code == 200
        assert (await http.get("/api/agents/nope")).status_code == 404  # public, not found
        assert (await http.post("/api/agents/nope/generate", json={})).status_code == 401
        assert (await http.get("/api/agents")).status_code == 401
        assert (await http.get("/api")).status_code == 200  # defaults kept


async def test_config_protected_paths_outside_api() -> None:
    app = app_with(AuthConfig(authenticate_token=lambda t, r: None, protected=["/admin/*"]))
    async with client(app) as http:
        assert (await http.get("/admin/x")).status_code == 401
        assert (await http.get("/other")).status_code == 404


async def test_public_wins_over_protected_in_patterns() -> None:
    app = app_with(Recording(protected=["/api", "/health"]))
    async with client(app) as http:
        assert (await http.get("/api")).status_code == 200
        assert (await http.get("/health")).status_code == 200


async def test_method_tuple_makes_only_that_method_public() -> None:
    app = app_with(Recording(public=[("/api/agents", ["GET"])]))
    async with client(app) as http:
        assert (await http.get("/api/agents")).status_code == 200
        assert (await http.delete("/api/agents")).status_code == 401


async def test_regex_public_pattern() -> None:
    app = app_with(Recording(public=[re.compile(r"^/api/tools")]))
    async with client(app) as http:
        assert (await http.get("/api/tools")).status_code == 200
        assert (await http.get("/api/agents")).status_code == 401


async def test_trailing_slash_and_case_follow_the_patterns() -> None:
    async with client(app_with()) as http:
        assert (await http.get("/api/agents/")).status_code == 401
        assert (await http.get("/api/agents/", headers=bearer("good"))).status_code == 200
        assert (await http.get("/api/", headers=bearer("good"))).status_code == 200


# -- the credential ------------------------------------------------------------------


async def test_bearer_prefix_is_stripped_case_sensitively() -> None:
    provider = Recording()
    async with client(app_with(provider)) as http:
        assert (await http.get("/api/agents", headers=bearer("good"))).status_code == 200
        await http.get("/api/agents", headers={"Authorization": "bearer good"})
        await http.get("/api/agents", headers={"Authorization": "Basic abc"})
    assert provider.tokens == ["good", "bearer good", "Basic abc"]


async def test_api_key_query_parameter() -> None:
    provider = Recording()
    async with client(app_with(provider)) as http:
        assert (await http.get("/api/agents", params={"apiKey": "good"})).status_code == 200
        # The header wins over the query.
        response = await http.get("/api/agents", params={"apiKey": "good"}, headers=bearer("bad"))
        assert response.status_code == 401
    assert provider.tokens == ["good", "bad"]


async def test_provider_is_always_asked_and_sees_the_request() -> None:
    """No token: the provider still runs, with "", and can read its cookie."""

    class CookieAuth(AuthProvider):
        async def authenticate_token(self, token: str, request: HTTPConnection) -> Any:
            assert token == ""
            return {"id": "c"} if request.cookies.get("sid") == "s1" else None

    async with client(app_with(CookieAuth())) as http:
        assert (await http.get("/api/agents", headers={"Cookie": "sid=s1"})).status_code == 200
        assert (await http.get("/api/agents", headers={"Cookie": "sid=nope"})).status_code == 401


async def test_s30_no_credential_gets_a_bare_bearer_challenge() -> None:
    async with client(app_with()) as http:
        response = await http.get("/api/agents")
    assert response.status_code == 401
    assert response.json() == INVALID
    assert response.headers["www-authenticate"] == "Bearer"


async def test_s30_invalid_token_gets_invalid_token_challenge() -> None:
    async with client(app_with()) as http:
        for response in (
            await http.get("/api/agents", headers=bearer("bad")),
            await http.get("/api/agents", params={"apiKey": "bad"}),
            await http.get("/api/agents", headers={"Authorization": "Bearer "}),
        ):
            assert response.status_code == 401
            assert response.json() == INVALID
            assert response.headers["www-authenticate"] == CHALLENGE_INVALID


async def test_s30_session_cookie_counts_as_a_credential() -> None:
    class CookieAuth(Recording):
        session_cookie_name = "sid"

    async with client(app_with(CookieAuth())) as http:
        stale = await http.get("/api/agents", headers={"Cookie": "sid=expired"})
        unrelated = await http.get("/api/agents", headers={"Cookie": "theme=dark"})
    assert stale.headers["www-authenticate"] == CHALLENGE_INVALID
    assert unrelated.headers["www-authenticate"] == "Bearer"


async def test_raising_provider_is_401_and_the_token_stays_out_of_the_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken(AuthProvider):
        name = "broken"

        async def authenticate_token(self, token: str, request: HTTPConnection) -> Any:
            raise RuntimeError(f"cannot verify {token}")

    secret = "s3cr3t-token-value"
    with caplog.at_level(logging.DEBUG):
        async with client(app_with(Broken())) as http:
            response = await http.get("/api/agents", headers=bearer(secret))
    assert response.status_code == 401
    assert response.json() == INVALID
    assert response.headers["www-authenticate"] == CHALLENGE_INVALID
    assert "broken" in caplog.text and "RuntimeError" in caplog.text
    assert secret not in caplog.text


async def test_config_without_authenticate_token_refuses_everyone() -> None:
    async with client(app_with({"public": ["/api/tools"]})) as http:
        assert (await http.get("/api/agents", headers=bearer("good"))).status_code == 401
        assert (await http.get("/api/tools")).status_code == 200


# -- authorization -------------------------------------------------------------------


async def test_authorize_user_false_is_403() -> None:
    provider = Recording(authorize_user=lambda user, request: user["role"] == "root")
    async with client(app_with(provider)) as http:
        response = await http.get("/api/agents", headers=bearer("good"))
    assert response.status_code == 403
    assert response.json() == {"error": "Access denied"}


async def test_authorize_user_raising_is_500() -> None:
    def broken(user: Any, request: HTTPConnection) -> bool:
        raise RuntimeError("policy store down")

    async with client(app_with(Recording(authorize_user=broken))) as http:
        response = await http.get("/api/agents", headers=bearer("good"))
    assert response.status_code == 500
    assert response.json() == {"error": "Authorization error"}


async def test_authorize_user_gets_the_user_and_the_request() -> None:
    seen: list[Any] = []

    async def policy(user: Any, request: HTTPConnection) -> bool:
        seen.append((user["id"], request.url.path))
        return True

    async with client(app_with(Recording(authorize_user=policy))) as http:
        assert (await http.get("/api/tools", headers=bearer("good"))).status_code == 200
    assert seen == [("u1", "/api/tools")]


def users(token: str, request: HTTPConnection) -> Any:
    return {"admin": {"id": "a", "role": "admin"}, "guest": {"id": "g", "role": "guest"}}.get(token)


def is_admin(user: Any) -> bool:
    return bool(user["role"] == "admin")


async def test_authorize_runs_instead_of_rules() -> None:
    """Only one mechanism runs: `authorize` when given, and the rules are not consulted."""
    calls: list[tuple[str, str]] = []

    def authorize(path: str, method: str, user: Any, request: HTTPConnection) -> bool:
        calls.append((path, method))
        return bool(user["role"] == "guest")

    config = AuthConfig(
        authenticate_token=users, authorize=authorize, rules=[{"condition": is_admin}]
    )
    async with client(app_with(config)) as http:
        assert (await http.get("/api/agents", headers=bearer("guest"))).status_code == 200
        assert (await http.get("/api/agents", headers=bearer("admin"))).status_code == 403
    assert calls == [("/api/agents", "GET"), ("/api/agents", "GET")]


async def test_authorize_raising_is_500() -> None:
    async def authorize(path: str, method: str, user: Any, request: HTTPConnection) -> bool:
        raise LookupError("no")

    config = {"authenticate_token": users, "authorize": authorize}
    async with client(app_with(config)) as http:
        response = await http.get("/api/agents", headers=bearer("admin"))
    assert response.status_code == 500
    assert response.json() == {"error": "Authorization error"}


async def test_rules_run_when_there_is_no_authorize() -> None:
    config = AuthConfig(authenticate_token=users, rules=[{"condition": is_admin}])
    async with client(app_with(config)) as http:
        assert (await http.get("/api/agents", headers=bearer("admin"))).status_code == 200
        assert (await http.get("/api/agents", headers=bearer("guest"))).status_code == 403


async def test_no_authorization_configured_allows_any_user() -> None:
    async with client(app_with(AuthConfig(authenticate_token=users))) as http:
        assert (await http.get("/api/agents", headers=bearer("guest"))).status_code == 200


async def test_provider_authorize_user_is_the_mechanism() -> None:
    """A provider's authorize_user decides; there is no `authorize`/`rules` on a provider."""
    provider = Recording({"t": {"id": "x"}}, authorize_user=lambda u, r: False)
    async with client(app_with(provider)) as http:
        assert (await http.get("/api/agents", headers=bearer("t"))).status_code == 403


async def test_provider_policy_decides_unless_authorize_user_is_redefined() -> None:
    """Without `authorize_user=`, the provider's `default_authorize_user` decides; a subclass
    that redefines `authorize_user` itself is still what decides."""

    class Admins(Recording):
        async def default_authorize_user(self, user: Any, request: HTTPConnection) -> bool:
            return bool(user["role"] == "admin")

    class Everyone(Admins):
        async def authorize_user(self, user: Any, request: HTTPConnection) -> bool:
            return True

    users = {"root": {"id": "r", "role": "admin"}, "guest": {"id": "g", "role": "guest"}}
    for provider, guest_status in ((Admins(users), 403), (Everyone(users), 200)):
        async with client(app_with(provider)) as http:
            assert (await http.get("/api/agents", headers=bearer("root"))).status_code == 200
            guest = await http.get("/api/agents", headers=bearer("guest"))
            assert guest.status_code == guest_status


async def test_duck_typed_provider() -> None:
    class Duck:
        name = "duck"
        public = ("/api/tools",)

        def authenticate_token(self, token: str, request: HTTPConnection) -> Any:
            return {"id": "d"} if token == "quack" else None

        def authorize_user(self, user: Any, request: HTTPConnection) -> bool:
            return True

    async with client(app_with(Duck())) as http:
        assert (await http.get("/api/agents", headers=bearer("quack"))).status_code == 200
        assert (await http.get("/api/agents", headers=bearer("woof"))).status_code == 401
        assert (await http.get("/api/tools")).status_code == 200


def test_bad_auth_values_fail_at_construction() -> None:
    with pytest.raises(TypeError):
        Bastion(auth={"authenticate": users})
    with pytest.raises(TypeError):
        Bastion(auth=42)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Bastion(auth=Recording(public=["/api/agents*"]))


# -- the context ---------------------------------------------------------------------


async def test_context_reaches_the_handler() -> None:
    seen: list[RequestContext] = []

    async def me(request: Request) -> Any:
        assert current_context() is request.state.context
        seen.append(request.state.context)
        return {"user": request.state.context.user}

    app = app_with(
        Recording(map_user_to_resource_id=lambda user: f"res-{user['id']}"),
        routes=[route("/me", me)],
    )
    async with client(app) as http:
        response = await http.get("/api/me", headers=bearer("good"))
    assert response.json() == {"user": {"id": "u1", "role": "admin"}}
    (context,) = seen
    assert context.token == "good"
    assert context.resource_id == "res-u1"
    assert context.roles == () and context.permissions == ()
    assert current_context().user is None, "unbound after the request"


async def test_default_resource_id_is_the_user_id() -> None:
    seen: list[Any] = []

    def me(request: Request) -> Any:  # sync: runs in a thread, the context follows
        seen.append(current_context().resource_id)
        return None

    async with client(app_with(routes=[route("/me", me)])) as http:
        response = await http.get("/api/me", headers=bearer("good"))
    assert response.status_code == 200 and response.json() is None
    assert seen == ["u1"]


async def test_map_user_to_resource_id_raising_is_500() -> None:
    def broken(user: Any) -> str:
        raise KeyError("tenant")

    async with client(app_with(Recording(map_user_to_resource_id=broken))) as http:
        response = await http.get("/api/agents", headers=bearer("good"))
    assert response.status_code == 500
    assert response.json() == {"error": "Failed to map authenticated user to a resource ID"}


async def test_a_resource_hook_answering_an_awaitable_is_awaited() -> None:
    """A sync hook that hands back a coroutine (a lambda around an async lookup), on a
    provider and in a plain config: the memory owner is the awaited id."""

    async def lookup(user: Any) -> str:
        return f"tenant-{user['id']}"

    seen: list[Any] = []

    async def me(request: Request) -> Any:
        seen.append(request.state.context.resource_id)
        return None

    def users(token: str, request: Any) -> Any:
        return {"id": "u2"} if token == "good" else None

    for auth in (
        Recording(map_user_to_resource_id=lambda user: lookup(user)),
        AuthConfig(authenticate_token=users, map_user_to_resource_id=lambda user: lookup(user)),
    ):
        async with client(app_with(auth, routes=[route("/me", me)])) as http:
            assert (await http.get("/api/me", headers=bearer("good"))).status_code == 200
    assert seen == ["tenant-u1", "tenant-u2"]


async def test_public_route_has_an_anonymous_context() -> None:
    seen: list[RequestContext] = []

    async def hello(request: Request) -> Any:
        seen.append(request.state.context)
        return "hi"

    app = app_with(routes=[route("/hello", hello, requires_auth=False)])
    async with client(app) as http:
        # Even with a valid token, an open route does not authenticate.
        assert (await http.get("/api/hello", headers=bearer("good"))).json() == "hi"
    assert not seen[0].authenticated


async def test_provider_response_headers_reach_every_answer() -> None:
    """Headers a provider leaves in request.state (a refreshed session cookie) are sent on
    success and on refusal alike (spec §2.7)."""

    class Refreshing(Recording):
        async def authenticate_token(self, token: str, request: HTTPConnection) -> Any:
            state = request.scope.setdefault("state", {})
            state.setdefault("response_headers", []).append(("set-cookie", "sid=new; Path=/"))
            return await super().authenticate_token(token, request)

    provider = Refreshing(authorize_user=lambda user, request: user["id"] == "u1")
    provider.users["other"] = {"id": "u2"}
    async with client(app_with(provider)) as http:
        for token, status in (("good", 200), ("other", 403), ("bad", 401)):
            response = await http.get("/api/agents", headers=bearer(token))
            assert response.status_code == status
            assert response.headers.get_list("set-cookie") == ["sid=new; Path=/"]


async def test_regex_pattern_sees_the_path_the_router_serves() -> None:
    """`/api/open/` is routed as `/api/open`, so an anchored regex sees `/api/open` too."""
    config = AuthConfig(authenticate_token=users, public=[re.compile(r"^/api/open$")])

    async def handler(request: Request) -> Any:
        return "ok"

    app = app_with(config, routes=[route("/open", handler, requires_auth=None)])
    async with client(app) as http:
        assert (await http.get("/api/open")).status_code == 200
        assert (await http.get("/api/open/")).status_code == 200


async def test_s30_policy_can_answer_insufficient_scope() -> None:
    """A 403 for missing scopes says so in the RFC 6750 challenge; other refusals do not."""

    def needs_scope(user: Any, request: HTTPConnection) -> bool:
        raise InsufficientScope(["agents:read", "agents:run"])

    async with client(app_with(Recording(authorize_user=needs_scope))) as http:
        response = await http.get("/api/agents", headers=bearer("good"))
    assert response.status_code == 403
    assert response.json() == {"error": "Access denied"}
    assert response.headers["www-authenticate"] == (
        'Bearer error="insufficient_scope", scope="agents:read agents:run"'
    )
    async with client(app_with(Recording(authorize_user=lambda u, r: False))) as http:
        plain = await http.get("/api/agents", headers=bearer("good"))
    assert plain.status_code == 403 and "www-authenticate" not in plain.headers
