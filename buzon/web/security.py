"""Browser-facing protection: a Content-Security-Policy with no inline script, and the second-factor gate.

CSP: script only from our own static files (no inline script, no on*= handlers, no eval); styles
may be inline (sanitised mail keeps its style attributes; Bootstrap and htmx set styles). Remote
images are refused unless a view allows them for one response (the reader asked to see a message's
images): set ``response.csp_allow_remote_images = True``.

Second factor: a user who enrolled a TOTP device must confirm a code after the password before any
page but the verify page, sign-out and static files is served.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Exists, Q
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django_otp import device_classes

from buzon.core import signin
from buzon.web.next_url import is_local_path

Handler = Callable[[HttpRequest], HttpResponse]


def content_security_policy(allow_remote_images: bool = False) -> str:
    images = "'self' data: https: http:" if allow_remote_images else "'self' data:"
    directives = {
        "default-src": "'self'",
        "script-src": "'self'",
        "style-src": "'self' 'unsafe-inline'",
        "img-src": images,
        "font-src": "'self'",
        "connect-src": "'self'",
        "frame-src": "'self'",
        "object-src": "'none'",
        "base-uri": "'self'",
        "form-action": "'self'",
        "frame-ancestors": "'none'",
    }
    return "; ".join(f"{name} {value}" for name, value in directives.items())


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if "Content-Security-Policy" not in response:
            allow = bool(getattr(response, "csp_allow_remote_images", False))
            response["Content-Security-Policy"] = content_security_policy(allow)
        return response


def _exempt(path: str) -> bool:
    open_paths = (reverse("web:two-factor-verify"), reverse("web:logout"), reverse("web:login"))
    static = "/" + settings.STATIC_URL.lstrip("/")
    return path in open_paths or path.startswith(static) or path in ("/healthz", "/readyz", "/metrics")


def has_second_factor(user: object) -> bool:
    """django_otp.user_has_device (a confirmed device of any kind) in one query on every request,
    rather than one per device model."""
    any_device = Q()
    for model in device_classes():
        any_device |= Q(Exists(model.objects.devices_for_user(user, confirmed=True)))
    return bool(any_device) and get_user_model().objects.filter(any_device, pk=user.pk).exists()  # type: ignore[attr-defined]


class SecondFactorMiddleware:
    """Signed in with the password only, but a TOTP device is enrolled: finish at the verify page.

    Runs after django_otp's OTPMiddleware, which sets ``request.user.is_verified()``.
    """

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if (user.is_authenticated and not user.is_verified()  # type: ignore[union-attr,attr-defined]
                and not _exempt(request.path) and has_second_factor(user)):
            if request.path.startswith("/api/"):
                return JsonResponse({"detail": _("Enter your second-factor code first.")}, status=403)
            target = reverse("web:two-factor-verify")
            if request.method == "GET" and is_local_path(request.get_full_path()):
                # Encoded: a page address with its own query (?q=a&page=2) comes back whole.
                return redirect(f"{target}?{urlencode({'next': request.get_full_path()}, safe='/')}")
            return redirect(target)
        return self.get_response(request)


def locked_out(request: HttpRequest, response: HttpResponse | None = None,
               credentials: dict[str, object] | None = None) -> HttpResponse:
    """django-axes' answer once a (username, address) pair is locked out: a page, or JSON for the API."""
    minutes = signin.lockout_minutes()
    if request.path.startswith("/api/"):
        tokens = credentials is not None and credentials.get("username") == signin.TOKEN_USERNAME
        text = signin.tokens_locked_out_text() if tokens else _(
            "Too many failed sign-ins. Wait %(minutes)s minutes and try again.") % {"minutes": minutes}
        answer = JsonResponse({"detail": text}, status=429)
        answer["Retry-After"] = str(int(settings.AXES_COOLOFF_TIME.total_seconds()))
        return answer
    return render(request, "web/security/locked_out.html", {"lockout_minutes": minutes}, status=429)
