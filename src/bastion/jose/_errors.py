"""The errors of the JOSE core, as types callers catch at any depth.

ConfigurationError            a verifier, policy, key or cache was configured wrongly
JWTError                      the token was not accepted
├── MalformedToken            not a compact JWS, bad base64/JSON, too large, crit, b64
├── AlgorithmNotAllowed       alg not allowed (none, HS with a JWKS, ...) or not the key's
├── InvalidTokenType          typ is not one this verifier accepts
├── KeyNotFound               no key for this kid (after at most one refresh), or ambiguous
├── InvalidSignature
├── InvalidClaim              .claim names it
│   ├── MissingClaim
│   ├── ExpiredToken          exp
│   ├── ImmatureToken         nbf, or iat in the future
│   ├── InvalidIssuer         iss
│   └── InvalidAudience       aud
└── KeysUnavailable           the issuer's keys could not be had (a fault, not the token's)
    ├── JWKSUnavailable       the fetch failed (or cools down) and nothing usable is cached
    └── JWKSNotAllowed        the URL is not on the cache's allow-list
"""

from __future__ import annotations

__all__ = [
    "AlgorithmNotAllowed",
    "ConfigurationError",
    "ExpiredToken",
    "ImmatureToken",
    "InvalidAudience",
    "InvalidClaim",
    "InvalidIssuer",
    "InvalidSignature",
    "InvalidTokenType",
    "JWKSNotAllowed",
    "JWKSUnavailable",
    "JWTError",
    "KeyNotFound",
    "KeysUnavailable",
    "MalformedToken",
    "MissingClaim",
]


class ConfigurationError(ValueError):
    """A verifier, verification policy, key or key cache was configured wrongly. Raised at
    construction, naming the option to fix."""


class JWTError(Exception):
    """The token was not accepted."""


class MalformedToken(JWTError):
    pass


class AlgorithmNotAllowed(JWTError):
    pass


class InvalidTokenType(JWTError):
    pass


class KeyNotFound(JWTError):
    pass


class InvalidSignature(JWTError):
    pass


class InvalidClaim(JWTError):
    def __init__(self, claim: str, message: str) -> None:
        super().__init__(f"{claim}: {message}")
        self.claim = claim


class MissingClaim(InvalidClaim):
    def __init__(self, claim: str) -> None:
        super().__init__(claim, "required claim is missing")


class ExpiredToken(InvalidClaim):
    pass


class ImmatureToken(InvalidClaim):
    pass


class InvalidIssuer(InvalidClaim):
    pass


class InvalidAudience(InvalidClaim):
    pass


class KeysUnavailable(JWTError):
    """The keys to check the token could not be had (the JWKS endpoint is down and nothing
    usable is cached, ...). Not the token's fault, but it still cannot be accepted: a server
    answers it 503, not 401. `retry_after`: seconds until the keys may be had again, when
    known (the JWKS cache's cooldown)."""

    def __init__(self, message: str = "", *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class JWKSUnavailable(KeysUnavailable):
    """No usable key set: the fetch failed (or is cooling down) and nothing fresh or
    stale-but-allowed is cached."""


class JWKSNotAllowed(KeysUnavailable):
    """The URL is not on the cache's allow-list; nothing was fetched."""
