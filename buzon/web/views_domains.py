"""Email Domain pages: list, create, edit, delete. Saving goes through the mailboxes services."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _

import buzon.mailboxes.services as services
from buzon.crm import roles
from buzon.mailboxes.models import EmailDomain
from buzon.web import crumbs
from buzon.web.access import staff_required
from buzon.web.forms import DomainForm


@login_required
def domain_list(request: HttpRequest) -> HttpResponse:
    domains = roles.visible(EmailDomain.objects.all(), request.user).annotate(account_count=Count("accounts"))
    return render(request, "web/domains/list.html", {"domains": domains, "breadcrumbs": crumbs.domains()})


@staff_required
def domain_form(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    domain = get_object_or_404(EmailDomain, pk=pk) if pk else EmailDomain()
    form = DomainForm(request.POST or None, instance=domain)
    if request.method == "POST" and form.is_valid():
        try:
            services.save_domain(form.instance)
        except ValidationError as error:
            form.add_service_errors(error)
        else:
            messages.success(request, _("Email domain %(domain)s saved.") % {"domain": form.instance.domain_name})
            return redirect("web:domain-list")
    title = domain.domain_name if pk else _("New email domain")
    return render(request, "web/domains/form.html", {
        "form": form, "domain": domain, "title": title, "breadcrumbs": crumbs.domains((title, None)),
    })


@staff_required
def domain_delete(request: HttpRequest, pk: int) -> HttpResponse:
    domain = get_object_or_404(EmailDomain, pk=pk)
    if request.method == "POST":
        try:
            services.delete_domain(domain)
        except ValidationError as error:
            for text in error.messages:
                messages.error(request, text)
        else:
            messages.success(request, _("Email domain %(domain)s deleted.") % {"domain": domain.domain_name})
        return redirect("web:domain-list")
    title = _("Delete %(name)s") % {"name": domain.domain_name}
    return render(request, "web/confirm_delete.html", {
        "object": domain, "title": title, "cancel_url": "web:domain-list",
        "warning": _("Accounts on this domain would lose the server settings they inherit."),
        "blocked": domain.accounts.exists(),
        "blocked_reason": _("This domain still has email accounts: move or delete them first."),
        "breadcrumbs": crumbs.domains((title, None)),
    })
