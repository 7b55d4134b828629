"""What the pipeline tells people (seed 002's two notifications, seed 000 §3.3's unreplied alert), in
each reader's own language.

An in-app notification is stored as its kind and parameters (``NotificationDetail``) and rendered
with gettext when read, under the reader's language: the same row reads "Nuevo correo de …" to a
Spanish user and "New email from …" to an English one, whatever language the worker ran in. A
notification mail has one reader, so it is rendered once, under its recipient's language.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.db import transaction
from django.utils import translation
from django.utils.translation import gettext, gettext_noop

from buzon.core.language import language_of
from buzon.crm.models import Notification
from buzon.crm.notifications import notify
from buzon.inbound.models import NotificationDetail

#: The text of each kind, untranslated; ``%(name)s`` come from the notification's parameters.
TEXTS: dict[str, str] = {
    Notification.Kind.CUSTOMER_ASSIGNED: gettext_noop("Customer %(customer)s has been assigned to you."),
    Notification.Kind.NEW_EMAIL: gettext_noop("New email from %(sender)s: %(subject)s"),
    Notification.Kind.UNREPLIED: gettext_noop(
        "No reply yet to the email from %(sender)s received at %(account)s: %(subject)s"),
}


def render(kind: str, params: Mapping[str, Any]) -> str:
    """The text of a notification of ``kind`` in the active language."""
    msgid = TEXTS.get(kind)
    if msgid is None:
        return ""
    try:
        return gettext(msgid) % params
    except (KeyError, ValueError, TypeError):
        return gettext(msgid)


def text_of(notification: Notification) -> str:
    """What the reader sees, in the active language (their own, on their pages and API requests)."""
    try:
        detail = notification.detail  # type: ignore[attr-defined]
    except NotificationDetail.DoesNotExist:
        return notification.text
    return render(notification.kind, detail.params) or notification.text


def with_texts(notifications: Iterable[Notification]) -> list[Notification]:
    """The rows with ``shown_text`` set for templates (select_related("detail") saves a query each)."""
    rows = list(notifications)
    for row in rows:
        row.shown_text = text_of(row)  # type: ignore[attr-defined]
    return rows


def send(user: Any, kind: str, key: str, params: Mapping[str, Any], url: str = "") -> Notification | None:
    """Create the notification once per (user, kind, key); returns it only when newly created."""
    with translation.override(language_of(user)):
        text = render(kind, params)
    with transaction.atomic():
        created = notify(user, kind, key, text, url)
        if created is not None:
            NotificationDetail.objects.create(notification=created, params=dict(params))
    return created


def mail_text(user: Any, kind: str, params: Mapping[str, Any]) -> str:
    """The notification's text for a mail to ``user``: in their language."""
    with translation.override(language_of(user)):
        return render(kind, params)
