"""An invited person who has not set their own password yet is served nothing (buzon.core.invitations).

They cannot sign in (their password is unusable) and their API tokens are refused
(buzon.api.authentication), so this only meets a session made some other way (one from before a
new invitation was made, a test's force_login): it is ended, pages send them to sign in, and the
API answers 403 naming the reason. Sign-in, sign-out, the invitation page and static files stay open.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _

from buzon.core import invitations

Handler = Callable[[HttpRequest], HttpResponse]


def _open(path: str) -> bool:
    static = "/" + settings.STATIC_URL.lstrip("/")
    welcome = reverse("web:invitation", args=["x"]).removesuffix("x/")
    return path in (reverse("web:login"), reverse("web:logout")) or path.startswith((static, welcome))


class PasswordPendingMiddleware:
    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if user.is_authenticated and not _open(request.path) and invitations.is_pending(user):
            logout(request)
            if request.path.startswith("/api/"):
                return JsonResponse({"detail": _("Set your password through your invitation link first.")},
                                    status=403)
            return redirect("web:login")
        return self.get_response(request)
