"""Email templates: subject and body with {{ placeholders }} from the record and its customer.

Templates use Django's template language on a separate engine: the subject and text are rendered
without HTML escaping (they are not HTML), the HTML body with escaping (a customer's name cannot
inject markup). Methods that change data (`alters_data`) are never called by the template language,
so a template cannot delete or save anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import models
from django.template import Context, Engine, TemplateSyntaxError
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from buzon.outbound.models import EmailTemplate

_plain = Engine(autoescape=False, libraries={}, builtins=["django.template.defaultfilters"])
_html = Engine(autoescape=True, libraries={}, builtins=["django.template.defaultfilters"])

#: Placeholders offered in the editor (the record's and customer's other fields work too).
PLACEHOLDERS = ["record", "record.pk", "record.subject", "customer.name", "customer.primary_email", "user.first_name",
                "user.get_full_name", "account.email_address", "account.display_name"]


class TemplateError(ValueError):
    """A template that does not parse; the message names the problem in plain words."""


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def context_for(record: models.Model | None = None, user: Any = None, account: Any = None,
                extra: dict[str, Any] | None = None) -> dict[str, Any]:
    customer = getattr(record, "customer", None)
    if customer is None and record is not None and record.__class__.__name__ == "Customer":
        customer = record
    return {"record": record, "customer": customer, "user": user, "account": account, **(extra or {})}


def render_text(source: str, context: dict[str, Any], html: bool = False) -> str:
    try:
        template = (_html if html else _plain).from_string(source)
    except TemplateSyntaxError as exc:
        raise TemplateError(_("The template has an error: %(error)s") % {"error": exc}) from exc
    # Template.render marks its output safe; this output is data (a record's fields may hold markup),
    # so it goes back as a plain str and is escaped wherever a page shows it.
    return str.__str__(template.render(Context(context, autoescape=html)))


def render(template: EmailTemplate, context: dict[str, Any]) -> Rendered:
    subject = " ".join(render_text(template.subject, context).split())  # a subject is one line
    return Rendered(subject=subject, text=render_text(template.body, context),
                    html=render_text(template.body_html, context, html=True) if template.body_html else "")


def find(key: str, language: str | None = None) -> EmailTemplate | None:
    """The template for `key` in `language` (default: the active one), else in any language."""
    language = (language or get_language() or "en")[:2]
    found = EmailTemplate.objects.filter(key=key, language=language).first()
    return found or EmailTemplate.objects.filter(key=key).order_by("language").first()


def render_key(key: str, *, language: str | None = None, **context: Any) -> Rendered | None:
    """Notifications: render template `key` if one exists (None lets the caller use its built-in text)."""
    template = find(key, language)
    if template is None:
        return None
    return render(template, context_for(**context))
