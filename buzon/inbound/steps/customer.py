"""customer: link the message to the customer whose address sent it, or create one (seed 002).

With ``create_customer_if_not_found`` off, mail from an unknown sender is not imported: Skip leaves
the raw message ``skipped`` (never deleted from the server), to be imported if the sender becomes a
customer later. Automated mail (bounces, auto-replies, lists) never creates a customer; a bounce of
mail Buzón sent is imported anyway, since it is about our own message.

Customers are per store (crm.models): the sender is looked up, and created, among the customers of
the receiving account's store only. A customer of store B writing to store A's mailbox becomes (or
is) a store A card, whose agent is one of store A's; store B's card and agent never see that mail.
"""

from __future__ import annotations

from django.db.models import Q
from django.utils.translation import gettext_noop

from buzon.crm import records
from buzon.crm.models import CustomerEmail
from buzon.inbound.context import Context, Skip
from buzon.messages.models import Classification, UndeliverableAddress

NAME = "customer"


def run(ctx: Context) -> None:
    address = ctx.message.from_address
    if decide(ctx, records.find_customer(address, ctx.store_id) if address else None):
        store = ctx.account.store if ctx.account is not None else None
        customer, created = records.create_customer_for(address, store=store)
        reason = undeliverable_reasons([address], ctx.store_id).get(address)
        if created and reason is not None:
            CustomerEmail.objects.filter(customer=customer, address=address).update(
                undeliverable=True, undeliverable_reason=reason)
        linked(ctx, customer, created=created)


def undeliverable_reasons(addresses: list[str], store_id: int | None) -> dict[str, str]:
    """Addresses a bounce received by store ``store_id`` marked undeliverable before their customer
    existed, with the reason: the new customer's address is marked at once (the bounced step marks
    the customers that exist)."""
    return {address: reason[:1000] for address, reason in UndeliverableAddress.objects.filter(
        address__in=addresses, **records.store_filter(store_id)).values_list("address", "reason")}


def undeliverable_by_store(keys: list[tuple[int | None, str]]) -> dict[tuple[int | None, str], str]:
    """undeliverable_reasons for many (store, address) at once (the batch runner): one query."""
    by_store: dict[int | None, list[str]] = {}
    for store_id, address in keys:
        by_store.setdefault(store_id, []).append(address)
    condition = Q(pk__in=[])
    for store_id, addresses in by_store.items():
        condition |= Q(address__in=addresses, **records.store_filter(store_id))
    return {(store_id, address): reason[:1000] for store_id, address, reason in
            UndeliverableAddress.objects.filter(condition).values_list("store_id", "address", "reason")}


def decide(ctx: Context, found: records.Customer | None) -> bool:
    """Link the customer ``found`` for the sender, or decide there is none (raising Skip when the
    message is not imported). True when a customer must be created for the sender (the caller
    creates it and calls ``linked``; the batch runner creates many at once)."""
    address = ctx.message.from_address
    if found is None and isinstance(ctx.record, records.Customer):
        found = ctx.record
    if found is not None:
        linked(ctx, found, created=False)
        return False
    create = ctx.account is None or ctx.account.create_customer_if_not_found
    if ctx.automated:
        if not create and not (ctx.message.classification == Classification.BOUNCE and ctx.parent is not None):
            raise Skip(f"{address or 'the sender'} is not a customer and this account imports only customers' mail")
        ctx.decide(NAME, "none", gettext_noop("Automatic mail: no customer is created for it."))
        return False
    if not address:
        ctx.decide(NAME, "none", gettext_noop("The message names no sender."))
        return False
    if not create:
        raise Skip(f"{address} is not a customer and this account imports only customers' mail")
    return True


def linked(ctx: Context, customer: records.Customer, *, created: bool) -> None:
    """Link the message to its customer and record it (also used by the batch runner)."""
    ctx.customer, ctx.customer_created = customer, created
    ctx.message.customer = customer
    if created:
        ctx.decide(NAME, "created", gettext_noop("New customer %(customer)s created for %(address)s."),
                   customer=customer.pk, address=ctx.message.from_address)
    else:
        ctx.decide(NAME, "linked", gettext_noop("Sent by customer %(customer)s."), customer=customer.pk)
