"""What the workspace keeps beside a conversation: who has read it up to when, and its history.

The conversation itself (buzon.messages.conversations) lives beside Message, because every path that
writes mail gives each message its conversation; these rows are written only by the workspace's
actions (buzon.workspace.actions).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from buzon.crm.models import Store
from buzon.messages.conversations import Conversation


class ConversationRead(models.Model):
    """``user`` has seen ``conversation`` up to ``last_read_at``: unread for them is mail received
    after it (Conversation.last_incoming_at > last_read_at), or any received mail without a row."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="reads")
    last_read_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "conversation"], name="conversation_read_once")]

    def __str__(self) -> str:
        return f"{self.user_id} read {self.conversation_id} at {self.last_read_at}"


class EventKind(models.TextChoices):
    REPLIED = "replied", _("Replied")
    STATUS = "status", _("Status changed")
    ASSIGNED = "assigned", _("Assigned")
    MERGED = "merged", _("Merged")
    SPLIT = "split", _("Message moved out")
    FORWARDED = "forwarded", _("Forwarded")
    NOTE = "note", _("Note added")


class ConversationEvent(models.Model):
    """One entry of a conversation's history: who did what, with its parameters as data (so it reads
    in each reader's language)."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="events")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")
    kind = models.CharField(max_length=16, choices=EventKind.choices)
    params = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["conversation", "at"], name="conversation_event_at")]

    def __str__(self) -> str:
        return f"{self.kind} {self.params}"


class ConversationPresence(models.Model):
    """``user`` had the conversation open (``state`` viewing or typing) at ``seen_at``: where
    buzon.workspace.presence keeps presence when there is no Redis (every web process reads this
    table). Rows older than presence.TTL mean nothing and are overwritten or swept."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    state = models.CharField(max_length=8)
    seen_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["conversation", "user"], name="conversation_presence_once")]
        indexes = [models.Index(fields=["seen_at"], name="conversation_presence_seen")]

    def __str__(self) -> str:
        return f"{self.user_id} {self.state} {self.conversation_id}"


class ConversationNote(models.Model):
    """An agent's internal note on a conversation: never mailed, seen by everyone who may see the
    conversation, shown in the thread among the messages in time order (actions.do_add_note)."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="notes")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="+")
    text = models.TextField(_("note"))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["conversation", "created_at"], name="conversation_note_at")]

    def __str__(self) -> str:
        return f"note {self.pk} on {self.conversation_id}"


class CannedResponse(models.Model):
    """A short text an agent inserts in a reply by its ``shortcut`` ("/thanks"). Without ``store`` it
    is its owner's own; with one (shared by a supervisor of that store or an administrator) every
    agent of that store sees it (buzon.workspace.canned)."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    store = models.ForeignKey(Store, verbose_name=_("shared with store"), null=True, blank=True,
                              on_delete=models.CASCADE, related_name="+")
    shortcut = models.CharField(_("shortcut"), max_length=40)
    title = models.CharField(_("title"), max_length=200)
    text = models.TextField(_("text"))
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["shortcut", "id"]
        constraints = [models.UniqueConstraint(fields=["owner", "shortcut"], name="canned_response_shortcut_once")]
        indexes = [models.Index(fields=["store", "shortcut", "id"], name="canned_response_store")]

    def __str__(self) -> str:
        return f"/{self.shortcut}"
