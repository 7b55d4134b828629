"""Sign-in throttling (django-axes) glue: the authentication backend, the handler and the client address.

Failed sign-ins are counted per (username, client address); after AXES_FAILURE_LIMIT failures that
pair is locked out for AXES_COOLOFF_TIME, so a guesser is stopped without letting anyone lock a
colleague out from another machine. Failures are also counted per address, whatever the username:
after LOGIN_ADDRESS_FAILURE_LIMIT of them (higher, since an office shares one address) the address
is locked out too, which stops one password tried over many usernames (spraying). A sign-in that
succeeds clears only its own username's count, never the address's.

Failed API token authentications are counted the same way under the username TOKEN_USERNAME: the
address is refused API tokens after LOGIN_ADDRESS_FAILURE_LIMIT failures (its sign-ins are not).
"""

from __future__ import annotations

from typing import Any

from axes.backends import AxesStandaloneBackend
from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_username
from axes.models import AccessAttempt
from axes.signals import user_locked_out
from django.conf import settings
from django.db.models import Sum
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _

#: The username failed API token authentications are recorded under (no user can be called this).
TOKEN_USERNAME = "(API token)"


def lockout_minutes() -> int:
    return max(1, int(settings.AXES_COOLOFF_TIME.total_seconds() // 60))


def tokens_locked_out_text() -> str:
    """What an API client is told once its address has sent too many wrong tokens: from the failure
    that reaches the limit on, whatever token it sends."""
    return _("Too many wrong API tokens from this address. Wait %(minutes)s minutes and try again.") % {
        "minutes": lockout_minutes()}


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


def address_failures(ip_address: str, *, tokens: bool = False) -> int:
    """Failed sign-ins (or, with `tokens`, failed API token uses) from `ip_address` in the cool-off time."""
    recent = AccessAttempt.objects.filter(ip_address=ip_address,
                                          attempt_time__gte=timezone.now() - settings.AXES_COOLOFF_TIME)
    recent = recent.filter(username=TOKEN_USERNAME) if tokens else recent.exclude(username=TOKEN_USERNAME)
    return int(recent.aggregate(total=Sum("failures_since_start"))["total"] or 0)


class AddressLockoutHandler(AxesDatabaseHandler):
    """Axes' database handler, plus the per-address limit; API token failures are limited per address only."""

    def get_failures(self, request: Any, credentials: dict[str, Any] | None = None) -> int:
        if get_client_username(request, credentials) == TOKEN_USERNAME:
            return 0  # not per (username, address): the address limit below applies
        return super().get_failures(request, credentials)  # type: ignore[no-any-return]

    def is_locked(self, request: Any, credentials: dict[str, Any] | None = None) -> bool:
        tokens = get_client_username(request, credentials) == TOKEN_USERNAME
        return bool(super().is_locked(request, credentials)) or (
            address_failures(request.axes_ip_address, tokens=tokens) >= settings.LOGIN_ADDRESS_FAILURE_LIMIT)

    def user_login_failed(self, sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any) -> None:
        super().user_login_failed(sender, credentials, request, **kwargs)
        if request is None or request.axes_locked_out or not self.is_locked(request, credentials):
            return
        request.axes_locked_out = True  # this failure reached the address's limit: AxesMiddleware answers 429
        request.axes_credentials = credentials
        user_locked_out.send("axes", request=request, username=get_client_username(request, credentials),
                             ip_address=request.axes_ip_address)
