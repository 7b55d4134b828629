"""The password prompt for accounts created "awaiting password" on a user's behalf (seed 2.1)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

import buzon.mailboxes.services as services
from buzon.mailboxes.models import EmailAccount
from buzon.web import crumbs
from buzon.web.forms import BootstrapFormMixin


class PasswordForm(BootstrapFormMixin, forms.Form):
    password = forms.CharField(
        label=gettext_lazy("password"), strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "current-password"}),
    )

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.style_fields()


@login_required
def pending_passwords(request: HttpRequest) -> HttpResponse:
    waiting = EmailAccount.objects.filter(owner_id=request.user.pk, awaiting_password=True)
    if not waiting.exists():
        return redirect("web:home")
    posted_pk = int(request.POST.get("account", 0) or 0) if request.method == "POST" else None
    rows = []
    for account in waiting:
        form = PasswordForm(request.POST if account.pk == posted_pk else None, prefix=f"a{account.pk}")
        if account.pk == posted_pk and form.is_valid():
            account = get_object_or_404(EmailAccount, pk=account.pk)
            account.awaiting_password = False
            try:
                services.save_account(account, password=form.cleaned_data["password"])
            except ValidationError as error:
                form.add_service_errors(error)
            else:
                messages.success(request, _("Password saved for %(address)s.") % {"address": account.email_address})
                return redirect("web:pending-passwords")
        rows.append((account, form))
    return render(request, "web/pending_passwords.html", {
        "rows": rows, "breadcrumbs": [*crumbs.home(), (_("Passwords needed"), None)],
    })
