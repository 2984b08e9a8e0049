"""better-auth's `genericOAuth` plugin: any OAuth 2.0 or OpenID Connect provider.

    Identity(plugins=[generic_oauth(config=[
        {"provider_id": "corp", "discovery_url": "https://sso.example.com/.well-known/openid-configuration",
         "client_id": "...", "client_secret": "..."},
        okta(issuer="https://dev-1.okta.com/oauth2/default", client_id="...", client_secret="..."),
    ])])

As in better-auth 1.7.25, these providers are social providers like GitHub and Google: the
client signs in with `authClient.signIn.social({provider: "corp"})`, through /sign-in/social,
/callback/{id} and /link-social. A provider with a discovery document is OpenID Connect:
its ID token is verified against the discovered keys and issuer, and bound to the flow by a
nonce. Without one, give `authorization_url`, `token_url` and `user_info_url` (plain OAuth
2.0: the account is the userinfo's `id`, else its `sub`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..social.presets import oidc_profile
from ..social.provider import SocialProvider
from . import Plugin

__all__ = ["generic_oauth"]

_KEYS = {
    "provider_id",
    "name",
    "client_id",
    "client_secret",
    "discovery_url",
    "issuer",
    "jwks_uri",
    "authorization_url",
    "token_url",
    "user_info_url",
    "scopes",
    "pkce",
    "prompt",
    "access_type",
    "response_mode",
    "authorization_url_params",
    "redirect_uri",
    "authentication",
    "disable_implicit_sign_up",
    "disable_sign_up",
    "override_user_info",
    "map_profile_to_user",
    "map_profile",
    "disable_id_token_nonce_binding",
    "timeout",
}


def _userinfo_profile(claims: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """Plain OAuth 2.0 userinfo: better-auth takes the account from `id`, else `sub`."""
    _, user = oidc_profile(claims)
    account = claims.get("id", claims.get("sub"))
    return ("" if account is None else str(account)), user


def _provider(config: Mapping[str, Any]) -> SocialProvider:
    unknown = set(config) - _KEYS
    if unknown:
        raise TypeError(f"generic_oauth: no option {sorted(unknown)[0]!r}")
    provider_id = config.get("provider_id")
    if not isinstance(provider_id, str) or not provider_id:
        raise ValueError("generic_oauth: every provider needs a provider_id")
    discovery = config.get("discovery_url")
    oidc = bool(discovery or config.get("jwks_uri"))
    if not discovery and not (config.get("authorization_url") and config.get("token_url")):
        raise ValueError(
            f"generic_oauth {provider_id!r}: give discovery_url, or authorization_url and token_url"
        )
    scopes = tuple(config.get("scopes") or ())
    if oidc and "openid" not in scopes:
        scopes = ("openid", *scopes)
    params = {str(k): str(v) for k, v in (config.get("authorization_url_params") or {}).items()}
    for name in ("prompt", "access_type", "response_mode"):
        if config.get(name):
            params[name] = str(config[name])
    authentication = config.get("authentication", "post")
    if authentication not in ("basic", "post"):
        raise ValueError(f"generic_oauth {provider_id!r}: authentication is 'basic' or 'post'")
    return SocialProvider(
        id=provider_id,
        name=str(config.get("name") or provider_id),
        client_id=str(config.get("client_id") or ""),
        client_secret=config.get("client_secret"),
        discovery_url=discovery,
        issuer=config.get("issuer"),
        jwks_uri=config.get("jwks_uri"),
        authorization_endpoint=config.get("authorization_url"),
        token_endpoint=config.get("token_url"),
        userinfo_endpoint=config.get("user_info_url"),
        default_scopes=scopes,
        pkce=bool(config.get("pkce", True)),
        require_nonce=oidc and not config.get("disable_id_token_nonce_binding", False),
        token_auth="client_secret_basic" if authentication == "basic" else "client_secret_post",
        authorization_params=params,
        redirect_uri=config.get("redirect_uri"),
        profile_source="id_token" if oidc else "userinfo",
        map_profile=config.get("map_profile") or (oidc_profile if oidc else _userinfo_profile),
        map_profile_to_user=config.get("map_profile_to_user"),
        disable_sign_up=bool(config.get("disable_sign_up", False)),
        disable_implicit_sign_up=bool(config.get("disable_implicit_sign_up", False)),
        override_user_info_on_sign_in=bool(config.get("override_user_info", False)),
        timeout=float(config.get("timeout", 10.0)),
    )


def generic_oauth(*, config: Sequence[Mapping[str, Any] | SocialProvider]) -> Plugin:
    """The plugin: one provider per entry of `config` (options, or a SocialProvider)."""
    providers = [c if isinstance(c, SocialProvider) else _provider(c) for c in config]
    ids = [p.id for p in providers]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"generic_oauth: provider ids given twice: {duplicates}")
    return Plugin(id="generic-oauth", social_providers=providers)
