"""Template tags of the inbox pages that the shared layout needs too (the notification bell)."""

from __future__ import annotations

from typing import Any

from django import template

from buzon.crm import notifications

register = template.Library()
#: The bell counts unread notifications up to this many.
BELL_CAP = 100


@register.simple_tag(takes_context=True)
def unread_notifications(context: template.Context) -> int:
    """The signed-in user's unread notifications, up to BELL_CAP (the bell shows "99+" beyond 99): one
    bounded COUNT per page, none for anonymous pages."""
    request: Any = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return 0
    return notifications.unread_count(user, up_to=BELL_CAP)
