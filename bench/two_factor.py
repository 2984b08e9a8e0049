"""What one TOTP verification costs the server, beyond the request it arrives in.

Run (from the repository root, in the venv; about 15 s):

    python bench/two_factor.py [--checks 20000] [--requests 400] [--repeats 5]
                               [--database sqlite|postgresql]

Two figures, in this process, on one event loop:

    check     the verification itself, as /two-factor/verify-totp runs it: decrypt the stored
              secret (XChaCha20-Poly1305, better-auth's symmetricDecrypt), derive the key, and
              compare the code with the three of the window (±1 step, HMAC-SHA1 through
              pyotp); also its two parts alone
    request   POST /two-factor/verify-totp with a session (the Identity's ASGI app, SQLite
              in memory or PostgreSQL at $BENCH_PG_URL, no HTTP server): CPU per request
              with a right code, and with a code of the wrong shape (the same request:
              session, row, decryption; refused before any HMAC and without the replay
              record). The difference is what a verification adds to its request: the HMACs
              and S9's record of the step used (one compare-and-set UPDATE of the user's row
              in the verification table)

The Identity's clock moves one period per request, so every right code is a new one (S9
refuses a code twice). Prints medians of `--repeats` runs, in microseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pyotp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _harness import log, machine, scratch_database

from bastion.identity import Identity, two_factor
from bastion.identity.plugins.two_factor._secrets import matching_code, totp_key
from bastion.identity.symmetric import decrypt, encrypt

ORIGIN = "http://127.0.0.1:4111"
SECRET = "bastion-bench-secret-0123456789abcdef0123456789abcdef"
PASSWORD = "correct-horse-battery"


def per_call_us(fn: Callable[[], Any], count: int, repeats: int) -> float:
    runs = []
    for _ in range(repeats):
        start = time.process_time()
        for _ in range(count):
            fn()
        runs.append(1e6 * (time.process_time() - start) / count)
    return statistics.median(runs)


def check_figures(count: int, repeats: int) -> dict[str, float]:
    secret = "Xq3-vB7_kL9mN2pR4sT6uW8yZ0aC1dE5"  # 32 characters, as enable makes them
    stored = encrypt(SECRET, secret)
    key = totp_key(secret)
    now = time.time()
    code = pyotp.TOTP(base64.b32encode(key).decode()).at(now)

    def whole() -> None:
        step = matching_code(totp_key(decrypt(SECRET, stored)), code, digits=6, period=30, now=now)
        assert step is not None

    def decryption() -> None:
        decrypt(SECRET, stored)

    def hmacs() -> None:
        matching_code(key, code, digits=6, period=30, now=now)

    return {
        "check": per_call_us(whole, count, repeats),
        "decrypt": per_call_us(decryption, count, repeats),
        "verify": per_call_us(hmacs, count, repeats),
    }


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now


async def request_figures(database: str, count: int, repeats: int) -> dict[str, float]:
    clock = Clock()
    identity = Identity(
        secret=SECRET,
        base_url=f"{ORIGIN}/api/auth",
        database=database,
        env={},
        clock=clock,
        email_and_password={"enabled": True},
        plugins=[two_factor()],
    )
    await identity.migrate()
    transport = httpx.ASGITransport(app=identity.app)
    try:
        async with httpx.AsyncClient(
            transport=transport, base_url=f"{ORIGIN}/api/auth", headers={"origin": ORIGIN}
        ) as client:
            body = {"name": "Bench", "email": "bench@example.com", "password": PASSWORD}
            await client.post("/sign-up/email", json=body)
            enabled = await client.post("/two-factor/enable", json={"password": PASSWORD})
            totp = pyotp.TOTP(parse_qs(urlsplit(enabled.json()["totpURI"]).query)["secret"][0])

            async def verify(code: Callable[[], str], status: int) -> float:
                clock.now += timedelta(seconds=30)
                wanted = code()
                start = time.process_time()
                response = await client.post("/two-factor/verify-totp", json={"code": wanted})
                spent = time.process_time() - start
                assert response.status_code == status, response.text
                return spent

            right = lambda: totp.at(clock.now.timestamp())  # noqa: E731
            wrong = lambda: "x"  # noqa: E731
            for _ in range(20):  # warm-up (and the enrolment, with the first)
                await verify(right, 200)
                await verify(wrong, 401)
            rights, wrongs = [], []
            for _ in range(repeats):
                r = w = 0.0
                for _ in range(count):
                    r += await verify(right, 200)
                    w += await verify(wrong, 401)
                rights.append(1e6 * r / count)
                wrongs.append(1e6 * w / count)
    finally:
        await identity.close()
    return {"right": statistics.median(rights), "refused": statistics.median(wrongs)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checks", type=int, default=20000)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    args = parser.parse_args()
    log(f"machine: {machine()}")
    checks = check_figures(args.checks, args.repeats)
    if args.database == "sqlite":
        requests = asyncio.run(
            request_figures("sqlite+aiosqlite:///:memory:", args.requests, args.repeats)
        )
    else:
        with scratch_database() as url:
            requests = asyncio.run(request_figures(url, args.requests, args.repeats))
    print(f"\nOne TOTP verification (median of {args.repeats} runs), CPU µs, {args.database}")
    print(f"  check: decrypt + key + ±1-step compare   {checks['check']:8.1f}")
    print(f"    decrypt (XChaCha20-Poly1305)           {checks['decrypt']:8.1f}")
    print(f"    compare (3 x HMAC-SHA1, pyotp)         {checks['verify']:8.1f}")
    print(f"  POST /two-factor/verify-totp, right code {requests['right']:8.1f}")
    print(f"  the same request, malformed code         {requests['refused']:8.1f}")
    extra = requests["right"] - requests["refused"]
    print(f"  what the verification adds (with S9)     {extra:8.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
