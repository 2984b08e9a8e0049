"""Invitation mails: what `send_invitation_email(data, request)` receives, and a ready
sender that mails the invitation link with a `Mailer` (ConsoleMailer, SMTPMailer).

    organization(send_invitation_email=invitation_sender(SMTPMailer.from_env()))

better-auth sends no mail itself: it calls `sendInvitationEmail({id, role, email,
organization, inviter: {...member, user}, invitation}, request)`, and its documentation
builds the link as `${appURL}/accept-invitation/${data.id}`, the page where the app calls
`organization.acceptInvitation({invitationId})`. `invitation_sender` does the same; the
link is configurable (`accept_url`).
"""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ...._callbacks import call_user
from ...email import EmailMessage, Mailer

__all__ = [
    "DEFAULT_ACCEPT_URL",
    "InvitationEmail",
    "InvitationSender",
    "invitation_sender",
]

DEFAULT_ACCEPT_URL = "{base_url}/accept-invitation/{id}"
"""better-auth's documented link: the app's URL, then `/accept-invitation/<invitation id>`."""


@dataclass(frozen=True, slots=True)
class InvitationEmail:
    """better-auth's `sendInvitationEmail` data: `id`, `role` (stored form, "admin,member"),
    `email` (lower-cased), `organization` (the row), `inviter` (the inviting member with
    its `user`) and `invitation` (the row).

    `base_url` is Bastion's addition: the Identity's public URL without its base path
    (`http://localhost:3000` for an API at `http://localhost:3000/api/auth`), for links.
    """

    id: str
    role: str
    email: str
    organization: Mapping[str, Any]
    inviter: Mapping[str, Any]
    invitation: Mapping[str, Any]
    base_url: str = ""


InvitationSender = Callable[[InvitationEmail, Any], Awaitable[None] | None]
"""`(data, request) -> None`, sync or async; `request` is None for in-process calls."""

AcceptURL = str | Callable[[InvitationEmail], str]


def accept_link(accept_url: AcceptURL, data: InvitationEmail) -> str:
    """The link to put in the mail: a template with `{id}` and `{base_url}` (and
    `{organization_id}`), or a function of the data."""
    if callable(accept_url):
        return accept_url(data)
    return accept_url.format(
        id=data.id, base_url=data.base_url, organization_id=data.organization.get("id", "")
    )


def _check(accept_url: AcceptURL, app_name: str) -> None:
    if not app_name.strip() or "\r" in app_name or "\n" in app_name:
        raise ValueError("app_name must be one non-empty line")
    if isinstance(accept_url, str):
        if "{id}" not in accept_url:
            raise ValueError("accept_url must contain {id}: the invitation's id is the link")
        try:  # an unknown placeholder fails now, not on the first invitation
            accept_url.format(id="x", base_url="", organization_id="")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"accept_url is not a valid template: {exc}") from None


def compose_invitation(data: InvitationEmail, url: str, app_name: str) -> EmailMessage:
    """The mail: who invites, to which organization, with which role, and the link."""
    inviter_user = data.inviter.get("user") or {}
    inviter = str(inviter_user.get("name") or "").strip()
    inviter_email = str(inviter_user.get("email") or "").strip()
    who = f"{inviter} ({inviter_email})" if inviter and inviter_email else inviter or inviter_email
    organization = str(data.organization.get("name") or "an organization")
    role = ", ".join(r for r in data.role.split(",") if r) or "member"
    intro = (
        f"{who or 'Someone'} invited you to join {organization} on {app_name} "
        f"as {role}. To accept the invitation, open this link:"
    )
    outro = "If you do not want to join, you can ignore this email."
    text = f"Hello,\n\n{intro}\n\n{url}\n\n{outro}\n\n{app_name}\n"
    esc_url = html.escape(url)
    body = (
        "<!DOCTYPE html>\n"
        '<html><body style="font-family: sans-serif; line-height: 1.5">\n'
        "<p>Hello,</p>\n"
        f"<p>{html.escape(intro)}</p>\n"
        f'<p><a href="{esc_url}">Accept the invitation</a></p>\n'
        f"<p>Or copy this link into your browser:<br>{esc_url}</p>\n"
        f"<p>{html.escape(outro)}</p>\n"
        f"<p>{html.escape(app_name)}</p>\n"
        "</body></html>\n"
    )
    subject = f"You are invited to join {organization} on {app_name}"
    return EmailMessage(to=data.email, subject=" ".join(subject.split()), text=text, html=body)


def invitation_sender(
    mailer: Mailer, *, accept_url: AcceptURL = DEFAULT_ACCEPT_URL, app_name: str = "Bastion"
) -> Callable[[InvitationEmail, Any], Awaitable[None]]:
    """A `send_invitation_email` callback that mails the invitation link with `mailer`.

    `accept_url`: the page of your app that accepts invitations, as a template
    (`"https://app.example.com/invite/{id}"`; `{base_url}` is the Identity's URL) or a
    function `(data) -> str`. Default: `{base_url}/accept-invitation/{id}`, as better-auth
    documents it."""
    _check(accept_url, app_name)

    async def send(data: InvitationEmail, request: Any = None) -> None:
        url = accept_link(accept_url, data)
        await mailer.send(compose_invitation(data, url, app_name))

    return send


async def call_invitation_sender(
    sender: InvitationSender, data: InvitationEmail, request: Any
) -> None:
    """Run the callback (sync in a worker thread, async awaited)."""
    await call_user(sender, data, request)
