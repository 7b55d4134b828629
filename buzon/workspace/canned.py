"""Canned responses: short texts an agent inserts in a reply by typing "/" and their shortcut.

Who sees which (one rule, for the pages, the API and the Reply box):

- one's own (no store): their owner only, administrators included (a private text stays private);
- shared with a store: every agent of that store, and administrators.

Who changes which: one's own, their owner; a shared one, the supervisors of its store and the
administrators (whoever wrote it). Sharing with a store is for its supervisors and administrators.
A response outside one's sight answers as a missing one (Http404); one seen but not one's to change
is refused (PermissionDenied), and nothing changes either way.
"""

from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.http import Http404
from django.utils.translation import gettext as _

from buzon.crm import roles
from buzon.crm.models import Store
from buzon.workspace.actions import ActionRefused
from buzon.workspace.models import CannedResponse

SHORTCUT = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
PAGE_SIZE = 100


def visible_canned(user: Any) -> QuerySet[CannedResponse]:
    """The responses ``user`` may see and insert: their own, and those shared with their stores
    (every store's, for administrators)."""
    if not (user is not None and user.is_authenticated and user.is_active):
        return CannedResponse.objects.none()
    shared = Q(store__isnull=False) if roles.is_admin(user) else Q(store_id__in=roles.store_ids(user))
    return CannedResponse.objects.filter(Q(owner_id=user.pk, store__isnull=True) | shared)


def sharable_stores(user: Any) -> QuerySet[Store]:
    """The stores ``user`` may share a response with: any (administrators), the ones they supervise."""
    if roles.is_admin(user):
        return Store.objects.order_by("name")
    return Store.objects.filter(pk__in=roles.supervised_store_ids(user)).order_by("name")


def may_change(user: Any, response: CannedResponse) -> bool:
    if response.store_id is None:
        return response.owner_id == getattr(user, "pk", None)
    return roles.is_admin(user) or response.store_id in roles.supervised_store_ids(user)


def access_canned(user: Any, pk: Any, *, to_change: bool = False) -> CannedResponse:
    """The response ``pk`` if ``user`` may see it (Http404 otherwise, as a missing one); with
    ``to_change``, PermissionDenied when it is seen but not theirs to change."""
    try:
        number = int(pk)
    except (TypeError, ValueError):
        raise Http404("No such canned response.") from None
    found = visible_canned(user).select_related("store", "owner").filter(pk=number).first()
    if found is None:
        raise Http404("No such canned response.")
    if to_change and not may_change(user, found):
        raise PermissionDenied("Only its store's supervisors change a shared response.")
    return found


def page(user: Any, *, store: Any = "", after: str = "") -> tuple[list[CannedResponse], str]:
    """One page of the visible responses in shortcut order, and the cursor of the next ("" at the
    end). ``store``: only one's own and those shared with that store (the Reply box of a
    conversation of that store). Keyset pages on (shortcut, id): no offset, no count."""
    rows = visible_canned(user).select_related("store", "owner").order_by("shortcut", "id")
    if store not in (None, ""):
        try:
            store_id = int(store)
            if not 0 < store_id <= 2**63 - 1:
                raise ValueError(store)
        except (TypeError, ValueError):
            raise ActionRefused(_("Choose a store by its number."), field="store") from None
        rows = rows.filter(Q(store__isnull=True) | Q(store_id=store_id))
    if after:
        shortcut, _sep, last_id = after.rpartition(":")
        if not shortcut or not last_id.isdigit():
            raise ActionRefused(_("That page cursor is not one this list gave."), field="after")
        rows = rows.filter(Q(shortcut__gt=shortcut) | Q(shortcut=shortcut, id__gt=int(last_id)))
    found = list(rows[:PAGE_SIZE + 1])
    more = len(found) > PAGE_SIZE
    found = found[:PAGE_SIZE]
    return found, (f"{found[-1].shortcut}:{found[-1].pk}" if more else "")


def _clean(user: Any, shortcut: Any, title: Any, text: Any, store: Any,
           current: CannedResponse | None = None) -> dict[str, Any]:
    shortcut = str(shortcut or "").strip().lstrip("/").lower()
    if not SHORTCUT.match(shortcut):
        raise ActionRefused(_("A shortcut is 1 to 40 lowercase letters, digits, - or _, starting with a letter "
                              "or a digit."), field="shortcut")
    title, text = str(title or "").strip(), str(text or "").strip()
    if not title or len(title) > 200:
        raise ActionRefused(_("Give it a title of at most 200 characters."), field="title")
    if not text or len(text) > 10000:
        raise ActionRefused(_("Write its text (at most 10000 characters)."), field="text")
    store_id: int | None = None
    if store not in (None, ""):
        try:
            store_id = int(store.pk if isinstance(store, Store) else store)
        except (TypeError, ValueError):
            store_id = -1
        if not sharable_stores(user).filter(pk=store_id).exists():
            raise ActionRefused(_("You can share responses only with stores you supervise."), field="store")
    elif current is not None and current.store_id is not None and current.owner_id != user.pk:
        # Made private, a shared response would become its author's alone and leave this person's reach.
        raise ActionRefused(_("Only its author can make a shared response private."), field="store")
    return {"shortcut": shortcut, "title": title, "text": text, "store_id": store_id}


def _save(response: CannedResponse) -> CannedResponse:
    try:
        with transaction.atomic():
            response.save()
    except IntegrityError:
        raise ActionRefused(_("You already have a response with that shortcut."), field="shortcut") from None
    return response


def do_create_canned(user: Any, *, shortcut: Any, title: Any, text: Any, store: Any = None) -> CannedResponse:
    """A new response of ``user``'s (their own, or shared with ``store``)."""
    if not (user is not None and user.is_authenticated and user.is_active):
        raise PermissionDenied("Sign in first.")
    return _save(CannedResponse(owner=user, **_clean(user, shortcut, title, text, store)))


def do_update_canned(user: Any, pk: Any, *, shortcut: Any, title: Any, text: Any,
                     store: Any = None) -> CannedResponse:
    response = access_canned(user, pk, to_change=True)
    for name, value in _clean(user, shortcut, title, text, store, current=response).items():
        setattr(response, name, value)
    return _save(response)


def do_delete_canned(user: Any, pk: Any) -> None:
    access_canned(user, pk, to_change=True).delete()
