"""Cards: a customer's (addresses, contacts, store, agent, every conversation; edit, merge, new
mail), a job applicant's, and any other registered mail target's (its fields and its mail).

Views parse the request and call buzon.crm.customers / buzon.workspace.customer_merge; every card
is found through crm.roles, so one the user may not see is a 404 like a missing one. A page costs
the same number of queries whatever the number of conversations or messages (keyset pages).
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.contrib.contenttypes.models import ContentType
from django.db.models import Model, Q, QuerySet, Sum, prefetch_related_objects
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from buzon.core import keyset
from buzon.crm import customers as cards
from buzon.crm import roles
from buzon.crm.models import Agent, Customer
from buzon.messages import targets
from buzon.messages.models import Message
from buzon.workspace import reads
from buzon.workspace.access import visible_conversations
from buzon.workspace.actions import ActionRefused
from buzon.workspace.customer_merge import merge_customers

#: How many of the store's other cards the merge box offers (the newest; a number can be typed too).
MERGE_CHOICES = 200


class CustomerForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=200, required=False)
    addresses = forms.CharField(
        label=gettext_lazy("Email addresses"), required=False, widget=forms.Textarea(attrs={"rows": 3}),
        help_text=gettext_lazy("One a line. Mail from any of them is this customer's; remove a line to remove an "
                               "address."))
    agent = forms.ModelChoiceField(label=gettext_lazy("Assigned agent"), queryset=Agent.objects.none(),
                                   required=False, empty_label=gettext_lazy("No one"))

    def __init__(self, *args: Any, customer: Customer, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["agent"].queryset = cards.store_agents(customer)  # type: ignore[attr-defined]
        for field in self.fields.values():
            field.widget.attrs.setdefault("class", "form-select" if field is self.fields["agent"] else "form-control")

    def clean_addresses(self) -> list[str]:
        try:
            return cards.clean_addresses(self.cleaned_data["addresses"].split())
        except cards.CustomerRefused as refused:
            raise forms.ValidationError(refused.errors["addresses"]) from None


def _conversations(request: HttpRequest, customer: Customer) -> reads.Page:
    try:
        return reads.page(request.user, {"customer": str(customer.pk)}, before=request.GET.get("before", ""),
                          after=request.GET.get("after", ""), size=25)
    except reads.BadFilter:
        raise Http404 from None  # a cursor this page never gave


def _merge_choices(request: HttpRequest, customer: Customer) -> list[Customer]:
    """The store's other cards the user may see (newest first), each with its first address."""
    same_store = {"store_id": customer.store_id} if customer.store_id is not None else {"store__isnull": True}
    rows = roles.visible_customers(request.user).filter(**same_store).exclude(pk=customer.pk)
    return list(rows.annotate(first_email=cards.first_address("pk")).only("pk", "name").order_by("-created_at", "-pk")
                [:MERGE_CHOICES])


def message_count(user: Any, customer: Customer) -> int:
    """Every message (received and sent) of the customer's conversations the user may see: the sum
    of the counts the conversations keep, read through the customer index (no COUNT of messages)."""
    total = visible_conversations(user).filter(customer_id=customer.pk).aggregate(total=Sum("message_count"))
    return int(total["total"] or 0)


def _card(request: HttpRequest, customer: Customer, form: CustomerForm, status: int = 200) -> HttpResponse:
    emails = list(customer.emails.all())  # read once (_with_emails) for the form, the title and the list
    first = next((e.address for e in emails if not e.undeliverable), emails[0].address if emails else "")
    return render(request, "web/customers/card.html", {
        "customer": customer, "emails": emails, "contacts": list(customer.contacts.all()),
        "found": _conversations(request, customer),
        "message_count": message_count(request.user, customer),
        "form": form, "merge_choices": _merge_choices(request, customer),
        "compose_url": f"{reverse('web:compose')}?{urlencode({'to': first})}" if first else "",
        "breadcrumbs": [(_("Customers"), reverse("web:customers")), (cards.label(customer), None)],
    }, status=status)


def _initial(customer: Customer) -> dict[str, Any]:
    return {"name": customer.name, "agent": customer.agent_id,
            "addresses": "\n".join(e.address for e in customer.emails.all())}


def _with_emails(customer: Customer) -> Customer:
    """The customer with its addresses read in one query, which the card asks in several places."""
    prefetch_related_objects([customer], "emails")
    return customer


@login_required
def customer_card(request: HttpRequest, pk: int) -> HttpResponse:
    customer = _with_emails(cards.access_customer(request.user, pk))
    return _card(request, customer, CustomerForm(customer=customer, initial=_initial(customer)))


@login_required
@require_POST
def customer_edit(request: HttpRequest, pk: int) -> HttpResponse:
    customer = _with_emails(cards.access_customer(request.user, pk))
    form = CustomerForm(request.POST, customer=customer)
    if form.is_valid():
        data = form.cleaned_data
        try:
            cards.update_customer(request.user, customer.pk, name=data["name"], addresses=data["addresses"],
                                  agent=data["agent"])
        except cards.CustomerRefused as refused:
            for field, errors in refused.errors.items():
                for error in errors:
                    form.add_error(field if field in form.fields else None, error)
        else:
            flash.success(request, _("The customer's card is saved."))
            return redirect("web:customer", pk=customer.pk)
    return _card(request, customer, form, status=400)


@login_required
@require_POST
def customer_merge(request: HttpRequest, pk: int) -> HttpResponse:
    """Merge the card named in ``other`` into this one. Either card invisible: 404, nothing changes."""
    cards.access_customer(request.user, pk)  # an invisible card is a 404 first, whatever the request says
    other = request.POST.get("other", "").strip().lstrip("#")
    if not other.isdigit():
        return HttpResponseBadRequest(_("Choose the customer to merge into this one."))
    try:
        kept = merge_customers(request.user, pk, other)
    except ActionRefused as refused:
        flash.error(request, refused.message)
        return redirect("web:customer", pk=pk)
    flash.success(request, _("Customer #%(other)s is merged into this card: its addresses, conversations and "
                             "records are here now.") % {"other": other})
    return redirect("web:customer", pk=kept.pk)


# --- records: job applicants and any registered mail target ---------------------------------------

def _record(request: HttpRequest, key: str, pk: int) -> tuple[targets.Target, Model]:
    target = targets.get_target(key)
    if target is None:
        raise Http404
    record = roles.visible(target.model._default_manager.all(), request.user).filter(pk=pk).first()
    if record is None:
        raise Http404
    return target, record


def _fields(record: Model) -> list[tuple[str, Any]]:
    """The record's own fields as (label, value) for the card, foreign keys by their text."""
    shown = []
    for field in record._meta.concrete_fields:
        if field.primary_key or field.name in ("created_at", "updated_at"):
            continue
        value = getattr(record, field.name)
        if hasattr(field, "choices") and field.choices:
            value = getattr(record, f"get_{field.name}_display")()
        shown.append((str(field.verbose_name).capitalize(), value))
    return shown


def _cursor_of(text: str) -> tuple[dt.datetime, int]:
    at_text, _, pk_text = text.rpartition("~")
    at = keyset.moment(at_text) if at_text else None
    pk = keyset.number(pk_text)
    if at is None or pk is None:
        raise Http404  # a cursor this page never gave
    return at, pk


def _mark(message: Message) -> str:
    return f"{message.created_at.isoformat()}~{message.pk}"


def _message_page(rows: QuerySet[Message], *, before: str, after: str, size: int = 25) -> dict[str, Any]:
    """A keyset page of a record's messages, newest first, by (created_at, id), with the cursors of
    the pages around it (written as the conversation list's): one query however much mail there is."""
    if after:
        at, pk = _cursor_of(after)
        found = list(rows.filter(Q(created_at__gt=at) | Q(created_at=at, pk__gt=pk)).order_by(
            "created_at", "pk")[:size + 1])
        more_newer = len(found) > size
        found = list(reversed(found[:size]))
        return {"rows": found, "newer": _mark(found[0]) if found and more_newer else None,
                "older": _mark(found[-1]) if found else None}
    if before:
        at, pk = _cursor_of(before)
        rows = rows.filter(Q(created_at__lt=at) | Q(created_at=at, pk__lt=pk))
    found = list(rows.order_by("-created_at", "-pk")[:size + 1])
    more_older = len(found) > size
    found = found[:size]
    return {"rows": found, "newer": _mark(found[0]) if found and before else None,
            "older": _mark(found[-1]) if found and more_older else None}


def _record_card(request: HttpRequest, key: str, pk: int) -> HttpResponse:
    target, record = _record(request, key, pk)
    kind = ContentType.objects.get_for_model(record)
    conversations = list(visible_conversations(request.user).filter(
        record_type=kind, record_id=record.pk).select_related("store", "agent__user"))
    rows = roles.visible_messages(request.user).filter(record_type=kind, record_id=record.pk).only(
        "pk", "direction", "subject", "from_address", "from_name", "to", "created_at", "conversation_id")
    found = _message_page(rows, before=request.GET.get("before", ""), after=request.GET.get("after", ""))
    email = getattr(record, "email", "") or ""
    compose = {"record": f"{target.key}:{record.pk}", **({"to": email} if email else {})}
    listed = {"job_applicant": (_("Job applicants"), reverse("web:job-applicants")),
              "ticket": (_("Tickets"), reverse("web:tickets"))}.get(key)
    return render(request, "web/records/card.html", {
        "target": target, "record": record, "fields": _fields(record), "token": target.token(record.pk),
        "conversations": conversations, "found": found,
        "compose_url": f"{reverse('web:compose')}?{urlencode(compose)}",
        "breadcrumbs": [*([listed] if listed else []), (str(record), None)],
    })


@login_required
def job_applicant_card(request: HttpRequest, pk: int) -> HttpResponse:
    return _record_card(request, "job_applicant", pk)


@login_required
def record_card(request: HttpRequest, key: str, pk: int) -> HttpResponse:
    """Any mail target's card; a customer's is the customer card."""
    if key == "customer":
        return redirect("web:customer", pk=pk)
    return _record_card(request, key, pk)

