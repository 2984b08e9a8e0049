"""`Identity`: the façade that builds an identity's context from its options and serves its
endpoints, over HTTP (`identity.app`) and in-process (`identity.api`).

The parts live in modules of their own: the context handlers see (`context.py`), the request
runner (`runner.py`), the ASGI shell (`asgi.py`) and the route table (`bastion._routes`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from starlette.types import Receive, Scope, Send

from .._callbacks import call_user
from .._routes import RouteTable
from ._asgi import IdentityHTTP
from ._runner import Runner
from ._secret import generated_secret
from ._session_read import SessionReader, SessionResult, TrustCookieCache
from .context import AuthContext
from .crypto import password_hashing
from .db import CORE_SCHEMA, Database, Schema, TableSpec
from .db.types import utc_now
from .endpoint import Endpoint
from .errors import APIError, Code, ErrorCode
from .options import IdentityOptions
from .plugins import Plugin
from .ratelimit import RATE_LIMIT_SCHEMA, ClientIP, RateLimiter, StorageKind
from .routes import CORE_ENDPOINTS
from .social import build_providers
from .store import SessionWithUser, Store

__all__ = ["API", "Identity"]


class Identity:
    """better-auth, in Python: `Identity(email_and_password={"enabled": True})`.

    Mount `identity.app` at the base path (`/api/auth`), or call `identity.api.<endpoint>`
    in-process. Options are `IdentityOptions` fields, as keyword arguments or one object;
    `plugins` is a list of `Plugin`s.
    """

    def __init__(
        self,
        options: IdentityOptions | None = None,
        /,
        *,
        plugins: Sequence[Plugin] = (),
        env: Mapping[str, str] = os.environ,
        clock: Callable[[], datetime] = utc_now,
        **kwargs: Any,
    ) -> None:
        if options is None:
            options = IdentityOptions.build(kwargs)
        elif kwargs:
            raise TypeError("give options either as one IdentityOptions or as keywords")
        ids = [p.id for p in plugins]
        if len(ids) != len(set(ids)):
            raise ValueError(f"a plugin is given twice: {ids}")
        self.plugins = tuple(plugins)
        self.options = options.resolve(env)
        self.now = clock
        self.schema = self._schema()
        database = self.options.database
        if isinstance(database, Database):
            self.db = database
        else:
            self.db = Database(database, schema=self.schema, clock=clock)
        if self.options.secret is None:  # never a constant: see identity/_secret.py
            self.options = dataclasses.replace(self.options, secret=generated_secret(self.db.url))
        assert self.options.secret is not None  # set above
        self.error_codes = _merge_error_codes(self.plugins)
        self.store = Store(
            self.db,
            secondary=self.options.secondary_storage,
            sessions_in_database=self.options.session.store_session_in_database,
            database_hooks=[self.options.database_hooks, *(p.database_hooks for p in plugins)],
            clock=clock,
        )
        password = self.options.email_and_password.password
        self.hasher = password_hashing(password.hash, password.verify)
        self.rate_limiter = self._rate_limiter()
        social_providers = build_providers(
            self.options.social_providers,
            [provider for p in self.plugins for provider in p.social_providers],
        )
        self.context = AuthContext(
            options=self.options,
            secret=self.options.secret,
            schema=self.schema,
            store=self.store,
            hasher=self.hasher,
            rate_limiter=self.rate_limiter,
            now=clock,
            plugin_ids=frozenset(ids),
            sign_in_checks=[check for p in self.plugins for check in p.sign_in_checks],
            social_providers=social_providers,
            env=env,
        )
        self.endpoints = self._endpoints()
        owner = {id(e): p.id for p in self.plugins for e in p.endpoints}
        self.context.endpoints = tuple(
            (owner.get(id(e)), e) for e in self.endpoints.values() if not e.server_only
        )
        table: RouteTable[Endpoint] = RouteTable()
        for endpoint in self.endpoints.values():
            if not endpoint.server_only:
                table.add(endpoint.path, endpoint.methods, endpoint)
        self.runner = Runner(self.context, list(self.endpoints.values()), self.plugins)
        self._sessions = SessionReader(self.context, self.runner, self.endpoints["get_session"])
        advanced = self.options.advanced
        # A base URL with a path gives the base path (spec §1.1), as the runner does.
        base_url_path = urlsplit(self.options.base_url or "").path.rstrip("/")
        self._http = IdentityHTTP(
            self.runner,
            table,
            base_path=base_url_path or self.options.base_path,
            client_ip=ClientIP(
                ip_headers=tuple(advanced.ip_address_headers),
                trusted_proxies=tuple(advanced.trusted_proxies),
                disable_ip_tracking=advanced.disable_ip_tracking,
                ipv6_subnet=128,  # the address itself (session.ipAddress); the limiter: a /64
            ),
            rate_limiter=self.rate_limiter,
            max_body_size=self.options.max_body_size,
            on_shutdown=self.close,
        )
        self._started = False
        self._starting: asyncio.Lock | None = None
        self.api = API(self)

    # -- construction ----------------------------------------------------------------

    def _schema(self) -> Schema:
        schema = CORE_SCHEMA
        for plugin in self.plugins:
            if plugin.schema:
                schema = schema.extend(plugin.schema)
        extra_user = self.options.user.additional_fields
        extra_session = self.options.session.additional_fields
        if extra_user:
            schema = schema.extend({"user": TableSpec(fields=extra_user)})
        if extra_session:
            schema = schema.extend({"session": TableSpec(fields=extra_session)})
        if self._rate_limit_storage() == "database":
            schema = schema.extend(RATE_LIMIT_SCHEMA)
        return schema

    def _rate_limit_storage(self) -> StorageKind:
        chosen = self.options.rate_limit.storage
        if chosen is not None:
            return chosen
        return "secondary-storage" if self.options.secondary_storage is not None else "memory"

    def _rate_limiter(self) -> RateLimiter | None:
        options = self.options.rate_limit
        enabled = options.enabled if options.enabled is not None else self.options.production
        if not enabled:
            return None
        storage = self._rate_limit_storage()
        return RateLimiter(
            window=options.window,
            max=options.max,
            storage=storage,
            database=self.db if storage == "database" else None,
            secondary=self.options.secondary_storage,
            plugin_rules=[rule for p in self.plugins for rule in p.rate_limits],
            custom_rules=options.custom_rules,
            account_rules=options.account_rules,
            declared_only=options.declared_only,
            now_ms=lambda: int(self.now().timestamp() * 1000),  # the Identity's clock
        )

    def _endpoints(self) -> dict[str, Endpoint]:
        endpoints: dict[str, Endpoint] = {}
        seen: dict[tuple[str, str], str] = {}
        for endpoint in [*CORE_ENDPOINTS, *(e for p in self.plugins for e in p.endpoints)]:
            if endpoint.name in endpoints:
                raise ValueError(f"two endpoints are named {endpoint.name!r}")
            for method in endpoint.methods:
                key = (method, endpoint.path)
                if key in seen:
                    raise ValueError(f"{method} {endpoint.path} is served twice")
                seen[key] = endpoint.name
            endpoints[endpoint.name] = endpoint
        return endpoints

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Run the plugins' `init` steps, once (the first request or `bastion serve`'s
        start-up does it; call it yourself to fail early)."""
        if self._started:
            return
        if self._starting is None:  # made on the loop that serves: requests may race here
            self._starting = asyncio.Lock()
        async with self._starting:
            if self._started:
                return
            for plugin in self.plugins:
                if plugin.init is not None:
                    await call_user(plugin.init, self.context)
            self._started = True

    async def migrate(self) -> None:
        from .db import migrate

        await migrate(self.db)

    async def close(self) -> None:
        await self.context.oauth.close()
        await self.db.close()

    # -- sessions --------------------------------------------------------------------

    async def get_session(
        self,
        headers: Mapping[str, Any],
        *,
        method: str = "GET",
        bearer: str | None = None,
        trust_cookie_cache: TrustCookieCache = "reads",
        require_signature: bool = False,
    ) -> SessionResult:
        """The session of a request with these `headers`, as get-session resolves it.

        The session cookie (the Cookie header, read case-insensitively; HTTP/2's split
        headers joined), else the `bearer` token (default: `Authorization: Bearer`), signed
        or raw (signed here with the secret; `require_signature` refuses raw ones).
        `trust_cookie_cache`: when a valid cookie cache stands for the session without a
        storage read — "reads" (a GET, HEAD or OPTIONS `method`), "always", "never".
        Raises `DatabaseUnavailable` or `StorageUnavailable` when storage cannot say.
        """
        if not self._started:
            await self.start()
        return await self._sessions.read(
            headers,
            method=method,
            bearer=bearer,
            trust_cookie_cache=trust_cookie_cache,
            require_signature=require_signature,
        )

    def cached_session(
        self,
        cookie_header: str,
        method: str = "GET",
        trust_cookie_cache: TrustCookieCache = "reads",
    ) -> SessionWithUser | None:
        """`get_session`'s usual answer where it needs no I/O: the session and user (public
        fields, copies of their own) of the Cookie header's valid cookie cache, verified once
        per header and then remembered until the cache or the session expires. None when
        there is no such cache, the request may not trust it (`trust_cookie_cache`, as for
        `get_session`), this process revoked the session since, or the Identity has not
        started: `get_session` then decides. Sync, for a caller on every request (an auth
        provider); it answers nothing `get_session` would not."""
        if not self._started:
            return None
        return self._sessions.cached(cookie_header, method, trust_cookie_cache)

    @property
    def session_cookie_name(self) -> str:
        """The name of the session_token cookie (prefix and `__Secure-` included)."""
        return self._sessions.session_cookie_name

    # -- serving ---------------------------------------------------------------------

    @property
    def app(self) -> Identity:
        """The ASGI application (the Identity itself): mount it at `base_path`."""
        return self

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._started and scope["type"] in ("http", "lifespan"):
            await self.start()
        await self._http(scope, receive, send)


def _merge_error_codes(plugins: Sequence[Plugin]) -> dict[str, ErrorCode]:
    """Core's codes and every plugin's, by wire code. A plugin may repeat a code with the
    same message (better-auth's plugins share several); a different message is refused."""
    merged: dict[str, ErrorCode] = {member.name: member for member in Code}
    for plugin in plugins:
        for member in plugin.error_codes or ():
            known = merged.get(member.name)
            if known is not None and known.message != member.message:
                raise ValueError(
                    f"plugin {plugin.id!r}: error code {member.name} is already "
                    f"{known.message!r}, not {member.message!r}"
                )
            merged.setdefault(member.name, member)
    return merged


class API:
    """`identity.api.sign_in_email(body={...}, headers={...})`: the endpoints in-process.

    Each returns the endpoint's result as Python values and raises `APIError` for an error
    answer; `as_response=True` returns the whole `APIResponse` (status, headers, cookies).
    """

    def __init__(self, identity: Identity) -> None:
        self._identity = identity

    def __getattr__(self, name: str) -> Callable[..., Any]:
        endpoint = self._identity.endpoints.get(name)
        if endpoint is None:
            raise AttributeError(f"no endpoint {name!r}")

        async def call(
            *,
            body: Any = None,
            headers: Mapping[str, str] | None = None,
            query: Mapping[str, Any] | None = None,
            params: Mapping[str, str] | None = None,
            as_response: bool = False,
        ) -> Any:
            identity = self._identity
            await identity.start()
            method = (
                "POST" if "POST" in endpoint.methods and body is not None else endpoint.methods[0]
            )
            ctx = identity.runner.new_ctx(
                endpoint,
                method=method,
                headers={k.lower(): v for k, v in (headers or {}).items()},
                raw_body=body,
                query=query,
                params=params,
            )
            response = await identity.runner.run(endpoint, ctx)
            if as_response:
                return response
            if response.status >= 400:
                raise ctx.error or APIError(response.status)
            return ctx.returned

        call.__name__ = name
        return call
