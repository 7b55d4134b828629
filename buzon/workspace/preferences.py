"""What each person chose for their workspace, kept with their preferences (any device, any session)."""

from __future__ import annotations

from typing import Any

from buzon.core.models import UserPreferences


def inbox_filters(user: Any) -> dict[str, str]:
    """The inbox view and filters ``user`` chose last ({} for none)."""
    saved = UserPreferences.objects.filter(user_id=user.pk).values_list("inbox_filters", flat=True).first()
    return {str(k): str(v) for k, v in (saved or {}).items()}


def keep_inbox_filters(user: Any, chosen: dict[str, str]) -> None:
    UserPreferences.objects.update_or_create(user_id=user.pk, defaults={"inbox_filters": chosen})
