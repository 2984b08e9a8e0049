"""Which signature algorithms exist here, which may be allowed together, and PyJWT's
implementation of each: the allow-list is checked once, at construction (S20, S21)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

from jwt.algorithms import Algorithm, OKPAlgorithm, get_default_algorithms

from ._errors import ConfigurationError

__all__ = [
    "ASYMMETRIC_ALGORITHMS",
    "DEFAULT_ASYMMETRIC_ALGORITHMS",
    "HMAC_ALGORITHMS",
    "MIN_RSA_BITS",
    "algorithm_objects",
    "check_algorithms",
]

HMAC_ALGORITHMS: Mapping[str, int] = {"HS256": 32, "HS384": 48, "HS512": 64}  # min key bytes

# alg -> (kty, crv or None when any curve of the family will do)
ASYMMETRIC_ALGORITHMS: Mapping[str, tuple[str, str | None]] = {
    "RS256": ("RSA", None),
    "RS384": ("RSA", None),
    "RS512": ("RSA", None),
    "PS256": ("RSA", None),
    "PS384": ("RSA", None),
    "PS512": ("RSA", None),
    "ES256": ("EC", "P-256"),
    "ES384": ("EC", "P-384"),
    "ES512": ("EC", "P-521"),
    "ES256K": ("EC", "secp256k1"),
    "EdDSA": ("OKP", None),  # Ed25519 or Ed448 (RFC 8037)
    "Ed25519": ("OKP", "Ed25519"),  # the fully-specified name (RFC 9864)
}
DEFAULT_ASYMMETRIC_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
    "Ed25519",
)
EDDSA_NAMES: Final = frozenset({"EdDSA", "Ed25519"})
MIN_RSA_BITS = 2048

# PyJWT builds a fresh table on every call; its algorithm objects hold no state.
_LIBRARY: Final[Mapping[str, Algorithm]] = {
    **get_default_algorithms(),
    "Ed25519": OKPAlgorithm(),  # PyJWT knows it only as EdDSA
}


def algorithm_objects(names: Iterable[str]) -> dict[str, Algorithm]:
    """PyJWT's implementation of each allowed algorithm, and nothing else (never `none`)."""
    return {
        name: _LIBRARY[name]
        for name in names
        if name in HMAC_ALGORITHMS or name in ASYMMETRIC_ALGORITHMS
    }


def check_algorithms(algorithms: Iterable[str], *, symmetric: bool, owner: str) -> tuple[str, ...]:
    """Validate an allow-list: known names, no `none`, one family only (S20, S21)."""
    names = tuple(dict.fromkeys(algorithms))
    if not names:
        raise ConfigurationError(f"{owner}: algorithms must name at least one algorithm")
    allowed = HMAC_ALGORITHMS if symmetric else ASYMMETRIC_ALGORITHMS
    for name in names:
        if not isinstance(name, str) or name.lower() == "none":
            raise ConfigurationError(f"{owner}: algorithm {name!r} is never allowed")
        if name not in allowed:
            kind = "HMAC (HS256/HS384/HS512)" if symmetric else "asymmetric (RS*, PS*, ES*, EdDSA)"
            raise ConfigurationError(
                f"{owner}: algorithm {name!r} is not allowed here; this key source takes "
                f"{kind} algorithms only"
            )
    return names
