"""Home, the settings overview, sign-in and the awaiting-password prompt."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from buzon.crm import roles
from buzon.mailboxes.models import AccountState, EmailAccount, EmailDomain
from buzon.web import crumbs


@login_required
def home(request: HttpRequest) -> HttpResponse:
    accounts = roles.visible_accounts(request.user)
    stats = {
        "accounts": accounts.count(),
        "incoming": accounts.filter(incoming_enabled=True).count(),
        "outgoing": accounts.filter(outgoing_enabled=True).count(),
        "errors": accounts.filter(state=AccountState.ERROR).count(),
        "domains": roles.visible(EmailDomain.objects.all(), request.user).count(),
    }
    failing = accounts.filter(state=AccountState.ERROR)[:5]
    waiting = EmailAccount.objects.filter(owner_id=request.user.pk, awaiting_password=True).count()
    return render(request, "web/home.html", {"stats": stats, "failing": failing, "waiting": waiting})


@login_required
def settings_index(request: HttpRequest) -> HttpResponse:
    return render(request, "web/settings.html", {"breadcrumbs": crumbs.email_settings()})


class LoginView(auth_views.LoginView):
    """Sign-in that first asks for any password the user's accounts are waiting for (seed 2.1)."""

    def get_success_url(self) -> str:
        waiting = EmailAccount.objects.filter(owner_id=self.request.user.pk, awaiting_password=True).exists()
        if waiting:
            return reverse("web:pending-passwords")
        return super().get_success_url()
