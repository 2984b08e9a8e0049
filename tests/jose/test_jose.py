"""bastion.jose through its public names: signing, verifying with a key in hand or through
the JWKS cache, and the layering that lets both `auth` and `identity` use it."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from bastion.jose import (
    AlgorithmNotAllowed,
    ConfigurationError,
    ExpiredToken,
    ImmatureToken,
    InvalidSignature,
    JWKSCache,
    JWTPolicy,
    JWTVerifier,
    PublicKey,
    RemoteKeys,
    SecretKey,
    parse_jwk,
    sign,
    verify_with_key,
)
from tests.auth.issuers import AUDIENCE, TestIssuer

SECRET = SecretKey("s" * 64, ("HS256", "HS512"))
NOW = 1_800_000_000.0


def header_of(token: str) -> dict[str, Any]:
    segment = token.split(".")[0]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    )
    return decoded


def claims(**extra: Any) -> dict[str, Any]:
    return {"sub": "u1", "iat": int(NOW), "exp": int(NOW) + 60, **extra}


def test_hs256_round_trip_with_the_smallest_header() -> None:
    token = sign(claims(), SECRET, algorithm="HS256")
    assert header_of(token) == {"alg": "HS256"}
    policy = JWTPolicy(algorithms=("HS256",))
    assert verify_with_key(token, SECRET, policy, now=NOW) == claims()


def test_kid_and_typ_go_into_the_header() -> None:
    token = sign(claims(), SECRET, algorithm="HS512", kid="k1", typ="at+jwt")
    assert header_of(token) == {"alg": "HS512", "kid": "k1", "typ": "at+jwt"}


def _private(alg: str) -> Any:
    if alg == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    return ed25519.Ed25519PrivateKey.generate()


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA", "Ed25519"])
def test_asymmetric_round_trip_through_a_jwk(alg: str) -> None:
    private = _private(alg)
    family = {"RS": RSAAlgorithm, "ES": ECAlgorithm}.get(alg[:2], OKPAlgorithm)
    jwk = {**family.to_jwk(private.public_key(), as_dict=True), "kid": "k1", "alg": alg}
    token = sign(claims(), private, algorithm=alg, kid="k1")
    public = parse_jwk(jwk)
    assert public.kid == "k1"
    assert verify_with_key(token, public, JWTPolicy(algorithms=(alg,)), now=NOW)["sub"] == "u1"
    # A key of the same type that did not sign it.
    other = parse_jwk({**family.to_jwk(_private(alg).public_key(), as_dict=True), "alg": alg})
    with pytest.raises(InvalidSignature):
        verify_with_key(token, other, JWTPolicy(algorithms=(alg,)), now=NOW)


@pytest.mark.parametrize(
    ("key", "alg"),
    [
        pytest.param(SECRET, "none", id="none"),
        pytest.param(SECRET, "HS384", id="hs384-not-the-secrets"),
        pytest.param(SECRET, "RS256", id="rs256-with-a-secret"),
        pytest.param(ed25519.Ed25519PrivateKey.generate(), "HS256", id="hs256-with-a-key"),
        pytest.param(ed25519.Ed25519PrivateKey.generate(), "none", id="none-with-a-key"),
        pytest.param(ec.generate_private_key(ec.SECP256R1()), "RS256", id="rs256-with-ec"),
        pytest.param(ec.generate_private_key(ec.SECP256R1()), "ES384", id="es384-with-p256"),
    ],
)
def test_sign_refuses_an_algorithm_the_key_cannot_make(key: Any, alg: str) -> None:
    with pytest.raises(ConfigurationError):
        sign(claims(), key, algorithm=alg)


def test_a_secret_is_never_checked_against_a_public_key_policy() -> None:
    token = sign(claims(), SECRET, algorithm="HS256")
    public = parse_jwk(
        OKPAlgorithm.to_jwk(ed25519.Ed25519PrivateKey.generate().public_key(), as_dict=True)
    )
    with pytest.raises(AlgorithmNotAllowed):
        verify_with_key(token, public, JWTPolicy(algorithms=("EdDSA",)), now=NOW)
    with pytest.raises(ConfigurationError):  # an HMAC algorithm with a public key
        verify_with_key(token, public, JWTPolicy(algorithms=("HS256",)), now=NOW)


def test_claims_are_checked_against_the_given_time() -> None:
    policy = JWTPolicy(algorithms=("HS256",), leeway=0)
    token = sign(claims(), SECRET, algorithm="HS256")
    assert verify_with_key(token, SECRET, policy, now=NOW + 59)
    with pytest.raises(ExpiredToken):
        verify_with_key(token, SECRET, policy, now=NOW + 60)


def test_a_future_iat_is_refused_unless_the_policy_says_not_to_compare_it() -> None:
    token = sign(claims(iat=int(NOW) + 30), SECRET, algorithm="HS256")
    with pytest.raises(ImmatureToken):
        verify_with_key(token, SECRET, JWTPolicy(algorithms=("HS256",), leeway=0), now=NOW)
    lenient = JWTPolicy(algorithms=("HS256",), leeway=0, check_issued_at=False)
    assert verify_with_key(token, SECRET, lenient, now=NOW)["iat"] == int(NOW) + 30


def test_secret_length_floor_can_be_waived_but_a_public_key_is_never_a_secret() -> None:
    with pytest.raises(ConfigurationError, match="at least 32 bytes"):
        SecretKey("short")
    short = SecretKey("short", min_length=False)
    token = sign(claims(), short, algorithm="HS256")
    assert verify_with_key(token, short, JWTPolicy(algorithms=("HS256",)), now=NOW)
    pem = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----\n"
    with pytest.raises(ConfigurationError):
        SecretKey(pem, min_length=False)


async def test_the_jwks_cache_serves_a_verifier_without_any_provider(issuer: TestIssuer) -> None:
    key = issuer.add_key("ES256")
    policy = JWTPolicy(algorithms=("ES256",), issuer=issuer.issuer, audience=(AUDIENCE,), leeway=5)
    verifier = JWTVerifier(policy, RemoteKeys(JWKSCache(), issuer.jwks_uri))
    verified = await verifier.verify(issuer.token(key))
    assert verified["iss"] == issuer.issuer
    assert isinstance(await verifier.keys.key_for(key.kid, "ES256"), PublicKey)
    assert issuer.fetches == 1


def _modules_after_import(names: str) -> set[str]:
    code = f"import sys, {names}; print('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_identity_never_imports_auth() -> None:
    loaded = _modules_after_import("bastion.identity, bastion.identity.crypto")
    assert "bastion.jose" in loaded
    assert not {m for m in loaded if m.startswith("bastion.auth")}


def test_jose_stands_alone() -> None:
    """Nothing of auth, identity or the server: only itself and bastion's private helpers
    (`bastion._url_masking`), which import no package of bastion."""
    loaded = _modules_after_import("bastion.jose")
    packages = {m.split(".")[1] for m in loaded if m.startswith("bastion.")}
    assert packages <= {"jose", "_url_masking"}


def test_auth_keeps_exporting_what_moved() -> None:
    import bastion.auth
    import bastion.jose

    for name in ("ConfigurationError", "JWKSCache", "JWTError", "KeysUnavailable"):
        assert getattr(bastion.auth, name) is getattr(bastion.jose, name)
    assert bastion.auth.default_jwks_cache() is bastion.jose.default_jwks_cache()
