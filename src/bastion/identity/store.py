"""Domain operations over the database and secondary storage (better-auth's internal adapter).

Handlers call these, never the generic adapter. Sessions and verification values live in
secondary storage when one is configured (spec §6.6), and in the database otherwise or
when `store_session_in_database` asks for both.

All or nothing across the two storages (S41). An operation that writes both runs in
`atomic()`: one database transaction, with the secondary-storage writes made inside it,
before the commit, so that a secondary storage that is down rolls the database back; and
each secondary write that went through is undone (a session entry deleted, an older value
put back) when anything later fails, the commit included. Methods that write both enter
`atomic()` themselves, and join the one their caller opened. One exception, chosen because
it fails safe: deleted sessions are never brought back (revocation wins).
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any, Final

from .._callbacks import call_user
from ._revocations import Revocations
from .crypto import generate_id
from .db import Database, Row, Transaction, UniqueViolation, Where, eq, gt, lte, ne
from .db.types import format_iso, to_utc_ms
from .errors import APIError, Code
from .storage import SecondaryStorage

__all__ = [
    "DatabaseHook",
    "DatabaseHooks",
    "SessionWithUser",
    "Store",
    "from_json_row",
    "has_nested_values",
    "to_json_row",
]

SessionWithUser = tuple[Row, Row]
DatabaseHook = Callable[..., Any]
DatabaseHooks = Mapping[str, Mapping[str, Mapping[str, DatabaseHook]]]
"""`{"user": {"create": {"before": fn, "after": fn}}}` (spec §9.2); fn sync or async."""
Undo = Callable[[], Awaitable[None]]

logger = logging.getLogger("bastion.identity")


def to_json_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row with its datetimes as better-auth's ISO strings."""
    return {k: format_iso(v) if isinstance(v, datetime) else v for k, v in row.items()}


def from_json_row(row: Mapping[str, Any], date_fields: set[str]) -> dict[str, Any]:
    out = dict(row)
    for name in date_fields:  # a few dates among many fields
        value = out.get(name)
        if isinstance(value, str):
            out[name] = to_utc_ms(datetime.fromisoformat(value))
    return out


def has_nested_values(row: Mapping[str, Any]) -> bool:
    """Some value is a dict or a list (a JSON or array field): a copy of the row must be a
    deep one. A loop rather than any() over a generator: half the cost, paid for every cookie
    cache verified."""
    for value in row.values():  # noqa: SIM110
        if isinstance(value, _NESTED):
            return True
    return False


# A tuple, made once: `dict | list` would build a union object on every test.
_NESTED: Final = (dict, list)


class Store:
    def __init__(
        self,
        db: Database,
        *,
        secondary: SecondaryStorage | None = None,
        sessions_in_database: bool = True,
        database_hooks: Sequence[DatabaseHooks] = (),
        clock: Callable[[], datetime],
    ) -> None:
        self.db: Database | Transaction = db
        self.secondary = secondary
        # Inside atomic(): what undoes the secondary writes made so far, in order.
        self._undo: list[Undo] | None = None
        self.sessions_in_database = sessions_in_database or secondary is None
        # (model, event, phase) -> the hooks, the Identity's own first, then the plugins'.
        self._hooks: dict[tuple[str, str, str], list[DatabaseHook]] = {}
        for hooks in database_hooks:
            for model, events in hooks.items():
                for event, phases in events.items():
                    for phase, hook in phases.items():
                        self._hooks.setdefault((model, event, phase), []).append(hook)
        self.now = clock
        # What this process revoked, for the reads that trust a cookie cache (S16).
        self.revocations = Revocations()
        self._dates = {
            model: {n for n, f in db.schema.fields(model).items() if f.type == "date"}
            for model in db.schema
        }

    # -- users -----------------------------------------------------------------------

    async def find_user_by_email(self, email: str) -> Row | None:
        return await self.db.find_one("user", eq("email", email.lower()))

    async def find_user_by_id(self, user_id: str) -> Row | None:
        return await self.db.find_one("user", eq("id", user_id))

    async def create_user(self, data: Mapping[str, Any]) -> Row:
        data = await self._before("user", "create", data)
        try:
            user = await self.db.create("user", data)
        except UniqueViolation:
            raise APIError(422, Code.USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL) from None
        await self._after("user", "create", user)
        return user

    async def update_user(self, user_id: str, values: Mapping[str, Any]) -> Row | None:
        values = await self._before("user", "update", values)
        if self.secondary is None:
            user = await self.db.update("user", eq("id", user_id), values)
            if user is not None:
                await self._after("user", "update", user)
            return user
        # The sessions in secondary storage hold a copy of the user: updated in the same
        # all-or-nothing step.
        async with self.atomic() as store:
            user = await store.db.update("user", eq("id", user_id), values)
            if user is not None:
                await store._after("user", "update", user)
                await store._refresh_cached_user(user)
        return user

    async def delete_user(self, user_id: str) -> None:
        user = await self.find_user_by_id(user_id)
        if user is None:
            return
        await self._before("user", "delete", user)
        async with self.atomic() as store:
            await store.delete_user_sessions(user_id)  # first: revocation wins
            # The foreign keys cascade, but a database made without them must not keep these.
            await store.db.delete_many("account", eq("userId", user_id))
            await store.db.delete("user", eq("id", user_id))
            await store._after("user", "delete", user)

    # -- accounts --------------------------------------------------------------------

    async def find_credential_account(self, user_id: str) -> Row | None:
        """The password account: better-auth's has providerId "credential", accountId = id."""
        return await self.db.find_one(
            "account",
            eq("userId", user_id) & eq("providerId", "credential") & eq("accountId", user_id),
        )

    @asynccontextmanager
    async def atomic(self, *, database: bool = True) -> AsyncIterator[Store]:
        """This store inside one database transaction: its writes land together or not at all.

        Secondary-storage writes made through it go through at once, and are undone if the
        block (or the commit) fails; sessions it deletes stay deleted (revocation wins).
        Inside another `atomic()`, it joins that one. `database=False`: only the undo, for
        an operation that writes secondary storage alone (no transaction to hold)."""
        outer = self._undo is None
        undo: list[Undo] = [] if self._undo is None else self._undo
        bound = copy.copy(self)
        bound._undo = undo
        try:
            if database:
                async with self.db.transaction() as tx:  # joins an open one
                    bound.db = tx
                    yield bound
            else:
                yield bound
        except BaseException:
            if outer:
                await _undo_all(undo)
            raise

    async def create_account(self, data: Mapping[str, Any]) -> Row:
        data = await self._before("account", "create", data)
        account = await self.db.create("account", data)
        await self._after("account", "create", account)
        return account

    async def find_account(self, provider_id: str, account_id: str) -> Row | None:
        """The account a provider knows as `account_id` (better-auth's account key)."""
        return await self.db.find_one(
            "account", eq("providerId", provider_id) & eq("accountId", account_id)
        )

    async def list_accounts(self, user_id: str) -> list[Row]:
        return await self.db.find_many("account", eq("userId", user_id), order_by="createdAt")

    async def update_account(self, account_id: str, values: Mapping[str, Any]) -> Row | None:
        """Update the account whose row id is `account_id`."""
        values = await self._before("account", "update", values)
        account = await self.db.update("account", eq("id", account_id), values)
        if account is not None:
            await self._after("account", "update", account)
        return account

    async def delete_account(self, account_id: str) -> bool:
        """Delete the account whose row id is `account_id`."""
        return await self.db.delete("account", eq("id", account_id))

    async def set_password(self, user_id: str, password_hash: str) -> None:
        """Update the credential account's hash, or create the account."""
        account = await self.find_credential_account(user_id)
        if account is None:
            await self.create_account(
                {
                    "userId": user_id,
                    "accountId": user_id,
                    "providerId": "credential",
                    "password": password_hash,
                }
            )
            return
        await self.db.update("account", eq("id", account["id"]), {"password": password_hash})

    # -- sessions --------------------------------------------------------------------

    async def create_session(
        self,
        user: Row,
        *,
        expires_in: int,
        ip_address: str,
        user_agent: str,
        extra: Mapping[str, Any] | None = None,
    ) -> Row:
        now = self.now()
        data: dict[str, Any] = {
            "token": generate_id(32),
            "userId": user["id"],
            "expiresAt": now + timedelta(seconds=expires_in),
            "createdAt": now,
            "updatedAt": now,
            "ipAddress": ip_address,
            "userAgent": user_agent,
            **(extra or {}),
        }
        data = await self._before("session", "create", data)
        if self.secondary is None:
            session = await self.db.create("session", data)
            await self._after("session", "create", session)
            return session
        async with self.atomic(database=self.sessions_in_database) as store:
            if store.sessions_in_database:
                session = await store.db.create("session", data)
            else:
                data.setdefault("id", generate_id(32))
                fields = store.db.schema.fields("session")
                session = {name: data.get(name) for name in fields}
            await store._cache_session(session, user)
            await store._after("session", "create", session)
        return session

    async def find_session(self, token: str) -> SessionWithUser | None:
        if self.secondary is not None:
            cached = await self.secondary.get(token)
            if cached is not None:
                value = json.loads(cached)
                return (
                    from_json_row(value["session"], self._dates["session"]),
                    from_json_row(value["user"], self._dates["user"]),
                )
            if not self.sessions_in_database:
                return None
        return await self.db.find_one_with_reference("session", eq("token", token), "userId")

    async def update_session(self, token: str, values: Mapping[str, Any]) -> Row | None:
        values = await self._before("session", "update", values)
        if self.secondary is None:
            session = await self.db.update("session", eq("token", token), values)
            if session is not None:
                await self._after("session", "update", session)
            return session
        async with self.atomic(database=self.sessions_in_database) as store:
            found = await store.find_session(token)
            session = None
            if store.sessions_in_database:
                session = await store.db.update("session", eq("token", token), values)
            if found is not None:
                session = session or {**found[0], **values, "updatedAt": store.now()}
                await store._cache_session(session, found[1], previous=found)
            if session is not None:
                await store._after("session", "update", session)
        return session

    async def delete_session(self, token: str) -> None:
        """Revoke: secondary storage first, then the database. With sessions in both, a
        database that then fails keeps the session, and `find_session` reads it from there:
        not revoked, as the 503 says, and a retry completes it. Never the other way round,
        a session gone from the database but still served from secondary storage."""
        self.revocations.revoke((token,))
        if self.secondary is not None:
            found = await self.find_session(token)
            await self.secondary.delete(token)
            if found is not None:
                await self._forget_active(found[0]["userId"], {token})
        if self.sessions_in_database:
            await self.db.delete("session", eq("token", token))

    async def list_sessions(self, user_id: str) -> list[Row]:
        """The user's unexpired sessions, oldest first."""
        now = self.now()
        if self.sessions_in_database:
            return await self.db.find_many(
                "session", eq("userId", user_id) & gt("expiresAt", now), order_by="createdAt"
            )
        sessions = []
        for token in await self._active_tokens(user_id):
            found = await self.find_session(token)
            if found is not None and found[0]["expiresAt"] > now:
                sessions.append(found[0])
        return sorted(sessions, key=lambda s: s["createdAt"])

    async def delete_user_sessions(self, user_id: str, *, keep_token: str | None = None) -> None:
        self.revocations.revoke_user(user_id, self.now(), keep_token)
        if self.secondary is not None:
            tokens = set(await self._active_tokens(user_id)) - {keep_token}
            for token in tokens:
                await self.secondary.delete(token)
            await self._forget_active(user_id, tokens)
        if self.sessions_in_database:
            where: Where = eq("userId", user_id)
            if keep_token is not None:
                where = eq("userId", user_id) & ne("token", keep_token)
            await self.db.delete_many("session", where)

    async def _cache_session(
        self, session: Row, user: Row, *, previous: SessionWithUser | None = None
    ) -> None:
        """Write a session's entry (and its place in the user's active list); inside
        `atomic()`, undone on failure: `previous` put back, or the new entry deleted. The
        undo is registered before the write, which may have gone through when it failed."""
        if self._undo is not None:
            if previous is None:
                token, user_id = session["token"], session["userId"]
                self._undo.append(lambda: self._uncache_session(token, user_id))
            else:
                self._undo.append(lambda: self._put_session(*previous))
        await self._put_session(session, user)

    async def _put_session(self, session: Row, user: Row) -> None:
        assert self.secondary is not None
        ttl = int((session["expiresAt"] - self.now()).total_seconds())
        if ttl <= 0:
            return
        value = json.dumps({"session": to_json_row(session), "user": to_json_row(user)})
        await self.secondary.set(session["token"], value, ttl)
        active = await self._active_list(session["userId"])
        active = [a for a in active if a["token"] != session["token"]]
        expires_ms = int(session["expiresAt"].timestamp() * 1000)
        active.append({"token": session["token"], "expiresAt": expires_ms})
        await self._store_active(session["userId"], active)

    async def _uncache_session(self, token: str, user_id: str) -> None:
        assert self.secondary is not None
        await self.secondary.delete(token)
        await self._forget_active(user_id, {token})

    async def _refresh_cached_user(self, user: Row) -> None:
        assert self.secondary is not None
        for token in await self._active_tokens(user["id"]):
            found = await self.find_session(token)
            if found is not None:
                await self._cache_session(found[0], user, previous=found)

    async def _active_list(self, user_id: str) -> list[dict[str, Any]]:
        assert self.secondary is not None
        raw = await self.secondary.get(f"active-sessions-{user_id}")
        now_ms = int(self.now().timestamp() * 1000)
        items: list[dict[str, Any]] = json.loads(raw) if raw else []
        return [a for a in items if a["expiresAt"] > now_ms]

    async def _active_tokens(self, user_id: str) -> list[str]:
        return [a["token"] for a in await self._active_list(user_id)]

    async def _store_active(self, user_id: str, active: list[dict[str, Any]]) -> None:
        assert self.secondary is not None
        key = f"active-sessions-{user_id}"
        if not active:
            await self.secondary.delete(key)
            return
        active.sort(key=lambda a: a["expiresAt"])
        now_ms = int(self.now().timestamp() * 1000)
        ttl = max(1, (active[-1]["expiresAt"] - now_ms) // 1000)
        await self.secondary.set(key, json.dumps(active), ttl)

    async def _forget_active(self, user_id: str, tokens: set[str]) -> None:
        active = await self._active_list(user_id)
        await self._store_active(user_id, [a for a in active if a["token"] not in tokens])

    # -- verification values ---------------------------------------------------------

    async def create_verification(
        self, identifier: str, value: str, expires_in: int, *, expires_at: datetime | None = None
    ) -> None:
        """`expires_at`, when given, is the row's expiry as it is (a value put back as it
        was, e.g. a one-time code with one more failed attempt); else now + `expires_in`."""
        now = self.now()
        if expires_at is not None:
            expires_in = max(1, int((expires_at - now).total_seconds()))
        row = {
            "id": generate_id(32),
            "identifier": identifier,
            "value": value,
            "expiresAt": expires_at or now + timedelta(seconds=expires_in),
            "createdAt": now,
            "updatedAt": now,
        }
        if self.secondary is not None:
            await self.secondary.set(
                f"verification:{identifier}", json.dumps(to_json_row(row)), expires_in
            )
            return
        await self.db.create("verification", row)

    async def find_verification(
        self, identifier: str, *, include_expired: bool = False
    ) -> Row | None:
        """The unexpired value for `identifier`; an expired one is deleted, unless
        `include_expired` asks for it as it is (to tell "expired" from "unknown")."""
        if self.secondary is not None:
            raw = await self.secondary.get(f"verification:{identifier}")
            row = from_json_row(json.loads(raw), self._dates["verification"]) if raw else None
        else:
            rows = await self.db.find_many(
                "verification", eq("identifier", identifier), order_by="-createdAt", limit=1
            )
            row = rows[0] if rows else None
        if row is not None and row["expiresAt"] <= self.now() and not include_expired:
            await self.delete_verification(identifier)
            return None
        return row

    async def consume_verification(self, identifier: str) -> Row | None:
        """Find and delete at once, so a token works once even under concurrent requests.
        Inside `atomic()`, a failure after it gives the value back (the token works again)."""
        if self.secondary is not None:
            key = f"verification:{identifier}"
            raw = await self.secondary.get_and_delete(key)
            row = from_json_row(json.loads(raw), self._dates["verification"]) if raw else None
            if row is not None and self._undo is not None:
                expires_at: datetime = row["expiresAt"]
                self._undo.append(lambda: self._give_back(key, raw, expires_at))
        else:
            row = await self.find_verification(identifier)
            if row is not None and not await self.db.delete("verification", eq("id", row["id"])):
                row = None  # another request consumed it first
            if row is not None:
                # Older values of the identifier die with the latest (a code sent again
                # replaces the earlier one), as better-auth's consumeVerificationValue does.
                await self.db.delete_many(
                    "verification",
                    eq("identifier", identifier) & lte("createdAt", row["createdAt"]),
                )
        if row is None or row["expiresAt"] <= self.now():
            return None
        return row

    async def _give_back(self, key: str, raw: str | None, expires_at: datetime) -> None:
        assert self.secondary is not None and raw is not None
        ttl = int((expires_at - self.now()).total_seconds())
        if ttl > 0:
            await self.secondary.set(key, raw, ttl)

    async def delete_verification(self, identifier: str) -> None:
        if self.secondary is not None:
            await self.secondary.delete(f"verification:{identifier}")
        else:
            await self.db.delete_many("verification", eq("identifier", identifier))

    # -- database hooks (spec §9.2) --------------------------------------------------

    async def _before(self, model: str, event: str, data: Mapping[str, Any]) -> dict[str, Any]:
        data = dict(data)
        for hook in self._hooks.get((model, event, "before"), ()):
            result = await call_user(hook, dict(data), None)
            if result is False:
                status = 422 if model == "user" else 400
                raise APIError(status, _FAILED.get(model, Code.BAD_REQUEST))
            if isinstance(result, Mapping) and isinstance(result.get("data"), Mapping):
                data = {**data, **result["data"]}
        return data

    async def _after(self, model: str, event: str, data: Mapping[str, Any]) -> None:
        for hook in self._hooks.get((model, event, "after"), ()):
            await call_user(hook, dict(data), None)


_FAILED = {"user": Code.FAILED_TO_CREATE_USER, "session": Code.FAILED_TO_CREATE_SESSION}


async def _undo_all(undo: list[Undo]) -> None:
    """Undo secondary writes, the latest first. Each step is tried whatever the others do;
    one that fails (the storage is down again) is logged, and what it leaves expires with
    its TTL: a session entry whose token was never handed out (the request failed), a newer
    copy of a user in a session entry, or a consumed token (a new one can be requested)."""
    for step in reversed(undo):
        try:
            await step()
        except Exception as exc:
            logger.error("could not undo a secondary-storage write: %s", exc)
    undo.clear()
