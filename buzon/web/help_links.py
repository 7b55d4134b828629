"""Links from an error to the troubleshooting page that explains it."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.urls import reverse

from buzon.mailboxes.troubleshooting import troubleshooting_topic


def help_url(slug: str | None) -> str | None:
    """The troubleshooting page for this slug, or None when there is no such topic."""
    if not slug or troubleshooting_topic(slug) is None:
        return None
    return reverse("web:troubleshooting-topic", args=[slug])


def error_help_slug(error: ValidationError) -> str | None:
    """The services put a failure's help slug in the error's params (see mailboxes.services)."""
    params = getattr(error, "params", None) or {}
    slug = params.get("help_slug") if isinstance(params, dict) else None
    return slug or None


def error_items(errors: list[ValidationError]) -> list[tuple[str, str | None]]:
    """Each error as (plain-words text, help page URL or None)."""
    items = []
    for error in errors:
        for text in error.messages:
            items.append((text, help_url(error_help_slug(error))))
    return items
