"""Invitations: how a person an administrator or supervisor created gets their first password.

Nobody types a password for someone else. A new user has no usable password and is marked
``must_set_password``; the invitation is a link to /welcome/<token>/ where they choose their own.
The token is signed with the site's secret key (django.core.signing), carries when it was made
(it expires after settings.INVITATION_DAYS) and a digest of the user's password state and latest
invitation time, so it works once: setting the password, or a newer invitation, makes it stale.

While ``must_set_password`` is set no page or API request of theirs is served (buzon.web.security,
buzon.api.authentication); a new invitation for an existing user also takes their password away.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac

from buzon.core.models import UserPreferences

SALT = "buzon.core.invitations"


def lifetime() -> dt.timedelta:
    return dt.timedelta(days=settings.INVITATION_DAYS)


def _state(user: Any, invited_at: dt.datetime | None) -> str:
    """Changes when the password is set or a newer invitation is made: a used or replaced link is stale."""
    stamp = invited_at.isoformat() if invited_at else ""
    return salted_hmac(SALT, f"{user.pk}:{user.password}:{user.is_active}:{stamp}").hexdigest()[:20]


def _invited_at(user: Any) -> dt.datetime | None:
    return UserPreferences.objects.filter(user_id=user.pk).values_list("invited_at", flat=True).first()


def make_token(user: Any) -> str:
    return signing.dumps({"u": user.pk, "s": _state(user, _invited_at(user))}, salt=SALT, compress=True)


def path(user: Any) -> str:
    return f"/welcome/{make_token(user)}/"


def invite(user: Any) -> str:
    """Mark ``user`` as invited now (links made before stop working) and return their link's path.

    Their password becomes unusable: until they choose one, nobody can sign in as them."""
    user.set_unusable_password()
    user.save(update_fields=["password"])
    UserPreferences.objects.update_or_create(
        user_id=user.pk, defaults={"must_set_password": True, "invited_at": timezone.now()})
    return path(user)


def is_pending(user: Any) -> bool:
    """Whether ``user`` must still set their password (cheap for those with a usable one: no query)."""
    if user is None or not getattr(user, "pk", None) or user.has_usable_password():
        return False
    return UserPreferences.objects.filter(user_id=user.pk, must_set_password=True).exists()


@dataclass(frozen=True)
class Checked:
    user: Any = None
    problem: str = ""  # "" (valid), "expired" or "invalid"


def check(token: str) -> Checked:
    """The pending user a token invites, or why it does not (never which user a bad token named)."""
    try:
        data = signing.loads(token, salt=SALT, max_age=lifetime())
    except signing.SignatureExpired:
        return Checked(problem="expired")
    except signing.BadSignature:
        return Checked(problem="invalid")
    if not isinstance(data, dict) or not isinstance(data.get("u"), int):
        return Checked(problem="invalid")
    user = get_user_model().objects.filter(pk=data["u"], is_active=True).first()
    if user is None or not is_pending(user):
        return Checked(problem="invalid")
    if not constant_time_compare(str(data.get("s", "")), _state(user, _invited_at(user))):
        return Checked(problem="invalid")
    return Checked(user=user)


def accept(user: Any, password: str) -> None:
    """The invited user chose ``password``: they may sign in and use Buzón from now on."""
    user.set_password(password)
    user.save(update_fields=["password"])
    UserPreferences.objects.filter(user_id=user.pk).update(must_set_password=False)
