"""The address people reach Buzón's web UI at, which every link leaving it starts with: unsubscribe,
open tracking and sender confirmation in mail, "open in Buzón" in notification mail.

`BUZON_BASE_URL` says it. While it is unset:
- `buzon run` passes the address it serves to its processes (`BUZON_SERVED_URL`, from --host and
  --port), so `make run PORT=8123` links to port 8123;
- during a request, the request's own scheme and host (checked against ALLOWED_HOSTS by Django) win:
  they are how this person reached Buzón (RequestBaseMiddleware);
- a production site is told (`buzon check`, the home page for administrators): what else is used
  may be an address only that machine can open.
In-app links (the bell) are paths, which work at whatever address the page was opened.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from contextvars import ContextVar
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _

SERVED_URL_ENV = "BUZON_SERVED_URL"
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
_ANY_ADDRESS = frozenset({"", "0.0.0.0", "::", "[::]"})  # noqa: S104  # nosec B104 - names, not a bind

_request_base: ContextVar[str] = ContextVar("buzon_request_base", default="")


def base_url() -> str:
    """Scheme, host and port, without a trailing slash."""
    if not settings.BASE_URL_SET:
        seen = _request_base.get()
        if seen:
            return seen
    return str(settings.BASE_URL)


def request_base() -> str:
    """The address of the request being served, when it is the one links use; else ""."""
    return "" if settings.BASE_URL_SET else _request_base.get()


def absolute(path: str) -> str:
    """`path` (as reverse() gives it) as a link that works outside Buzón's pages."""
    return base_url() + path


def served_url(host: str, port: int) -> str:
    """What `buzon run --host HOST --port PORT` is reached at: a loopback address by name, an
    address for every interface by this machine's name, any other as given."""
    if host in LOCAL_HOSTS:
        name = "localhost"
    elif host in _ANY_ADDRESS:
        name = socket.getfqdn() or "localhost"
    else:
        name = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"http://{name}:{port}"


def host_of(url: str) -> str:
    try:
        return (urlsplit(url).hostname or url).lower()
    except ValueError:  # not a URL (a wildcard in ALLOWED_HOSTS, say): certainly not this machine alone
        return url.lower()


def is_local(host: str) -> bool:
    return host.lower().strip("[]") in {h.strip("[]") for h in LOCAL_HOSTS}


def missing_warning() -> str:
    """Why links in mail may not work here (in the active language), or "" when they will."""
    if settings.BASE_URL_SET:
        return ""
    hosts = [host_of(settings.BASE_URL), *(host_of(f"//{h}") for h in settings.ALLOWED_HOSTS)]
    if settings.DEBUG and all(is_local(h) for h in hosts):
        return ""  # a developer's machine: nobody else opens these links
    return _("Buzón's public address is not set (BUZON_BASE_URL). Links in the mail it sends (unsubscribe, "
             "open tracking, notifications, sender confirmation) start with %(url)s or with the address a "
             "page was opened at, which the people who get the mail may not be able to open. Set "
             "BUZON_BASE_URL to the address people use to reach Buzón, e.g. https://buzon.example.com."
             ) % {"url": settings.BASE_URL}


class RequestBaseMiddleware:
    """During a request, links are made with the address the request came to (unless BUZON_BASE_URL says)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if settings.BASE_URL_SET:
            return self.get_response(request)
        token = _request_base.set(f"{request.scheme}://{request.get_host()}")
        try:
            return self.get_response(request)
        finally:
            _request_base.reset(token)
