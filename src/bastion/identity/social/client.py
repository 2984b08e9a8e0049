"""What Bastion asks of an OAuth 2.0 / OpenID Connect provider: the authorization URL, the
code exchange, a refresh, and the user's profile (an ID token verified against the
provider's keys, or its userinfo endpoint, or GitHub's /user and /user/emails).

Every request has the provider's timeout (at most 10 s), follows no redirect, and any
failure (refused, down, slow, an error answer, a malformed one) is a `ProviderError` whose
`code` is the redirect error better-auth gives it. ID tokens are checked with the JWKS cache
and verifier of `bastion.jose`, shared with `bastion.auth`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

from ...jose import (
    DiscoveredKeys,
    JWKSCache,
    JWTError,
    JWTPolicy,
    JWTVerifier,
    KeysUnavailable,
    RemoteKeys,
    default_jwks_cache,
)
from ..crypto import sha256_base64url
from .provider import Profile, SocialProvider

__all__ = [
    "Endpoints",
    "ProviderClient",
    "ProviderError",
    "Tokens",
]

# Names the flow sets itself; `additionalParams` may not override them (better-auth's list,
# in its order: the refusal names them so).
RESERVED_PARAM_NAMES = (
    "state",
    "client_id",
    "redirect_uri",
    "response_type",
    "code_challenge",
    "code_challenge_method",
    "nonce",
    "scope",
)
RESERVED_PARAMS = frozenset(RESERVED_PARAM_NAMES)
_DISCOVERY_SUFFIX = "/.well-known/openid-configuration"


class ProviderError(Exception):
    """The provider did not give what the flow needs; `code` is the redirect error code."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Tokens:
    access_token: str | None
    refresh_token: str | None = None
    id_token: str | None = None
    token_type: str | None = None
    access_token_expires_at: datetime | None = None
    refresh_token_expires_at: datetime | None = None
    scopes: tuple[str, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, data: Mapping[str, Any], now: datetime) -> Tokens:
        """better-auth's `getOAuth2Tokens`: `expires_in` seconds become dates; `scope` is a
        space-separated string or a list."""

        def text(name: str) -> str | None:
            value = data.get(name)
            return value if isinstance(value, str) and value else None

        def expires(name: str) -> datetime | None:
            value = data.get(name)
            if isinstance(value, str) and value.isdigit():
                value = int(value)
            if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
                return now + timedelta(seconds=min(float(value), 10 * 365 * 86400))
            return None

        scope = data.get("scope")
        if isinstance(scope, str):
            scopes = tuple(scope.split())
        elif isinstance(scope, list):
            scopes = tuple(s.strip() for s in scope if isinstance(s, str) and s.strip())
        else:
            scopes = ()
        return cls(
            access_token=text("access_token"),
            refresh_token=text("refresh_token"),
            id_token=text("id_token"),
            token_type=text("token_type"),
            access_token_expires_at=expires("expires_in"),
            refresh_token_expires_at=expires("refresh_token_expires_in"),
            scopes=scopes,
            raw=dict(data),
        )


@dataclass(frozen=True, slots=True)
class Endpoints:
    authorization: str
    token: str
    userinfo: str | None
    issuer: tuple[str, ...]
    jwks_uri: str | None


class ProviderClient:
    """One Identity's conversations with its providers: an HTTP client, the JWKS cache, and
    one ID-token verifier per provider, made when first needed."""

    def __init__(
        self, *, http: httpx.AsyncClient | None = None, jwks: JWKSCache | None = None
    ) -> None:
        self._http = http
        self._owns_http = http is None
        self._loop: asyncio.AbstractEventLoop | None = None  # the one our own client serves
        self._jwks = jwks or default_jwks_cache()
        self._verifiers: dict[str, JWTVerifier] = {}

    async def close(self) -> None:
        if self._http is not None and self._owns_http:
            if self._loop is asyncio.get_running_loop():
                await self._http.aclose()
            self._http = None

    def _client(self) -> httpx.AsyncClient:
        if not self._owns_http:
            assert self._http is not None
            return self._http
        # A pool's connections belong to the event loop that opened them: an Identity used
        # from a second loop (asyncio.run twice in a script) gets a client of its own there.
        loop = asyncio.get_running_loop()
        if self._http is None or self._loop is not loop:
            self._http = httpx.AsyncClient(follow_redirects=False, trust_env=False)
            self._loop = loop
        return self._http

    # -- discovery -----------------------------------------------------------------------

    async def endpoints(self, provider: SocialProvider) -> Endpoints:
        """The provider's URLs: configured, else from its discovery document."""
        issuers = provider.issuers
        authorization = provider.authorization_endpoint
        token = provider.token_endpoint
        userinfo = provider.userinfo_endpoint
        jwks_uri = provider.jwks_uri
        if provider.discovery_url and not (authorization and token and (jwks_uri or userinfo)):
            metadata = await self._metadata(provider)
            issuers = issuers or (str(metadata["issuer"]),)
            authorization = authorization or _url(metadata.get("authorization_endpoint"))
            token = token or _url(metadata.get("token_endpoint"))
            userinfo = userinfo or _url(metadata.get("userinfo_endpoint"))
            jwks_uri = jwks_uri or _url(metadata.get("jwks_uri"))
        if not authorization or not token:
            raise ProviderError(
                "oauth_provider_not_found",
                f"provider {provider.id!r} has no authorization or token endpoint",
            )
        return Endpoints(authorization, token, userinfo, issuers, jwks_uri)

    async def _metadata(self, provider: SocialProvider) -> Mapping[str, Any]:
        assert provider.discovery_url is not None
        url = provider.discovery_url
        # OIDC Discovery §4: the document of issuer I is at I + the well-known path, and
        # names I exactly (S32). A configured issuer wins.
        expected = provider.issuers[0] if provider.issuers else _issuer_of(url)
        self._jwks.allow(url, what="discovery_url")
        try:
            return await self._jwks.get_metadata(url, expected)
        except (KeysUnavailable, JWTError, ValueError) as error:
            raise ProviderError("unable_to_get_user_info", f"discovery: {error}") from None

    # -- the authorization request -------------------------------------------------------

    async def authorization_url(
        self,
        provider: SocialProvider,
        *,
        state: str,
        redirect_uri: str,
        code_verifier: str | None,
        scopes: Sequence[str] = (),
        login_hint: str | None = None,
        nonce: str | None = None,
        additional_params: Mapping[str, str] | None = None,
    ) -> str:
        endpoints = await self.endpoints(provider)
        params: dict[str, str] = {
            "response_type": "code",
            "client_id": provider.client_id,
            "state": state,
        }
        all_scopes = provider.all_scopes(scopes)
        if all_scopes:
            params["scope"] = " ".join(all_scopes)
        params["redirect_uri"] = provider.redirect_uri or redirect_uri
        # better-auth's order: the named extras, PKCE, then free-form parameters.
        named = provider.authorization_params
        if "display" in named:
            params["display"] = named["display"]
        if login_hint:
            params["login_hint"] = login_hint
        if nonce:
            params["nonce"] = nonce
        for name in ("prompt", "hd", "access_type", "response_mode"):
            if name in named:
                params[name] = named[name]
        if code_verifier and provider.pkce:
            params["code_challenge_method"] = "S256"
            params["code_challenge"] = sha256_base64url(code_verifier)  # PKCE S256
        for name, value in [*named.items(), *(additional_params or {}).items()]:
            if name not in RESERVED_PARAMS and name not in params:
                params[name] = value
        return _with_query(endpoints.authorization, params)

    # -- tokens --------------------------------------------------------------------------

    async def exchange_code(
        self,
        provider: SocialProvider,
        *,
        code: str,
        redirect_uri: str,
        code_verifier: str | None,
        now: datetime,
    ) -> Tokens:
        form = {"grant_type": "authorization_code", "code": code}
        if code_verifier and provider.pkce:
            form["code_verifier"] = code_verifier
        form["redirect_uri"] = provider.redirect_uri or redirect_uri
        return await self._token_request(provider, form, now, failure="invalid_code")

    async def refresh(self, provider: SocialProvider, refresh_token: str, now: datetime) -> Tokens:
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        return await self._token_request(provider, form, now, failure="refresh_failed")

    async def _token_request(
        self, provider: SocialProvider, form: dict[str, str], now: datetime, *, failure: str
    ) -> Tokens:
        endpoints = await self.endpoints(provider)
        headers = {"accept": "application/json", "user-agent": "bastion"}
        auth: httpx.BasicAuth | None = None
        if provider.token_auth == "client_secret_basic":
            auth = httpx.BasicAuth(provider.client_id, provider.client_secret or "")
        else:
            form["client_id"] = provider.client_id
            if provider.client_secret:
                form["client_secret"] = provider.client_secret
        data = await self._json(
            "POST", endpoints.token, provider, failure, data=form, headers=headers, auth=auth
        )
        if "error" in data:
            raise ProviderError(failure, f"token endpoint: {str(data.get('error'))[:200]}")
        tokens = Tokens.parse(data, now)
        if tokens.access_token is None and tokens.id_token is None:
            raise ProviderError(failure, "token endpoint answered no token")
        return tokens

    # -- the profile ---------------------------------------------------------------------

    async def profile(
        self,
        provider: SocialProvider,
        tokens: Tokens,
        *,
        nonce: str | None,
        stored_id_token: bool = False,
    ) -> Profile:
        """The user as the provider describes them; ProviderError("unable_to_get_user_info")
        when it cannot be read or an ID token fails a check (better-auth's code for both).

        An OpenID provider's profile is its ID token, verified; a token answer without one
        falls back to userinfo, as better-auth's does. `stored_id_token`: the ID token is
        the one stored with the account, verified when it arrived and possibly expired since
        (account-info): its claims are read, not checked again."""
        if provider.profile_source == "github":
            claims = await self._github(provider, tokens)
        elif provider.profile_source == "id_token" and tokens.id_token:
            if stored_id_token:
                claims = _unverified_claims(tokens.id_token)
            else:
                claims = await self.verify_id_token(provider, tokens.id_token, nonce=nonce)
            if not claims.get("email") and tokens.access_token:
                claims = await self._with_userinfo(provider, tokens, claims)
        else:
            claims = await self._userinfo(provider, tokens)
        return self.to_profile(provider, claims)

    def to_profile(self, provider: SocialProvider, claims: Mapping[str, Any]) -> Profile:
        mapper = provider.map_profile
        if mapper is None:
            from .presets import oidc_profile

            mapper = oidc_profile
        account_id, user = mapper(claims)
        if not account_id:
            raise ProviderError("unable_to_get_user_info", "the profile has no account id")
        return Profile(account_id, user, claims)

    async def verify_id_token(
        self, provider: SocialProvider, token: str, *, nonce: str | None
    ) -> dict[str, Any]:
        """The claims of an ID token the provider signed for this client: signature by the
        provider's keys, issuer, audience, expiry, and the flow's nonce when there is one."""
        verifier = await self._verifier(provider)
        try:
            claims = await verifier.verify(token)
        except KeysUnavailable as error:
            raise ProviderError("unable_to_get_user_info", f"keys: {error}") from None
        except JWTError as error:
            raise ProviderError("unable_to_get_user_info", str(error)) from None
        issuers = (await self.endpoints(provider)).issuer
        if issuers and claims.get("iss") not in issuers:
            raise ProviderError("unable_to_get_user_info", "the ID token names another issuer")
        if nonce is not None and claims.get("nonce") != nonce:
            raise ProviderError("unable_to_get_user_info", "the ID token's nonce is another's")
        if provider.id_token_max_age is not None:
            issued = claims.get("iat")
            if not isinstance(issued, int | float) or time.time() - issued > (
                provider.id_token_max_age + 30
            ):
                raise ProviderError("unable_to_get_user_info", "the ID token is too old")
        if provider.verify_claims is not None and not provider.verify_claims(claims):
            raise ProviderError("unable_to_get_user_info", "the ID token's claims are refused")
        return claims

    async def _verifier(self, provider: SocialProvider) -> JWTVerifier:
        verifier = self._verifiers.get(provider.id)
        if verifier is not None:
            return verifier
        endpoints = await self.endpoints(provider)
        if endpoints.jwks_uri:
            keys: RemoteKeys | DiscoveredKeys = RemoteKeys(self._jwks, endpoints.jwks_uri)
        elif endpoints.issuer:
            keys = DiscoveredKeys(self._jwks, endpoints.issuer[0])
        else:
            raise ProviderError(
                "unable_to_get_user_info", f"provider {provider.id!r} has no keys for ID tokens"
            )
        policy = JWTPolicy(
            algorithms=provider.id_token_algorithms,
            audience=(provider.client_id,),
            required_claims=frozenset({"exp", "iat", "sub"}),
        )
        verifier = JWTVerifier(policy, keys)
        self._verifiers[provider.id] = verifier
        return verifier

    async def _with_userinfo(
        self, provider: SocialProvider, tokens: Tokens, claims: dict[str, Any]
    ) -> dict[str, Any]:
        """An ID token without the address (scopes that put it in userinfo only): the
        userinfo of the same subject fills it in; the verified claims win."""
        if not (await self.endpoints(provider)).userinfo:
            return claims
        info = await self._userinfo(provider, tokens)
        if str(info.get("sub")) != str(claims.get("sub")):
            raise ProviderError("unable_to_get_user_info", "userinfo is another subject's")
        return {**info, **claims}

    async def _userinfo(self, provider: SocialProvider, tokens: Tokens) -> dict[str, Any]:
        endpoints = await self.endpoints(provider)
        if not endpoints.userinfo or not tokens.access_token:
            raise ProviderError("unable_to_get_user_info", "no userinfo endpoint or no token")
        data: dict[str, Any] = await self._json(
            "GET",
            endpoints.userinfo,
            provider,
            "unable_to_get_user_info",
            headers=_bearer(tokens.access_token),
        )
        return data

    async def _github(self, provider: SocialProvider, tokens: Tokens) -> dict[str, Any]:
        """GitHub's /user, with the address from /user/emails when the profile shows none
        (the primary one, else the first) and whether GitHub verified it."""
        profile = await self._userinfo(provider, tokens)
        emails: Any = []
        if provider.emails_endpoint and tokens.access_token:
            try:
                emails = await self._json(
                    "GET",
                    provider.emails_endpoint,
                    provider,
                    "unable_to_get_user_info",
                    headers=_bearer(tokens.access_token),
                    expect=list,
                )
            except ProviderError:
                emails = []  # better-auth goes on without them: the address may be unverified
        listed = [e for e in emails if isinstance(e, dict) and isinstance(e.get("email"), str)]
        if not profile.get("email") and listed:
            chosen = next((e for e in listed if e.get("primary") is True), listed[0])
            profile["email"] = chosen["email"]
        profile["email_verified"] = any(
            e["email"] == profile.get("email") and e.get("verified") is True for e in listed
        )
        return profile

    async def _json(
        self,
        method: str,
        url: str,
        provider: SocialProvider,
        failure: str,
        *,
        expect: type = dict,
        **request: Any,
    ) -> Any:
        try:
            response = await self._client().request(
                method, url, timeout=provider.timeout, **request
            )
        except httpx.TimeoutException:
            raise ProviderError(failure, f"{_origin(url)} did not answer in time") from None
        except httpx.HTTPError as error:
            raise ProviderError(failure, f"{_origin(url)}: {type(error).__name__}") from None
        if response.status_code >= 300:
            raise ProviderError(failure, f"{_origin(url)} answered {response.status_code}")
        data = _parse_body(response)
        if not isinstance(data, expect):
            raise ProviderError(failure, f"{_origin(url)} answered no JSON {expect.__name__}")
        return data


def _unverified_claims(token: str) -> dict[str, Any]:
    """The payload of a compact JWT this server verified earlier; not a check of anything."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        raise ProviderError("unable_to_get_user_info", "the stored ID token is malformed") from None
    if not isinstance(claims, dict):
        raise ProviderError("unable_to_get_user_info", "the stored ID token is malformed")
    return claims


def _parse_body(response: httpx.Response) -> Any:
    """JSON, or a form-encoded body (GitHub's token endpoint without Accept: JSON)."""
    try:
        return response.json()
    except ValueError:
        text = response.text
        if "=" in text and "{" not in text:
            return dict(parse_qsl(text))
        return None


def _bearer(token: str) -> dict[str, str]:
    return {
        "authorization": f"Bearer {token}",
        "accept": "application/json",
        "user-agent": "bastion",
    }


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}"


def _url(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _issuer_of(discovery_url: str) -> str:
    return discovery_url.removesuffix(_DISCOVERY_SUFFIX)


def _with_query(endpoint: str, params: Mapping[str, str]) -> str:
    """The endpoint with `params` added; its own query kept, except names `params` sets."""
    parts = urlsplit(endpoint)
    kept = [pair for pair in parts.query.split("&") if pair and pair.split("=", 1)[0] not in params]
    query = "&".join([*kept, urlencode(params)])
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))
