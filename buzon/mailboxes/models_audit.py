"""AuditEntry: one change to an email account, email domain or store, or to a user's second factor
(written by mailboxes.audit)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class AuditEntry(models.Model):
    class Action(models.TextChoices):
        CREATED = "created", _("Created")
        CHANGED = "changed", _("Changed")
        DELETED = "deleted", _("Deleted")
        USED = "used", _("Used")  # a one-time recovery code

    class Target(models.TextChoices):
        ACCOUNT = "account", _("Email account")
        DOMAIN = "domain", _("Email domain")
        STORE = "store", _("Store")
        USER = "user", _("User")  # their second factor (buzon.web.twofactor), their roles (buzon.crm.people)
        GROUP = "group", _("Agent group")  # buzon.crm.agent_groups

    at = models.DateTimeField(_("when"), auto_now_add=True, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("who"), null=True, blank=True,
                              on_delete=models.SET_NULL, related_name="+")
    # Kept as text too, so the entry still names the user after the user is deleted.
    actor_name = models.CharField(_("who"), max_length=150, blank=True)
    action = models.CharField(_("action"), max_length=8, choices=Action.choices)
    target_type = models.CharField(_("what"), max_length=8, choices=Target.choices)
    target_id = models.PositiveIntegerField(null=True)
    target_label = models.CharField(_("which"), max_length=300)
    # [{"field": name, "old": value, "new": value}] or [{"field": name, "secret": true}] for secrets.
    changes = models.JSONField(_("changes"), default=list)

    class Meta:
        ordering = ["-at", "-id"]
        # The audit log's filters (a kind of setting; one setting), each ending in its order.
        indexes = [models.Index(fields=["target_type", "-at", "-id"], name="audit_type_at"),
                   models.Index(fields=["target_type", "target_id", "-at", "-id"], name="audit_target_at")]
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit log")

    def __str__(self) -> str:
        who = self.actor_name or "system"
        return f"{self.at:%Y-%m-%d %H:%M} {who} {self.action} {self.target_type} {self.target_label}"
