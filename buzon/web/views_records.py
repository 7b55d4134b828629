"""The customer, ticket and job-applicant lists: keyset pages in each model's order (newest first),
the rows the role rule shows, a constant number of queries whatever the page's size, and no count of
the table. Each list's order and filters are served by an index ending in that order (crm.models).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import render
from django.utils.translation import gettext as _

from buzon.core import keyset
from buzon.crm import customers as cards
from buzon.crm import roles
from buzon.crm.models import Customer, JobApplicant, Ticket
from buzon.workspace import reads


def _listed(request: HttpRequest, rows: QuerySet[Any], *, field: str, context: dict[str, Any]) -> HttpResponse:
    try:
        found = keyset.page(rows, field=field, before=request.GET.get("before", ""),
                            after=request.GET.get("after", ""))
    except keyset.BadCursor as bad:
        return HttpResponseBadRequest(f"cursor: {bad}")
    title = context["title"]
    return render(request, "web/inbox/records.html", {**context, "found": found, "breadcrumbs": [(title, None)]})


@login_required
def customers(request: HttpRequest) -> HttpResponse:
    rows = roles.visible(Customer.objects.all(), request.user)
    rows = reads.with_conversation(rows.select_related("agent__user", "store").prefetch_related("emails"))
    return _listed(request, rows, field="created_at", context={"kind": "customers", "title": _("Customers")})


@login_required
def tickets(request: HttpRequest) -> HttpResponse:
    rows = reads.with_conversation(roles.visible(Ticket.objects.all(), request.user)).select_related(
        "customer", "agent__user")
    # The customer as the row shows them, read in the same query (Customer.__str__ would ask for
    # their addresses once per row).
    rows = rows.annotate(customer_email=cards.first_address())
    status = request.GET.get("status", "")
    if status and status not in Ticket.Status.values:
        return HttpResponseBadRequest("status: " + _("Choose one of the listed statuses."))
    if status:
        rows = rows.filter(status=status)
    return _listed(request, rows, field="updated_at", context={
        "kind": "tickets", "title": _("Tickets"), "statuses": Ticket.Status.choices, "status": status})


@login_required
def job_applicants(request: HttpRequest) -> HttpResponse:
    rows = reads.with_conversation(roles.visible(JobApplicant.objects.all(), request.user))
    return _listed(request, rows, field="created_at", context={"kind": "job_applicants", "title": _("Job applicants")})
