"""Internal notes on the conversation page: the text escaped, its @mentions highlighted."""

from __future__ import annotations

from django import template
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

from buzon.workspace.mentions import MENTION

register = template.Library()


@register.filter
def with_mentions(text: str) -> SafeString:
    """``text`` escaped (never HTML), each "@name" in a highlighted span: every part that is not a
    mention goes through escape, and a mention's name through format_html."""
    out, last = [], 0
    value = str(text or "")
    for match in MENTION.finditer(value):
        out.append(escape(value[last:match.start()]))
        out.append(format_html('<span class="mention">@{}</span>', match.group(1)))
        last = match.end()
    out.append(escape(value[last:]))
    return mark_safe("".join(out))  # noqa: S308  # nosec B308 B703 - each piece above is escaped
