"""The signed-in pages: /account, /organizations (with the organization plugin) and
/accept-invitation/{id} (the link of the invitation mail).

What a page shows it reads through the Identity's own endpoints, in-process, with the
request's cookie (`identity.api.list_sessions(headers=...)`: the same endpoint, checks and
JSON as GET /api/auth/list-sessions). What a page changes goes from the browser to the public
/api/auth endpoints through app.js's form helper; the pages never write anything themselves.

One route is the pages' own: POST /account/two-factor/qr turns the `totpURI` that
/two-factor/enable answered into a QR code (SVG by segno, as a data: URL the CSP allows), so
the set-up needs no script library and no third party sees the secret.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import segno
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..identity import APIError
from ._app import WebContext

__all__ = ["routes"]

MAX_TOTP_URI = 2048  # an otpauth:// URI is ~150 characters; more is not one of ours


def _message(error: APIError) -> str:
    """What a failed read says on the page (the API's message, never a code or JSON)."""
    if error.message:
        return error.message
    if error.status == 403:
        return "You are not allowed to see this."
    if error.status == 404:
        return "This was not found. It may have been removed."
    return "This could not be loaded. Try again in a moment."


def _when(value: Any) -> str:
    """A timestamp of the API (datetime or ISO text) as "2025-01-31 14:05 UTC"."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return str(value)
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M") + (" UTC" if value.tzinfo else "")
    return ""


def _device(user_agent: str | None) -> str:
    """A short name for a session's browser, from its User-Agent (no parsing library)."""
    ua = user_agent or ""
    if not ua:
        return "Unknown device"
    browser = next(
        (
            name
            for key, name in (
                ("Edg/", "Edge"),
                ("OPR/", "Opera"),
                ("Firefox/", "Firefox"),
                ("Chrome/", "Chrome"),
                ("Chromium/", "Chromium"),
                ("Safari/", "Safari"),
                ("curl/", "curl"),
                ("python", "Python"),
                ("node", "Node.js"),
            )
            if key.lower() in ua.lower()
        ),
        None,
    )
    system = next(
        (
            name
            for key, name in (
                ("Android", "Android"),
                ("iPhone", "iPhone"),
                ("iPad", "iPad"),
                ("Windows", "Windows"),
                ("Mac OS", "macOS"),
                ("Linux", "Linux"),
            )
            if key in ua
        ),
        None,
    )
    if browser and system:
        return f"{browser} on {system}"
    return browser or system or ua[:60]


def routes(web: WebContext) -> list[Route]:
    identity = web.identity
    features = web.features
    options = identity.options
    org_plugin = next((p for p in identity.plugins if p.id == "organization"), None)

    async def call(request: Request, name: str, **kw: Any) -> Any:
        """An Identity endpoint in-process, as the signed-in browser would call it."""
        endpoint = getattr(identity.api, name)
        return await endpoint(headers=dict(request.headers), **kw)

    def role_names() -> list[str]:
        runtime = getattr(org_plugin, "runtime", None)
        roles: Mapping[str, Any] = runtime.static_roles if runtime is not None else {}
        return list(roles) or ["owner", "admin", "member"]

    # -- /account --------------------------------------------------------------------------

    async def account(request: Request) -> Response:
        found = await web.require_session(request)
        user, session = found["user"], found["session"]
        problems: list[str] = []
        sessions: list[dict[str, Any]] = []
        accounts: list[dict[str, Any]] = []
        try:
            for row in await call(request, "list_sessions") or []:
                sessions.append(
                    {
                        "token": row.get("token", ""),
                        "device": _device(row.get("userAgent")),
                        "ip": row.get("ipAddress") or "",
                        "created": _when(row.get("createdAt")),
                        "current": row.get("token") == session.get("token")
                        or row.get("id") == session.get("id"),
                    }
                )
        except APIError as error:
            problems.append("Sessions: " + _message(error))
        try:
            accounts = [
                {"provider": a.get("providerId", ""), "account_id": a.get("accountId", "")}
                for a in await call(request, "list_user_accounts") or []
            ]
        except APIError as error:
            problems.append("Linked accounts: " + _message(error))
        sessions.sort(key=lambda s: not s["current"])
        linked = {a["provider"] for a in accounts}
        names = dict(features.social)
        for a in accounts:
            a["name"] = (
                "Email and password"
                if a["provider"] == "credential"
                else names.get(a["provider"], a["provider"].title())
            )
        return web.render(
            request,
            "account.html",
            title="Your account",
            user=user,
            sessions=sessions,
            accounts=accounts,
            can_unlink=len(accounts) > 1,
            linkable=[(pid, name) for pid, name in features.social if pid not in linked],
            has_password="credential" in linked,
            two_factor_on=bool(user.get("twoFactorEnabled")),
            can_delete=bool(options.user.delete_user.enabled),
            change_email=bool(options.user.change_email.enabled),
            min_password=options.email_and_password.min_password_length,
            problems=problems,
        )

    async def totp_qr(request: Request) -> Response:
        """The QR code of a `totpURI` (from /two-factor/enable), for the signed-in person."""
        if await web.session_of(request) is None:
            return JSONResponse({"message": "Sign in first."}, status_code=401)
        raw = b""
        async for chunk in request.stream():  # bounded: an otpauth URI is small
            raw += chunk
            if len(raw) > MAX_TOTP_URI * 2:
                return JSONResponse({"message": "That is not an authenticator link."}, 400)
        try:
            body = json.loads(raw or b"null")
        except (ValueError, RecursionError):  # not JSON, or nested past the parser
            body = None
        uri = body.get("totpURI") if isinstance(body, dict) else None
        if (
            not isinstance(uri, str)
            or not (uri.isascii() and uri.isprintable())  # percent-encoded: no NUL, no surrogate
            or len(uri) > MAX_TOTP_URI
            or urlsplit(uri).scheme != "otpauth"
            or urlsplit(uri).netloc != "totp"
        ):
            return JSONResponse({"message": "That is not an authenticator link."}, status_code=400)
        # Dark on white whatever the theme: phone cameras read that best.
        svg = segno.make(uri, error="m").svg_data_uri(scale=5, border=4, dark="#000", light="#fff")
        return web.finish(request, JSONResponse({"src": svg}))

    # -- /organizations --------------------------------------------------------------------

    async def organizations(request: Request) -> Response:
        found = await web.require_session(request)
        user, session = found["user"], found["session"]
        problems: list[str] = []
        orgs: list[dict[str, Any]] = []
        incoming: list[dict[str, Any]] = []
        full: dict[str, Any] | None = None
        try:
            orgs = list(await call(request, "list_organizations") or [])
        except APIError as error:
            problems.append(_message(error))
        try:
            incoming = [
                i
                for i in await call(request, "list_user_invitations") or []
                if i.get("status") == "pending"
            ]
        except APIError as error:
            problems.append("Invitations: " + _message(error))
        active_id = session.get("activeOrganizationId")
        if active_id:
            try:
                full = await call(request, "get_full_organization")
            except APIError as error:
                problems.append(_message(error))
        members: list[dict[str, Any]] = []
        invitations: list[dict[str, Any]] = []
        my_role = ""
        if full:
            for m in full.get("members") or []:
                member_user = m.get("user") or {}
                members.append(
                    {
                        "id": m.get("id", ""),
                        "name": member_user.get("name") or "",
                        "email": member_user.get("email") or "",
                        "role": m.get("role", ""),
                        "me": m.get("userId") == user["id"],
                    }
                )
                if m.get("userId") == user["id"]:
                    my_role = m.get("role", "")
            invitations = [
                {
                    "id": i.get("id", ""),
                    "email": i.get("email", ""),
                    "role": i.get("role", ""),
                    "expires": _when(i.get("expiresAt")),
                }
                for i in full.get("invitations") or []
                if i.get("status") == "pending"
            ]
        return web.render(
            request,
            "organizations.html",
            title="Organizations",
            orgs=orgs,
            active=full,
            active_id=active_id or "",
            members=members,
            invitations=invitations,
            incoming=incoming,
            my_role=my_role,
            roles=role_names(),
            problems=problems,
        )

    async def accept_invitation(request: Request) -> Response:
        await web.require_session(request)
        invitation_id = request.path_params["id"]
        invitation: dict[str, Any] | None = None
        error = None
        try:
            invitation = await call(request, "get_invitation", query={"id": invitation_id})
        except APIError as failure:
            error = _message(failure)
        if invitation is not None and invitation.get("status") not in (None, "pending"):
            error = f"This invitation was already {invitation['status']}."
            invitation = None
        return web.render(
            request,
            "accept-invitation.html",
            status=200 if invitation else 404,
            title="Invitation",
            invitation=invitation,
            invitation_id=invitation_id,
            role=", ".join(r for r in str((invitation or {}).get("role", "")).split(",") if r),
            expires=_when((invitation or {}).get("expiresAt")),
            error=error,
        )

    found = [
        Route("/account", account, methods=["GET", "HEAD"]),
        Route("/account/two-factor/qr", totp_qr, methods=["POST"]),
    ]
    if org_plugin is not None:
        found.append(Route("/organizations", organizations, methods=["GET", "HEAD"]))
        found.append(Route("/accept-invitation/{id}", accept_invitation, methods=["GET", "HEAD"]))
    return found
