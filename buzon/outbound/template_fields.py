"""What an email template may name: an allow-list of fields, given to the template as plain values.

Templates are written by administrators and rendered into mail that leaves the building, so they
never see a model instance: `values_for()` copies the allow-listed fields of the record, its
customer, the user and the account into `FieldValues` (strings and numbers, nothing callable), and
`problems()` refuses, when a template is saved, any variable, attribute, tag or filter outside the
lists below, naming it. A template saved before these rules existed still renders only the
allow-listed values (anything else is empty), and `problems()` reports what it names.
"""

from __future__ import annotations

import datetime
import decimal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

from django.template import Engine, Library, TemplateSyntaxError, defaultfilters, defaulttags
from django.template.base import FilterExpression, Lexer, Node, TokenType, Variable
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

#: Plain values a template may be given (anything else is dropped, never rendered).
PLAIN_TYPES = (str, int, float, bool, decimal.Decimal, datetime.date, datetime.datetime, type(None))


@dataclass(frozen=True)
class Field:
    path: str  # as written in a template: "record.subject"
    help: str | Promise
    value: Callable[[Any], Any]


def _text(obj: Any, attribute: str) -> Any:
    """A model field read as a plain value ("" when the model has no such field, or it is not plain)."""
    found = getattr(obj, attribute, "")
    return found if isinstance(found, PLAIN_TYPES) else ""


def _status(record: Any) -> str:
    display = getattr(record, "get_status_display", None)
    return str(display()) if callable(display) else ""


def _user_name(user: Any) -> str:
    return str(user.get_full_name() or user.get_username())


#: Top-level name -> (what it is, what `{{ name }}` alone shows, its fields). The editor lists these.
GROUPS: dict[str, tuple[str | Promise, Callable[[Any], str], list[Field]]] = {
    "record": (gettext_lazy("The record the mail is about (ticket, job applicant, customer)"), str, [
        Field("record.pk", gettext_lazy("its number"), lambda r: r.pk),
        Field("record.id", gettext_lazy("its number"), lambda r: r.pk),
        Field("record.subject", gettext_lazy("its subject"), lambda r: _text(r, "subject")),
        Field("record.name", gettext_lazy("its name (job applicants, customers)"), lambda r: _text(r, "name")),
        Field("record.email", gettext_lazy("its email address (job applicants)"), lambda r: _text(r, "email")),
        Field("record.status", gettext_lazy("its status (tickets)"), _status),
    ]),
    "customer": (gettext_lazy("The record's customer: name, or address"), str, [
        Field("customer.name", gettext_lazy("the customer's name"), lambda c: c.name),
        Field("customer.primary_email", gettext_lazy("the customer's first email address"),
              lambda c: c.primary_email),
    ]),
    "user": (gettext_lazy("The person sending: full name, or user name"), _user_name, [
        Field("user.first_name", gettext_lazy("first name"), lambda u: u.first_name),
        Field("user.last_name", gettext_lazy("last name"), lambda u: u.last_name),
        Field("user.get_full_name", gettext_lazy("full name"), lambda u: u.get_full_name()),
        Field("user.username", gettext_lazy("user name"), lambda u: u.get_username()),
        Field("user.email", gettext_lazy("email address"), lambda u: u.email),
    ]),
    "account": (gettext_lazy("The sending email account: its address"), lambda a: a.email_address, [
        Field("account.email_address", gettext_lazy("the account's address"), lambda a: a.email_address),
        Field("account.display_name", gettext_lazy("the account's display name"), lambda a: a.display_name),
    ]),
    "agent": (gettext_lazy("In notifications: the agent's name"), str, []),
}

#: Every name a template may use, in the editor's order: "record", "record.pk", ...
ALLOWED: list[str] = [p for name, (_h, _l, fields) in GROUPS.items() for p in (name, *(f.path for f in fields))]
_FIELDS = {f.path: f for _h, _l, fields in GROUPS.values() for f in fields}

#: Tags and filters that only format the plain values (none reaches an object, loads, includes,
#: dumps the context or turns escaping off). The end tags of these are allowed with them.
ALLOWED_TAGS = ["if", "firstof", "now", "comment", "spaceless", "templatetag"]
_END_TAGS = {"elif", "else", "endif", "endcomment", "endspaceless"}
ALLOWED_FILTERS = ["capfirst", "cut", "date", "default", "default_if_none", "escape", "first", "floatformat",
                   "last", "length", "linebreaks", "linebreaksbr", "lower", "slugify", "time", "title",
                   "truncatechars", "truncatewords", "upper", "urlencode", "wordwrap", "yesno"]

register = Library()  # the only tags and filters the rendering engines know
for _name in ALLOWED_TAGS:
    register.tag(_name, defaulttags.register.tags[_name])
for _name in ALLOWED_FILTERS:
    register.filters[_name] = defaultfilters.register.filters[_name]


class MailEngine(Engine):
    """Django's template engine with none of its default tags and filters: only the allowed ones."""

    default_builtins: ClassVar[list[str]] = []


def engine(autoescape: bool) -> Engine:
    return MailEngine(autoescape=autoescape, libraries={}, builtins=["buzon.outbound.template_fields"])


class FieldValues:
    """One object's allow-listed fields: `{{ record }}` shows its label, `{{ record.subject }}` a field.

    Only item lookup reaches a value; it has no public attribute or method a template could call.
    """

    __slots__ = ("_label", "_values")

    def __init__(self, label: str, values: dict[str, Any]) -> None:
        self._label = label
        self._values = values

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __str__(self) -> str:
        return self._label


def values_for(name: str, obj: Any) -> Any:
    """The plain values of `obj` that templates may name under `name` (None when there is no object)."""
    if obj is None:
        return None
    if isinstance(obj, FieldValues):
        return obj
    _help, label, fields = GROUPS[name]
    if not fields:  # a value the caller computed (a notification's agent name): plain, or nothing
        return obj if isinstance(obj, PLAIN_TYPES) else None
    values = {}
    for field in fields:
        try:
            value = field.value(obj)
        except AttributeError:  # e.g. an anonymous user has no name
            value = ""
        values[field.path.split(".", 1)[1]] = value if isinstance(value, PLAIN_TYPES) else str(value)
    try:
        shown = str(label(obj))
    except AttributeError:
        shown = ""
    return FieldValues(shown, values)


def plain_context(context: dict[str, Any]) -> dict[str, Any]:
    """Keep only allow-listed names, each as plain values: what a template is rendered with."""
    return {name: values_for(name, value) for name, value in context.items() if name in GROUPS}


# --- checking a template's source -------------------------------------------------------------------

_FULL = Engine(libraries={})  # Django's own tags and filters: parses anything, so problems can be named
_FILTER_NAMES = {func: name for name, func in defaultfilters.register.filters.items()}


def problems(source: str) -> list[str]:
    """What in `source` a template may not use, each in a sentence naming it; [] when it is fine.

    Raises TemplateSyntaxError when the source does not parse.
    """
    found: list[str] = []
    for token in Lexer(source).tokenize():
        if token.token_type == TokenType.BLOCK:
            tag = token.split_contents()[0] if token.contents.strip() else ""
            if tag not in ALLOWED_TAGS and tag not in _END_TAGS and not tag.startswith("end"):
                found.append(_("The tag {%% %(tag)s %%} cannot be used in email templates.") % {"tag": tag})
    if found:
        return _unique(found)
    for expression in _expressions(_FULL.from_string(source).nodelist, 0):
        found.extend(_expression_problems(expression))
    return _unique(found)


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _expression_problems(expression: FilterExpression) -> Iterator[str]:
    yield from _variable_problems(expression.var)
    for func, args in expression.filters:
        name = _FILTER_NAMES.get(func, getattr(func, "__name__", "?"))
        if name not in ALLOWED_FILTERS:
            yield _("The filter |%(filter)s cannot be used in email templates.") % {"filter": name}
        for _lookup, arg in args:
            yield from _variable_problems(arg)


def _variable_problems(variable: object) -> Iterator[str]:
    if not isinstance(variable, Variable) or variable.lookups is None:
        return  # a literal: "text", 3
    path = ".".join(variable.lookups)
    if path not in GROUPS and path not in _FIELDS:
        yield _("%(field)s is not a field email templates can use.") % {"field": path}


def _expressions(obj: object, depth: int) -> Iterator[FilterExpression]:
    """Every expression in a parsed template: variables, tag arguments, `if` conditions, filter args."""
    if depth > 50:
        raise TemplateSyntaxError("template nested too deeply")
    if isinstance(obj, FilterExpression):
        yield obj
    elif isinstance(obj, list | tuple):
        for item in obj:
            yield from _expressions(item, depth + 1)
    elif isinstance(obj, Node) or type(obj).__module__.startswith("django.template"):
        for key, value in vars(obj).items() if hasattr(obj, "__dict__") else ():
            if key not in {"origin", "token", "source"}:
                yield from _expressions(value, depth + 1)
