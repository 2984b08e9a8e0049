"""Social sign-in: providers as data, and the client that talks to them.

    Identity(social_providers={"github": {"client_id": ..., "client_secret": ...}})
    Identity(plugins=[generic_oauth(config=[okta(issuer=..., client_id=..., ...)])])

`SocialProvider` describes one provider (endpoints, scopes, how its profile is read);
`github`/`google` options are laid over the presets in `presets.py`. The endpoints that use
them are `bastion.identity.routes.social` and `.accounts`.
"""

from collections.abc import Mapping, Sequence
from typing import Any

from .client import Endpoints, ProviderClient, ProviderError, Tokens
from .presets import (
    GITHUB,
    GOOGLE,
    PRESETS,
    auth0,
    gitlab,
    keycloak,
    microsoft_entra_id,
    okta,
    slack,
)
from .provider import Profile, SocialProvider, from_options

__all__ = [
    "GITHUB",
    "GOOGLE",
    "PRESETS",
    "Endpoints",
    "Profile",
    "ProviderClient",
    "ProviderError",
    "SocialProvider",
    "Tokens",
    "auth0",
    "build_providers",
    "from_options",
    "gitlab",
    "keycloak",
    "microsoft_entra_id",
    "okta",
    "slack",
]


def build_providers(
    options: Mapping[str, Any], extra: Sequence[SocialProvider] = ()
) -> dict[str, SocialProvider]:
    """The providers of `social_providers={...}` (presets by id) and of plugins; an id given
    twice is refused."""
    providers: dict[str, SocialProvider] = {}
    if not isinstance(options, Mapping):
        raise TypeError("social_providers is a mapping of provider id to options")
    for provider_id, values in options.items():
        if values is None or values is False:
            continue
        provider = from_options(PRESETS.get(str(provider_id)), str(provider_id), values)
        providers[provider.id] = provider
    for provider in extra:
        if provider.id in providers:
            raise ValueError(f"social provider {provider.id!r} is configured twice")
        providers[provider.id] = provider
    return providers
