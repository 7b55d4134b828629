"""The conversation list, for the inbox page and the API alike: filters, keyset pages, unread.

A page is one query for its rows, or two for someone the role rule reaches by several terms (plus
the role's cached look-ups): rows come in the order of an index, (filter column, -last_message_at,
-id); for an agent, each term of the rule (a store, an agent group, the agent) is read from its own
such index and their ids merged (keyset.merged_sql), then those rows read by id. Pages continue from
a cursor (the last row's activity and id), never from an offset, and nothing counts the table.
"Unread for me" is computed in the rows' query from the user's ConversationRead row.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db.models import BooleanField, Case, Exists, OuterRef, Q, QuerySet, Subquery, Value, When

from buzon.core import keyset
from buzon.crm import customers, roles
from buzon.messages.conversations import Conversation, ConversationStatus
from buzon.workspace.access import visible_conversations
from buzon.workspace.models import ConversationRead

PAGE_SIZE = 50
#: The inbox's views: mine, unassigned, every store of mine, every store (administrators).
VIEWS = ("mine", "unassigned", "stores", "all")
#: What a user may filter the inbox by, each served by an index ending in the list's order.
FILTERS = ("view", "store", "status", "account", "agent", "customer")


class BadFilter(ValueError):
    """A filter or cursor that cannot be used; ``field`` names it (for a 400)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


Cursor = keyset.Cursor
Page = keyset.Page


def _number(field: str, value: Any) -> int:
    found = keyset.number(value)
    if found is None:
        raise BadFilter(field, f"A {field} is given by its number.")
    return found


def filtered(user: Any, *, view: str = "", store: str = "", status: str = "", account: str = "", agent: str = "",
             customer: str = "") -> QuerySet[Conversation]:
    """The conversations ``user`` may see, narrowed by a view and filters. Filtering by a store,
    account, agent or customer the user cannot see finds nothing (the visibility rule comes first)."""
    rows = visible_conversations(user).filter(last_message_at__isnull=False)
    if view == "mine":
        me = roles.agent_of(user)
        rows = rows.filter(agent_id=me.pk) if me is not None else rows.none()
    elif view == "unassigned":
        rows = rows.filter(agent__isnull=True)
    elif view == "stores":
        rows = rows.filter(store_id__in=[s.pk for s in roles.visible_stores(user)])
    elif view not in ("", "all"):
        raise BadFilter("view", "Choose mine, unassigned, stores or all.")
    if store:
        rows = rows.filter(store_id=_number("store", store))
    if status:
        if status not in ConversationStatus.values:
            raise BadFilter("status", "Choose open, pending or closed.")
        rows = rows.filter(status=status)
    if account:
        rows = rows.filter(account_id=_number("account", account))
    if agent:
        rows = rows.filter(agent_id=_number("agent", agent))
    if customer:
        rows = rows.filter(customer_id=_number("customer", customer))
    return rows


def with_unread(rows: QuerySet[Conversation], user: Any) -> QuerySet[Conversation]:
    read_since = ConversationRead.objects.filter(user_id=user.pk, conversation=OuterRef("pk"),
                                                 last_read_at__gte=OuterRef("last_incoming_at"))
    return rows.annotate(unread=Case(When(last_incoming_at__isnull=True, then=Value(False)),
                                     default=~Exists(read_since), output_field=BooleanField()))


def page(user: Any, filters: Mapping[str, str] | None = None, *, before: str = "", after: str = "",
         size: int = PAGE_SIZE) -> Page:
    """A page of the list, newest activity first: from the top, ``before`` a cursor (older rows) or
    ``after`` one (newer rows). ``filters``: the view and filters of ``FILTERS`` (blank: not used)."""
    filters = dict(filters or {})
    unknown = set(filters) - set(FILTERS)
    if unknown:
        raise TypeError(f"not inbox filters: {sorted(unknown)}")  # a caller's mistake
    rows = with_unread(filtered(user, **filters), user)
    rows = rows.select_related("customer", "agent__user", "store").annotate(customer_email=customers.first_address())
    try:
        return keyset.page(rows, field="last_message_at", before=before, after=after, size=size,
                           terms=roles.terms("messages_app.Conversation", user))
    except keyset.BadCursor as bad:
        raise BadFilter("cursor", str(bad)) from bad


def with_conversation(rows: QuerySet[Any]) -> QuerySet[Any]:
    """Record rows (tickets, job applicants, any mail target) with ``conversation_pk``: the record's
    conversation; customers with their latest one. One subquery, so a list page stays one query."""
    model = rows.model
    conversations = Conversation.objects.order_by("-last_message_at", "-id")
    if model._meta.label == "crm.Customer":
        conversations = conversations.filter(customer=OuterRef("pk"))
    else:
        conversations = conversations.filter(record_type=ContentType.objects.get_for_model(model),
                                             record_id=OuterRef("pk"))
    return rows.annotate(conversation_pk=Subquery(conversations.values("pk")[:1]))


def customer_label(row: Conversation) -> str:
    """The customer as the list shows them (their name, else their first address), read by ``page``."""
    if row.customer is None:
        return ""
    return row.customer.name or getattr(row, "customer_email", None) or f"#{row.customer_id}"


def merge_candidates(user: Any, conversation: Conversation, limit: int = 20) -> list[Conversation]:
    """What the conversation page offers to merge into this one: the same customer's other
    conversations of the same store, latest activity first (the customer index serves it)."""
    if conversation.customer_id is None:
        return []
    same_store = Q(store_id=conversation.store_id) if conversation.store_id is not None else Q(store__isnull=True)
    rows = visible_conversations(user).filter(
        same_store, customer_id=conversation.customer_id, last_message_at__isnull=False,
    ).exclude(pk=conversation.pk).order_by("-last_message_at", "-id")
    return list(rows.only("pk", "subject", "last_message_at", "message_count")[:limit])
