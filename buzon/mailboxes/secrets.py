"""Every encrypted secret Buzón stores, so `buzon rotate-keys` can move all of them to the newest key.

Apps that store their own Fernet tokens register the field here (from their AppConfig.ready):

    from buzon.mailboxes import secrets
    secrets.register("outbound.DkimKey", "private_key_encrypted")
"""

from __future__ import annotations

from django.apps import apps
from django.db import transaction

from buzon.core import crypto

_FIELDS: set[tuple[str, str]] = {
    ("mailboxes.EmailAccount", "password_encrypted"),
    ("mailboxes.EmailAccount", "oauth_access_token_encrypted"),
    ("mailboxes.EmailAccount", "oauth_refresh_token_encrypted"),
}


def register(model_label: str, field_name: str) -> None:
    _FIELDS.add((model_label, field_name))


def registered() -> list[tuple[str, str]]:
    return sorted(_FIELDS)


class RotationFailed(Exception):
    """A secret could not be decrypted with any configured key; nothing was changed."""


def rotate_all() -> int:
    """Re-encrypt every stored secret under the newest key, all or nothing. Returns how many."""
    count = 0
    with transaction.atomic():
        for model_label, field_name in registered():
            model = apps.get_model(model_label)
            rows = model._default_manager.select_for_update().exclude(**{field_name: ""})
            for pk, token in rows.values_list("pk", field_name):
                try:
                    rotated = crypto.rotate(token)
                except crypto.SecretUnreadable as exc:
                    raise RotationFailed(f"{model_label} #{pk}: {exc}") from exc
                except Exception as exc:  # InvalidToken and friends: the same story for the operator
                    raise RotationFailed(f"{model_label} #{pk}: the stored secret cannot be decrypted") from exc
                model._default_manager.filter(pk=pk).update(**{field_name: rotated})
                count += 1
    return count
