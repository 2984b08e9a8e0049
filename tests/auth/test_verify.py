"""JWTVerifier's memo of verified tokens, through Auth0Auth, JWTAuth and JWTVerifier itself:
a remembered token is trusted again only while its key is the one that verified it and its
claims still hold at the current time (S25, S31, S33); and the strict base64url that keeps one
token to one encoding (so one memo entry per token)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from jwt.algorithms import get_default_algorithms

from bastion.auth.providers.auth0 import Auth0Auth
from bastion.auth.providers.jwt import JWTAuth
from bastion.jose import ImmatureToken, JWKSCache, JWTPolicy, JWTVerifier, PublicKey
from tests.auth.issuers import (
    AUDIENCE,
    FakeClock,
    SigningKey,
    TestIssuer,
    b64,
    hmac_token,
    new_key,
    request,
    sign,
)

SECRET = "m" * 32 + "-a-shared-secret-for-the-memo-tests"
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def auth0(issuer: TestIssuer, **options: Any) -> Auth0Auth:
    options.setdefault("jwks_cache", JWKSCache())
    return Auth0Auth(issuer=issuer.issuer, jwks_uri=issuer.jwks_uri, audience=AUDIENCE, **options)


async def authenticate(provider: Auth0Auth | JWTAuth, token: str) -> Any:
    return await provider.authenticate_token(token, request(token))


def wall_clock() -> FakeClock:
    """The verifier's clock (wall time), moved by hand."""
    return FakeClock(start=time.time())


# -- the key that verified a remembered token must still be the issuer's (S31, S33) -------


async def test_s33_remembered_token_rejected_once_its_key_is_rotated_out(issuer: TestIssuer):
    cache_clock = FakeClock()
    provider = auth0(issuer, jwks_cache=JWKSCache(clock=cache_clock))
    old = issuer.keys[0]
    token = issuer.token()
    assert await authenticate(provider, token)
    assert await authenticate(provider, token)  # remembered

    new = issuer.rotate()
    issuer.keys.remove(old)
    cache_clock.advance(601)  # past the JWKS TTL: the next lookup refetches the set
    assert await authenticate(provider, token) is None
    assert await authenticate(provider, token) is None
    assert await authenticate(provider, issuer.token(new))
    assert issuer.fetches == 2


async def test_s33_remembered_token_rejected_when_its_kid_names_another_key(issuer: TestIssuer):
    """The issuer republishes the kid with other key material: comparing kids is not enough."""
    cache_clock = FakeClock()
    provider = auth0(issuer, jwks_cache=JWKSCache(clock=cache_clock))
    old = issuer.keys[0]
    token = issuer.token()
    assert await authenticate(provider, token)

    issuer.keys[0] = new_key("RS256", kid=old.kid)
    assert issuer.keys[0].public.public_numbers() != old.public.public_numbers()
    cache_clock.advance(601)
    assert await authenticate(provider, token) is None
    assert await authenticate(provider, issuer.token())


async def test_s31_remembered_token_still_accepted_after_a_refetch_of_the_same_keys(
    issuer: TestIssuer,
):
    cache_clock = FakeClock()
    provider = auth0(issuer, jwks_cache=JWKSCache(clock=cache_clock))
    token = issuer.token()
    assert await authenticate(provider, token)
    cache_clock.advance(601)  # new key objects, the same keys: verified again, accepted
    assert await authenticate(provider, token)
    assert await authenticate(provider, token)
    assert issuer.fetches == 2


# -- claims are checked against the clock on every hit (S25) --------------------------------


async def test_s25_remembered_token_rejected_once_expired(issuer: TestIssuer):
    clock = wall_clock()
    provider = auth0(issuer, clock=clock)
    token = issuer.token(exp=int(clock.now) + 300)
    assert await authenticate(provider, token)
    clock.advance(300 + 29)  # within the 30 s leeway
    assert await authenticate(provider, token)
    clock.advance(2)
    assert await authenticate(provider, token) is None
    assert await authenticate(provider, token) is None


async def test_s25_remembered_hmac_token_rejected_once_expired():
    clock = wall_clock()
    provider = JWTAuth(secret=SECRET, leeway=0, clock=clock)
    token = hmac_token(
        {"alg": "HS256", "typ": "JWT"}, {"sub": "u", "exp": clock.now + 2}, SECRET.encode()
    )
    assert (await authenticate(provider, token))["sub"] == "u"
    assert (await authenticate(provider, token))["sub"] == "u"
    clock.advance(2)
    assert await authenticate(provider, token) is None


# -- only the very token that was verified hits ------------------------------------------------


def _flip(text: str, index: int) -> str:
    """`text` with the character at `index` changed to the next one of the alphabet."""
    swapped = _ALPHABET[(_ALPHABET.index(text[index]) + 1) % 64]
    return text[:index] + swapped + text[index + 1 :]


async def test_s33_a_forged_signature_over_a_remembered_payload_is_rejected(issuer: TestIssuer):
    provider = auth0(issuer)
    token = issuer.token()
    assert await authenticate(provider, token)
    head, body, signature = token.split(".")
    assert await authenticate(provider, f"{head}.{body}.{_flip(signature, 10)}") is None
    assert await authenticate(provider, f"{head}.{body}.{b64(b'x' * 256)}") is None
    assert await authenticate(provider, token)


async def test_a_forged_hmac_signature_over_a_remembered_payload_is_rejected():
    provider = JWTAuth(secret=SECRET)
    claims = {"sub": "u", "exp": time.time() + 60}
    token = hmac_token({"alg": "HS256", "typ": "JWT"}, claims, SECRET.encode())
    assert await authenticate(provider, token)
    forged = hmac_token(
        {"alg": "HS256", "typ": "JWT"}, claims, b"another-secret-of-32-bytes-or-more"
    )
    assert await authenticate(provider, forged) is None
    head, body, signature = token.split(".")
    assert await authenticate(provider, f"{head}.{body}.{_flip(signature, 3)}") is None


async def test_s23_other_encodings_of_a_remembered_token_are_rejected(issuer: TestIssuer):
    """An RS256 signature is 256 bytes: 342 base64url characters, the last of which carries
    two bits of data and four unused ones. Setting an unused bit leaves the decoded bytes,
    and so the signature, unchanged: only the canonical-encoding check refuses it."""
    provider = auth0(issuer)
    token = issuer.token()
    head, body, signature = token.split(".")
    assert len(signature) % 4 == 2
    assert await authenticate(provider, token)
    last = _ALPHABET.index(signature[-1])
    for unused in (0b0001, 0b0010, 0b0100, 0b1000):
        variant = signature[:-1] + _ALPHABET[last ^ unused]
        assert await authenticate(provider, f"{head}.{body}.{variant}") is None
    for variant in (signature + "==", signature + "A", signature[:-1] + "+", signature + "\n"):
        assert await authenticate(provider, f"{head}.{body}.{variant}") is None
    assert await authenticate(provider, token)


async def test_s23_non_canonical_payload_and_header_are_rejected(issuer: TestIssuer):
    """The same check on the signed segments, whose lengths vary with their content."""
    provider = auth0(issuer)
    key = issuer.keys[0]
    seen = set()
    for padding in range(3):
        claims = issuer.claims(pad="x" * padding)
        token = sign(claims, key, headers={"pad": "y" * padding})
        assert await authenticate(provider, token)
        head, body, _ = token.split(".")
        for segment, index in ((head, 0), (body, 1)):
            if len(segment) % 4 == 0:
                continue
            seen.add(len(segment) % 4)
            parts = token.split(".")
            last = _ALPHABET.index(segment[-1])
            parts[index] = segment[:-1] + _ALPHABET[last | 1]  # the lowest bit is never used
            # Signed as it is, so only the encoding is wrong.
            assert await authenticate(provider, _signed(".".join(parts[:2]), key)) is None
    assert seen == {2, 3}


def _signed(signing_input: str, key: SigningKey) -> str:
    signature = get_default_algorithms()[key.alg].sign(signing_input.encode(), key.private)
    return f"{signing_input}.{b64(signature)}"


# -- the claims are the caller's own ------------------------------------------------------------


async def test_mutating_returned_claims_does_not_reach_the_next_caller(issuer: TestIssuer):
    provider = auth0(issuer)
    token = issuer.token(permissions=["read:things"], **{"https://example.test/org": {"id": "o1"}})
    first = await authenticate(provider, token)
    first["sub"] = "admin"
    first["permissions"].append("delete:everything")
    first["https://example.test/org"]["id"] = "o2"
    del first["exp"]
    second = await authenticate(provider, token)
    assert second["sub"] == "user-1"
    assert second["permissions"] == ["read:things"]
    assert second["https://example.test/org"] == {"id": "o1"}
    assert "exp" in second
    second["permissions"].clear()
    assert (await authenticate(provider, token))["permissions"] == ["read:things"]


# -- the memo is bounded ---------------------------------------------------------------------------


class FreshKeys:
    """A key source that builds a new key object on every lookup, as one that parses a PEM
    each time would: it never gets a memo hit (the key object differs), so a remembered
    token costs it two lookups, the memo's check and the full verification, and a token not
    remembered one. That is how the tests see what the verifier remembers."""

    symmetric = False

    def __init__(self, key: SigningKey) -> None:
        self.key = key
        self.lookups = 0

    async def key_for(self, kid: str | None, alg: str) -> PublicKey:
        self.lookups += 1
        return PublicKey(key=self.key.public, kty="RSA", kid=self.key.kid, alg=self.key.alg)


async def lookups(keys: FreshKeys, verifier: JWTVerifier, token: str) -> int:
    before = keys.lookups
    assert (await verifier.verify(token))["sub"] == "user-1"
    return keys.lookups - before


def fresh_verifier() -> tuple[FreshKeys, JWTVerifier, SigningKey]:
    key = new_key("RS256")
    keys = FreshKeys(key)
    return keys, JWTVerifier(JWTPolicy(algorithms=("RS256",)), keys), key


def token_for(key: SigningKey, number: int) -> str:
    return sign({"sub": "user-1", "n": number, "exp": time.time() + 300}, key, typ="JWT")


async def test_the_memo_is_bounded_and_drops_the_least_recently_used_first():
    keys, verifier, key = fresh_verifier()
    verifier.memo_size = 3
    tokens = [token_for(key, n) for n in range(5)]
    for token in tokens:
        assert await lookups(keys, verifier, token) == 1
    # Remembered: 2, 3, 4 (0 and 1 made room).
    assert await lookups(keys, verifier, tokens[2]) == 2  # now the most recently used
    assert await lookups(keys, verifier, tokens[0]) == 1  # back in; 3 makes room
    assert await lookups(keys, verifier, tokens[3]) == 1
    assert await lookups(keys, verifier, tokens[2]) == 2


async def test_the_memo_can_be_turned_off_and_skips_long_tokens():
    keys, verifier, key = fresh_verifier()
    verifier.memo_size = 0
    token = token_for(key, 0)
    assert await lookups(keys, verifier, token) == 1
    assert await lookups(keys, verifier, token) == 1

    keys, verifier, key = fresh_verifier()
    long_token = sign(
        {"sub": "user-1", "blob": "x" * verifier.max_memo_token_bytes, "exp": time.time() + 60},
        key,
    )
    assert verifier.max_memo_token_bytes < len(long_token) <= verifier.max_token_bytes
    assert await lookups(keys, verifier, long_token) == 1
    assert await lookups(keys, verifier, long_token) == 1


async def test_failures_are_not_remembered():
    clock = wall_clock()
    key = new_key("RS256")
    keys = FreshKeys(key)
    verifier = JWTVerifier(JWTPolicy(algorithms=("RS256",), leeway=0), keys, clock=clock)
    early = sign({"sub": "user-1", "nbf": clock.now + 10, "exp": clock.now + 60}, key)
    for _ in range(2):
        with pytest.raises(ImmatureToken):
            await verifier.verify(early)
    assert keys.lookups == 2
    clock.advance(10)
    assert await lookups(keys, verifier, early) == 1  # it was never remembered
    assert await lookups(keys, verifier, early) == 2  # now it is
