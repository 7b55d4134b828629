"""Sign-in throttling (django-axes) glue: the authentication backend and the client address.

Failed sign-ins are counted per (username, client address); after AXES_FAILURE_LIMIT failures that
pair is locked out for AXES_COOLOFF_TIME, so a guesser is stopped without letting anyone lock a
colleague out from another machine.
"""

from __future__ import annotations

from typing import Any

from axes.backends import AxesStandaloneBackend
from django.conf import settings
from django.http import HttpRequest


class LockoutBackend(AxesStandaloneBackend):
    """Axes' check, skipped only for authenticate() calls that carry no request.

    Those come from code on the server (management commands, Django's test client login), never
    from a visitor: every sign-in form and API authentication passes the request.
    """

    def authenticate(self, request: HttpRequest | None, username: str | None = None,
                     password: str | None = None, **kwargs: Any) -> None:
        if request is None:
            return None
        return super().authenticate(request, username, password, **kwargs)  # type: ignore[no-any-return]


def client_ip(request: HttpRequest) -> str:
    """The visitor's address: REMOTE_ADDR, or the proxy's last X-Forwarded-For hop when behind one.

    Only the right-most entry is trusted: it is the one our own proxy added; anything left of it
    came from the visitor and can be forged.
    """
    if getattr(settings, "BUZON_BEHIND_PROXY", False):
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if hops:
            return hops[-1]
    return str(request.META.get("REMOTE_ADDR", ""))
