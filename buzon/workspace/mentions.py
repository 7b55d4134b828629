"""@mentions in internal notes: who a note names, and the bell for those of them who may see it.

A mention is "@" and a username (letters, digits and ``.+-_``), not glued to a word before it (so
``ana@shop.test`` is an address, not a mention). A named person is told through the in-app bell,
in their own language, only if they may see the conversation (buzon.workspace.access, the one
visibility rule): a name from another store, or no one's, tells nobody, and the one who wrote the
note learns nothing about it (the note is saved the same way).
"""

from __future__ import annotations

import operator
import re
from functools import reduce
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Q
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _

from buzon.core.language import languages_of
from buzon.crm.notifications import notify
from buzon.messages.conversations import Conversation
from buzon.workspace.access import visible_conversations

MENTION = re.compile(r"(?<![\w@.+-])@([\w][\w.+-]*[\w]|[\w])")
#: The notification kind of a mention (the bell, /notifications/).
KIND = "mention"
#: At most this many people are looked at per note (a pasted list of names notifies no crowd).
MAX_MENTIONS = 20


def mentioned_names(text: str) -> list[str]:
    """The usernames ``text`` mentions, once each, in order (as written)."""
    seen: dict[str, str] = {}
    for match in MENTION.finditer(text or ""):
        seen.setdefault(match.group(1).lower(), match.group(1))
    return list(seen.values())[:MAX_MENTIONS]


def notify_mentioned(author: Any, conversation: Conversation, note_pk: int, text: str) -> list[Any]:
    """Ring the bell of each person the note mentions who may see the conversation (never the author);
    returns those told. The text is written in each one's language."""
    names = mentioned_names(text)
    if not names:
        return []
    named = reduce(operator.or_, (Q(username__iexact=name) for name in names))
    people = [user for user in get_user_model().objects.filter(named, is_active=True).order_by("pk")
              if user.pk != getattr(author, "pk", None)]
    url = reverse("web:conversation", args=[conversation.pk])
    languages = languages_of(people)
    who = (author.get_full_name() or author.get_username()) if getattr(author, "pk", None) else "Buzón"
    told = []
    for person in people:
        if not visible_conversations(person).filter(pk=conversation.pk).exists():
            continue  # outside the conversation's reach: nobody is told, and nothing says so
        with translation.override(languages.get(person.pk)):
            words = _("%(author)s mentioned you in a note on “%(subject)s”") % {
                "author": who, "subject": conversation.subject or _("(no subject)")}
        if notify(person, KIND, f"note:{note_pk}", words, url) is not None:
            told.append(person)
    return told
