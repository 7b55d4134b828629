"""Where a form sends the user back to: the `next` it carries, when that is a path on this site.

A `next` is user input (a link someone else wrote can carry any), so it is followed only when it
is a local path: no scheme, no host, nothing a browser would read as another site ("//evil.test",
"/\\evil.test", "https:evil.test"). Anything else falls back to the page the view names.
"""

from __future__ import annotations

from django.http import HttpRequest
from django.shortcuts import resolve_url
from django.utils.http import url_has_allowed_host_and_scheme


def is_local_path(url: str) -> bool:
    # No allowed hosts: only URLs without a host pass; the leading "/" keeps out relative ones too.
    return url.startswith("/") and url_has_allowed_host_and_scheme(url, allowed_hosts=None)


def local_next(request: HttpRequest, default: str) -> str:
    """The request's `next` (form field, else query string) if it is a local path; else `default`
    (a URL name or path)."""
    wanted = request.POST.get("next") or request.GET.get("next") or ""
    return wanted if is_local_path(wanted) else resolve_url(default)
