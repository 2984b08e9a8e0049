"""Sessions revoked by this process, for the reads that trust a cookie cache.

A cookie cache (`session_data`) is a signed copy of the session: a read that trusts it asks
no storage, so a session signed out here would still pass until the cache expires (S16).
The session reader asks this record first: a cached session revoked here — by its token
(sign-out, revoke-session), or with all of its user's sessions made before a moment
(revoke-sessions, a password change, a deleted user) — is confirmed with storage instead.
Other processes' revocations still show only when their caches expire: the window the docs
give. Entries are kept as long as a cache made before them could be presented, then dropped.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import datetime
from typing import Any

__all__ = ["Revocations"]


class Revocations:
    __slots__ = ("_tokens", "_users", "recorded", "retention")

    def __init__(self, retention: float = 300.0) -> None:
        self.retention = retention  # seconds: the longest a cookie cache lives
        self._tokens: dict[str, float] = {}  # token -> when recorded (monotonic)
        # user id -> (when recorded, sessions created up to then, the token kept)
        self._users: dict[str, tuple[float, datetime, str | None]] = {}
        # Whether anything is recorded: an attribute, not `__bool__`, as every read that
        # trusts a cookie cache asks (a call costs more than the rest of the check).
        self.recorded = False

    def revoke(self, tokens: Iterable[str]) -> None:
        now = time.monotonic()
        for token in tokens:
            self._tokens[token] = now
        self._prune(now)
        self.recorded = bool(self._tokens or self._users)

    def revoke_user(self, user_id: str, before: datetime, keep_token: str | None = None) -> None:
        now = time.monotonic()
        self._users[user_id] = (now, before, keep_token)
        self._prune(now)
        self.recorded = True

    def covers(self, token: str, user_id: Any, created_at: Any) -> bool:
        """Whether a cached session must be confirmed with storage (when in doubt, it
        must: a cache without a creation date is older than nothing)."""
        if token in self._tokens:
            return True
        found = self._users.get(user_id)
        if found is None or token == found[2]:
            return False
        return not isinstance(created_at, datetime) or created_at <= found[1]

    def _prune(self, now: float) -> None:
        if len(self._tokens) + len(self._users) < 1024:
            return
        oldest = now - self.retention
        self._tokens = {t: at for t, at in self._tokens.items() if at > oldest}
        self._users = {u: entry for u, entry in self._users.items() if entry[0] > oldest}
