"""Who may see a conversation: the one place every workspace read and action asks.

A conversation is visible by the role rule on its own columns (crm.roles: its store, the agent
groups that reach it while it has none, its agent), the same rule as its messages. An invisible
conversation answers exactly like a missing one (Http404), so an id says nothing about another
store's mail.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import Http404

from buzon.crm import customers, roles
from buzon.messages.conversations import Conversation


def visible_conversations(user: Any) -> QuerySet[Conversation]:
    """The conversations ``user`` may see: a condition on the row's own columns (crm.roles; no join,
    no DISTINCT), so the list's index keeps its order."""
    return roles.visible(Conversation.objects.all(), user)


def access_conversation(user: Any, pk: Any) -> Conversation:
    """The conversation ``pk`` if ``user`` may see it; else Http404, as for one that does not exist.
    With its customer, agent and store, and the customer's first address (``customer_email``: what
    names a customer without a name, reads.customer_label) in the same query."""
    try:
        number = int(pk)
    except (TypeError, ValueError):
        raise Http404("No such conversation.") from None
    found = (visible_conversations(user).select_related("customer", "agent__user", "store")
             .annotate(customer_email=customers.first_address()).filter(pk=number).first())
    if found is None:
        raise Http404("No such conversation.")
    return found
