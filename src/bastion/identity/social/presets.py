"""Known providers as data: URLs, default scopes, where the profile comes from and how it maps
to a user. `github` and `google` are better-auth's social providers; the rest are the
generic-OAuth presets (better-auth's `genericOAuth` helpers), each a function of the few
values that locate the tenant, returning the options `generic_oauth` takes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .provider import SocialProvider

__all__ = [
    "GITHUB",
    "GOOGLE",
    "PRESETS",
    "auth0",
    "gitlab",
    "keycloak",
    "microsoft_entra_id",
    "oidc_profile",
    "okta",
    "slack",
]


def _github_profile(profile: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    # The address itself is chosen from /user/emails by the client (`_client.github_profile`).
    return str(profile.get("id", "")), {
        "name": profile.get("name") or profile.get("login") or "",
        "email": profile.get("email"),
        "image": profile.get("avatar_url"),
        "emailVerified": bool(profile.get("email_verified", False)),
    }


def oidc_profile(claims: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The standard claims: `sub`, name, email, email_verified ("true" counts), picture."""
    verified = claims.get("email_verified")
    return str(claims.get("sub", "")), {
        "name": claims.get("name") or claims.get("preferred_username") or "",
        "email": claims.get("email"),
        "image": claims.get("picture"),
        "emailVerified": verified is True or verified == "true",
    }


GITHUB = SocialProvider(
    id="github",
    name="GitHub",
    client_id="-",  # replaced by the options
    authorization_endpoint="https://github.com/login/oauth/authorize",
    token_endpoint="https://github.com/login/oauth/access_token",
    userinfo_endpoint="https://api.github.com/user",
    emails_endpoint="https://api.github.com/user/emails",
    default_scopes=("read:user", "user:email"),
    profile_source="github",
    map_profile=_github_profile,
)

GOOGLE = SocialProvider(
    id="google",
    name="Google",
    client_id="-",
    authorization_endpoint="https://accounts.google.com/o/oauth2/v2/auth",
    token_endpoint="https://oauth2.googleapis.com/token",
    userinfo_endpoint="https://openidconnect.googleapis.com/v1/userinfo",
    jwks_uri="https://www.googleapis.com/oauth2/v3/certs",
    issuer=("https://accounts.google.com", "accounts.google.com"),
    default_scopes=("email", "profile", "openid"),
    authorization_params={"include_granted_scopes": "true"},
    profile_source="id_token",
    map_profile=oidc_profile,
    id_token_algorithms=("RS256",),
    id_token_max_age=3600,
)

# The social providers `social_providers={...}` knows by id.
PRESETS: dict[str, SocialProvider] = {"github": GITHUB, "google": GOOGLE}

_OIDC_SCOPES = ("openid", "profile", "email")


def _discovered(provider_id: str, issuer: str, **options: Any) -> dict[str, Any]:
    return {
        "provider_id": provider_id,
        "discovery_url": issuer.rstrip("/") + "/.well-known/openid-configuration",
        "scopes": list(_OIDC_SCOPES),
        **options,
    }


def okta(*, issuer: str, client_id: str, client_secret: str, **options: Any) -> dict[str, Any]:
    """Okta: `issuer` is the authorization server, e.g. https://dev-1.okta.com/oauth2/default."""
    return _discovered("okta", issuer, client_id=client_id, client_secret=client_secret, **options)


def keycloak(*, issuer: str, client_id: str, client_secret: str, **options: Any) -> dict[str, Any]:
    """Keycloak: `issuer` is the realm, e.g. https://kc.example.com/realms/main."""
    return _discovered(
        "keycloak", issuer, client_id=client_id, client_secret=client_secret, **options
    )


def auth0(*, domain: str, client_id: str, client_secret: str, **options: Any) -> dict[str, Any]:
    """Auth0: `domain` is the tenant's, e.g. example.eu.auth0.com."""
    host = re.sub(r"^https?://", "", domain).rstrip("/")
    return _discovered(
        "auth0", f"https://{host}", client_id=client_id, client_secret=client_secret, **options
    )


def gitlab(
    *, client_id: str, client_secret: str, issuer: str = "https://gitlab.com", **options: Any
) -> dict[str, Any]:
    """GitLab (gitlab.com, or a self-hosted instance's URL as `issuer`): OpenID Connect."""
    return _discovered(
        "gitlab",
        issuer,
        client_id=client_id,
        client_secret=client_secret,
        **{"scopes": ["openid", "profile", "email", "read_user"], **options},
    )


def slack(*, client_id: str, client_secret: str, **options: Any) -> dict[str, Any]:
    """Slack's "Sign in with Slack" (OpenID Connect)."""
    return _discovered(
        "slack", "https://slack.com", client_id=client_id, client_secret=client_secret, **options
    )


def microsoft_entra_id(
    *, tenant_id: str, client_id: str, client_secret: str, **options: Any
) -> dict[str, Any]:
    """Microsoft Entra ID for one tenant (a GUID), as better-auth's helper requires. The
    account is the user's object id (`oid`), stable across the tenant's applications."""
    tenant = tenant_id.lower()
    if not re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", tenant):
        raise ValueError("microsoft_entra_id needs the tenant's GUID as tenant_id")
    return _discovered(
        "microsoft-entra-id",
        f"https://login.microsoftonline.com/{tenant}/v2.0",
        client_id=client_id,
        client_secret=client_secret,
        **{"map_profile": _entra_profile, **options},
    )


def _entra_profile(claims: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    _, user = oidc_profile(claims)
    if not user["name"]:
        given = claims.get("given_name") or ""
        family = claims.get("family_name") or ""
        user["name"] = f"{given} {family}".strip()
    oid = claims.get("oid")
    return (oid if isinstance(oid, str) and oid.strip() else ""), user
