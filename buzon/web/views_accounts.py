"""Email Account pages. Forms collect input; buzon.mailboxes.services validates, probes and saves."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

import buzon.mailboxes.services as services
from buzon.core import keyset
from buzon.crm import roles
from buzon.mailboxes import oauth
from buzon.mailboxes.guard import ProbeRateLimited
from buzon.mailboxes.models import TEMPLATE_DOMAIN, EmailAccount
from buzon.mailboxes.presets import preset_for_address
from buzon.sync.control import request_sync
from buzon.web import crumbs
from buzon.web.access import account_managers, require_manage_account
from buzon.web.forms import AccountForm
from buzon.web.probe_view import probe_results
from buzon.web.progress_view import with_progress
from buzon.web.views_oauth import start_for_new_account

DIRECTIONS = ("incoming", "outgoing")


def unfilled_templates_q() -> Q:
    """Predefined accounts (seed 3.1) not yet given details: offered to be filled in."""
    return Q(template_role__gt="", email_address__iendswith=f"@{TEMPLATE_DOMAIN}")


@login_required
def account_list(request: HttpRequest) -> HttpResponse:
    """The accounts the user may see, by address, a keyset page at a time (a site may have
    thousands), each with its sync state read in the same query; ``q`` finds an address or name."""
    accounts = roles.visible_accounts(request.user)
    listed = accounts.exclude(unfilled_templates_q()).select_related("store", "sync_state")
    q = request.GET.get("q", "").replace("\x00", "").strip()[:200]
    if q:
        listed = listed.filter(Q(email_address__icontains=q) | Q(display_name__icontains=q))
    try:
        found = keyset.page(listed, field="email_address", before=request.GET.get("before", ""),
                            after=request.GET.get("after", ""), kind=str, descending=False)
    except keyset.BadCursor as bad:
        return HttpResponseBadRequest(f"cursor: {bad}")
    return render(request, "web/accounts/list.html", {
        "accounts": with_progress(list(found.rows)), "found": found, "q": q,
        "templates": accounts.filter(unfilled_templates_q()) if not q else [],
        "breadcrumbs": crumbs.accounts(),
    })


@login_required
def account_status(request: HttpRequest, pk: int) -> HttpResponse:
    """The state cell of one row; the list polls it with htmx while the account syncs."""
    account = with_progress([get_object_or_404(roles.visible_accounts(request.user), pk=pk)])[0]
    return render(request, "web/accounts/_status.html", {"account": account})


@account_managers
@require_POST
def account_sync_now(request: HttpRequest, pk: int) -> HttpResponse:
    """Ask the sync engine to sync this account now; answers with the refreshed state cell."""
    account = with_progress([get_object_or_404(roles.visible_accounts(request.user), pk=pk)])[0]
    require_manage_account(request, account.store_id)
    requested = account.incoming_enabled and not account.awaiting_password
    if requested:
        request_sync(account)
    return render(request, "web/accounts/_status.html", {"account": account, "sync_requested": requested})


@login_required
def account_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Read-only view: the system account (configured by the implementer) and non-staff users."""
    account = get_object_or_404(roles.visible_accounts(request.user), pk=pk)
    if roles.can_manage_accounts(request.user, account.store_id) and not account.is_system:
        return redirect("web:account-edit", pk=pk)
    with_progress([account])
    form = AccountForm(instance=account)
    for field in form.fields.values():
        field.disabled = True
    return render(request, "web/accounts/view.html", {
        "form": form, "account": account, "breadcrumbs": crumbs.accounts((account.email_address, None)),
    })


@account_managers
def account_form(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    account = get_object_or_404(roles.visible_accounts(request.user), pk=pk) if pk else EmailAccount()
    if account.is_system:
        return redirect("web:account-view", pk=account.pk)
    if pk:
        require_manage_account(request, account.store_id)
    form = AccountForm(request.POST or None, instance=account, user=request.user)
    if request.method == "POST" and form.is_valid():
        # A supervisor may neither create a store-less account nor move one to another store.
        require_manage_account(request, form.instance.store_id)
        if form.cleaned_data["password"] and not roles.may_enter_password(request.user, _saved(pk)):
            form.add_error("password", _("This account waits for its user to enter the password at sign-in."))
            return _form_page(request, form, account, pk)
        provider = request.POST.get("oauth_provider", "")
        if provider and not pk:  # a new account signs in with its provider straight away
            try:
                return start_for_new_account(request, form.instance, provider)
            except ValidationError as error:
                form.add_service_errors(error)
                return _form_page(request, form, account, pk)
        try:
            services.save_account(form.instance, password=form.cleaned_data["password"] or None,
                                  may_choose_defaults=roles.may_choose_default_accounts(request.user))
        except ValidationError as error:
            form.add_service_errors(error)
        else:
            messages.success(request, _("Email account %(address)s saved.") % {"address": form.instance.email_address})
            return redirect("web:account-list")
    return _form_page(request, form, account, pk)


def _saved(pk: int | None) -> EmailAccount:
    """The account as stored (the form has already changed the instance it edits)."""
    return EmailAccount.objects.get(pk=pk) if pk else EmailAccount()


def _form_page(request: HttpRequest, form: AccountForm, account: EmailAccount, pk: int | None) -> HttpResponse:
    title = account.email_address if pk else _("New email account")
    return render(request, "web/accounts/form.html", {
        "form": form, "account": account, "title": title, "breadcrumbs": crumbs.accounts((title, None)),
        "preset": preset_for_address(account.email_address or ""),
        "oauth_providers": [p for p in oauth.providers().values() if p.configured],
    })


@account_managers
@require_POST
def account_test(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    """Probe the settings in the form as they are, without saving anything."""
    account = get_object_or_404(roles.visible_accounts(request.user), pk=pk) if pk else EmailAccount()
    if pk:
        require_manage_account(request, account.store_id)
    form = AccountForm(request.POST, instance=account, user=request.user)
    form.is_valid()  # fills form.instance with every value that parsed; the rest keep their defaults
    password = form.cleaned_data.get("password") or None
    try:
        results = probe_results(services.test_account(form.instance, password))
    except ProbeRateLimited as exc:  # shown in place of the results (htmx does not swap a 429)
        results = [{"direction": "", "label": _("Connection test"), "ok": False, "skipped": False,
                    "server": "", "text": exc.message(), "help_url": None}]
    return render(request, "web/accounts/_test_result.html", {"form": form, "results": results})


@account_managers
def preset_hint(request: HttpRequest) -> HttpResponse:
    """The provider hint under the address field, refreshed as the address is typed."""
    preset = preset_for_address(request.GET.get("email_address", ""))
    return render(request, "web/accounts/_preset_hint.html", {"preset": preset})


@account_managers
@require_POST
def account_make_default(request: HttpRequest, pk: int, direction: str) -> HttpResponse:
    account = get_object_or_404(roles.visible_accounts(request.user), pk=pk)
    require_manage_account(request, None)  # the default account is installation-wide: administrators only
    if direction not in DIRECTIONS:
        return redirect("web:account-list")
    try:
        services.set_default(account, direction)
    except ValidationError as error:
        for text in error.messages:
            messages.error(request, text)
    else:
        messages.success(request, _("%(address)s is now the default account for this direction.")
                         % {"address": account.email_address})
    return redirect("web:account-list")


@account_managers
def account_delete(request: HttpRequest, pk: int) -> HttpResponse:
    account = get_object_or_404(roles.visible_accounts(request.user), pk=pk)
    require_manage_account(request, account.store_id)
    if request.method == "POST":
        try:
            services.delete_account(account)
        except ValidationError as error:
            for text in error.messages:
                messages.error(request, text)
            return redirect("web:account-list")
        messages.success(request, _("Email account %(address)s deleted.") % {"address": account.email_address})
        return redirect("web:account-list")
    title = _("Delete %(name)s") % {"name": account.email_address}
    return render(request, "web/confirm_delete.html", {
        "object": account, "title": title, "cancel_url": "web:account-list",
        "warning": _("Mail already brought into Buzón stays; nothing more is received or sent through this account."),
        "blocked": account.is_system,
        "blocked_reason": _("This account is provided by the installation and cannot be deleted here."),
        "breadcrumbs": crumbs.accounts((title, None)),
    })
