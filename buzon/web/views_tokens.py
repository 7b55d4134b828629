"""The user's own API tokens page (user menu > API tokens): make one (shown once), list, revoke.

Every signed-in user may have tokens; an API token acts as its user. Buzón keeps only a hash of each
(buzon.core.api_tokens), so a new token is shown in the answer to the form that made it and never
again. Changing the password revokes them all.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from buzon.core import api_tokens
from buzon.web import crumbs
from buzon.web.forms import BootstrapFormMixin


class NewTokenForm(BootstrapFormMixin, forms.Form):
    name = forms.CharField(label=gettext_lazy("What is it for?"), max_length=100, required=False,
                           help_text=gettext_lazy("e.g. the accounting software; shown in the list below."))

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.style_fields()


@never_cache
@login_required
def api_tokens_page(request: HttpRequest) -> HttpResponse:
    form = NewTokenForm(request.POST or None)
    new_token = ""
    if request.method == "POST" and form.is_valid():
        _row, new_token = api_tokens.create(request.user, form.cleaned_data["name"])
        form = NewTokenForm()
    return render(request, "web/account/api_tokens.html", {
        "form": form, "new_token": new_token, "tokens": api_tokens.of_user(request.user),
        "breadcrumbs": [*crumbs.home(), (_("API tokens"), None)]})


@login_required
@require_POST
def api_token_revoke(request: HttpRequest, key: str) -> HttpResponse:
    if api_tokens.revoke(request.user, key):
        messages.success(request, _("Token %(key)s… revoked: it no longer works.") % {"key": key})
    else:
        messages.error(request, _("There is no such token."))
    return redirect("web:api-tokens")
