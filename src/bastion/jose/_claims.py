"""What a verifier accepts apart from the key (`JWTPolicy`), and the claim checks, run only
after the signature: exp required, nbf/iat with a bounded leeway, exact iss, aud a string or
a list (S25-S27, S29)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._errors import (
    ConfigurationError,
    ExpiredToken,
    ImmatureToken,
    InvalidAudience,
    InvalidClaim,
    InvalidIssuer,
    MissingClaim,
)

__all__ = ["JWTPolicy", "check_claims", "normalize_token_type"]


def normalize_token_type(value: str) -> str:
    """`typ` compares case-insensitively, with an optional "application/" (RFC 7515 §4.1.9)."""
    lowered = value.strip().lower()
    return lowered.removeprefix("application/")


@dataclass(frozen=True, kw_only=True, slots=True)
class JWTPolicy:
    """What a verifier accepts, apart from the key."""

    algorithms: tuple[str, ...]
    issuer: str | None = None
    audience: tuple[str, ...] | None = None
    leeway: float = 30.0
    # Accepted `typ` values (None: not checked). Compared after normalize_token_type.
    token_types: frozenset[str] | None = None
    required_claims: frozenset[str] = frozenset({"exp"})
    # Claims whose presence rejects the token (Auth0: `nonce` marks an ID token).
    forbidden_claims: frozenset[str] = frozenset()
    # Refuse an `iat` later than now + leeway. jose (better-auth) does not, so tokens it
    # accepts are checked with this off.
    check_issued_at: bool = True

    def __post_init__(self) -> None:
        if not 0 <= self.leeway <= 60:
            raise ConfigurationError(f"leeway must be between 0 and 60 seconds, not {self.leeway}")
        if self.issuer is not None and not self.issuer:
            raise ConfigurationError("issuer must not be empty")
        if self.audience is not None and (
            not self.audience or not all(isinstance(a, str) and a for a in self.audience)
        ):
            raise ConfigurationError("audience must be a non-empty string or list of strings")


def _number(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidClaim(name, "must be a number of seconds")
    return float(value)


def check_claims(policy: JWTPolicy, claims: Mapping[str, Any], now: float) -> None:
    """Raises the InvalidClaim subclass for the first claim `policy` does not accept."""
    for name in policy.required_claims:
        if claims.get(name) is None:
            raise MissingClaim(name)
    for name in policy.forbidden_claims:
        if name in claims:
            raise InvalidClaim(name, "must not be present in an access token")
    leeway = policy.leeway
    exp = _number(claims, "exp")
    if exp is None:
        raise MissingClaim("exp")  # S25: always required
    if now >= exp + leeway:
        raise ExpiredToken("exp", "the token has expired")
    nbf = _number(claims, "nbf")
    if nbf is not None and nbf > now + leeway:
        raise ImmatureToken("nbf", "the token is not valid yet")
    iat = _number(claims, "iat")
    if iat is not None and policy.check_issued_at and iat > now + leeway:
        raise ImmatureToken("iat", "the token was issued in the future")
    if policy.issuer is not None:
        iss = claims.get("iss")
        if iss is None:
            raise MissingClaim("iss")
        # Exact string equality: no prefix, `in` or trailing-slash leniency (S26).
        if not isinstance(iss, str) or iss != policy.issuer:
            raise InvalidIssuer("iss", "not the configured issuer")
    if policy.audience is not None:
        _check_audience(claims.get("aud"), policy.audience)
    sub = claims.get("sub")
    if sub is not None and (not isinstance(sub, str) or not sub):
        raise InvalidClaim("sub", "must be a non-empty string")


def _check_audience(aud: Any, accepted: Sequence[str]) -> None:
    if aud is None:
        raise MissingClaim("aud")
    if isinstance(aud, str):
        values = [aud]
    elif isinstance(aud, list) and aud and all(isinstance(v, str) for v in aud):
        values = aud
    else:
        raise InvalidAudience("aud", "must be a string or a list of strings")
    if not any(value in accepted for value in values):
        raise InvalidAudience("aud", "not for this resource")
