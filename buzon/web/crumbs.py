"""Breadcrumbs along the seed's path: Home > Settings > Email / Notifications > ..."""

from __future__ import annotations

from django.urls import reverse
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

Crumb = tuple[str | Promise, str | None]


def home() -> list[Crumb]:
    return [(_("Home"), reverse("web:home"))]


def email_settings() -> list[Crumb]:
    return [*home(), (_("Settings"), reverse("web:settings")), (_("Email / Notifications"), reverse("web:settings"))]


def accounts(*more: Crumb) -> list[Crumb]:
    return [*email_settings(), (_("Email Account"), reverse("web:account-list")), *more]


def domains(*more: Crumb) -> list[Crumb]:
    return [*email_settings(), (_("Email Domain"), reverse("web:domain-list")), *more]


def troubleshooting(*more: Crumb) -> list[Crumb]:
    return [*email_settings(), (_("Troubleshooting"), reverse("web:troubleshooting")), *more]
