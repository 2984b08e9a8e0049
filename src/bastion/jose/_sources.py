"""Key sources for JWTVerifier backed by the JWKS cache: one JWKS URL, or the `jwks_uri` of
an issuer's OIDC discovery document. Each registers its URL on the cache's allow-list at
construction, so nothing else is ever fetched for it."""

from __future__ import annotations

from ._jwks import JWKSCache
from ._keys import PublicKey
from ._urls import discovery_url

__all__ = ["DiscoveredKeys", "RemoteKeys"]


class RemoteKeys:
    """Keys from one JWKS URL."""

    symmetric = False

    def __init__(self, cache: JWKSCache, jwks_uri: str, *, allow_http: bool = False) -> None:
        self.cache = cache
        self.jwks_uri = cache.allow(jwks_uri, allow_http=allow_http, what="jwks_uri")

    async def key_for(self, kid: str | None, alg: str) -> PublicKey:
        return await self.cache.get_key(self.jwks_uri, kid, alg)


class DiscoveredKeys:
    """Keys from the `jwks_uri` of an issuer's OIDC discovery document, whose `issuer`
    must equal the configured one exactly (S32)."""

    symmetric = False

    def __init__(self, cache: JWKSCache, issuer: str, *, allow_http: bool = False) -> None:
        self.cache = cache
        self.issuer = issuer
        self.discovery_url = cache.allow(
            discovery_url(issuer), allow_http=allow_http, what="issuer discovery URL"
        )

    async def key_for(self, kid: str | None, alg: str) -> PublicKey:
        metadata = await self.cache.get_metadata(self.discovery_url, self.issuer)
        return await self.cache.get_key(metadata["jwks_uri"], kid, alg)
