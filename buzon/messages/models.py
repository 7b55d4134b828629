"""Every email Buzón holds, received or sent, in one table with one id space.

Received mail is parsed into a Message from its RawMessage by the inbound pipeline; sent mail is
composed into a Message by outbound. Threading, records and the API all read from here.

Stores are walls. Every Message carries the ``store`` of the account it arrived at (received mail)
or left through (sent mail), copied when the row is written, so that who may see it is a condition
on the row's own indexed column (crm.roles) rather than a join through the account, and so that a
store keeps its mail when an account later moves. The same mail delivered to two stores' mailboxes
is two Messages, one per store: ``dedupe_key`` (Message-ID + content hash) is unique per store, and
among store-less messages (an installation without stores dedupes across its accounts as before).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction
from django.utils.translation import gettext_lazy as _

from buzon.crm.models import Agent, AgentGroup, Customer, Store
from buzon.mailboxes.models import EmailAccount
from buzon.messages.conversations import Conversation
from buzon.sync.models import RawMessage


class Direction(models.TextChoices):
    INCOMING = "in", _("Received")
    OUTGOING = "out", _("Sent")


class MessageStatus(models.TextChoices):
    # received mail
    RECEIVED = "received", _("Received")
    PROCESSED = "processed", _("Processed")
    UNPARSEABLE = "unparseable", _("Could not be read")
    FAILED = "failed", _("Failed")
    # sent mail
    QUEUED = "queued", _("Queued")
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Sent")
    SEND_FAILED = "send_failed", _("Sending failed")
    OPENED = "opened", _("Opened")
    BOUNCED = "bounced", _("Bounced")


class Classification(models.TextChoices):
    NORMAL = "normal", _("Normal")
    BOUNCE = "bounce", _("Bounce")
    AUTO_REPLY = "auto_reply", _("Auto-reply")
    LIST = "list", _("Mailing list")
    LOOP = "loop", _("Own address (loop)")


class Message(models.Model):
    direction = models.CharField(_("direction"), max_length=3, choices=Direction.choices)
    account = models.ForeignKey(
        EmailAccount, verbose_name=_("email account"), null=True, blank=True, on_delete=models.SET_NULL,
        related_name="messages",
    )
    # The receiving (incoming) or sending (outgoing) account's store when the row was written. Not
    # db_index: the (store, -created_at, -id) index below starts with it.
    store = models.ForeignKey(
        Store, verbose_name=_("store"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        db_index=False,
    )
    raw = models.OneToOneField(RawMessage, null=True, blank=True, on_delete=models.PROTECT, related_name="message")
    message_id = models.CharField(_("Message-ID"), max_length=998, blank=True, db_index=True)
    in_reply_to = models.CharField(max_length=998, blank=True)
    references = models.TextField(blank=True)
    subject = models.TextField(_("subject"), blank=True)
    from_address = models.CharField(_("from"), max_length=320, blank=True, db_index=True)
    from_name = models.CharField(max_length=320, blank=True)
    to = models.JSONField(_("to"), default=list, blank=True)
    cc = models.JSONField(_("cc"), default=list, blank=True)
    bcc = models.JSONField(_("bcc"), default=list, blank=True)
    reply_to = models.JSONField(default=list, blank=True)
    date = models.DateTimeField(_("date"), null=True, blank=True)
    text = models.TextField(blank=True)
    html = models.TextField(blank=True, help_text=_("Already sanitised for display."))
    status = models.CharField(_("status"), max_length=12, choices=MessageStatus.choices, db_index=True)
    status_reason = models.TextField(_("reason"), blank=True)
    # What the pipeline (or the sender) decided, step by step, in plain words.
    decisions = models.JSONField(default=list, blank=True)
    record_type = models.ForeignKey(ContentType, null=True, blank=True, on_delete=models.SET_NULL)
    record_id = models.PositiveBigIntegerField(null=True, blank=True)
    record = GenericForeignKey("record_type", "record_id")
    # Given when the row is written (buzon.messages.placement); not db_index: the (conversation,
    # created_at, id) index below starts with it and reads a thread in order.
    conversation = models.ForeignKey(
        Conversation, verbose_name=_("conversation"), null=True, blank=True, on_delete=models.SET_NULL,
        related_name="messages", db_index=False,
    )
    # Written by the inbound pipeline.
    classification = models.CharField(
        _("classification"), max_length=12, choices=Classification.choices, default=Classification.NORMAL
    )
    # Message-ID + content hash: the same mail seen in two folders or accounts of one store is stored
    # once (unique per store: see Meta.constraints).
    dedupe_key = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    # The Message-ID a provider gave our sent mail when it replaced ours (found on the Sent copy).
    provider_message_id = models.CharField(max_length=998, blank=True, db_index=True)
    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), null=True, blank=True, on_delete=models.SET_NULL, related_name="messages"
    )
    agent = models.ForeignKey(
        Agent, verbose_name=_("agent"), null=True, blank=True, on_delete=models.SET_NULL, related_name="messages"
    )
    # Who reaches a store-less message through an agent group (crm.roles): its customer's group, and
    # its account's when the account has no store either; null for a store's mail. Copies the
    # database keeps current (buzon.messages.reach), so the rule is a condition on this row.
    customer_group = models.ForeignKey(AgentGroup, null=True, blank=True, editable=False, on_delete=models.SET_NULL,
                                       related_name="+", db_index=False)
    account_group = models.ForeignKey(AgentGroup, null=True, blank=True, editable=False, on_delete=models.SET_NULL,
                                      related_name="+", db_index=False)
    unreplied_notified_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["record_type", "record_id"]), models.Index(fields=["account", "-created_at"]),
            models.Index(fields=["store", "-created_at", "-id"], name="message_store_created"),
            models.Index(fields=["conversation", "created_at", "id"], name="message_conversation_created"),
            # A group's store-less mail, newest first (null for every store's mail: not in the index).
            models.Index(fields=["customer_group", "-created_at", "-id"], name="message_customer_group_created",
                         condition=models.Q(customer_group__isnull=False)),
            models.Index(fields=["account_group", "-created_at", "-id"], name="message_account_group_created",
                         condition=models.Q(account_group__isnull=False)),
            # The role rule's other terms, each in the list's order: mail assigned to an agent, mail a
            # person wrote (buzon.core.keyset reads a page of each and merges them). Whole, not partial:
            # beside the foreign keys' own indexes, a planner always finds these the better ones.
            models.Index(fields=["agent", "-created_at", "-id"], name="message_agent_created"),
            models.Index(fields=["created_by", "-created_at", "-id"], name="message_creator_created"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["store", "dedupe_key"], name="message_dedupe_once_per_store"),
            models.UniqueConstraint(fields=["dedupe_key"], condition=models.Q(store__isnull=True),
                                    name="message_dedupe_once_without_store"),
        ]

    def __str__(self) -> str:
        return f"{self.get_direction_display()} {self.from_address}: {self.subject[:60]}"

    #: Set by a writer that decided the store itself, None included (a store-less notice: outbox).
    store_given: bool = False

    def save(self, *args: Any, **kwargs: Any) -> None:
        # Every path that writes mail sets the store from its account; a new row written without
        # one (a script, a test, an integrator) still gets its account's, never "no store" by omission.
        if (self._state.adding and self.store_id is None and self.account_id is not None
                and not self.store_given):
            self.store_id = self.account.store_id  # type: ignore[union-attr]  # the instance given: no query
        if not self._state.adding:
            super().save(*args, **kwargs)
            return
        # Every message belongs to a conversation from its first write, in the same transaction.
        from buzon.messages import placement
        with transaction.atomic():
            placement.place(self)
            super().save(*args, **kwargs)
            placement.record_activity([self])


class Attachment(models.Model):
    """A file in a received message. The bytes stay in the raw message; ``part`` finds them again."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="attachments")
    part = models.PositiveIntegerField(help_text="Index of the MIME part in walk order.")
    filename = models.CharField(_("file name"), max_length=500, blank=True)
    content_type = models.CharField(_("content type"), max_length=200)
    size = models.PositiveIntegerField(_("size"))
    content_id = models.CharField(max_length=500, blank=True)
    inline = models.BooleanField(_("inline"), default=False)

    class Meta:
        ordering = ["message", "part"]
        constraints = [models.UniqueConstraint(fields=["message", "part"], name="attachment_part_once")]

    def __str__(self) -> str:
        return self.filename or self.content_type


class UndeliverableAddress(models.Model):
    """An address a bounce said cannot receive mail; outgoing mail can check it before sending.

    Per store, like customers: the store of the account that received the bounce (None: a
    store-less account's). What a bounce says, anyone can write, so a bounce received by store A
    (maybe forged) marks the address for store A only; store-less rows apply to store-less mail
    only. Rows from before stores were walls got the store of the bounce that taught them
    (migration 0006); those whose bounce is gone stayed store-less.
    """

    store = models.ForeignKey(Store, verbose_name=_("store"), null=True, blank=True, on_delete=models.CASCADE,
                              related_name="+")
    address = models.EmailField(_("email address"), max_length=320)
    reason = models.TextField(_("reason"), blank=True)
    bounce = models.ForeignKey(Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("undeliverable address")
        verbose_name_plural = _("undeliverable addresses")
        constraints = [
            models.UniqueConstraint(fields=["store", "address"], condition=models.Q(store__isnull=False),
                                    name="undeliverable_once_per_store"),
            models.UniqueConstraint(fields=["address"], condition=models.Q(store__isnull=True),
                                    name="undeliverable_once_storeless"),
        ]

    def __str__(self) -> str:
        return self.address
