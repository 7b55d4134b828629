"""Canned responses pages (/canned-responses/): one's own and those shared with one's stores, by
shortcut; making, changing and deleting those one may change (buzon.workspace.canned decides: one
out of sight is a 404 as a missing one, one seen but not one's to change a 403)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from buzon.web import crumbs
from buzon.web.forms import BootstrapFormMixin
from buzon.workspace import canned
from buzon.workspace.actions import ActionRefused
from buzon.workspace.models import CannedResponse


class CannedResponseForm(BootstrapFormMixin, forms.Form):
    shortcut = forms.CharField(label=gettext_lazy("Shortcut"), max_length=41,
                               help_text=gettext_lazy('Type "/" and this in the Reply box to insert the text, '
                                                      "e.g. thanks."))
    title = forms.CharField(label=gettext_lazy("Title"), max_length=200)
    text = forms.CharField(label=gettext_lazy("Text"), widget=forms.Textarea(attrs={"rows": 6}))
    store = forms.ChoiceField(label=gettext_lazy("Shared with"), required=False,
                              help_text=gettext_lazy("A store's agents all see a response shared with it."))

    def __init__(self, user: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        stores = list(canned.sharable_stores(user))
        choices = [("", _("No one: only me")), *[(str(s.pk), s.name) for s in stores]]
        self.fields["store"].choices = choices  # type: ignore[attr-defined]
        if not stores:
            del self.fields["store"]
        self.style_fields()


def _crumbs(*more: Any) -> list[Any]:
    return [*crumbs.home(), (_("Canned responses"), "/canned-responses/" if more else None), *more]


@login_required
def canned_list(request: HttpRequest) -> HttpResponse:
    try:
        rows, after = canned.page(request.user, after=request.GET.get("after", ""))
    except ActionRefused as bad:
        return HttpResponseBadRequest(f"{bad.field}: {bad.message}")
    for row in rows:
        row.editable = canned.may_change(request.user, row)  # type: ignore[attr-defined]
    return render(request, "web/canned/list.html", {
        "rows": rows, "next_after": after, "breadcrumbs": _crumbs()})


def _edit(request: HttpRequest, current: CannedResponse | None) -> HttpResponse:
    initial = ({"shortcut": current.shortcut, "title": current.title, "text": current.text,
                "store": str(current.store_id or "")} if current else {})
    form = CannedResponseForm(request.user, request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        fields = {"shortcut": data["shortcut"], "title": data["title"], "text": data["text"],
                  # Without the field (no store to share with), a store sent anyway is refused, not ignored.
                  "store": (data.get("store") if "store" in form.fields else request.POST.get("store")) or None}
        try:
            if current is None:
                canned.do_create_canned(request.user, **fields)
                flash.success(request, _("Canned response saved."))
            else:
                canned.do_update_canned(request.user, current.pk, **fields)
                flash.success(request, _("Canned response changed."))
            return redirect("web:canned-responses")
        except ActionRefused as refused:
            form.add_error(refused.field if refused.field in form.fields else None, refused.message)
    title = _("New canned response") if current is None else f"/{current.shortcut}"
    return render(request, "web/canned/form.html", {
        "form": form, "current": current, "title": title, "breadcrumbs": _crumbs((title, None))})


@login_required
def canned_new(request: HttpRequest) -> HttpResponse:
    return _edit(request, None)


@login_required
def canned_edit(request: HttpRequest, pk: int) -> HttpResponse:
    return _edit(request, canned.access_canned(request.user, pk, to_change=True))


@login_required
@require_POST
def canned_delete(request: HttpRequest, pk: int) -> HttpResponse:
    canned.do_delete_canned(request.user, pk)
    flash.success(request, _("Canned response deleted."))
    return redirect("web:canned-responses")
