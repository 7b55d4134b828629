"""Email templates: subject and body with {{ placeholders }} from the record and its customer.

Templates use Django's template language on a separate engine that knows only a few formatting tags
and filters (buzon.outbound.template_fields): the subject and text are rendered without HTML
escaping (they are not HTML), the HTML body with escaping (a customer's name cannot inject markup).
A template is given plain values only, copied from an allow-list of fields, never a model instance:
it cannot reach a password, a hash or a method. Saving one that names anything else is refused
(`check`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.db import models
from django.template import Context, TemplateSyntaxError
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from buzon.outbound import template_fields
from buzon.outbound.models import EmailTemplate

logger = logging.getLogger(__name__)

_plain = template_fields.engine(autoescape=False)
_html = template_fields.engine(autoescape=True)

#: Placeholders offered in the editor: the only names a template may use.
PLACEHOLDERS = template_fields.ALLOWED
TEMPLATE_PARTS = ("subject", "body", "body_html")


class TemplateError(ValueError):
    """A template that does not parse, or names what templates may not use; the message says which."""


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def context_for(record: models.Model | None = None, user: Any = None, account: Any = None,
                extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The plain values a template is rendered with (allow-listed fields only; see template_fields)."""
    customer = getattr(record, "customer", None)
    if customer is None and record is not None and record.__class__.__name__ == "Customer":
        customer = record
    given = {**(extra or {}), "record": record, "customer": customer, "user": user, "account": account}
    return template_fields.plain_context(given)


def check(source: str, html: bool = False) -> None:
    """Raise TemplateError naming the first problem: a syntax error, or a field, tag or filter that
    templates may not use. What saving a template (web form, API) calls."""
    try:
        found = template_fields.problems(source)
        if not found:
            (_html if html else _plain).from_string(source)
    except TemplateSyntaxError as exc:
        raise TemplateError(_("The template has an error: %(error)s") % {"error": exc}) from exc
    if found:
        raise TemplateError(" ".join(found))


def template_problems(template: EmailTemplate) -> dict[str, list[str]]:
    """Part -> problems, for a saved template (one saved before the allow-list existed may have some)."""
    found = {}
    for part in TEMPLATE_PARTS:
        try:
            listed = template_fields.problems(getattr(template, part) or "")
        except TemplateSyntaxError as exc:
            listed = [_("The template has an error: %(error)s") % {"error": exc}]
        if listed:
            found[part] = listed
    return found


def render_text(source: str, context: dict[str, Any], html: bool = False) -> str:
    try:
        template = (_html if html else _plain).from_string(source)
    except TemplateSyntaxError as exc:
        raise TemplateError(_("The template has an error: %(error)s") % {"error": exc}) from exc
    # Whatever the caller passed, the template sees plain allow-listed values only.
    plain = template_fields.plain_context(context)
    # Template.render marks its output safe; this output is data (a record's fields may hold markup),
    # so it goes back as a plain str and is escaped wherever a page shows it.
    return str.__str__(template.render(Context(plain, autoescape=html)))


def render(template: EmailTemplate, context: dict[str, Any]) -> Rendered:
    found = template_problems(template) if template.pk else {}
    if found:  # rendered all the same: names outside the allow-list come out empty
        logger.warning("email template %s (%s) names what templates may not use: %s", template.pk, template.key,
                       "; ".join(p for listed in found.values() for p in listed))
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
    try:
        return render(template, context_for(**context))
    except TemplateError:
        # A template saved before the rules existed, with a tag they refuse: the built-in text goes
        # out instead (the template list shows the problem to the administrators).
        logger.warning("email template %s (%s) cannot be rendered; using the built-in text", template.pk, key,
                       exc_info=True)
        return None
