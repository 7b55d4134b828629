"""Stores (online shops or branches that own email accounts): list, create, edit, delete."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from buzon.crm import roles, store_deletion
from buzon.crm.models import Store
from buzon.web import crumbs
from buzon.web.access import staff_required
from buzon.web.forms import BootstrapFormMixin


class StoreForm(BootstrapFormMixin, forms.ModelForm):
    class Meta:
        model = Store
        fields = ["name", "email"]
        help_texts = {
            "name": gettext_lazy("The shop or branch as your team knows it, e.g. Madrid Centro."),
            "email": gettext_lazy("The address customers write to; mail to it is linked to this store's customers."),
        }

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.style_fields()


def _crumbs(*more: crumbs.Crumb) -> list[crumbs.Crumb]:
    return [*crumbs.email_settings(), (_("Stores"), reverse("web:store-list")), *more]


@login_required
def store_list(request: HttpRequest) -> HttpResponse:
    stores = roles.visible_stores(request.user).annotate(account_count=Count("email_accounts"))
    return render(request, "web/stores/list.html", {"stores": stores, "breadcrumbs": _crumbs(),
                                                    "incoming_limit": settings.MAX_INCOMING_ACCOUNTS_PER_STORE})


@staff_required
def store_form(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    store = get_object_or_404(Store, pk=pk) if pk else Store()
    form = StoreForm(request.POST or None, instance=store)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, _("Store %(name)s saved.") % {"name": form.instance.name})
        return redirect("web:store-list")
    title = store.name if pk else _("New store")
    return render(request, "web/stores/form.html", {"form": form, "title": title,
                                                     "breadcrumbs": _crumbs((title, None))})


@staff_required
def store_delete(request: HttpRequest, pk: int) -> HttpResponse:
    store = get_object_or_404(Store, pk=pk)
    if request.method == "POST":
        try:
            store_deletion.delete_store(store)  # refused while it holds mail, customers or accounts
        except store_deletion.StoreInUse as refused:
            messages.error(request, refused.message)
        else:
            messages.success(request, _("Store %(name)s deleted.") % {"name": store.name})
        return redirect("web:store-list")
    title = _("Delete %(name)s") % {"name": store.name}
    why = store_deletion.refusal(store)
    return render(request, "web/confirm_delete.html", {
        "object": store, "title": title, "cancel_url": "web:store-list",
        "warning": _("Its agents and agent groups stay; they just no longer belong to a store."),
        "blocked": bool(why),
        "blocked_reason": why,
        "breadcrumbs": _crumbs((title, None)),
    })
