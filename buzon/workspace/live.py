"""'Has anything changed since?': the cheap probe open lists and conversation pages poll.

Every change people see of a conversation (mail placed in it, a history entry: status, agent, note,
merge...) sets ``Conversation.updated_at`` (placement.record_activity, messages.conversations.touch).
A page carries a token of what it showed and asks with it; the answer is one query on the
``updated_at`` index, cut by the caller's visibility, so another store's changes never show.

The list's token is the newest change seen plus a digest of the changes in the ``LAG`` before it:
a transaction takes its time before it commits, so a change can become visible with an
``updated_at`` older than one already seen (PostgreSQL commits concurrently). Comparing that window
again finds it; a token on its own can never miss a change committed within ``LAG`` of its time.
A conversation's token is its own ``updated_at``: any other value is a change.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from buzon.core import keyset
from buzon.workspace.access import visible_conversations

LAG = dt.timedelta(seconds=5)
#: Past this many changes since the token, the answer is "changed" without reading more.
LIMIT = 100


@dataclass(frozen=True)
class Answer:
    changed: bool
    token: str


def _digest(rows: Sequence[tuple[int, dt.datetime]]) -> str:
    text = ",".join(f"{pk}@{at.timestamp():.6f}" for pk, at in sorted(rows))
    return hashlib.blake2s(text.encode(), digest_size=6).hexdigest()


def _parse(token: str) -> tuple[dt.datetime, str] | None:
    at_text, _, digest = token.rpartition("~")
    at = keyset.moment(at_text) if at_text else None
    return (at, digest) if at is not None and at.tzinfo is not None else None


def list_changes(user: Any, since: str = "") -> Answer:
    """Whether any conversation ``user`` sees changed since ``since`` (a token this gave; empty or
    unreadable: the state as of now, unchanged), and the token for the next question."""
    parsed = _parse(since)
    at, digest = parsed if parsed else (timezone.now(), "")
    rows = list(visible_conversations(user).filter(updated_at__gt=at - LAG).order_by("-updated_at", "-id")
                .values_list("pk", "updated_at")[:LIMIT + 1])
    newest = max([at, *(found for _, found in rows)])
    window = [(pk, found) for pk, found in rows if found > newest - LAG and found <= newest]
    token = f"{newest.isoformat()}~{_digest(window)}"
    if parsed is None:
        return Answer(False, token)
    before = [(pk, found) for pk, found in rows if found <= at]
    changed = len(rows) > LIMIT or newest > at or _digest(before) != digest
    return Answer(changed, token)


def conversation_changes(conversation: Any, since: str = "") -> Answer:
    """Whether the conversation (read through access_conversation: visible) changed since ``since``:
    its ``updated_at`` as the page showed it (ISO 8601, any time zone)."""
    seen = keyset.moment(since) if since.strip() else None
    return Answer(seen is not None and seen != conversation.updated_at, conversation.updated_at.isoformat())
