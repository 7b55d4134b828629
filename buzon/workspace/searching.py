"""Searching the inbox: buzon.search among the conversations the role rule lets the user see.

The inbox page's ``?q=`` and the API's /api/v1/search/ both call ``search_page``: the visible and
filtered conversations (buzon.workspace.reads.filtered, the same view and filters as the list) are
handed to ``buzon.search.find``, so a hit in a conversation the user may not see is never found,
and nothing of it (not a snippet) is shown. A page is a constant number of queries.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from buzon import search
from buzon.crm import customers
from buzon.messages.conversations import Conversation
from buzon.workspace import reads

PAGE_SIZE = 50


@dataclass
class SearchPage:
    rows: Sequence[Conversation]  # each with .search (a buzon.search.Result): its snippet and score
    next: str | None  # the cursor for the next page of results
    searched: bool  # False when the text held no word to look for


def search_page(user: Any, text: str, filters: Mapping[str, str] | None = None, *, cursor: str = "",
                size: int = PAGE_SIZE) -> SearchPage:
    """Conversations ``user`` may see (narrowed by ``filters``, as the list) whose mail matches
    ``text``, best match first. Raises reads.BadFilter for a bad filter or cursor."""
    visible = reads.filtered(user, **dict(filters or {}))
    try:
        found = search.find(visible, text, cursor=cursor, limit=size)
    except search.BadCursor as bad:
        raise reads.BadFilter("cursor", str(bad)) from bad
    by_id = {result.conversation_id: result for result in found.results}
    rows = reads.with_unread(visible.filter(pk__in=list(by_id)), user).select_related(
        "customer", "agent__user", "store", "record_type").annotate(customer_email=customers.first_address())
    loaded = {row.pk: row for row in rows}
    ordered = []
    for result in found.results:
        row = loaded.get(result.conversation_id)
        if row is not None:  # gone (or out of reach) since the search: left out
            row.search = result  # type: ignore[attr-defined]
            ordered.append(row)
    return SearchPage(ordered, found.next, bool(found.terms))
