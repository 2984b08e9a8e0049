"""A URL fit for a message or a log: its user-info (user, password or token) hidden."""

from __future__ import annotations

__all__ = ["mask_userinfo"]

MASK = "***"


def mask_userinfo(text: str) -> str:
    """`scheme://***@host/...`: the whole user-info replaced, whatever it holds.

    A user-info without a colon is a secret too (`redis://s3cret@host`, a token as the user
    name), so nothing of it is kept. It ends at the last `@` of the URL: a password with an
    unescaped `/`, `?` or `#` is hidden as well, at the price of hiding more than the
    user-info when a later part holds an `@`. A URL without an authority
    (`sqlite:///path`) has no user-info and is returned as it is.
    """
    scheme, sep, rest = text.partition("://")
    if not sep or rest.startswith("/"):
        return text
    userinfo, _, tail = rest.rpartition("@")
    if not userinfo:
        return text
    return f"{scheme}://{MASK}@{tail}"
