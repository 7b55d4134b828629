"""One action on many conversations at once (the list's checkboxes; POST /api/v1/conversations/bulk/).

Each id goes through the very action a single change calls (buzon.workspace.actions), so each is
checked, written and recorded in the history exactly as if done one by one, in its own transaction:
one refused conversation leaves the others done. An id the caller cannot see is "missing", like an
id that does not exist, and nothing happens to it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.http import Http404
from django.utils.translation import gettext as _

from buzon.workspace import actions

ACTIONS = ("assign", "status", "read", "unread")
#: At most this many conversations in one request (a page of the list holds 50).
MAX_IDS = 100
DONE, MISSING, REFUSED = "done", "missing", "refused"


@dataclass(frozen=True)
class Outcome:
    id: int
    result: str  # done, missing or refused
    message: str = ""


def parse_ids(values: Iterable[Any]) -> list[int]:
    """The ids asked for, in order, each once; refused (ActionRefused) when one is not a number or
    there are none or too many."""
    ids: list[int] = []
    for value in values:
        text = str(value).strip()
        if not text.isdigit():
            raise actions.ActionRefused(_("Conversations are given by their numbers."), field="ids")
        if int(text) not in ids:
            ids.append(int(text))
    if not ids:
        raise actions.ActionRefused(_("Choose at least one conversation."), field="ids")
    if len(ids) > MAX_IDS:
        raise actions.ActionRefused(_("Choose at most %(count)d conversations at once.") % {"count": MAX_IDS},
                                    field="ids")
    return ids


def do_bulk(user: Any, ids: Iterable[Any], action: str, *, agent: Any = None, status: str = "",
            seen_incoming_at: Mapping[int, Any] | None = None) -> list[Outcome]:
    """Apply ``action`` (assign to ``agent``, set ``status``, mark read or unread) to each conversation."""
    if action not in ACTIONS:
        raise actions.ActionRefused(_("Choose assign, status, read or unread."), field="action")
    if action == "status" and status not in actions.ConversationStatus.values:
        raise actions.ActionRefused(_("Choose open, pending or closed."), field="status")
    seen = seen_incoming_at or {}
    outcomes = []
    for pk in parse_ids(ids):
        try:
            if action == "assign":
                actions.do_assign(user, pk, "" if agent in (None, "") else str(agent))
            elif action == "status":
                actions.do_set_status(user, pk, status, seen_incoming_at=seen.get(pk))
            elif action == "read":
                actions.do_mark_read(user, pk)
            else:
                actions.do_mark_unread(user, pk)
        except Http404:
            outcomes.append(Outcome(pk, MISSING))
        except actions.ActionRefused as refused:
            outcomes.append(Outcome(pk, REFUSED, refused.message))
        else:
            outcomes.append(Outcome(pk, DONE))
    return outcomes
