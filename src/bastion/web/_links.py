"""Mail links that land on the pages.

better-auth's links go to its own endpoints, which redirect to the flow's callbackURL: "/"
for a verification mail started without one (sign-up through the API), and nowhere useful
for a reset mail without `redirectTo`. `to_pages(sender)` wraps a mail callback so those
defaults become the pages: verification -> /verify-email?verified=1 (with ?error= on a bad
link), reset -> /reset-password?token=... . A link that names its own callbackURL (a page
or an app asked for one) is left as it is.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .._callbacks import call_user
from ..identity.email import EmailLink

__all__ = ["RESET_PAGE", "VERIFIED_PAGE", "page_url", "to_pages"]

VERIFIED_PAGE = "/verify-email?verified=1"
RESET_PAGE = "/reset-password"


def page_url(url: str) -> str:
    """The link with its default callbackURL pointed at the landing page."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    callback = dict(query).get("callbackURL")
    if parts.path.endswith("/verify-email") and callback in (None, "", "/"):
        landing = VERIFIED_PAGE
    elif "/reset-password/" in parts.path and not callback:
        landing = RESET_PAGE
    else:
        return url
    query = [(k, v) for k, v in query if k != "callbackURL"] + [("callbackURL", landing)]
    return urlunsplit(parts._replace(query=urlencode(query)))


def to_pages(
    sender: Callable[[EmailLink, Any], Any],
) -> Callable[[EmailLink, Any], Awaitable[None]]:
    """`sender` (a send_verification_email or send_reset_password callback), sending links
    that land on the pages."""

    async def send(link: EmailLink, request: Any | None = None) -> None:
        await call_user(sender, dataclasses.replace(link, url=page_url(link.url)), request)

    return send
