"""Figure: the cost of verifying one JWT access token, warm JWKS cache.

Run (from the repository root, in the venv; about 20 seconds):

    python bench/jwt_verify.py [--iterations 2000] [--repeats 7] [--json out.json]

For RS256 (RSA 2048), ES256 (P-256) and EdDSA (Ed25519), one at+jwt access token each is
verified over and over, in one process and one event loop:

    bastion   `await JWTAuth(jwks_uri=..., issuer=..., audience=...).authenticate_token(t, r)`
              with the key set already cached (the JWKS is served once by a local HTTP server
              on 127.0.0.1, then never asked again) and the memo of verified tokens off
              (`verifier.memo_size = 0`): header checks, key lookup, signature, claims
              (exp/nbf/iat, iss, aud, typ, RFC 9068 required claims) — one full verification
    repeat    the same provider with its memo on (the default): the token was verified
              before, so only the key identity and the claims are checked again
    pyjwt     `jwt.decode(t, public_key, algorithms=[alg], audience=..., issuer=...,
              options={"require": [...]})`: the same token and checks, minus typ, with the key
              object handed in (no JWKS lookup at all)
    crypto    the signature check alone (PyJWT's algorithm object on the raw bytes): the floor

Prints microseconds per verification (median of `--repeats` runs of `--iterations` each) and
the overhead of the provider over bare PyJWT. Nothing is sent off 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import platform
import statistics
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import cryptography
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm, get_default_algorithms
from starlette.requests import Request

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from bastion.auth.providers.jwt import JWTAuth
from bastion.jose import JWKSCache

AUDIENCE = "https://api.example.test"
ALGORITHMS = ("RS256", "ES256", "EdDSA")


def private_key(alg: str) -> Any:
    if alg == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    return ed25519.Ed25519PrivateKey.generate()


def public_jwk(alg: str, key: Any, kid: str) -> dict[str, Any]:
    family = {"RS256": RSAAlgorithm, "ES256": ECAlgorithm, "EdDSA": OKPAlgorithm}[alg]
    return {**family.to_jwk(key.public_key(), as_dict=True), "kid": kid, "alg": alg, "use": "sig"}


@contextmanager
def jwks_server(document: dict[str, Any]) -> Iterator[str]:
    """Serve `document` at http://127.0.0.1:PORT/jwks.json until the block ends."""
    body = json.dumps(document).encode()
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
        if len(hits) != 2 * len(ALGORITHMS):  # two providers per algorithm
            print(f"warning: the JWKS was fetched {len(hits)} times", file=sys.stderr)


def measure(
    runs: dict[str, Callable[[int], float]], iterations: int, repeats: int
) -> dict[str, float]:
    """µs per call of each variant: min and median over `repeats`, the variants interleaved
    so that a busy moment of the machine hits all of them alike."""
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for run in runs.values():
        run(max(50, iterations // 10))  # warm up
    for _ in range(repeats):
        for name, run in runs.items():
            samples[name].append(run(iterations) / iterations * 1e6)
    result: dict[str, float] = {}
    for name, values in samples.items():
        result[f"{name}_min_us"] = min(values)
        result[f"{name}_median_us"] = statistics.median(values)
    return result


def timed_sync(call: Callable[[], Any]) -> Callable[[int], float]:
    def run(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            call()
        return time.perf_counter() - start

    return run


def timed_async(loop: asyncio.AbstractEventLoop, call: Callable[[], Awaitable[Any]]):  # type: ignore[no-untyped-def]
    async def many(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            await call()
        return time.perf_counter() - start

    def run(n: int) -> float:
        return loop.run_until_complete(many(n))

    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    keys = {alg: private_key(alg) for alg in ALGORITHMS}
    document = {"keys": [public_jwk(alg, keys[alg], f"k-{alg}") for alg in ALGORITHMS]}
    required = ["iss", "exp", "aud", "sub", "iat", "jti"]
    rows: list[dict[str, Any]] = []
    loop = asyncio.new_event_loop()
    try:
        with jwks_server(document) as jwks_uri:
            issuer = jwks_uri.removesuffix("jwks.json")
            for alg in ALGORITHMS:
                now = int(time.time())
                claims = {
                    "iss": issuer,
                    "sub": "user-1",
                    "aud": AUDIENCE,
                    "client_id": "client-1",
                    "iat": now,
                    "exp": now + 3600,
                    "jti": "bench",
                    "scope": "read:things",
                }
                headers = {"typ": "at+jwt", "kid": f"k-{alg}"}
                token = jwt.encode(claims, keys[alg], algorithm=alg, headers=headers)
                public = keys[alg].public_key()
                provider = JWTAuth(
                    jwks_uri=jwks_uri,
                    issuer=issuer,
                    audience=AUDIENCE,
                    algorithms=[alg],
                    jwks_cache=JWKSCache(),
                )
                provider.verifier.memo_size = 0  # every call a full verification
                remembering = JWTAuth(
                    jwks_uri=jwks_uri,
                    issuer=issuer,
                    audience=AUDIENCE,
                    algorithms=[alg],
                    jwks_cache=JWKSCache(),
                )
                request = Request({"type": "http", "method": "GET", "path": "/", "headers": []})
                loop.run_until_complete(remembering.authenticate_token(token, request))
                user = loop.run_until_complete(provider.authenticate_token(token, request))
                if user is None or user["sub"] != "user-1":
                    raise SystemExit(f"{alg}: the provider refused the benchmark token")

                head, body, signature = token.split(".")
                signing_input = f"{head}.{body}".encode()
                raw_signature = base64.urlsafe_b64decode(signature + "==")
                algorithm = get_default_algorithms()[alg]

                def bare(token: str = token, public: Any = public, alg: str = alg) -> Any:
                    return jwt.decode(
                        token,
                        public,
                        algorithms=[alg],
                        audience=AUDIENCE,
                        issuer=issuer,
                        options={"require": required},
                    )

                def crypto(
                    algorithm: Any = algorithm,
                    signing_input: bytes = signing_input,
                    public: Any = public,
                    raw_signature: bytes = raw_signature,
                ) -> bool:
                    return bool(algorithm.verify(signing_input, public, raw_signature))

                assert bare()["sub"] == "user-1" and crypto()

                def ours(
                    provider: JWTAuth = provider, token: str = token, request: Request = request
                ) -> Awaitable[Any]:
                    return provider.authenticate_token(token, request)

                def again(
                    provider: JWTAuth = remembering, token: str = token, request: Request = request
                ) -> Awaitable[Any]:
                    return provider.authenticate_token(token, request)

                runs = {
                    "bastion": timed_async(loop, ours),
                    "repeat": timed_async(loop, again),
                    "pyjwt": timed_sync(bare),
                    "crypto": timed_sync(crypto),
                }
                rows.append({"alg": alg, **measure(runs, args.iterations, args.repeats)})
    finally:
        loop.close()

    print(
        f"\nJWT verification, warm cache: µs per token, min (median) over {args.repeats} x "
        f"{args.iterations} (Python {platform.python_version()}, PyJWT {jwt.__version__}, "
        f"cryptography {cryptography.__version__})\n"
    )
    print(
        f"{'alg':<7} {'bastion':>16} {'pyjwt jwt.decode':>18} {'crypto only':>16}"
        f" {'bastion, repeat':>16}"
    )
    for row in rows:
        cells = [
            f"{row[name + '_min_us']:.1f} ({row[name + '_median_us']:.1f})"
            for name in ("bastion", "pyjwt", "crypto", "repeat")
        ]
        print(f"{row['alg']:<7} {cells[0]:>16} {cells[1]:>18} {cells[2]:>16} {cells[3]:>16}")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "iterations": args.iterations}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
