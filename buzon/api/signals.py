"""A user's API tokens are revoked when their password changes, whatever changed it: the password
page, an administrator's reset, `buzon changepassword`, or code calling set_password() and save()."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models.signals import post_save, pre_save

from buzon.core import api_tokens

_CHANGED = "_buzon_password_changed"


def _note_password_change(sender: Any, instance: Any, update_fields: Any = None, **_kwargs: Any) -> None:
    if instance.pk is None or (update_fields is not None and "password" not in update_fields):
        return
    stored = sender._default_manager.filter(pk=instance.pk).values_list("password", flat=True).first()
    setattr(instance, _CHANGED, stored is not None and stored != instance.password)


def _revoke_tokens(sender: Any, instance: Any, **_kwargs: Any) -> None:
    if getattr(instance, _CHANGED, False):
        api_tokens.revoke_all(instance)
        setattr(instance, _CHANGED, False)


def connect() -> None:
    user_model = get_user_model()
    pre_save.connect(_note_password_change, sender=user_model, dispatch_uid="buzon-api-token-password")
    post_save.connect(_revoke_tokens, sender=user_model, dispatch_uid="buzon-api-token-revoke")
