"""The audit log: who changed which setting of which email account, email domain or store, and when;
who enrolled or removed a second factor, or signed in with a recovery code (record_second_factor);
and who created, changed or deactivated a person or an agent group (record_people_change, sent by
buzon.crm.people for the web UI and the API alike).

Entries are written on the models' save/delete (signals connected in MailboxesConfig.ready), so every
face that changes settings is covered: the mailboxes services (web UI and API), the store pages and
API, the admin and management commands. The acting user comes from the request being served
(`AuditMiddleware` keeps it; DRF sets the token's user on the same request once it authenticates),
or from `acting_as(user)` for code outside a request; without either the entry says "system".

Secrets are never written: a changed password or OAuth refresh token (a new sign-in with the provider)
is recorded as "changed" only; the hourly access-token refresh is not a settings change.
Fields the sync engine and probe keep up to date (state, last error, timestamps) are not settings
and are not logged, so syncing never fills the log (nor pays a read per save).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

from django.db import models
from django.db.models.signals import post_delete, post_save, pre_save
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext_lazy as _

#: Encrypted fields: their values never reach the log.
SECRET_FIELDS = frozenset({"password_encrypted", "oauth_refresh_token_encrypted"})
#: Written by sync, probe and OAuth refresh, not by someone changing a setting.
NOT_SETTINGS = frozenset({
    "id", "state", "last_error", "last_error_code", "last_synced_at", "last_contact_at", "created_at",
    "updated_at", "oauth_access_token_encrypted", "oauth_expires_at", "last_error_state",
})
#: Fields whose model name is a storage detail: the label a reader of the log sees instead.
FIELD_LABELS = {
    "password_encrypted": _("password"),
    "oauth_refresh_token_encrypted": _("sign-in with the provider"),
    "template_role": _("predefined account"),
    "is_system": _("configured by the implementer"),
}
TARGETS = {"mailboxes.emailaccount": "account", "mailboxes.emaildomain": "domain", "crm.store": "store"}
#: What a user's second-factor entries (target "user") name: the device never has values shown.
USER_FIELDS = {"two_factor": _("two-step sign-in (authenticator app)"), "recovery_codes": _("unused recovery codes"),
               # People (buzon.crm.people): a person's account, roles and agent settings.
               "username": _("username"), "first_name": _("first name"), "last_name": _("last name"),
               "email": _("email address"), "language": _("language"), "is_active": _("active"),
               "is_admin": _("administrator"), "is_supervisor": _("supervisor"), "stores": _("stores"),
               "groups": _("agent groups"), "status": _("status"), "invitation": _("invitation to set a password")}
#: What an agent group's entries (target "group") name.
GROUP_FIELDS = {"name": _("name"), "store": _("store"), "agents": _("agents")}
#: What a customer card's entries (target "customer": buzon.crm.customers, buzon.workspace.customer_merge) name.
CUSTOMER_FIELDS = {"name": _("name"), "addresses": _("email addresses"), "agent": _("assigned agent"),
                   "merged": _("merged into another card")}

_request: ContextVar[HttpRequest | None] = ContextVar("buzon_audit_request", default=None)
_actor: ContextVar[Any] = ContextVar("buzon_audit_actor", default=None)


class AuditMiddleware:
    """Remembers the request being served, so a save deep inside a service knows who asked for it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = _request.set(request)
        try:
            return self.get_response(request)
        finally:
            _request.reset(token)


@contextlib.contextmanager
def acting_as(user: Any) -> Iterator[None]:
    """Attribute changes made inside the block to `user` (for code that runs outside a request)."""
    token = _actor.set(user)
    try:
        yield
    finally:
        _actor.reset(token)


def current_user() -> Any:
    """The signed-in (or token-authenticated) user changing things now, or None."""
    user = _actor.get()
    if user is None:
        request = _request.get()
        user = getattr(request, "user", None) if request is not None else None
    return user if user is not None and getattr(user, "is_authenticated", False) else None


def _label(instance: models.Model) -> str:
    return f"{instance._meta.app_label}.{instance._meta.model_name}"


def _settings_fields(model: type[models.Model]) -> list[models.Field[Any, Any]]:
    return [f for f in model._meta.concrete_fields if f.name not in NOT_SETTINGS or f.name in SECRET_FIELDS]


def _value(instance: models.Model, field: models.Field[Any, Any]) -> Any:
    if field.is_relation:
        related = getattr(instance, field.name, None)
        return str(related) if related is not None else None
    value = field.value_from_object(instance)
    try:
        json.dumps(value)
    except TypeError:
        return str(value)
    return value


def _snapshot(instance: models.Model) -> dict[str, Any]:
    return {f.name: _value(instance, f) for f in _settings_fields(type(instance)) if f.name not in SECRET_FIELDS}


def _secrets(instance: models.Model) -> dict[str, str]:
    return {f.name: getattr(instance, f.name, "") or "" for f in type(instance)._meta.concrete_fields
            if f.name in SECRET_FIELDS}


def _diff(model: type[models.Model], old: dict[str, Any], new: dict[str, Any],
          old_secrets: dict[str, str], new_secrets: dict[str, str]) -> list[dict[str, Any]]:
    changes = []
    for field in _settings_fields(model):
        if field.name in SECRET_FIELDS:
            if old_secrets.get(field.name, "") != new_secrets.get(field.name, ""):
                changes.append({"field": field.name, "secret": True})
        elif old.get(field.name) != new.get(field.name):
            changes.append({"field": field.name, "old": old.get(field.name), "new": new.get(field.name)})
    return changes


def record(instance: models.Model, action: str, changes: list[dict[str, Any]]) -> None:
    from buzon.mailboxes.models import AuditEntry

    user = current_user()
    AuditEntry.objects.create(
        actor=user, actor_name=user.get_username() if user is not None else "",
        action=action, target_type=TARGETS[_label(instance)], target_id=instance.pk,
        target_label=str(instance)[:300], changes=changes,
    )


def record_second_factor(user: Any, action: str, changes: list[dict[str, Any]]) -> None:
    """A change to ``user``'s second factor: a device enrolled or removed ("created", "deleted"),
    recovery codes made anew ("changed") or one of them used to sign in ("used")."""
    from buzon.mailboxes.models import AuditEntry

    actor = current_user() or user
    AuditEntry.objects.create(
        actor=actor, actor_name=actor.get_username(), action=action, target_type="user", target_id=user.pk,
        target_label=str(user.get_username())[:300], changes=changes,
    )


def record_people_change(sender: Any, actor: Any, target: str, target_id: int, label: str, action: str,
                         changes: list[dict[str, Any]], **kwargs: Any) -> None:
    """A person or an agent group changed (buzon.crm.people.changed): who did it, and what."""
    from buzon.mailboxes.models import AuditEntry

    actor = actor if actor is not None and getattr(actor, "is_authenticated", False) else current_user()
    AuditEntry.objects.create(
        actor=actor, actor_name=actor.get_username() if actor is not None else "", action=action,
        target_type=target, target_id=target_id, target_label=label[:300], changes=changes,
    )


def _pre_save(sender: type[models.Model], instance: models.Model, raw: bool = False,
              update_fields: frozenset[str] | None = None, **kwargs: Any) -> None:
    if raw or (update_fields is not None and not (set(update_fields) - (NOT_SETTINGS - SECRET_FIELDS))):
        return
    previous = sender._default_manager.filter(pk=instance.pk).first() if instance.pk else None
    instance._audit_before = (  # type: ignore[attr-defined]
        (_snapshot(previous), _secrets(previous)) if previous is not None else None
    )


def _post_save(sender: type[models.Model], instance: models.Model, created: bool, raw: bool = False,
               **kwargs: Any) -> None:
    if raw or not hasattr(instance, "_audit_before"):
        return
    before = instance.__dict__.pop("_audit_before")
    after, after_secrets = _snapshot(instance), _secrets(instance)
    if created or before is None:
        changes = _diff(sender, {}, after, {}, after_secrets)
        changes = [c for c in changes if c.get("secret") or c["new"] not in (None, "", [], False)]
        record(instance, "created", changes)
        return
    changes = _diff(sender, before[0], after, before[1], after_secrets)
    if changes:
        record(instance, "changed", changes)


def _post_delete(sender: type[models.Model], instance: models.Model, **kwargs: Any) -> None:
    record(instance, "deleted", [])


def connect_signals() -> None:
    from django.apps import apps

    from buzon.crm import people

    people.changed.connect(record_people_change, dispatch_uid="buzon-audit-people")

    for label in TARGETS:
        model = apps.get_model(label)
        uid = f"buzon-audit-{label}"
        pre_save.connect(_pre_save, sender=model, dispatch_uid=uid)
        post_save.connect(_post_save, sender=model, dispatch_uid=uid)
        post_delete.connect(_post_delete, sender=model, dispatch_uid=uid)


def _field_label(target_type: str, name: str) -> str:
    from django.apps import apps

    if target_type == "user":
        return str(USER_FIELDS.get(name, name))
    if target_type == "group":
        return str(GROUP_FIELDS.get(name, name))
    if target_type == "customer":
        return str(CUSTOMER_FIELDS.get(name, name))
    if name in FIELD_LABELS:
        return str(FIELD_LABELS[name])
    label = next((key for key, value in TARGETS.items() if value == target_type), None)
    if label is None:
        return name
    try:
        return str(apps.get_model(label)._meta.get_field(name).verbose_name)
    except LookupError:
        return name
    except Exception:  # noqa: BLE001 - a field removed since the entry was written keeps its name
        return name


def described_changes(target_type: str, changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Changes with each field's name in the reader's language; secrets carry no values at all."""
    rows = []
    for change in changes:
        name = str(change.get("field", ""))
        row: dict[str, Any] = {"field": name, "label": _field_label(target_type, name)}
        if change.get("secret"):
            row["secret"] = True
        else:
            row.update(secret=False, old=change.get("old"), new=change.get("new"))
        rows.append(row)
    return rows
