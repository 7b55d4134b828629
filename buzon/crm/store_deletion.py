"""Deleting a store: refused while the store still holds mail, customers, records or accounts.

What deleting a store means. A store is a wall around its email accounts, mail, customers, tickets
and job applicants. Deleting it would not delete them (their ``store`` is SET_NULL): they would
become store-less rows, seen by store-less agent groups instead of the store's people, and would
meet the store-less rows already there — an address with a store-less customer card, the same
message stored for a store-less account — which the database refuses (an integrity error halfway
through). The best helpdesks refuse the same (a Zendesk brand or Help Scout mailbox that still has
conversations is not deleted), so Buzón does: a store is deleted only when it holds none of them,
and the refusal says what is left (customers can be moved to another store, accounts moved or
deleted). Its agents and agent groups stay and simply belong to no store any more; its undeliverable
addresses go with it. The web UI and the API both call ``delete_store``.

(crm imports no context above it: the models are named by label, as in buzon.crm.roles.)
"""

from __future__ import annotations

from django.apps import apps
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from buzon.crm.models import Store

#: (model label, store field, what the count is of): everything that would become store-less.
HELD = (
    ("mailboxes.EmailAccount", "store", gettext_lazy("email accounts")),
    ("messages_app.Message", "store", gettext_lazy("messages")),
    ("crm.Customer", "store", gettext_lazy("customers")),
    ("crm.Ticket", "store", gettext_lazy("tickets")),
    ("crm.JobApplicant", "store", gettext_lazy("job applicants")),
)


class StoreInUse(Exception):
    """The store still holds rows of its own; ``message`` says which, in the active language."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def held(store: Store) -> list[tuple[str, int]]:
    """(what, how many) the store still holds, of each kind it holds any of."""
    found = []
    for label, field, what in HELD:
        count = apps.get_model(label)._default_manager.filter(**{f"{field}_id": store.pk}).count()
        if count:
            found.append((str(what), count))
    return found


def refusal(store: Store) -> str:
    """Why ``store`` cannot be deleted now ("" when it can)."""
    found = held(store)
    if not found:
        return ""
    return _("Store %(name)s still holds %(held)s. Move or delete them first: deleting the store would "
             "leave them without a store.") % {
        "name": store.name, "held": ", ".join(f"{what}: {count}" for what, count in found)}


def delete_store(store: Store) -> None:
    """Delete ``store``, or raise StoreInUse. The row is locked while it is checked and deleted, so
    mail arriving meanwhile for one of its accounts waits instead of being left store-less."""
    with transaction.atomic():
        locked = Store.objects.select_for_update().filter(pk=store.pk).first()
        if locked is None:
            return
        why = refusal(locked)
        if why:
            raise StoreInUse(why)
        locked.delete()
