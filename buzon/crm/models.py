"""Business records that mail feeds: stores, agents and their groups (customers and records follow)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Store(models.Model):
    """An online shop or branch: it owns email accounts, agents and customers."""

    name = models.CharField(_("name"), max_length=200, unique=True)
    email = models.EmailField(_("store email"), blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("store")
        verbose_name_plural = _("stores")

    def __str__(self) -> str:
        return self.name


class AgentGroup(models.Model):
    """Agents that new customers of an account are spread across."""

    name = models.CharField(_("name"), max_length=200, unique=True)
    store = models.ForeignKey(Store, verbose_name=_("store"), null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["name"]
        verbose_name = _("agent group")
        verbose_name_plural = _("agent groups")

    def __str__(self) -> str:
        return self.name


class Agent(models.Model):
    class Status(models.TextChoices):
        FREE = "free", _("Free")
        LUNCH = "lunch", _("At lunch")
        BUSY = "busy", _("Busy")
        BREAK = "break", _("On break")
        OFFLINE = "offline", _("Offline")

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="agent")
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.OFFLINE)
    online = models.BooleanField(_("logged in"), default=False)
    stores = models.ManyToManyField(Store, verbose_name=_("stores"), blank=True, related_name="agents")
    groups = models.ManyToManyField(AgentGroup, verbose_name=_("groups"), blank=True, related_name="agents")

    class Meta:
        verbose_name = _("agent")
        verbose_name_plural = _("agents")

    def __str__(self) -> str:
        return self.user.get_full_name() or self.user.get_username()
