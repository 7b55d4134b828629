"""A customer's card: finding it for a user, and changing its name, addresses and assigned agent
(web card and API alike).

A card is reached only through crm.roles: one the user may not see is ``Http404``, like a missing
one. Its assigned agent is one of its store's agents (a store-less card: an agent of no store),
and its addresses must be free in its store (an address is one card's per store, crm.models).
Every change is audited as the customer's (target "customer", through crm.people.changed).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _

from buzon.crm import people, roles
from buzon.crm.models import Agent, Customer, CustomerEmail
from buzon.crm.records import normalise_address, store_filter


class CustomerRefused(Exception):
    """A change that cannot be made: ``errors`` maps a field name to messages in the user's language."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("; ".join(m for messages in errors.values() for m in messages))
        self.errors = errors


def access_customer(user: Any, pk: Any, *, lock: bool = False) -> Customer:
    """The customer ``pk`` if ``user`` may see it, else Http404 (a missing id answers the same)."""
    try:
        number = int(pk)
    except (TypeError, ValueError):
        raise Http404 from None
    visible = roles.visible_customers(user).filter(pk=number)
    if lock:  # a DISTINCT query cannot be locked: lock the row by id once it is known to be visible
        if not visible.exists():
            raise Http404
        return Customer.objects.select_for_update().get(pk=number)
    customer = visible.select_related("store", "agent__user").first()
    if customer is None:
        raise Http404
    return customer  # type: ignore[no-any-return]


def store_agents(customer: Customer) -> QuerySet[Agent]:
    """The agents a customer may be assigned to: their store's (store-less cards: agents of no store)."""
    agents = Agent.objects.select_related("user").order_by("user__first_name", "user__last_name", "user__username")
    if customer.store_id is None:
        return agents.filter(stores__isnull=True)
    return agents.filter(stores=customer.store_id).distinct()


def first_address(customer: str = "customer") -> Subquery:
    """The first address of the customer the outer row's ``customer`` column names ("pk" on a
    customer row), as a subquery of that row's own query: what names a customer without a name."""
    return Subquery(CustomerEmail.objects.filter(customer=OuterRef(customer)).order_by("pk").values("address")[:1])


def label(customer: Customer) -> str:
    """The card's name, else its first address, else its number (what lists and the audit show)."""
    first = next(iter(customer.emails.all()), None)
    return customer.name or (first.address if first is not None else f"#{customer.pk}")


def clean_addresses(addresses: Iterable[str]) -> list[str]:
    """Addresses in lower case, each once, in the given order; CustomerRefused names a bad one."""
    cleaned: list[str] = []
    for given in addresses:
        address = normalise_address(given)
        if not address:
            continue
        try:
            validate_email(address)
        except ValidationError:
            raise CustomerRefused({"addresses": [_("%(address)s is not an email address.") % {"address": given}]}
                                  ) from None
        if address not in cleaned:
            cleaned.append(address)
    return cleaned


def update_customer(actor: Any, pk: Any, *, name: str, addresses: Iterable[str], agent: Agent | None) -> Customer:
    """Give the card ``pk`` this name, exactly these addresses and this assigned agent (audited).

    An address another card of the store has is refused (say which); so is an agent outside the
    store. Addresses removed are deleted: mail from them starts a new card next time."""
    wanted = clean_addresses(addresses)
    with transaction.atomic():
        customer = access_customer(actor, pk, lock=True)
        if agent is not None and agent.pk != customer.agent_id and not store_agents(customer).filter(
                pk=agent.pk).exists():
            raise CustomerRefused({"agent": [_("Choose one of the store's agents.")]})
        taken = CustomerEmail.objects.filter(address__in=wanted, **store_filter(customer.store_id)).exclude(
            customer=customer).first()
        if taken is not None:
            raise CustomerRefused({"addresses": [_("%(address)s already belongs to another customer.")
                                                 % {"address": taken.address}]})
        before = {"name": customer.name, "addresses": sorted(customer.emails.values_list("address", flat=True)),
                  "agent": str(customer.agent) if customer.agent_id else ""}
        customer.name = name.strip()[:200]
        if agent is None or agent.pk != customer.agent_id:
            customer.agent = agent
            customer.assigned_at = timezone.now() if agent is not None else None
        customer.save(update_fields=["name", "agent", "assigned_at"])
        customer.emails.exclude(address__in=wanted).delete()
        have = set(customer.emails.values_list("address", flat=True))
        for address in wanted:
            if address not in have:
                CustomerEmail.objects.create(customer=customer, address=address)
        after = {"name": customer.name, "addresses": sorted(wanted),
                 "agent": str(agent) if agent is not None else ""}
        changes = people.diff(before, after)
        if changes:
            people.audit(actor, "customer", customer, "changed", changes)
    return access_customer(actor, customer.pk)
