"""Who else has a conversation open right now, and whether they are writing in it.

An open conversation page tells the server every ~1.5 s (the live poll, buzon.workspace.live) that
its user is ``viewing`` or ``typing``; each poll answers with the others present. An entry lives
``TTL`` seconds after its user's last poll, so a closed tab disappears by itself.

Where it is kept: with Redis (``REDIS_URL``) one hash per conversation (user → state, name, time),
written and read in one round trip; else the small table ConversationPresence, one upsert and one
read, which every web process shares (a process-local cache would not: gunicorn runs several).

Only callers who passed ``access_conversation`` write or read presence (the poll checks it first),
so nobody appears on, or learns who is on, a conversation they cannot see.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _

from buzon.core import redis_client
from buzon.workspace.models import ConversationPresence

TTL = dt.timedelta(seconds=6)
STATES = ("viewing", "typing")
#: The Redis hash of a conversation's presence (tests give it a fresh prefix).
REDIS_KEY = "buzon:presence:{conversation}"


@dataclass(frozen=True)
class Present:
    user_id: int
    name: str
    state: str

    @property
    def text(self) -> str:
        """What the others see, in the reader's language."""
        if self.state == "typing":
            return _("%(name)s is replying") % {"name": self.name}
        return _("%(name)s is viewing") % {"name": self.name}


def _name(user: Any) -> str:
    return (user.get_full_name() or user.get_username()).strip()


def here(conversation_id: int, user: Any, state: str) -> list[Present]:
    """``user`` is on the conversation in ``state`` (viewing, typing; anything else counts as
    viewing); the others present, by name."""
    state = state if state in STATES else "viewing"
    now = timezone.now()
    if settings.REDIS_URL:
        return _here_redis(conversation_id, user, state, now)
    ConversationPresence.objects.bulk_create(
        [ConversationPresence(conversation_id=conversation_id, user_id=user.pk, state=state, seen_at=now)],
        update_conflicts=True, unique_fields=["conversation", "user"], update_fields=["state", "seen_at"])
    rows = ConversationPresence.objects.filter(conversation_id=conversation_id, seen_at__gte=now - TTL).exclude(
        user_id=user.pk).order_by("user__first_name", "user__username").values_list(
        "user_id", "user__first_name", "user__last_name", "user__username", "state")
    return [Present(pk, f"{first} {last}".strip() or username, found) for pk, first, last, username, found in rows]


def _here_redis(conversation_id: int, user: Any, state: str, now: dt.datetime) -> list[Present]:
    key = REDIS_KEY.format(conversation=conversation_id)
    entry = json.dumps({"name": _name(user), "state": state, "at": now.timestamp()})
    pipe = redis_client.client().pipeline()
    pipe.hset(key, str(user.pk), entry)
    pipe.expire(key, int(TTL.total_seconds()) + 1)
    pipe.hgetall(key)
    stored: dict[bytes, bytes] = pipe.execute()[-1]
    found, stale = [], []
    for field, value in stored.items():
        data = json.loads(value)
        if data["at"] < (now - TTL).timestamp():
            stale.append(field)
        elif int(field) != user.pk:
            found.append(Present(int(field), str(data["name"]), str(data["state"])))
    if stale:
        redis_client.client().hdel(key, *stale)
    return sorted(found, key=lambda p: p.name.lower())


def leave(conversation_id: int, user: Any) -> None:
    """``user`` closed the conversation (the page is going away): the others stop seeing them now."""
    if settings.REDIS_URL:
        redis_client.client().hdel(REDIS_KEY.format(conversation=conversation_id), str(user.pk))
    else:
        ConversationPresence.objects.filter(conversation_id=conversation_id, user_id=user.pk).delete()


def sweep() -> int:
    """Forget the table's stale rows (Redis entries expire by themselves); the number removed."""
    return ConversationPresence.objects.filter(seen_at__lt=timezone.now() - TTL).delete()[0]
