"""Social sign-in: POST /sign-in/social, GET|POST /callback/{id}, POST /link-social
(spec §11, as better-auth 1.7.25 answers them).

The redirect flow: sign-in/social keeps a state (social/state.py) and answers the
provider's authorization URL; the provider sends the browser back to /callback/{id} with a
code; the callback checks the state, exchanges the code, reads the profile, and signs the
user in (or links the account), then redirects to the flow's callbackURL. Every failure of
the callback is a redirect to the flow's errorCallbackURL, else `{base}/error`, with
`?error=<code>` (spec §2.3): never a 500, never a traceback.

With `idToken`, sign-in/social and link-social take an ID token the client already holds
(Google One Tap, a native app), verified against the provider's keys, and answer at once.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote, urlencode

from pydantic import BaseModel, ConfigDict, StrictStr, field_validator
from pydantic import Field as PydanticField
from pydantic_core import PydanticCustomError

from ..._callbacks import call_user
from ..endpoint import JSON_OR_FORM, Ctx, Endpoint, RawResponse, Redirect
from ..errors import APIError, Code
from ..ratelimit import CREDENTIAL_RULE
from ..sessions import sensitive_session
from ..social.client import RESERVED_PARAM_NAMES, RESERVED_PARAMS, ProviderError, Tokens
from ..social.provider import Profile, SocialProvider
from ..social.state import StateError, begin, finish
from ..symmetric import DecryptionFailed, decrypt, encrypt, purpose_key
from ..validation import Body
from .common import user_out
from .oauth_users import (
    AccountNotCreated,
    OAuthFailure,
    link_account,
    sign_in_with,
    stored_token,
    update_user_info_on_link,
)

__all__ = ["ENDPOINTS"]

logger = logging.getLogger("bastion.identity")

_LINK_PURPOSE = "oauth-link-session-token"


_RESERVED_MESSAGE = "additionalParams cannot include reserved OAuth parameters: " + ", ".join(
    RESERVED_PARAM_NAMES
)


class IdTokenBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    token: StrictStr
    nonce: StrictStr | None = None
    access_token: StrictStr | None = PydanticField(None, alias="accessToken")
    refresh_token: StrictStr | None = PydanticField(None, alias="refreshToken")
    expires_at: float | None = PydanticField(None, alias="expiresAt")


class SocialBody(Body):
    provider: StrictStr
    callback_url: StrictStr | None = PydanticField(None, alias="callbackURL")
    error_callback_url: StrictStr | None = PydanticField(None, alias="errorCallbackURL")
    disable_redirect: bool | None = PydanticField(None, alias="disableRedirect")
    id_token: IdTokenBody | None = PydanticField(None, alias="idToken")
    scopes: list[StrictStr] | None = None
    request_sign_up: bool | None = PydanticField(None, alias="requestSignUp")
    login_hint: StrictStr | None = PydanticField(None, alias="loginHint")
    additional_params: dict[StrictStr, StrictStr] | None = PydanticField(
        None, alias="additionalParams"
    )
    additional_data: dict[StrictStr, Any] | None = PydanticField(None, alias="additionalData")

    @field_validator("additional_params")
    @classmethod
    def _no_reserved_params(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        """better-auth's schema refuses the names the flow sets itself, before any lookup."""
        if value and not RESERVED_PARAMS.isdisjoint(value):
            raise PydanticCustomError("custom", _RESERVED_MESSAGE)
        return value


class SignInSocialBody(SocialBody):
    new_user_callback_url: StrictStr | None = PydanticField(None, alias="newUserCallbackURL")


def _provider(ctx: Ctx[Any], provider_id: str) -> SocialProvider:
    provider = ctx.context.social_providers.get(provider_id)
    if provider is None or not provider.enabled:
        raise APIError(404, Code.PROVIDER_NOT_FOUND)
    return provider


def _callback_uri(ctx: Ctx[Any], provider: SocialProvider) -> str:
    return f"{ctx.base_url}/callback/{provider.id}"


async def _authorization_answer(
    ctx: Ctx[Any], provider: SocialProvider, body: SocialBody, state_data: dict[str, Any]
) -> dict[str, Any]:
    """Keep the state, and answer the provider's authorization URL (and Location)."""
    client = ctx.context.oauth
    try:
        await client.endpoints(provider)  # discovery first: no state for a flow that cannot go
    except ProviderError as error:
        logger.warning("social sign-in with %s: %s", provider.id, error.detail)
        raise APIError(502, Code.FAILED_TO_GET_USER_INFO) from None
    # Every provider whose profile is an ID token gets a nonce, checked at the callback (S32).
    # better-auth sends none to Google; an extra parameter costs nothing on the wire and binds
    # the token to this browser's flow. `require_nonce` (generic OIDC) also refuses a state
    # that has none.
    nonce = _nonce() if provider.profile_source == "id_token" else None
    callback_url = body.callback_url or ctx.options.base_url
    if not callback_url:
        raise APIError(400, Code.CALLBACK_URL_REQUIRED)
    started = await begin(
        ctx,
        {
            "callbackURL": callback_url,
            "errorURL": body.error_callback_url,
            **state_data,
            "requestSignUp": body.request_sign_up,
            "idTokenNonce": nonce,
        },
        body.additional_data,
    )
    url = await client.authorization_url(
        provider,
        state=started.state,
        redirect_uri=_callback_uri(ctx, provider),
        code_verifier=started.code_verifier,
        scopes=body.scopes or (),
        login_hint=body.login_hint,
        nonce=nonce,
        additional_params=body.additional_params,
    )
    redirect = not body.disable_redirect
    if redirect:
        ctx.response_headers["location"] = url
    return {"url": url, "redirect": redirect}


def _nonce() -> str:
    from ..crypto import URL_SAFE, random_string

    return random_string(32, URL_SAFE)


async def _mapped(provider: SocialProvider, profile: Profile) -> Profile:
    """The profile with the user's own `map_profile_to_user` fields laid over it."""
    if provider.map_profile_to_user is None:
        return profile
    extra = await call_user(provider.map_profile_to_user, dict(profile.raw))
    if not isinstance(extra, dict):
        return profile
    return Profile(profile.account_id, {**profile.user, **extra}, profile.raw)


async def _id_token_profile(
    ctx: Ctx[Any], provider: SocialProvider, id_token: IdTokenBody
) -> Profile:
    if provider.profile_source != "id_token" or provider.disable_id_token_sign_in:
        raise APIError(404, Code.ID_TOKEN_NOT_SUPPORTED)
    client = ctx.context.oauth
    try:
        claims = await client.verify_id_token(provider, id_token.token, nonce=id_token.nonce)
    except ProviderError as error:
        logger.info("ID token from %s refused: %s", provider.id, error.detail)
        raise APIError(401, Code.INVALID_TOKEN) from None
    try:
        profile = await _mapped(provider, client.to_profile(provider, claims))
    except ProviderError:
        raise APIError(401, Code.FAILED_TO_GET_USER_INFO) from None
    if not profile.user.get("email"):
        raise APIError(401, Code.USER_EMAIL_NOT_FOUND)
    return profile


def _id_tokens(body: IdTokenBody, *, keep_refresh: bool) -> Tokens:
    """The tokens a client sent with its ID token. A sign-in stores the access token and
    the ID token only, as better-auth does; link-social the refresh token too."""
    refresh = body.refresh_token if keep_refresh else None
    return Tokens(access_token=body.access_token, refresh_token=refresh, id_token=body.token)


# -- POST /sign-in/social ------------------------------------------------------------------


async def sign_in_social(ctx: Ctx[SignInSocialBody]) -> dict[str, Any]:
    body = ctx.body
    provider = _provider(ctx, body.provider)
    if body.id_token is None:
        return await _authorization_answer(
            ctx, provider, body, {"newUserURL": body.new_user_callback_url}
        )
    profile = await _id_token_profile(ctx, provider, body.id_token)
    try:
        signed_in = await sign_in_with(
            ctx,
            provider,
            profile,
            _id_tokens(body.id_token, keep_refresh=False),
            callback_url=body.callback_url,
            request_sign_up=bool(body.request_sign_up),
            scope=None,
        )
    except OAuthFailure as failure:
        if failure.code == "email_not_verified":
            raise APIError(403, Code.EMAIL_NOT_VERIFIED) from None
        raise APIError(401, Code.OAUTH_LINK_ERROR, failure.code.replace("_", " ")) from None
    return {
        "redirect": False,
        "token": signed_in.session["token"],
        "user": user_out(ctx, signed_in.user),
    }


# -- POST /link-social ---------------------------------------------------------------------


async def link_social(ctx: Ctx[SocialBody]) -> dict[str, Any]:
    body = ctx.body
    assert ctx.session is not None
    session, user = ctx.session
    provider = _provider(ctx, body.provider)
    if body.id_token is None:
        sealed = encrypt(purpose_key(ctx.context.secret, _LINK_PURPOSE), session["token"])
        link = {"userId": user["id"], "email": user["email"], "encryptedSessionToken": sealed}
        return await _authorization_answer(ctx, provider, body, {"link": link})
    profile = await _id_token_profile(ctx, provider, body.id_token)
    store = ctx.context.store
    tokens = _id_tokens(body.id_token, keep_refresh=True)
    existing = await store.find_account(provider.id, profile.account_id)
    if existing is not None and existing["userId"] == user["id"]:
        values = {
            "accessToken": stored_token(ctx, tokens.access_token),
            "refreshToken": stored_token(ctx, tokens.refresh_token),
            "idToken": tokens.id_token,
        }
        await store.update_account(existing["id"], {k: v for k, v in values.items() if v})
        await update_user_info_on_link(ctx, user["id"], profile)
        return {"url": "", "status": True, "redirect": False}
    if existing is not None:
        raise APIError(409, Code.SOCIAL_ACCOUNT_ALREADY_LINKED)
    try:
        await link_account(
            ctx, provider, profile, tokens, user_id=user["id"], user_email=user["email"]
        )
    except AccountNotCreated:
        raise APIError(417, Code.LINKING_FAILED) from None
    except OAuthFailure as failure:
        if failure.code == "email_does_not_match":
            raise APIError(401, Code.LINKING_DIFFERENT_EMAILS_NOT_ALLOWED) from None
        raise APIError(401, Code.LINKING_NOT_ALLOWED) from None
    return {"url": "", "status": True, "redirect": False}


# -- GET|POST /callback/{id} ---------------------------------------------------------------

_CALLBACK_FIELDS = ("code", "error", "device_id", "error_description", "state", "user", "iss")


def _with_params(url: str, params: dict[str, str]) -> str:
    return f"{url}{'&' if '?' in url else '?'}{urlencode(params)}"


def _fields(raw: Any) -> dict[str, str] | None:
    """The callback's fields, all strings; None when one is not a string."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        return None
    out: dict[str, str] = {}
    for name in _CALLBACK_FIELDS:
        value = raw.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            return None
        out[name] = value
    return out


async def callback(ctx: Ctx[Any]) -> RawResponse:
    default_error_url = f"{ctx.base_url}/error"
    provider_id = ctx.params["id"]
    query = _fields(ctx.query)
    if ctx.method == "POST":
        # response_mode=form_post: back to the GET form, so that SameSite=Lax cookies
        # (the state's) are sent.
        body = _fields(ctx.raw_body if isinstance(ctx.raw_body, dict) else None)
        if body is None or query is None:
            raise Redirect(_with_params(default_error_url, {"error": "invalid_callback_request"}))
        merged = {**body, **query}
        # Only the callback's own fields, in their order, as better-auth re-emits them.
        fields = {name: merged[name] for name in _CALLBACK_FIELDS if merged.get(name)}
        # quoted: the id arrives decoded from the path, and a header cannot carry
        # control characters (real provider ids are unchanged by it)
        back = f"{ctx.base_url}/callback/{quote(provider_id, safe='')}"
        raise Redirect(f"{back}?{urlencode(fields)}")
    if query is None:
        raise Redirect(_with_params(default_error_url, {"error": "invalid_callback_request"}))
    state = query.get("state")
    if not state:
        raise Redirect(_with_params(default_error_url, {"error": "state_not_found"}))
    try:
        data = await finish(ctx, state)
    except StateError as error:
        raise Redirect(
            _with_params(error.error_url or default_error_url, {"error": error.code})
        ) from None
    error_url = data.get("errorURL") or default_error_url

    def fail(code: str, description: str | None = None) -> Redirect:
        params = {"error": code}
        if description:
            params["error_description"] = description
        return Redirect(_with_params(error_url, params))

    if query.get("error"):
        raise fail(query["error"], query.get("error_description"))
    code = query.get("code")
    if not code:
        raise fail("no_code")
    provider = ctx.context.social_providers.get(provider_id)
    if provider is None or not provider.enabled:
        raise fail("oauth_provider_not_found")
    client = ctx.context.oauth
    nonce = data.get("idTokenNonce")
    try:
        endpoints = await client.endpoints(provider)
        issuer = query.get("iss")
        if issuer is not None and endpoints.issuer and issuer not in endpoints.issuer:
            raise fail("issuer_mismatch")  # RFC 9207: another server's code
        if provider.require_nonce and not nonce:
            raise fail("nonce_binding_missing")
        tokens = await client.exchange_code(
            provider,
            code=code,
            redirect_uri=_callback_uri(ctx, provider),
            code_verifier=data["codeVerifier"],
            now=ctx.context.now(),
        )
        profile = await _mapped(
            provider,
            await client.profile(provider, tokens, nonce=nonce if isinstance(nonce, str) else None),
        )
    except ProviderError as error:
        logger.warning("social sign-in with %s failed: %s", provider.id, error.detail)
        code_name = "invalid_code" if error.code == "refresh_failed" else error.code
        raise fail(code_name) from None
    callback_url = data["callbackURL"]
    link = data.get("link")
    if isinstance(link, dict):
        if not await _link_session_live(ctx, link):
            raise fail("unable_to_link_account")
        try:
            await link_account(
                ctx,
                provider,
                profile,
                tokens,
                user_id=str(link.get("userId")),
                user_email=str(link.get("email") or ""),
            )
        except OAuthFailure as failure:
            raise fail(failure.code, failure.message) from None
        raise Redirect(callback_url)
    if not profile.user.get("email"):
        raise fail("email_not_found")
    try:
        signed_in = await sign_in_with(
            ctx,
            provider,
            profile,
            tokens,
            callback_url=callback_url,
            request_sign_up=data.get("requestSignUp") is True,
            scope=",".join(tokens.scopes),
            override_user_info=provider.override_user_info_on_sign_in,
        )
    except OAuthFailure as failure:
        raise fail(failure.code) from None
    new_user_url = data.get("newUserURL")
    raise Redirect(new_user_url if signed_in.is_register and new_user_url else callback_url)


async def _link_session_live(ctx: Ctx[Any], link: dict[str, Any]) -> bool:
    """The session that started the link is still the user's and unexpired when the
    provider sends the browser back."""
    sealed = link.get("encryptedSessionToken")
    if not isinstance(sealed, str):
        return False  # link-social always seals the session that asked: no seal, no link
    try:
        token = decrypt(purpose_key(ctx.context.secret, _LINK_PURPOSE), sealed)
    except DecryptionFailed:
        return False
    found = await ctx.context.store.find_session(token)
    if found is None:
        return False
    session = found[0]
    return str(session["userId"]) == str(link.get("userId")) and (
        session["expiresAt"] > ctx.context.now()
    )


ENDPOINTS = (
    Endpoint(
        "/sign-in/social",
        ("POST",),
        sign_in_social,
        name="sign_in_social",
        body=SignInSocialBody,
        tags=("sign-in",),
        rate_limit=CREDENTIAL_RULE,
        operation_id="socialSignIn",
    ),
    Endpoint(
        "/callback/{id}",
        ("GET", "POST"),
        callback,
        name="callback_oauth",
        media_types=JSON_OR_FORM,
        tags=("sign-in",),
    ),
    Endpoint(
        "/link-social",
        ("POST",),
        link_social,
        name="link_social",
        body=SocialBody,
        use=(sensitive_session,),
        operation_id="linkSocialAccount",
    ),
)
