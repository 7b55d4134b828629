"""Template helpers for the layout: the sidebar and form fields rendered the Bootstrap way."""

from __future__ import annotations

from typing import Any

from django import forms, template
from django.http import HttpRequest
from django.utils.translation import gettext as _

from buzon.crm import roles
from buzon.web import nav
from buzon.web.help_links import error_items

register = template.Library()


@register.inclusion_tag("web/_sidebar.html", takes_context=True)
def sidebar(context: dict[str, Any]) -> dict[str, Any]:
    request: HttpRequest = context["request"]
    user = getattr(request, "user", None)
    return {"sections": nav.sidebar(request.path, is_staff=bool(user and user.is_staff),
                                    is_manager=roles.can_manage_any_agents(user))}


@register.filter
def widget_type(bound_field: forms.BoundField) -> str:
    """'checkbox', 'select', 'textarea' or 'input': which Bootstrap form markup the field needs."""
    widget = bound_field.field.widget
    if isinstance(widget, forms.CheckboxInput):
        return "checkbox"
    if isinstance(widget, forms.Select):
        return "select"
    if isinstance(widget, forms.Textarea):
        return "textarea"
    return "input"


@register.filter
def errors_with_help(bound_field: forms.BoundField) -> list[tuple[str, str | None]]:
    """The field's errors as (text, troubleshooting URL or None)."""
    return error_items(bound_field.errors.as_data())


@register.filter
def form_errors_with_help(form: forms.BaseForm) -> list[tuple[str, str | None]]:
    """Errors not tied to one field, with their troubleshooting links."""
    return error_items(form.non_field_errors().as_data())


@register.filter
def display_value(bound_field: forms.BoundField) -> str:
    """A field's current value as a reader sees it: choice labels, Yes/No, lists joined."""
    value = bound_field.value()
    if isinstance(bound_field.field.widget, forms.CheckboxInput) or isinstance(value, bool):
        return str(_("Yes")) if value else str(_("No"))
    if value in (None, "", []):
        return ""
    choices = getattr(bound_field.field, "choices", None)
    if choices is not None:
        for choice_value, label in choices:
            if str(choice_value) == str(value):
                return str(label)
    prepared = bound_field.field.prepare_value(value)
    return ", ".join(map(str, prepared)) if isinstance(prepared, list | tuple) else str(prepared)
