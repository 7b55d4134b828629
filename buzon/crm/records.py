"""Creating and finding the records mail feeds (customers, tickets, job applicants).

The ``create_*`` functions are what the mail-target registry (buzon.messages.targets) calls for a new
conversation; they take any object with the attributes of ``targets.NewConversation`` (crm sits
below messages, so it names the shape instead of importing it).
"""

from __future__ import annotations

from typing import Any, Protocol

from django.db import IntegrityError

from buzon.crm.models import Customer, CustomerEmail, JobApplicant, Store, Ticket
from buzon.crm.savepoints import savepoint


class Conversation(Protocol):
    @property
    def subject(self) -> str: ...
    @property
    def from_address(self) -> str: ...
    @property
    def from_name(self) -> str: ...
    @property
    def customer(self) -> Any: ...
    @property
    def account(self) -> Any: ...


def normalise_address(address: str) -> str:
    return (address or "").strip().lower()


def store_filter(store: Store | int | None, path: str = "store") -> dict[str, Any]:
    """The look-up keyword for rows of ``store`` (None: rows of no store)."""
    store_id = store.pk if isinstance(store, Store) else store
    return {f"{path}__isnull": True} if store_id is None else {f"{path}_id": store_id}


def find_customer(address: str, store: Store | int | None) -> Customer | None:
    """The customer card of ``store`` that owns ``address`` (None: among store-less customers).

    Customers are per store: the same person writing to another store is another store's card,
    never this one (crm.models)."""
    address = normalise_address(address)
    if not address:
        return None
    row = CustomerEmail.objects.select_related("customer").filter(address=address, **store_filter(store)).first()
    return row.customer if row else None


def get_or_create_customer(address: str, *, name: str = "", store: Store | None = None) -> tuple[Customer, bool]:
    """The customer of ``store`` owning ``address``, or a new one there with only the email filled in
    (seed 002)."""
    existing = find_customer(address, store)
    if existing is not None:
        return existing, False
    return create_customer_for(address, name=name, store=store)


def create_customer_for(address: str, *, name: str = "", store: Store | None = None) -> tuple[Customer, bool]:
    """Create the customer of an address not found in ``store`` a moment ago.

    Two workers seeing the same new sender at once race on CustomerEmail's unique (address, store):
    the loser drops its customer row and returns the winner's, so one customer is created.
    """
    address = normalise_address(address)
    customer = Customer.objects.create(name=name[:200], store=store)
    if not address:
        return customer, True  # mail with no usable sender: a customer, but no address to find it by
    try:
        with savepoint():
            CustomerEmail.objects.create(customer=customer, address=address)
    except IntegrityError:
        customer.delete()  # lost the race: no customer without an address is left behind
        winner = find_customer(address, store)
        if winner is None:
            raise
        return winner, False
    return customer, True


def _store_of(conversation: Conversation) -> Store | None:
    account = conversation.account
    return getattr(account, "store", None) if account is not None else None


def new_ticket(conversation: Conversation) -> Ticket:
    """An unsaved ticket for a new conversation (saved one by one, or in bulk by the batch runner)."""
    customer = conversation.customer
    store = _store_of(conversation)
    # The customer's agent handles the ticket only if the customer is a card of the ticket's store
    # (customers are looked up per store, so it is; never hand one store's ticket to another's agent).
    same_store = getattr(customer, "store_id", None) == (store.pk if store is not None else None)
    return Ticket(
        subject=(conversation.subject or "")[:998],
        customer=customer,
        agent=getattr(customer, "agent", None) if same_store else None,
        store=store,
    )


def create_ticket(conversation: Conversation) -> Ticket:
    ticket = new_ticket(conversation)
    ticket.save()
    return ticket


def new_job_applicant(conversation: Conversation) -> JobApplicant:
    return JobApplicant(
        name=(conversation.from_name or "")[:200],
        email=normalise_address(conversation.from_address)[:320],
        subject=(conversation.subject or "")[:998],
        store=_store_of(conversation),
    )


def create_job_applicant(conversation: Conversation) -> JobApplicant:
    applicant = new_job_applicant(conversation)
    applicant.save()
    return applicant


#: Unsaved-record builders of the built-in targets, keyed by their create callables, for bulk inserts.
BUILDERS = {create_ticket: new_ticket, create_job_applicant: new_job_applicant}


def create_customer(conversation: Conversation) -> Customer:
    if conversation.customer is not None:
        return conversation.customer  # type: ignore[no-any-return]
    customer, _ = get_or_create_customer(
        conversation.from_address, name=conversation.from_name, store=_store_of(conversation)
    )
    return customer
