"""Issue 11, item 10 (part): credentials are redacted in logged URLs (security check
S45, "no credentials in logs").

A session token sent as `?apiKey=` was written verbatim to uvicorn's access log, as were
verification tokens, OAuth codes and the reset-password token in the path. The access log of
`bastion serve` now shows `***` for the values of the query parameters `apiKey`, `token`,
`access_token`, `id_token`, `refresh_token`, `code`, `client_secret` and `password` (names
compared percent-decoded and ignoring case) and for the token after `/reset-password/`; the
filter is configured by dotted path in uvicorn's log config, so worker processes apply it too.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.test_cli import SECRET, bastion_serve

# (what the client asks for, what the access log must show instead)
TARGETS = [
    ("/api/agents?apiKey=SECRET-A", "/api/agents?apiKey=***"),
    (
        "/api/auth/verify-email?token=SECRET-B&callbackURL=/done",
        "/api/auth/verify-email?token=***&callbackURL=/done",
    ),
    (
        "/api/auth/reset-password/SECRET-C?callbackURL=/reset",
        "/api/auth/reset-password/***?callbackURL=/reset",
    ),
    ("/api/auth/reset%2Dpassword/SECRET-D", "/api/auth/reset%2Dpassword/***"),
    (
        "/api/auth/callback/github?code=SECRET-E&state=abc",
        "/api/auth/callback/github?code=***&state=abc",
    ),
    (
        "/x?access_token=SECRET-F&id_token=SECRET-G&refresh_token=SECRET-H",
        "/x?access_token=***&id_token=***&refresh_token=***",
    ),
    ("/x?client_secret=SECRET-I&password=SECRET-J", "/x?client_secret=***&password=***"),
    ("/api/agents?APIKEY=SECRET-K&api%4Bey=SECRET-L", "/api/agents?APIKEY=***&api%4Bey=***"),
    (
        "/api/agents?limit=5&apiKey=SECRET-M&apiKey=SECRET-N",
        "/api/agents?limit=5&apiKey=***&apiKey=***",
    ),
]


def assert_redacted(output: str) -> None:
    assert "SECRET-" not in output, output
    for _, shown in TARGETS:
        assert f'"GET {shown} HTTP/1.1"' in output, (shown, output)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_item10_credentials_in_urls_are_redacted_in_the_access_log(
    tmp_path: Path, workers: str
) -> None:
    env = {"BASTION_SECRET": SECRET, "DATABASE_URL": f"sqlite:///{tmp_path / 'b.db'}"}
    with bastion_serve("--workers", workers, cwd=tmp_path, env=env) as server:
        for target, _ in TARGETS:
            # Raw targets, as a client sends them (httpx would re-encode them).
            with httpx.Client(base_url=server.url) as http:
                request = http.build_request("GET", server.url)
                request.url = request.url.copy_with(raw_path=target.encode())
                http.send(request)
    assert_redacted(server.output)
    if workers == "2":
        assert server.output.count("Started server process") == 2
