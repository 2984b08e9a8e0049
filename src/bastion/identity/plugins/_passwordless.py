"""What the magic-link and email-OTP plugins share: URLs as JavaScript's `URL` writes them,
mails sent in the background, mail texts, and better-auth's `revokeUnprovenAccountAccess`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl, quote_plus, urljoin, urlsplit, urlunsplit

from ..._callbacks import call_user
from ..db import Row
from ..email import EmailMessage, Mailer
from ..endpoint import Ctx

__all__ = [
    "compose",
    "form_encode",
    "js_url",
    "revoke_unproven_account_access",
    "send_in_background",
    "with_query",
]

logger = logging.getLogger("bastion.identity")


def form_encode(pairs: list[tuple[str, str]]) -> str:
    """A query string as URLSearchParams writes it (application/x-www-form-urlencoded:
    spaces as `+`, `*` kept, `~` escaped)."""
    return "&".join(f"{_encode(k)}={_encode(v)}" for k, v in pairs)


def _encode(value: str) -> str:
    return quote_plus(value, safe="*").replace("~", "%7E")


def js_url(url: str, base: str) -> str:
    """`new URL(url, base).toString()`: resolved against `base`, an empty path as `/`."""
    parts = urlsplit(urljoin(base, url))
    if parts.netloc and not parts.path:
        parts = parts._replace(path="/")
    return urlunsplit(parts)


def with_query(url: str, values: dict[str, str]) -> str:
    """`url` with each of `values` set (a parameter of the same name replaced), the query
    written again as URLSearchParams writes it."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in values]
    return urlunsplit(parts._replace(query=form_encode([*query, *values.items()])))


_PENDING: set[asyncio.Task[None]] = set()


def send_in_background(
    send: Callable[..., Awaitable[None] | None], *args: Any, purpose: str, user: str
) -> None:
    """Run a mail callback without making the request wait for it: the answer then takes the
    same time whether a mail went or not (S7). A callback that fails is logged, never raised
    (`purpose` and `user`, an id or an address, name it in the log)."""

    async def run() -> None:
        try:
            await call_user(send, *args)
        except Exception as exc:  # whatever the user's callback raises
            logger.error("%s email for %s not sent: %s", purpose, user, type(exc).__name__)

    task = asyncio.get_running_loop().create_task(run())
    _PENDING.add(task)  # a strong reference until it is done
    task.add_done_callback(_PENDING.discard)


def compose(mailer: Mailer, to: str, subject: str, lines: list[str]) -> Awaitable[None]:
    """A plain-text mail of `lines` (paragraphs) to `to`, handed to `mailer`."""
    return mailer.send(EmailMessage(to=to, subject=subject, text="\n\n".join(lines) + "\n"))


async def revoke_unproven_account_access(ctx: Ctx[Any], user: Row) -> Row | None:
    """A magic link or a code has just proved that the caller owns `user`'s address, which
    was never verified: whatever was attached to the account before that proof (a password
    someone else set, an OAuth link, sessions) is removed, then the address is marked
    verified (better-auth 1.7.25's `revokeUnprovenAccountAccess`). The user as it is now,
    or None if it is gone."""
    async with ctx.context.store.atomic() as store:
        current = await store.find_user_by_id(user["id"])
        if current is None or current["emailVerified"]:
            return current
        for account in await store.list_accounts(user["id"]):
            await store.delete_account(account["id"])
        await store.delete_user_sessions(user["id"])
        return await store.update_user(user["id"], {"emailVerified": True})
