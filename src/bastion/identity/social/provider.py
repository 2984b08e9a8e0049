"""A social provider as data: its endpoints, scopes, how its profile is read and mapped.

GitHub, Google and the generic presets (`presets.py`) are values of this one type, never
subclasses; `social_providers={"github": {...}}` and `generic_oauth(config=[...])` build them
from better-auth's options in snake_case (`from_options`). Every endpoint can be overridden,
so GitHub Enterprise, a self-hosted GitLab or a local stand-in work with the same code.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Profile", "ProfileSource", "SocialProvider", "TokenAuth", "from_options"]

# How the profile is read once the code is exchanged:
#   "github"    GET userinfo (GitHub's /user), and its /user/emails for the address
#   "id_token"  the ID token of the token answer, verified (JWKS, issuer, audience, nonce);
#               the userinfo endpoint when the answer has none
#   "userinfo"  GET userinfo with the access token (plain OAuth 2.0)
ProfileSource = Literal["github", "id_token", "userinfo"]
TokenAuth = Literal["client_secret_post", "client_secret_basic"]


@dataclass(frozen=True, slots=True)
class Profile:
    """What a provider says of the user: the account's id at the provider and the user's
    fields (name, email, emailVerified, image, and any a mapping adds), plus the raw claims."""

    account_id: str
    user: dict[str, Any]
    raw: Mapping[str, Any]


@dataclass(frozen=True, kw_only=True)
class SocialProvider:
    id: str
    name: str = ""
    client_id: str = ""
    client_secret: str | None = None
    authorization_endpoint: str | None = None
    token_endpoint: str | None = None
    userinfo_endpoint: str | None = None
    emails_endpoint: str | None = None  # GitHub's /user/emails
    # OpenID Connect: the issuer(s) an ID token may name, and where its keys are. With only
    # `discovery_url`, the endpoints, issuer and keys come from the discovery document.
    issuer: str | Sequence[str] | None = None
    jwks_uri: str | None = None
    discovery_url: str | None = None
    default_scopes: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()  # the option `scope`: added to the defaults
    disable_default_scope: bool = False
    pkce: bool = True
    require_nonce: bool = False  # bind the ID token to the flow (OIDC `nonce`)
    token_auth: TokenAuth = "client_secret_post"
    authorization_params: Mapping[str, str] = field(default_factory=dict)
    redirect_uri: str | None = None
    profile_source: ProfileSource = "userinfo"
    # The provider's claims -> (account id, the user's fields); presets give theirs.
    map_profile: Callable[[Mapping[str, Any]], tuple[str, dict[str, Any]]] | None = None
    # The user's own mapping (better-auth's mapProfileToUser): claims -> extra user fields.
    map_profile_to_user: Callable[..., Any] | None = None
    # Claims an ID token must satisfy beyond the standard checks (Google's `hd`).
    verify_claims: Callable[[Mapping[str, Any]], bool] | None = None
    disable_sign_up: bool = False
    disable_implicit_sign_up: bool = False
    disable_id_token_sign_in: bool = False
    override_user_info_on_sign_in: bool = False
    id_token_algorithms: tuple[str, ...] = ("RS256", "ES256", "PS256", "EdDSA")
    id_token_max_age: int | None = None  # seconds since `iat` (Google: one hour)
    enabled: bool = True
    timeout: float = 10.0  # each request to the provider

    def __post_init__(self) -> None:
        if not self.id or "/" in self.id:
            raise ValueError(f"a provider id is a non-empty name without '/', not {self.id!r}")
        if not self.client_id:
            raise ValueError(f"provider {self.id!r}: client_id is required")
        if not self.discovery_url and not (self.authorization_endpoint and self.token_endpoint):
            raise ValueError(
                f"provider {self.id!r}: give discovery_url, or authorization_endpoint and "
                "token_endpoint (social_providers knows github and google by name; others "
                "come through generic_oauth)"
            )
        if self.timeout <= 0 or self.timeout > 10:
            raise ValueError(f"provider {self.id!r}: timeout in (0, 10] seconds")

    @property
    def issuers(self) -> tuple[str, ...]:
        if self.issuer is None:
            return ()
        return (self.issuer,) if isinstance(self.issuer, str) else tuple(self.issuer)

    def all_scopes(self, requested: Sequence[str] = ()) -> list[str]:
        """The defaults (unless disabled), the configured ones, then the request's."""
        scopes = [] if self.disable_default_scope else list(self.default_scopes)
        for scope in (*self.scopes, *requested):
            if scope not in scopes:
                scopes.append(scope)
        return scopes


_OPTION_NAMES = {f.name for f in dataclasses.fields(SocialProvider)}


def from_options(base: SocialProvider | None, provider_id: str, options: Any) -> SocialProvider:
    """A provider from better-auth's options in snake_case (`client_id`, `scope`, endpoint
    overrides, …) laid over a preset `base`. A SocialProvider is taken as it is."""
    if isinstance(options, SocialProvider):
        return options
    if not isinstance(options, Mapping):
        raise TypeError(f"social provider {provider_id!r}: options are a mapping")
    values = dict(options)
    scope = values.pop("scope", None)
    if scope is not None:
        values["scopes"] = (scope,) if isinstance(scope, str) else tuple(scope)
    prompt = values.pop("prompt", None)
    extra = dict(base.authorization_params) if base else {}
    extra.update(values.pop("authorization_params", {}))
    if prompt:
        extra["prompt"] = str(prompt)
    for name in ("access_type", "hd", "display"):
        if name in values and values[name] is not None:
            extra[name] = str(values.pop(name))
        else:
            values.pop(name, None)
    if "hd" in extra:
        hosted = extra["hd"]
        values.setdefault("verify_claims", lambda claims: _hosted_domain_allowed(hosted, claims))
    unknown = set(values) - _OPTION_NAMES
    if unknown:
        raise TypeError(f"social provider {provider_id!r} has no option {sorted(unknown)[0]!r}")
    values["authorization_params"] = extra
    if not values.get("client_id"):
        raise ValueError(f"social provider {provider_id!r}: client_id is required")
    if base is None:
        return SocialProvider(id=values.pop("id", provider_id), **values)
    values.setdefault("id", provider_id)
    return dataclasses.replace(base, **values)


def _hosted_domain_allowed(configured: str, claims: Mapping[str, Any]) -> bool:
    """Google's `hd`: the token's hosted domain is the configured one ("*": any)."""
    domain = claims.get("hd")
    if not isinstance(domain, str) or not domain:
        return False
    return configured == "*" or domain == configured
