"""In-app notifications (the bell): created once per (user, kind, key), counted while unread."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from buzon.crm.models import Notification


def notify(user: Any, kind: str, key: str, text: str, url: str = "") -> Notification | None:
    """Create the notification unless it exists already; returns it only when newly created."""
    if Notification.objects.filter(user=user, kind=kind, key=key).exists():
        return None
    try:
        with transaction.atomic():
            return Notification.objects.create(user=user, kind=kind, key=key[:100], text=text, url=url[:500])
    except IntegrityError:  # another worker created it at the same moment
        return None


def unread_count(user: Any, *, up_to: int | None = None) -> int:
    """The user's unread notifications; with ``up_to``, counted no further than that (the bell on
    every page shows "99+" rather than read all of someone's unread history)."""
    rows = Notification.objects.filter(user=user, read_at__isnull=True)
    return (rows[:up_to] if up_to is not None else rows).count()


def mark_read(user: Any, ids: list[int] | None = None) -> int:
    rows = Notification.objects.filter(user=user, read_at__isnull=True)
    if ids is not None:
        rows = rows.filter(pk__in=[i for i in ids if 0 < i <= 2**63 - 1])  # a bigger number is no row's
    return rows.update(read_at=timezone.now())
