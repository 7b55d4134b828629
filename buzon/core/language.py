"""Each person's language: what the web UI shows them after they sign in, and what every text
addressed to them (notifications in the app and by mail) is written in.

A user's choice is ``UserPreferences.language``; without one, the site's ``LANGUAGE_CODE``. It is
chosen in the top bar's language menu (which also sets Django's language cookie) and applied at
sign-in by setting that cookie, so the pages follow it. Texts for someone else are rendered under
``translation.override(language_of(user))``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.http import HttpResponse

from buzon.core.models import UserPreferences


def supported(code: str | None) -> str | None:
    """``code`` if it is one of the site's languages (a region variant counts as its language)."""
    if not code:
        return None
    codes = {c for c, _name in settings.LANGUAGES}
    code = code.lower()
    if code in codes:
        return code
    base = code.split("-")[0]
    return base if base in codes else None


def language_of(user: Any) -> str:
    """The language texts for ``user`` are written in."""
    if user is not None and getattr(user, "pk", None):
        chosen = UserPreferences.objects.filter(user_id=user.pk).values_list("language", flat=True).first()
        if supported(chosen):
            return str(supported(chosen))
    return str(supported(settings.LANGUAGE_CODE) or settings.LANGUAGE_CODE)


def languages_of(users: Iterable[Any]) -> dict[int, str]:
    """``language_of`` for many users in one query: user id -> language."""
    ids = [u.pk for u in users if getattr(u, "pk", None)]
    default = str(supported(settings.LANGUAGE_CODE) or settings.LANGUAGE_CODE)
    chosen = dict(UserPreferences.objects.filter(user_id__in=ids).values_list("user_id", "language"))
    return {pk: supported(chosen.get(pk)) or default for pk in ids}


def choose(user: Any, code: str) -> bool:
    """Remember ``code`` as the user's language; False (nothing saved) when it is not a site language."""
    code_ok = supported(code)
    if code_ok is None or not getattr(user, "pk", None):
        return False
    UserPreferences.objects.update_or_create(user_id=user.pk, defaults={"language": code_ok})
    return True


def set_cookie(response: HttpResponse, code: str) -> None:
    """Django's language cookie, as its set_language view writes it: the pages follow it."""
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME, code, max_age=settings.LANGUAGE_COOKIE_AGE, path=settings.LANGUAGE_COOKIE_PATH,
        domain=settings.LANGUAGE_COOKIE_DOMAIN, secure=settings.LANGUAGE_COOKIE_SECURE,
        httponly=settings.LANGUAGE_COOKIE_HTTPONLY, samesite=settings.LANGUAGE_COOKIE_SAMESITE)
