"""JSON Web Keys (RFC 7517) to verification keys: only asymmetric keys meant for signatures
(RSA >= 2048 bits, EC P-256/P-384/P-521/secp256k1, Ed25519/Ed448); `oct` keys and
encryption keys are skipped."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey
from cryptography.hazmat.primitives.asymmetric.ed448 import Ed448PrivateKey, Ed448PublicKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm
from jwt.exceptions import InvalidKeyError

from ._algorithms import ASYMMETRIC_ALGORITHMS, MIN_RSA_BITS
from ._keys import KeySet, PublicKey

__all__ = ["parse_jwk", "parse_jwk_set"]

log = logging.getLogger("bastion.jose.jwks")  # one logger for everything about key sets

# cryptography's curve names -> the JWK "crv" spelling
_EC_CURVES = {
    "secp256r1": "P-256",
    "secp384r1": "P-384",
    "secp521r1": "P-521",
    "secp256k1": "secp256k1",
}


def parse_jwk(jwk: Mapping[str, Any]) -> PublicKey:
    """The public key of one JWK (a private JWK gives its public half). Raises
    InvalidKeyError (a ValueError) for a key type or size that is not used here."""
    kty = jwk.get("kty")
    data = dict(jwk)
    key: Any
    crv: str | None = None
    if kty == "RSA":
        key = RSAAlgorithm.from_jwk(data)
        if isinstance(key, RSAPrivateKey):
            key = key.public_key()
        if not isinstance(key, RSAPublicKey) or key.key_size < MIN_RSA_BITS:
            raise InvalidKeyError(f"RSA keys must have at least {MIN_RSA_BITS} bits")
    elif kty == "EC":
        key = ECAlgorithm.from_jwk(data)
        if isinstance(key, EllipticCurvePrivateKey):
            key = key.public_key()
        crv = _EC_CURVES.get(key.curve.name)
    elif kty == "OKP":
        key = OKPAlgorithm.from_jwk(data)
        if isinstance(key, Ed25519PrivateKey | Ed448PrivateKey):
            key = key.public_key()
        crv = "Ed25519" if isinstance(key, Ed25519PublicKey) else "Ed448"
        if not isinstance(key, Ed25519PublicKey | Ed448PublicKey):
            raise InvalidKeyError("OKP keys must be Ed25519 or Ed448")
    else:
        raise InvalidKeyError(f"key type {kty!r} is not an asymmetric signing key")
    kid = jwk.get("kid")
    alg = jwk.get("alg")
    return PublicKey(
        key=key,
        kty=kty,
        crv=crv,
        kid=kid if isinstance(kid, str) and kid else None,
        alg=alg if isinstance(alg, str) else None,
    )


def parse_jwk_set(document: Any, *, max_keys: int = 32) -> KeySet:
    """The usable signature keys of a JWKS document. Keys that are symmetric, meant for
    encryption, for an algorithm we do not verify, or malformed are skipped one by one;
    a document that is not a JWKS at all raises ValueError."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError('not a JWK set (no "keys" list)')
    keys: list[PublicKey] = []
    for jwk in document["keys"]:
        if len(keys) >= max_keys:
            log.warning("JWKS holds more than %d usable keys; the rest are ignored", max_keys)
            break
        if not isinstance(jwk, dict):
            continue
        use = jwk.get("use")
        ops = jwk.get("key_ops")
        alg = jwk.get("alg")
        if use is not None and use != "sig":
            continue
        if ops is not None and (not isinstance(ops, list) or "verify" not in ops):
            continue
        if alg is not None and alg not in ASYMMETRIC_ALGORITHMS:
            continue  # "HS256", "RSA-OAEP", ...: never used to verify here (S21)
        kid = jwk.get("kid")
        if kid is not None and (not isinstance(kid, str) or len(kid) > 256):
            continue
        try:
            keys.append(parse_jwk(jwk))
        except (InvalidKeyError, ValueError, TypeError, KeyError) as error:
            log.warning("JWKS key %r skipped: %s", jwk.get("kid"), error)
    return KeySet(tuple(keys))
