"""Home, the settings overview, sign-in and the awaiting-password prompt."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import translation
from django.views.decorators.http import require_POST
from django.views.i18n import set_language

from buzon.core import first_run, language, public_url
from buzon.core.models import UserPreferences
from buzon.crm import roles
from buzon.mailboxes.models import AccountState, EmailAccount, EmailDomain
from buzon.web import crumbs
from buzon.web.views_accounts import unfilled_templates_q


@login_required
def home(request: HttpRequest) -> HttpResponse:
    # Predefined accounts not yet filled in are offers, not accounts: they are not counted.
    accounts = roles.visible_accounts(request.user).exclude(unfilled_templates_q())
    stats = {
        "accounts": accounts.count(),
        "incoming": accounts.filter(incoming_enabled=True).count(),
        "outgoing": accounts.filter(outgoing_enabled=True).count(),
        "errors": accounts.filter(state=AccountState.ERROR).count(),
        "domains": roles.visible(EmailDomain.objects.all(), request.user).count(),
    }
    failing = accounts.filter(state=AccountState.ERROR)[:5]
    waiting = EmailAccount.objects.filter(owner_id=request.user.pk, awaiting_password=True).count()
    # Administrators hear it when the links in Buzón's mail may point where recipients cannot go.
    address_warning = public_url.missing_warning() if roles.is_admin(request.user) else ""
    return render(request, "web/home.html", {"stats": stats, "failing": failing, "waiting": waiting,
                                             "address_warning": address_warning})


@login_required
def settings_index(request: HttpRequest) -> HttpResponse:
    return render(request, "web/settings.html", {"breadcrumbs": crumbs.email_settings()})


class LoginView(auth_views.LoginView):
    """Sign-in that first asks for any password the user's accounts are waiting for (seed 2.1), and
    switches the pages to the user's own language (buzon.core.language)."""

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["needs_setup"] = first_run.needs_setup()  # a new site: say how to create the administrator
        return context

    def form_valid(self, form: AuthenticationForm) -> HttpResponse:
        response = super().form_valid(form)
        user = form.get_user()
        cookie = self.request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME)
        if not UserPreferences.objects.filter(user_id=user.pk).exclude(language="").exists():
            # Their first sign-in: the language this browser asked for (menu choice, else Accept-Language)
            # becomes theirs, so a Spanish browser keeps Spanish pages and gets Spanish notifications.
            language.choose(user, cookie or translation.get_language_from_request(self.request))
        code = language.language_of(user)
        translation.activate(code)
        language.set_cookie(response, code)
        return response

    def get_success_url(self) -> str:
        waiting = EmailAccount.objects.filter(owner_id=self.request.user.pk, awaiting_password=True).exists()
        if waiting:
            return reverse("web:pending-passwords")
        return super().get_success_url()


@require_POST
def choose_language(request: HttpRequest) -> HttpResponse:
    """The top bar's language menu: Django's set_language (cookie), remembered as a signed-in user's own
    language, so notifications and their mails are written in it too."""
    response = set_language(request)
    chosen = request.POST.get("language", "")
    if request.user.is_authenticated and translation.check_for_language(chosen):
        language.choose(request.user, chosen)
    return response
