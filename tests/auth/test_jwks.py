"""The JWKS cache against our own issuer on 127.0.0.1 (S22-S24, S31, S33), with a clock the
test moves by hand for TTLs and cooldowns."""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from typing import Any

import pytest

from bastion.jose import (
    AlgorithmNotAllowed,
    ConfigurationError,
    JWKSCache,
    JWKSNotAllowed,
    JWKSUnavailable,
    KeyNotFound,
    default_jwks_cache,
    parse_jwk_set,
)
from tests.auth.issuers import FakeClock, IssuerServer, TestIssuer, unused_url


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make_cache(clock: FakeClock, *urls: str, **options: float) -> JWKSCache:
    cache = JWKSCache(clock=clock, **options)  # type: ignore[arg-type]
    for url in urls:
        cache.allow(url)
    return cache


async def test_s31_fetched_once_then_served_from_cache(issuer: TestIssuer, clock: FakeClock):
    cache = make_cache(clock, issuer.jwks_uri)
    kid = issuer.keys[0].kid
    first = await cache.get_key(issuer.jwks_uri, kid, "RS256")
    for _ in range(20):
        assert await cache.get_key(issuer.jwks_uri, kid, "RS256") is first
    assert issuer.fetches == 1


async def test_s31_ttl_is_the_smaller_of_config_and_max_age(issuer: TestIssuer, clock: FakeClock):
    issuer.cache_control = "public, max-age=60"
    cache = make_cache(clock, issuer.jwks_uri, ttl=600)
    kid = issuer.keys[0].kid
    await cache.get_key(issuer.jwks_uri, kid, "RS256")
    clock.advance(59)
    await cache.get_key(issuer.jwks_uri, kid, "RS256")
    assert issuer.fetches == 1
    clock.advance(2)  # past max-age=60, well inside the configured 600
    await cache.get_key(issuer.jwks_uri, kid, "RS256")
    assert issuer.fetches == 2

    # The configured TTL wins when it is the smaller one.
    other = JWKSCache(clock=clock, ttl=30)
    other.allow(issuer.jwks_uri)
    issuer.cache_control = "max-age=3600"
    await other.get_key(issuer.jwks_uri, kid, "RS256")
    clock.advance(31)
    await other.get_key(issuer.jwks_uri, kid, "RS256")
    assert issuer.fetches == 4
    assert other.stats(issuer.jwks_uri)["ttl"] == 30


async def test_s31_no_store_falls_back_to_min_ttl(issuer: TestIssuer, clock: FakeClock):
    issuer.cache_control = "no-store"
    cache = make_cache(clock, issuer.jwks_uri, min_ttl=5)
    kid = issuer.keys[0].kid
    await cache.get_key(issuer.jwks_uri, kid, "RS256")
    clock.advance(4)
    await cache.get_key(issuer.jwks_uri, kid, "RS256")
    assert issuer.fetches == 1  # never a fetch per request
    clock.advance(2)
    await cache.get_key(issuer.jwks_uri, kid, "RS256")
    assert issuer.fetches == 2


async def test_s31_etag_conditional_get(issuer: TestIssuer, clock: FakeClock):
    issuer.etag = True
    issuer.cache_control = "max-age=10"
    cache = make_cache(clock, issuer.jwks_uri)
    kid = issuer.keys[0].kid
    key = await cache.get_key(issuer.jwks_uri, kid, "RS256")
    clock.advance(11)
    assert await cache.get_key(issuer.jwks_uri, kid, "RS256") is key
    assert (issuer.fetches, issuer.not_modified) == (2, 1)
    clock.advance(5)
    await cache.get_key(issuer.jwks_uri, kid, "RS256")
    assert issuer.fetches == 2  # the 304 renewed the TTL


async def test_s23_thousand_random_kids_cost_at_most_one_fetch_per_cooldown(
    issuer: TestIssuer, clock: FakeClock
):
    cache = make_cache(clock, issuer.jwks_uri, cooldown=30)
    await cache.get_key(issuer.jwks_uri, issuer.keys[0].kid, "RS256")
    assert issuer.fetches == 1

    async def attempt() -> None:
        with pytest.raises(KeyNotFound):
            await cache.get_key(issuer.jwks_uri, secrets.token_hex(8), "RS256")

    for _ in range(1000):  # inside the cooldown that the warm-up fetch started
        await attempt()
    assert issuer.fetches == 1
    clock.advance(31)
    await asyncio.gather(*(attempt() for _ in range(1000)))
    assert issuer.fetches == 2
    clock.advance(10)
    for _ in range(1000):
        await attempt()
    assert issuer.fetches == 2
    # Known keys were never evicted by the misses.
    assert await cache.get_key(issuer.jwks_uri, issuer.keys[0].kid, "RS256")


async def test_s33_key_rotation_new_kid_fetched_once_and_accepted(
    issuer: TestIssuer, clock: FakeClock
):
    """rp-key-rotation-op-sign-key: an unknown kid triggers one refetch that finds it."""
    cache = make_cache(clock, issuer.jwks_uri)
    await cache.get_key(issuer.jwks_uri, issuer.keys[0].kid, "RS256")
    new = issuer.rotate("ES256")
    clock.advance(31)
    found = await cache.get_key(issuer.jwks_uri, new.kid, "ES256")
    assert found.kid == new.kid and found.kty == "EC"
    assert issuer.fetches == 2
    for _ in range(10):
        await cache.get_key(issuer.jwks_uri, new.kid, "ES256")
    assert issuer.fetches == 2


async def _with_the_fetch_held(issuer: TestIssuer, calls: Any) -> list[Any]:
    """Run `calls` (awaitables) at once; the key set is served only after the first fetch
    reached the issuer, when every call has started."""
    issuer.gate = threading.Event()
    running = asyncio.gather(*calls)
    assert await asyncio.to_thread(issuer.arrived.wait, 10)
    issuer.gate.set()
    return list(await running)


async def test_s31_concurrent_cold_misses_are_single_flighted(issuer: TestIssuer):
    cache = JWKSCache()
    cache.allow(issuer.jwks_uri)
    kid = issuer.keys[0].kid
    calls = [cache.get_key(issuer.jwks_uri, kid, "RS256") for _ in range(50)]
    keys = await _with_the_fetch_held(issuer, calls)
    assert issuer.fetches == 1
    assert all(key is keys[0] for key in keys)


async def test_s31_concurrent_unknown_kids_share_one_refresh(issuer: TestIssuer, clock: FakeClock):
    cache = make_cache(clock, issuer.jwks_uri)
    await cache.get_key(issuer.jwks_uri, issuer.keys[0].kid, "RS256")
    new = issuer.rotate()
    issuer.arrived.clear()
    clock.advance(31)
    calls = [cache.get_key(issuer.jwks_uri, new.kid, "RS256") for _ in range(30)]
    found = await _with_the_fetch_held(issuer, calls)
    assert {key.kid for key in found} == {new.kid}
    assert issuer.fetches == 2


async def test_s31_a_cancelled_waiter_does_not_cancel_the_fetch(issuer: TestIssuer):
    issuer.gate = threading.Event()
    cache = JWKSCache()
    cache.allow(issuer.jwks_uri)
    kid = issuer.keys[0].kid
    first = asyncio.create_task(cache.get_key(issuer.jwks_uri, kid, "RS256"))
    assert await asyncio.to_thread(issuer.arrived.wait, 10)  # its fetch is in flight
    second = asyncio.create_task(cache.get_key(issuer.jwks_uri, kid, "RS256"))
    await asyncio.sleep(0)  # the second joins the fetch
    first.cancel()
    issuer.gate.set()
    assert (await second).kid == kid
    assert issuer.fetches == 1


async def test_s31_stale_keys_served_while_the_issuer_is_down(issuer: TestIssuer, clock: FakeClock):
    issuer.cache_control = "max-age=15"  # as Auth0 sends: the stale window is in configured TTLs
    cache = make_cache(clock, issuer.jwks_uri, ttl=60, stale_if_error=10, cooldown=30)
    kid = issuer.keys[0].kid
    await cache.get_key(issuer.jwks_uri, kid, "RS256")
    issuer.down = True
    clock.advance(61)  # expired: the refetch fails, the stale set is served
    assert (await cache.get_key(issuer.jwks_uri, kid, "RS256")).kid == kid
    assert issuer.fetches == 2
    clock.advance(10)  # within the cooldown that the failure started: no new attempt
    await cache.get_key(issuer.jwks_uri, kid, "RS256")
    assert issuer.fetches == 2
    clock.advance(25)  # cooldown over: one more attempt, still down, still stale-served
    await cache.get_key(issuer.jwks_uri, kid, "RS256")
    assert issuer.fetches == 3
    assert cache.stats(issuer.jwks_uri)["error"] == "FetchFailed: HTTP 503"
    clock.advance(600)  # past max-age 15 s + stale_if_error x ttl 60 s: fail closed
    with pytest.raises(JWKSUnavailable):
        await cache.get_key(issuer.jwks_uri, kid, "RS256")
    issuer.down = False
    clock.advance(31)
    assert (await cache.get_key(issuer.jwks_uri, kid, "RS256")).kid == kid


async def test_s31_cold_start_while_down_fails_then_cools_down(
    issuer: TestIssuer, clock: FakeClock
):
    issuer.down = True
    cache = make_cache(clock, issuer.jwks_uri, cooldown=30)
    kid = issuer.keys[0].kid
    for _ in range(20):
        with pytest.raises(JWKSUnavailable):
            await cache.get_key(issuer.jwks_uri, kid, "RS256")
    assert issuer.fetches == 1  # the failure started the cooldown
    issuer.down = False
    clock.advance(29)
    with pytest.raises(JWKSUnavailable):
        await cache.get_key(issuer.jwks_uri, kid, "RS256")
    clock.advance(2)
    assert (await cache.get_key(issuer.jwks_uri, kid, "RS256")).kid == kid
    assert issuer.fetches == 2


async def test_s31_connection_refused_is_unavailable():
    url = unused_url()
    cache = JWKSCache()
    cache.allow(url)
    with pytest.raises(JWKSUnavailable):
        await cache.get_key(url, "k", "RS256")


async def test_s31_fetch_is_time_limited(issuer: TestIssuer):
    issuer.delay = 3.0
    cache = JWKSCache(timeout=0.3)
    cache.allow(issuer.jwks_uri)
    started = time.monotonic()
    with pytest.raises(JWKSUnavailable):
        await cache.get_key(issuer.jwks_uri, issuer.keys[0].kid, "RS256")
    assert time.monotonic() - started < 1.5


async def test_s31_a_failed_refresh_never_evicts_known_keys(issuer: TestIssuer, clock: FakeClock):
    cache = make_cache(clock, issuer.jwks_uri)
    kid = issuer.keys[0].kid
    await cache.get_key(issuer.jwks_uri, kid, "RS256")
    issuer.down = True
    clock.advance(31)
    with pytest.raises(KeyNotFound):
        await cache.get_key(issuer.jwks_uri, "unknown", "RS256")
    assert issuer.fetches == 2
    assert (await cache.get_key(issuer.jwks_uri, kid, "RS256")).kid == kid


async def test_negative_kid_cache_skips_refetch_for_a_known_bad_kid(
    issuer: TestIssuer, clock: FakeClock
):
    cache = make_cache(clock, issuer.jwks_uri, negative_ttl=300)
    await cache.get_key(issuer.jwks_uri, issuer.keys[0].kid, "RS256")
    clock.advance(31)
    with pytest.raises(KeyNotFound):
        await cache.get_key(issuer.jwks_uri, "bad-kid", "RS256")
    assert issuer.fetches == 2
    clock.advance(31)
    with pytest.raises(KeyNotFound):
        await cache.get_key(issuer.jwks_uri, "bad-kid", "RS256")
    assert issuer.fetches == 2  # remembered as missing
    with pytest.raises(KeyNotFound):
        await cache.get_key(issuer.jwks_uri, "other-kid", "RS256")
    assert issuer.fetches == 3


async def test_s24_allow_list_checked_before_any_request(server: IssuerServer):
    allowed, other = server.new_issuer(), server.new_issuer()
    cache = JWKSCache(allowed_urls=[allowed.jwks_uri])
    cache.allow(allowed.jwks_uri)
    with pytest.raises(ConfigurationError, match="allowed_urls"):
        cache.allow(other.jwks_uri)
    with pytest.raises(JWKSNotAllowed):
        await cache.get_key(other.jwks_uri, other.keys[0].kid, "RS256")
    unregistered = JWKSCache()
    with pytest.raises(JWKSNotAllowed):
        await unregistered.get_key(other.jwks_uri, other.keys[0].kid, "RS256")
    assert sum(other.hits.values()) == 0


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/jwks.json",  # plain http off loopback
        "ftp://127.0.0.1/jwks.json",
        "file:///etc/passwd",
        "https://user:pw@example.com/jwks.json",
        "https://example.com/jwks.json#frag",
        "jwks.json",
    ],
)
def test_jwks_url_must_be_https_or_loopback(url: str):
    with pytest.raises(ConfigurationError):
        JWKSCache().allow(url)


def test_plain_http_off_loopback_needs_allow_http():
    cache = JWKSCache()
    cache.allow("http://keycloak:8080/jwks", allow_http=True)
    cache.allow("https://idp.example.com/jwks")
    cache.allow("http://localhost:9000/jwks")


async def test_s21_only_asymmetric_signature_keys_are_taken(issuer: TestIssuer, clock: FakeClock):
    from tests.auth.issuers import new_key

    weak = new_key("RS256", "weak")
    issuer.keys = [new_key("RS256", "good")]
    issuer.extra_jwks = [
        {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"},
        {**new_key("RS256").jwk(), "kid": "enc", "use": "enc"},
        {**new_key("RS256").jwk(), "kid": "hs-labelled", "alg": "HS256"},
        {**new_key("RS256").jwk(), "kid": "wrap-only", "key_ops": ["wrapKey"]},
        {"kty": "RSA", "kid": "broken", "n": "AQAB", "e": "AQAB"},
    ]
    cache = make_cache(clock, issuer.jwks_uri)
    assert (await cache.get_key(issuer.jwks_uri, "good", "RS256")).kid == "good"
    for kid in ("hmac", "enc", "hs-labelled", "wrap-only", "broken", weak.kid):
        with pytest.raises(KeyNotFound):
            await cache.get_key(issuer.jwks_uri, kid, "RS256")
    assert cache.stats(issuer.jwks_uri)["keys"] == 1


def test_rsa_keys_under_2048_bits_are_skipped():
    from cryptography.hazmat.primitives.asymmetric import rsa
    from jwt.algorithms import RSAAlgorithm

    small = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
    jwk = {**RSAAlgorithm.to_jwk(small, as_dict=True), "kid": "small"}
    assert len(parse_jwk_set({"keys": [jwk]})) == 0


async def test_a_set_without_usable_keys_is_a_failed_fetch(issuer: TestIssuer, clock: FakeClock):
    issuer.keys = []
    issuer.extra_jwks = [{"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"}]
    cache = make_cache(clock, issuer.jwks_uri)
    with pytest.raises(JWKSUnavailable):
        await cache.get_key(issuer.jwks_uri, "hmac", "RS256")


async def test_s22_key_type_and_curve_must_match_alg(issuer: TestIssuer, clock: FakeClock):
    rsa_key = issuer.keys[0]
    p384 = issuer.add_key("ES384")
    ed = issuer.add_key("EdDSA")
    cache = make_cache(clock, issuer.jwks_uri)
    for kid, alg in [
        (rsa_key.kid, "ES256"),
        (rsa_key.kid, "EdDSA"),
        (rsa_key.kid, "PS256"),  # the JWK says alg RS256
        (p384.kid, "ES256"),  # wrong curve
        (p384.kid, "ES512"),
        (ed.kid, "RS256"),
    ]:
        with pytest.raises(AlgorithmNotAllowed):
            await cache.get_key(issuer.jwks_uri, kid, alg)
    assert (await cache.get_key(issuer.jwks_uri, ed.kid, "Ed25519")).crv == "Ed25519"
    assert issuer.fetches == 1  # a type mismatch is not a miss: no refetch


async def test_s33_kid_absent_single_key_accepted_several_rejected(
    issuer: TestIssuer, clock: FakeClock
):
    cache = make_cache(clock, issuer.jwks_uri)
    assert (await cache.get_key(issuer.jwks_uri, None, "RS256")).kid == issuer.keys[0].kid
    issuer.add_key("RS256")
    clock.advance(601)
    with pytest.raises(KeyNotFound, match="several"):
        await cache.get_key(issuer.jwks_uri, None, "RS256")


async def test_bounded_keys_per_set(issuer: TestIssuer, clock: FakeClock):
    for _ in range(39):
        issuer.add_key("ES256")
    cache = make_cache(clock, issuer.jwks_uri, max_keys=32)
    await cache.get_key(issuer.jwks_uri, issuer.keys[0].kid, "RS256")
    assert cache.stats(issuer.jwks_uri)["keys"] == 32


async def test_bounded_issuers_least_recently_used_dropped(server: IssuerServer, clock: FakeClock):
    issuers = [server.new_issuer() for _ in range(3)]
    cache = make_cache(clock, *(i.jwks_uri for i in issuers), max_issuers=2)
    for one in issuers:
        await cache.get_key(one.jwks_uri, one.keys[0].kid, "RS256")
    assert cache.stats(issuers[0].jwks_uri) == {"cached": False}
    await cache.get_key(issuers[0].jwks_uri, issuers[0].keys[0].kid, "RS256")
    assert [one.fetches for one in issuers] == [2, 1, 1]


async def test_bounded_document_size(issuer: TestIssuer):
    issuer.extra_jwks = [{"kty": "oct", "k": "A" * 300_000}]
    cache = JWKSCache(max_bytes=64 * 1024)
    cache.allow(issuer.jwks_uri)
    with pytest.raises(JWKSUnavailable):
        await cache.get_key(issuer.jwks_uri, issuer.keys[0].kid, "RS256")


async def test_s32_discovery_issuer_must_match(issuer: TestIssuer):
    cache = JWKSCache()
    url = cache.allow(issuer.url("/.well-known/openid-configuration"))
    metadata = await cache.get_metadata(url, issuer.issuer)
    assert metadata["jwks_uri"] == issuer.jwks_uri
    # The discovered jwks_uri is now allowed, as the issuer vouched for it.
    assert (await cache.get_key(issuer.jwks_uri, issuer.keys[0].kid, "RS256")).kid

    other = JWKSCache()
    url = other.allow(issuer.url("/.well-known/openid-configuration"))
    issuer.metadata_issuer = issuer.base_url  # no trailing slash: a different issuer
    with pytest.raises(JWKSUnavailable, match="configured"):
        await other.get_metadata(url, issuer.issuer)
    with pytest.raises(JWKSNotAllowed):
        await other.get_key(issuer.jwks_uri, issuer.keys[0].kid, "RS256")


def test_default_cache_is_one_shared_instance():
    assert default_jwks_cache() is default_jwks_cache()


@pytest.mark.parametrize(
    "options",
    [{"ttl": 0}, {"min_ttl": 700}, {"timeout": 0}, {"cooldown": -1}, {"max_keys": 0}],
)
def test_cache_options_are_checked(options: dict[str, float]):
    with pytest.raises(ConfigurationError):
        JWKSCache(**options)  # type: ignore[arg-type]
