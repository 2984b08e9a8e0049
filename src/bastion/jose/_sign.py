"""Signing a JWT as a compact JWS with PyJWT: the claims as compact JSON, the header
`{"alg", "kid"?, "typ"?}` with sorted keys. Only the algorithms a verifier here accepts can
sign (never `none`), and only with a key of the algorithm's family."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey
from cryptography.hazmat.primitives.asymmetric.ed448 import Ed448PrivateKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from jwt import PyJWS
from jwt.exceptions import InvalidKeyError

from ._algorithms import ASYMMETRIC_ALGORITHMS, HMAC_ALGORITHMS, algorithm_objects
from ._errors import ConfigurationError
from ._keys import SecretKey

__all__ = ["PrivateKey", "sign"]

PrivateKey = RSAPrivateKey | EllipticCurvePrivateKey | Ed25519PrivateKey | Ed448PrivateKey


def _signer() -> PyJWS:
    jws = PyJWS(algorithms=[])  # starts empty: `none` is never registered
    for name, algorithm in algorithm_objects([*HMAC_ALGORITHMS, *ASYMMETRIC_ALGORITHMS]).items():
        jws.register_algorithm(name, algorithm)
    return jws


_SIGNER: Final = _signer()


def sign(
    claims: Mapping[str, Any],
    key: SecretKey | PrivateKey,
    *,
    algorithm: str,
    kid: str | None = None,
    typ: str | None = None,
) -> str:
    """The compact JWS of `claims` signed with `key`. The header holds `alg`, and `kid` and
    `typ` when given. ConfigurationError when the algorithm is unknown or not the key's."""
    if isinstance(key, SecretKey):
        if algorithm not in key.algorithms:
            raise ConfigurationError(
                f"sign: {algorithm!r} is not one of this secret's algorithms {key.algorithms}"
            )
        material: Any = key.secret
    elif algorithm in ASYMMETRIC_ALGORITHMS:
        material = key
    else:
        raise ConfigurationError(f"sign: algorithm {algorithm!r} is not an asymmetric algorithm")
    header: dict[str, Any] = {"typ": typ}  # PyJWT drops a typ that is None
    if kid is not None:
        header["kid"] = kid
    payload = json.dumps(dict(claims), separators=(",", ":")).encode("utf-8")
    try:
        return _SIGNER.encode(payload, material, algorithm=algorithm, headers=header)
    except (InvalidKeyError, TypeError, ValueError) as error:  # PyJWT's "not this key"
        raise ConfigurationError(f"sign: the key does not fit {algorithm}: {error}") from None
