"""The invitation email: the link to set one's first password (buzon.core.invitations), in the new
person's own language, through the default outgoing account (as notifications go).

Without an email address or a default outgoing account nothing is sent and the reason is returned,
in the reader's language, so the page or API answer can say so next to the link to copy instead.
"""

from __future__ import annotations

from typing import Any

from django.utils import translation
from django.utils.translation import gettext as _

from buzon.core import invitations, public_url
from buzon.core.language import language_of
from buzon.messages.outbox import SendRefused, queue_outgoing


def mail(user: Any, link_path: str, inviter: Any = None) -> str:
    """Queue the invitation to ``user``; "" when queued, else why it was not (never raises)."""
    if not user.email:
        return _("%(username)s has no email address: copy the link and give it to them.") % {
            "username": user.get_username()}
    url = public_url.absolute(link_path)
    who = (inviter.get_full_name() or inviter.get_username()) if inviter is not None else "Buzón"
    with translation.override(language_of(user)):
        subject = _("Your Buzón account: choose your password")
        text = _("Hello %(name)s,\n\n%(inviter)s created a Buzón account for you. Your username is "
                 "%(username)s.\n\nChoose your password here (the link works once, for %(days)s days):\n\n"
                 "%(url)s\n") % {
            "name": user.get_full_name() or user.get_username(), "inviter": who, "username": user.get_username(),
            "days": invitations.lifetime().days, "url": url}
    try:
        queue_outgoing(to=[user.email], subject=subject, text=text, kind="notification")
    except SendRefused as refused:
        return _("The invitation email was not sent: %(why)s Copy the link and give it to them.") % {"why": refused}
    return ""
