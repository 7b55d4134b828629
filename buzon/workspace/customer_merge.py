"""Merging two customer cards of one store into one (someone who writes from two addresses).

The kept card gets every address of the other, and everything that pointed at the other card now
points at it: every row with a foreign key to Customer (addresses, contacts, tickets, messages,
conversations, and whatever an integrator adds; found through the model's relations, so none is
forgotten), and the messages filed under the other card as their record. When both cards had a
conversation of their own as a record (an account whose mail goes to the customer's history), the
other's is merged into the kept one (buzon.workspace.merging), so each card keeps one history.
Then the other card is deleted and the audit log says who merged which card into which.

It lives in the workspace, not in crm, because it moves conversations and messages (contexts
above crm). Both cards are found through crm.roles first: one the user may not see is a 404 like a
missing one, and nothing changes; cards of two stores are refused in words (each store's
customers stay its own). All of it is one transaction, the two cards locked in id order.
"""

from __future__ import annotations

from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.http import Http404
from django.utils.translation import gettext as _

from buzon.crm import people
from buzon.crm.customers import access_customer, label
from buzon.crm.models import Customer
from buzon.messages.conversations import Conversation
from buzon.messages.models import Message
from buzon.workspace import merging
from buzon.workspace.actions import ActionRefused


def _move_record_conversation(user: Any, kind: ContentType, keep: Customer, other: Customer) -> None:
    """The other card's own conversation (record = the card) becomes the kept card's, or is merged
    into the kept card's when that has one too (a record has one conversation)."""
    mine = Conversation.objects.filter(record_type=kind, record_id=keep.pk).first()
    theirs = Conversation.objects.filter(record_type=kind, record_id=other.pk).first()
    if theirs is None:
        return
    if mine is None:
        Conversation.objects.filter(pk=theirs.pk).update(record_id=keep.pk)
        return
    if theirs.merged_into_id is None:
        merging.do_merge(user, mine.merged_into_id or mine.pk, theirs.pk)
    # The merged row stays (links to it lead on) but no longer claims a card that is gone.
    Conversation.objects.filter(pk=theirs.pk).update(record_type=None, record_id=None)


def merge_customers(user: Any, keep_id: Any, other_id: Any) -> Customer:
    """Merge card ``other_id`` into card ``keep_id`` (see the module); returns the kept card."""
    keep = access_customer(user, keep_id)
    other = access_customer(user, other_id)
    if keep.pk == other.pk:
        raise ActionRefused(_("Choose another customer to merge into this one."), field="other")
    if keep.store_id != other.store_id:
        raise ActionRefused(_("Customers of different stores cannot be merged: each store's customers stay its "
                              "own."), field="other")
    with transaction.atomic():
        locked = {c.pk: c for c in Customer.objects.select_for_update().filter(pk__in=[keep.pk, other.pk])
                  .order_by("pk")}
        if len(locked) != 2:  # merged or deleted by someone else meanwhile
            raise Http404
        keep, other = locked[keep.pk], locked[other.pk]
        other_label, other_addresses = label(other), sorted(other.emails.values_list("address", flat=True))
        before = sorted(keep.emails.values_list("address", flat=True))
        kind = ContentType.objects.get_for_model(Customer)
        _move_record_conversation(user, kind, keep, other)
        Message.objects.filter(record_type=kind, record_id=other.pk).update(record_id=keep.pk)
        merging.repoint(Customer, other.pk, keep.pk)
        fields = []
        for name in ("name", "agent_id", "agent_group_id", "assigned_at"):
            if not getattr(keep, name) and getattr(other, name):
                setattr(keep, name, getattr(other, name))
                fields.append(name.removesuffix("_id"))
        if fields:
            keep.save(update_fields=fields)
        after = sorted(keep.emails.values_list("address", flat=True))
        people.audit(user, "customer", keep, "changed", [
            {"field": "merged", "old": f"#{other.pk} {other_label}", "new": f"#{keep.pk} {label(keep)}"},
            {"field": "addresses", "old": before, "new": after}])
        people.changed.send(sender=__name__, actor=user, target="customer", target_id=other.pk,
                            label=other_label[:300], action="deleted", changes=[
            {"field": "merged", "old": f"#{other.pk} {other_label}", "new": f"#{keep.pk} {label(keep)}"},
            {"field": "addresses", "old": other_addresses, "new": []}])
        other.delete()
    return access_customer(user, keep.pk)
