"""JOSE for every part of Bastion: signing and verifying JWTs, keys and JWK sets, claim
checks, and one cache of remote key sets. Neutral ground: `bastion.auth` (JWTAuth, Auth0Auth)
and `bastion.identity` (its own tokens, and ID tokens of social sign-in) both build on it, and
it imports neither. PyJWT and cryptography do the cryptography.

    verifier = JWTVerifier(JWTPolicy(algorithms=("RS256",), issuer=..., audience=(...,)),
                           RemoteKeys(default_jwks_cache(), "https://idp/.well-known/jwks.json"))
    claims = await verifier.verify(token)

    key = SecretKey(secret)
    token = sign({"sub": "u1", "exp": ...}, key, algorithm="HS256")
    claims = verify_with_key(token, key, JWTPolicy(algorithms=("HS256",)), now=time.time())

The errors are drawn in `bastion.jose._errors`: ConfigurationError at construction, JWTError
and its subclasses for a token that is not accepted.
"""

from ._algorithms import (
    ASYMMETRIC_ALGORITHMS,
    DEFAULT_ASYMMETRIC_ALGORITHMS,
    HMAC_ALGORITHMS,
    MIN_RSA_BITS,
    check_algorithms,
)
from ._claims import JWTPolicy, check_claims, normalize_token_type
from ._errors import (
    AlgorithmNotAllowed,
    ConfigurationError,
    ExpiredToken,
    ImmatureToken,
    InvalidAudience,
    InvalidClaim,
    InvalidIssuer,
    InvalidSignature,
    InvalidTokenType,
    JWKSNotAllowed,
    JWKSUnavailable,
    JWTError,
    KeyNotFound,
    KeysUnavailable,
    MalformedToken,
    MissingClaim,
)
from ._jwk import parse_jwk, parse_jwk_set
from ._jwks import JWKSCache, default_jwks_cache
from ._keys import KeySet, KeySource, PublicKey, SecretKey
from ._sign import PrivateKey, sign
from ._sources import DiscoveredKeys, RemoteKeys
from ._urls import check_url, discovery_url
from ._verifier import JWTVerifier, verify_with_key

__all__ = [
    "ASYMMETRIC_ALGORITHMS",
    "DEFAULT_ASYMMETRIC_ALGORITHMS",
    "HMAC_ALGORITHMS",
    "MIN_RSA_BITS",
    "AlgorithmNotAllowed",
    "ConfigurationError",
    "DiscoveredKeys",
    "ExpiredToken",
    "ImmatureToken",
    "InvalidAudience",
    "InvalidClaim",
    "InvalidIssuer",
    "InvalidSignature",
    "InvalidTokenType",
    "JWKSCache",
    "JWKSNotAllowed",
    "JWKSUnavailable",
    "JWTError",
    "JWTPolicy",
    "JWTVerifier",
    "KeyNotFound",
    "KeySet",
    "KeySource",
    "KeysUnavailable",
    "MalformedToken",
    "MissingClaim",
    "PrivateKey",
    "PublicKey",
    "RemoteKeys",
    "SecretKey",
    "check_algorithms",
    "check_claims",
    "check_url",
    "default_jwks_cache",
    "discovery_url",
    "normalize_token_type",
    "parse_jwk",
    "parse_jwk_set",
    "sign",
    "verify_with_key",
]
