"""API tokens: made, listed and revoked here, for the web page, the API and `buzon token` alike.

Only a hash of each token is stored (django-rest-knox; the model is settings.KNOX_TOKEN_MODEL,
`api.ApiToken`, reached through knox so this module imports no face). The plain token is returned
once by `create` and never again. A user's tokens are all revoked when their password changes,
whatever changed it (buzon.api.signals), and an inactive user's tokens are refused.
"""

from __future__ import annotations

import datetime
from typing import Any

from django.db import models
from django.utils import timezone
from knox.models import get_token_model

#: A token's last use is written at most this often (not one write per API request).
LAST_USED_GRANULARITY = datetime.timedelta(minutes=1)


def model() -> type[models.Model]:
    return get_token_model()  # type: ignore[no-any-return]


def create(user: Any, name: str = "") -> tuple[Any, str]:
    """(the stored row, the plain token): the plain token exists only in this return value."""
    row, token = model().objects.create(user=user, expiry=None, name=name.strip()[:100])  # type: ignore[attr-defined]
    return row, token


def of_user(user: Any) -> models.QuerySet[Any]:
    return model().objects.filter(user_id=user.pk).order_by("-created")  # type: ignore[attr-defined,no-any-return]


def revoke(user: Any, token_key: str) -> int:
    """Revoke the user's token named by `token_key` (its first characters); 0 when there is none."""
    count, _ = of_user(user).filter(token_key=token_key).delete()
    return int(count)


def revoke_all(user: Any) -> int:
    count, _ = of_user(user).delete()
    return int(count)


def mark_used(row: Any) -> None:
    now = timezone.now()
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_GRANULARITY:
        model().objects.filter(pk=row.pk).update(last_used_at=now)  # type: ignore[attr-defined]
        row.last_used_at = now
