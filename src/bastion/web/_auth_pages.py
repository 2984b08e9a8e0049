"""The sign-in pages: /sign-in, /sign-up, /forgot-password, /reset-password, /verify-email,
/magic-link and /two-factor.

Each is a form that app.js posts to the Identity's own endpoints (/api/auth/...); the pages
only render, and read the query a mail link or a redirect brings (`?token=`, `?error=`).
An `?error=` code becomes one of the sentences below, never the raw code or text from the
URL (a link's query must not put words on our page).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ._app import WebContext, safe_next

__all__ = ["ERRORS", "routes"]

# What a code in `?error=` means to a person (better-auth's codes, any case).
ERRORS: dict[str, str] = {
    "invalid_token": "This link is not valid any more: it was used already, or it is incomplete. "
    "Ask for a new one.",
    "token_expired": "This link has expired. Ask for a new one.",
    "expired_token": "This link has expired. Ask for a new one.",
    "user_not_found": "There is no account for this link any more.",
    "attempts_exceeded": "Too many attempts with this link. Ask for a new one.",
    "new_user_signup_disabled": "New accounts cannot be created this way. Sign in with an "
    "existing account.",
    "signup_disabled": "New accounts cannot be created this way. Sign in with an existing account.",
    "access_denied": "The sign-in was cancelled at the provider.",
    "state_mismatch": "The sign-in took too long or was started in another window. Try again.",
    "state_not_found": "The sign-in took too long or was started in another window. Try again.",
    "please_restart_the_process": "The sign-in took too long or was started in another window. "
    "Try again.",
    "account_not_linked": "An account with this email already exists. Sign in with it first, "
    "then link this provider from your account page.",
    "unable_to_link_account": "This provider's account could not be linked. Sign in with your "
    "password, then link it from your account page.",
    "email_not_found": "The provider did not share an email address, which an account needs.",
    "unable_to_get_user_info": "The provider did not answer who you are. Try again.",
    "invalid_code": "The provider's answer was not valid. Try again.",
    "oauth_provider_not_found": "This sign-in provider is not set up here.",
    "email_not_verified": "Verify your email address first: follow the link we sent you.",
}
UNKNOWN_ERROR = "That did not work. Try again, or ask for a new link."


def error_message(code: str | None) -> str | None:
    """The sentence for an `?error=` code; None without one."""
    if not code:
        return None
    return ERRORS.get(code.strip().lower(), UNKNOWN_ERROR)


def routes(web: WebContext) -> list[Route]:
    pages = web.pages
    features = web.features
    options = web.identity.options

    def next_of(request: Request) -> str:
        return safe_next(request.query_params.get("next"), pages.sign_in_redirect)

    async def sign_in(request: Request) -> Response:
        next_path = next_of(request)
        if await web.session_of(request) is not None:
            return web.redirect(request, next_path)
        query = request.query_params
        notice = None
        if query.get("reset"):
            notice = "Your password was changed. Sign in with the new one."
        elif query.get("verified"):
            notice = "Your email address is verified. Sign in to continue."
        return web.render(
            request,
            "sign-in.html",
            title="Sign in",
            next=next_path,
            email=query.get("email", ""),
            error=error_message(query.get("error")),
            notice=notice,
        )

    async def sign_up(request: Request) -> Response:
        if not features.sign_up:
            return web.render(
                request,
                "error.html",
                404,
                title="Sign-up is closed",
                message="New accounts cannot be created here.",
            )
        next_path = next_of(request)
        if await web.session_of(request) is not None:
            return web.redirect(request, next_path)
        # Without a session after sign-up (verification required), the next page is the
        # one that says to check the inbox.
        if options.email_and_password.require_email_verification:
            after = "/verify-email?sent=1"
        else:
            after = next_path
        return web.render(
            request,
            "sign-up.html",
            title="Create an account",
            next=after,
            sign_in_next=next_path,
            email=request.query_params.get("email", ""),
            min_password=options.email_and_password.min_password_length,
        )

    async def forgot_password(request: Request) -> Response:
        if not features.reset_password:
            return web.render(
                request,
                "error.html",
                404,
                title="Password reset is off",
                message="Passwords cannot be reset here. Ask the administrator.",
            )
        return web.render(
            request,
            "forgot-password.html",
            title="Reset your password",
            email=request.query_params.get("email", ""),
        )

    async def reset_password(request: Request) -> Response:
        query = request.query_params
        token = query.get("token", "")
        error = error_message(query.get("error"))
        if not token and not error:
            error = "This page opens from the link in the password-reset email."
        return web.render(
            request,
            "reset-password.html",
            title="Choose a new password",
            token=token,
            error=error,
            min_password=options.email_and_password.min_password_length,
        )

    async def verify_email(request: Request) -> Response:
        query = request.query_params
        session = await web.session_of(request)
        state = "verified" if query.get("verified") else "sent" if query.get("sent") else "check"
        error = error_message(query.get("error"))
        if error:
            state = "failed"
        return web.render(
            request,
            "verify-email.html",
            title="Verify your email",
            state=state,
            error=error,
            email=query.get("email") or (session["user"]["email"] if session else ""),
            continue_to=pages.sign_in_redirect if session else "/sign-in?verified=1",
        )

    async def magic_link(request: Request) -> Response:
        error = error_message(request.query_params.get("error"))
        return web.render(request, "magic-link.html", title="Sign-in link", error=error)

    async def two_factor(request: Request) -> Response:
        query = request.query_params
        asked = {m for m in query.get("methods", "").split(",") if m in ("totp", "otp")}
        # Without `methods` (a bookmarked page), every factor the plugin can check.
        methods = asked or {"totp", "otp"}
        return web.render(
            request,
            "two-factor.html",
            title="Two-factor authentication",
            next=next_of(request),
            totp="totp" in methods,
            otp="otp" in methods,
            only_otp=methods == {"otp"},
        )

    found: list[Route] = []
    found.append(Route("/sign-in", sign_in, methods=["GET", "HEAD"]))
    found.append(Route("/sign-up", sign_up, methods=["GET", "HEAD"]))
    found.append(Route("/forgot-password", forgot_password, methods=["GET", "HEAD"]))
    found.append(Route("/reset-password", reset_password, methods=["GET", "HEAD"]))
    found.append(Route("/verify-email", verify_email, methods=["GET", "HEAD"]))
    if features.magic_link:
        found.append(Route("/magic-link", magic_link, methods=["GET", "HEAD"]))
    if features.two_factor:
        found.append(Route("/two-factor", two_factor, methods=["GET", "HEAD"]))
    return found
