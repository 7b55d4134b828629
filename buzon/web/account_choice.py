"""The conversation list's "Email account" filter at any number of accounts: the accounts the user
may see (of the chosen store, if one is), by address. Up to CHOICES of them are a plain <select>;
past that the select holds the first CHOICES and the one chosen, and a box beside it asks
``conversation_accounts`` for those whose address holds what is typed (htmx), so a page with
1,000 accounts renders 50 options, not 1,000 (as helpdesks do with long lists: a type-ahead).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from buzon.core import keyset
from buzon.crm import roles

CHOICES = 50


def account_choices(user: Any, *, chosen: str = "", store: str = "", find: str = "") -> dict[str, Any]:
    """What the filter shows: ``accounts`` (at most CHOICES), ``chosen_extra`` (the chosen account
    when it is not among them), ``more_accounts`` (whether others exist: the finder is shown)."""
    rows = roles.visible_accounts(user).only("pk", "email_address")
    store_id = keyset.number(store)
    if store_id is not None:
        rows = rows.filter(store_id=store_id)
    find = find.replace("\x00", "").strip()[:200]
    if find:
        rows = rows.filter(email_address__icontains=find)
    listed = list(rows.order_by("email_address")[:CHOICES + 1])
    chosen_id = keyset.number(chosen)
    extra = None
    if chosen_id is not None and chosen_id not in {a.pk for a in listed[:CHOICES]}:
        extra = roles.visible_accounts(user).only("pk", "email_address").filter(pk=chosen_id).first()
    return {"accounts": listed[:CHOICES], "more_accounts": len(listed) > CHOICES or bool(find),
            "chosen_extra": extra, "chosen_account": str(chosen_id) if chosen_id is not None else ""}


@login_required
def conversation_accounts(request: HttpRequest) -> HttpResponse:
    """The account filter's options for what the finder holds (``find``), keeping ``account`` chosen."""
    return render(request, "web/conversations/_account_options.html", account_choices(
        request.user, chosen=request.GET.get("account", ""), store=request.GET.get("store", ""),
        find=request.GET.get("find", "")))
