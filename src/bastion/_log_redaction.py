"""Credentials kept out of the access log (security: no credentials in logs).

uvicorn logs each request's path and query string as the client sent them, and a client may
put a credential there: a session token as `?apiKey=` (the agent server accepts it), a
verification or magic-link `?token=`, an OAuth `?code=`, the reset-password token in the path
`/reset-password/<token>`. `RedactCredentials`, a filter on uvicorn's access logger, writes
`***` in place of:

- the value of a query parameter named `apiKey`, `token`, `access_token`, `id_token`,
  `refresh_token`, `code`, `client_secret` or `password`. Names are compared after
  percent-decoding and ignoring case (`?APIKEY=`, `?api%4Bey=`): a server may read a name
  either way, and a redacted value that was not a credential costs nothing;
- whatever follows `/reset-password/` in the path (also when written percent-encoded).

`log_config()` is uvicorn's logging configuration with the filter named by its dotted path,
so that uvicorn's worker processes, which configure logging from it themselves, get it too.
"""

from __future__ import annotations

import copy
import logging
import re
from typing import Any
from urllib.parse import unquote_plus

__all__ = ["CREDENTIAL_PARAMETERS", "REDACTED", "RedactCredentials", "log_config", "redact_url"]

REDACTED = "***"

CREDENTIAL_PARAMETERS = frozenset(
    name.lower()
    for name in (
        "apiKey",
        "token",
        "access_token",
        "id_token",
        "refresh_token",
        "code",
        "client_secret",
        "password",
    )
)


def _spelled_any_way(text: str) -> str:
    """A pattern for `text` with any character possibly percent-encoded (routing decodes
    the path, so `/reset%2Dpassword/` reaches the same endpoint)."""
    return "".join(f"(?:{re.escape(c)}|%{ord(c):02x})" for c in text)


_TOKEN_IN_PATH = re.compile(f"({_spelled_any_way('/reset-password/')})[^?]+", re.IGNORECASE)


def redact_url(target: str) -> str:
    """`target` (a path and query string, as uvicorn logs it) without credential values."""
    path, question, query = target.partition("?")
    path = _TOKEN_IN_PATH.sub(lambda m: m.group(1) + REDACTED, path)
    if question:
        query = "&".join(_redact_parameter(part) for part in query.split("&"))
    return path + question + query


def _redact_parameter(part: str) -> str:
    name, equals, value = part.partition("=")
    if equals and value and unquote_plus(name).lower() in CREDENTIAL_PARAMETERS:
        return f"{name}={REDACTED}"
    return part


class RedactCredentials(logging.Filter):
    """For uvicorn's `uvicorn.access` logger, whose records carry
    `(client, method, path_and_query, http_version, status)` as their arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            record.args = (args[0], args[1], redact_url(args[2]), args[3], args[4])
        return True


def log_config() -> dict[str, Any]:
    """uvicorn's default logging configuration, with `RedactCredentials` on its access log."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_credentials"] = {
        "()": f"{__name__}.{RedactCredentials.__qualname__}"
    }
    config["loggers"]["uvicorn.access"]["filters"] = ["redact_credentials"]
    return config
