"""The JWKS cache lives in `bastion.jose`; this module keeps its former names importable.

New code imports from `bastion.jose` (or `bastion.auth`, which exports `JWKSCache` and
`default_jwks_cache`).
"""

from ..jose import (
    DiscoveredKeys,
    JWKSCache,
    JWKSNotAllowed,
    JWKSUnavailable,
    RemoteKeys,
    check_url,
    default_jwks_cache,
    discovery_url,
    parse_jwk_set,
)

__all__ = [
    "DiscoveredKeys",
    "JWKSCache",
    "JWKSNotAllowed",
    "JWKSUnavailable",
    "RemoteKeys",
    "check_url",
    "default_jwks_cache",
    "discovery_url",
    "parse_jwk_set",
]
