"""A conversation's history as sentences in the reader's language ("Lucía changed the status from
Open to Closed"), written when read from each entry's kind and parameters (ConversationEvent), so
the same entry reads in Spanish to one person and in English to another."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.utils.translation import gettext as _

from buzon.crm.models import Agent
from buzon.messages.conversations import ConversationStatus
from buzon.workspace.models import ConversationEvent, EventKind


def person(user: Any) -> str:
    """How a person is named in the history and in notes: full name, else username; no one is Buzón."""
    if user is None:
        return "Buzón"
    return str(user.get_full_name() or user.get_username())


def _status(value: Any) -> str:
    try:
        return str(ConversationStatus(value).label)
    except ValueError:
        return str(value)


def sentence(event: ConversationEvent, agents: dict[int, str]) -> str:
    """The entry as a sentence in the active language (``agents``: agent id -> name, for assignments)."""
    params, actor = event.params or {}, person(event.actor)
    if event.kind == EventKind.REPLIED:
        return _("%(actor)s replied.") % {"actor": actor}
    if event.kind == EventKind.STATUS:
        return _("%(actor)s changed the status from %(old)s to %(new)s.") % {
            "actor": actor, "old": _status(params.get("old")), "new": _status(params.get("new"))}
    if event.kind == EventKind.ASSIGNED:
        if params.get("new") is None:
            return _("%(actor)s unassigned it.") % {"actor": actor}
        name = agents.get(params["new"]) or _("an agent who is gone")
        return _("%(actor)s assigned it to %(agent)s.") % {"actor": actor, "agent": name}
    if event.kind == EventKind.MERGED:
        return _("%(actor)s merged conversation #%(other)s (“%(subject)s”) into this one.") % {
            "actor": actor, "other": params.get("other", "?"), "subject": params.get("subject", "")}
    if event.kind == EventKind.SPLIT:
        if params.get("into"):
            return _("%(actor)s moved a message out into conversation #%(into)s.") % {
                "actor": actor, "into": params["into"]}
        return _("%(actor)s moved this message out of conversation #%(source)s.") % {
            "actor": actor, "source": params.get("source", "?")}
    if event.kind == EventKind.FORWARDED:
        return _("%(actor)s forwarded a message to %(to)s.") % {
            "actor": actor, "to": ", ".join(str(a) for a in params.get("to") or [])}
    if event.kind == EventKind.NOTE:
        return _("%(actor)s added a note.") % {"actor": actor}
    return f"{actor} · {event.get_kind_display()}"


def described(events: Iterable[ConversationEvent]) -> list[ConversationEvent]:
    """The entries with ``sentence`` set, in the active language; agents named in assignments are
    read in one query (select_related("actor") on ``events`` saves one per entry)."""
    rows = list(events)
    ids: set[int] = {row.params["new"] for row in rows if row.kind == EventKind.ASSIGNED
                     and isinstance(row.params, dict) and isinstance(row.params.get("new"), int)}
    agents = {a.pk: str(a) for a in Agent.objects.select_related("user").filter(pk__in=ids)} if ids else {}
    for row in rows:
        row.sentence = sentence(row, agents)  # type: ignore[attr-defined]
    return rows
