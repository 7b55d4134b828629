"""Who is signed in right now: ``Agent.online``, which the assignment reads (seed 002: when no agent is
free, customers also go to "employees not authorised in the system at that moment").

"Online" means: at least one browser session that signed in, has not signed out, has not expired,
and was used in the last ``AGENT_ONLINE_IDLE_MINUTES`` (a browser left open keeps it fresh: the bell
asks for its count every minute). Each such session is a ``core.SignedInSession`` row:

- signing in (Django's ``user_logged_in``) adds the row and sets the agent online;
- signing out (``user_logged_out``) removes that row; the agent goes offline only when it was the
  last live one, so someone signed in on two browsers stays online until both sign out;
- ``PresenceMiddleware`` touches the row at most once a minute per session (a cache key, no query
  on the other requests); a session whose row was swept comes back online with its next request;
- an expired or idle session sends no signal, so ``sweep()`` (a periodic job, every minute)
  removes those rows and sets ``Agent.online`` to what the remaining rows say.

API tokens never call ``login()`` and carry no session, so they never make anyone online.
A sign-in is at most a minute stale in ``Agent.online`` after it expires or goes idle; that is the
price of one cheap sweep instead of a query per assignment.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.contrib.sessions.models import Session
from django.core.cache import cache
from django.db.models import Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from buzon.core.models import SignedInSession
from buzon.crm.models import Agent

TOUCH_EVERY_S = 60


def _idle_limit() -> dt.timedelta:
    return dt.timedelta(minutes=settings.AGENT_ONLINE_IDLE_MINUTES)


def live_sessions(now: dt.datetime | None = None) -> QuerySet[SignedInSession]:
    now = now or timezone.now()
    return SignedInSession.objects.filter(expires_at__gt=now, last_seen_at__gte=now - _idle_limit())


def _session_key(request: Any) -> str:
    session = getattr(request, "session", None)
    return (getattr(session, "session_key", None) or "") if session is not None else ""


_DB_SESSIONS = ("django.contrib.sessions.backends.db", "django.contrib.sessions.backends.cached_db")


def _stored_expiry(request: Any, now: dt.datetime) -> Any:
    """When the session really expires. ``get_expiry_date()`` is now + the cookie age unless the session
    is being saved, so with sessions in the database it is read from there (in the same UPDATE); a
    session no longer there has expired."""
    if settings.SESSION_ENGINE in _DB_SESSIONS:
        stored = Session.objects.filter(session_key=request.session.session_key).values("expire_date")[:1]
        return Coalesce(Subquery(stored), Value(now))
    return request.session.get_expiry_date()


def _remember(request: Any, user: Any, now: dt.datetime) -> None:
    """Sign-in (the session is being saved: its expiry is now + its age) or a row found missing."""
    key = _session_key(request)
    if not key:
        return
    SignedInSession.objects.update_or_create(
        session_key=key, defaults={"user": user, "last_seen_at": now, "expires_at": request.session.get_expiry_date()})
    Agent.objects.filter(user=user, online=False).update(online=True)


def signed_in(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    if request is not None:
        _remember(request, user, timezone.now())


def signed_out(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    key = _session_key(request)
    if key:
        SignedInSession.objects.filter(session_key=key).delete()
    if user is not None and not live_sessions().filter(user=user).exists():
        Agent.objects.filter(user=user, online=True).update(online=False)


def connect() -> None:
    user_logged_in.connect(signed_in, dispatch_uid="buzon.crm.presence.signed_in")
    user_logged_out.connect(signed_out, dispatch_uid="buzon.crm.presence.signed_out")


def sign_out_everywhere(user: Any) -> int:
    """End every browser session ``user`` signed in with (a deactivated user, a new invitation), and
    set them offline. Returns how many sessions ended."""
    store = import_module(settings.SESSION_ENGINE).SessionStore
    keys = list(SignedInSession.objects.filter(user_id=user.pk).values_list("session_key", flat=True))
    for key in keys:
        store(session_key=key).delete()
    SignedInSession.objects.filter(user_id=user.pk).delete()
    Agent.objects.filter(user_id=user.pk, online=True).update(online=False)
    return len(keys)


def sweep(now: dt.datetime | None = None) -> int:
    """Forget expired and idle sessions and make ``Agent.online`` say who has a live one.
    Returns how many agents changed. Three statements whatever the number of users."""
    now = now or timezone.now()
    SignedInSession.objects.filter(Q(expires_at__lte=now) | Q(last_seen_at__lt=now - _idle_limit())).delete()
    live = live_sessions(now).values("user_id")
    gone = Agent.objects.filter(online=True).exclude(user_id__in=live).update(online=False)
    back = Agent.objects.filter(online=False, user_id__in=live).update(online=True)
    return gone + back


class PresenceMiddleware:
    """Marks the session's user as seen, at most once a minute per session (after the auth middleware).

    Only session sign-ins count: a request authenticated by an API token has no session user here."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        key = _session_key(request)
        if key and user is not None and user.is_authenticated and cache.add(f"buzon:seen:{key}", 1, TOUCH_EVERY_S):
            now = timezone.now()
            touched = SignedInSession.objects.filter(session_key=key, user_id=user.pk).update(
                last_seen_at=now, expires_at=_stored_expiry(request, now))
            if not touched:  # signed in before Buzón kept sessions, or swept while idle: back now
                _remember(request, user, now)
                SignedInSession.objects.filter(session_key=key).update(expires_at=_stored_expiry(request, now))
        return self.get_response(request)
