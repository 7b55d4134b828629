"""Conversations: the unit an agent works on (DESIGN.md, "The workspace").

A conversation is a record (a ticket, a job applicant, a customer, any registered mail target) or,
for mail that no record took, its thread. Every Message belongs to one, given when the message is
written, in the same transaction (``place``), and the conversation keeps what the inbox shows of it
(subject, customer, agent, store, snippet, count, last activity) so that the inbox reads one row per
conversation from an index on its own columns, never a COUNT or an aggregate over messages.

The model lives here, beside Message, because everything that writes mail (inbound below the
workspace, outbound, the outbox) must give each message its conversation; what people do with a
conversation (reply, assign, status, read) is buzon.workspace.
"""

from __future__ import annotations

from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from buzon.crm.models import Agent, AgentGroup, Customer, Store

SNIPPET_LENGTH = 200


class ConversationStatus(models.TextChoices):
    # "conversation" context: Spanish agrees with the (feminine) noun ("abierta", not "abierto").
    OPEN = "open", pgettext_lazy("conversation", "Open")
    PENDING = "pending", pgettext_lazy("conversation", "Pending")
    CLOSED = "closed", pgettext_lazy("conversation", "Closed")


class Conversation(models.Model):
    # The store of the mail that started it (a wall, as Message.store): null for store-less mail.
    store = models.ForeignKey(Store, verbose_name=_("store"), null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+", db_index=False)
    # The mailbox the conversation's first mail came through or left from (the inbox's "account" filter).
    account = models.ForeignKey("mailboxes.EmailAccount", verbose_name=_("email account"), null=True, blank=True,
                                on_delete=models.SET_NULL, related_name="+", db_index=False)
    subject = models.TextField(_("subject"), blank=True)
    customer = models.ForeignKey(Customer, verbose_name=_("customer"), null=True, blank=True,
                                 on_delete=models.SET_NULL, related_name="conversations", db_index=False)
    agent = models.ForeignKey(Agent, verbose_name=_("agent"), null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="conversations", db_index=False)
    # The agent groups that reach a store-less conversation (crm.roles), as on Message: its
    # customer's, and its account's when the account has no store; kept by the database (buzon.messages.reach).
    customer_group = models.ForeignKey(AgentGroup, null=True, blank=True, editable=False, on_delete=models.SET_NULL,
                                       related_name="+", db_index=False)
    account_group = models.ForeignKey(AgentGroup, null=True, blank=True, editable=False, on_delete=models.SET_NULL,
                                      related_name="+", db_index=False)
    status = models.CharField(_("status"), max_length=8, choices=ConversationStatus.choices,
                              default=ConversationStatus.OPEN)
    record_type = models.ForeignKey(ContentType, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    record_id = models.PositiveBigIntegerField(null=True, blank=True)
    last_message_at = models.DateTimeField(_("last activity"), null=True, blank=True)
    last_incoming_at = models.DateTimeField(null=True, blank=True)
    snippet = models.CharField(max_length=SNIPPET_LENGTH, blank=True)
    message_count = models.PositiveIntegerField(_("messages"), default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    # Merged into another conversation (buzon.workspace.merging): this row stays, empty and out of
    # every list, so its record's next mail and links to it find the conversation it became.
    merged_into = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                    db_index=False)
    # When anything people see of it last changed (mail, a note, status, agent): what open pages poll
    # (buzon.workspace.live). Set by placement.record_activity and by every workspace action (``touch``).
    updated_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        app_label = "messages_app"
        verbose_name = _("conversation")
        verbose_name_plural = _("conversations")
        ordering = ["-last_message_at", "-id"]
        # One index per inbox filter, each ending in the list's order, so a page is an index range scan.
        indexes = [
            models.Index(fields=["-last_message_at", "-id"], name="conversation_activity"),
            models.Index(fields=["store", "-last_message_at", "-id"], name="conversation_store_activity"),
            models.Index(fields=["agent", "-last_message_at", "-id"], name="conversation_agent_activity"),
            models.Index(fields=["status", "-last_message_at", "-id"], name="conversation_status_activity"),
            models.Index(fields=["account", "-last_message_at", "-id"], name="conversation_account_activity"),
            models.Index(fields=["customer", "-last_message_at", "-id"], name="conversation_customer_activity"),
            # A group's store-less conversations (the role rule's group reach; null for a store's).
            models.Index(fields=["customer_group", "-last_message_at", "-id"], name="conversation_cgroup_activity",
                         condition=models.Q(customer_group__isnull=False)),
            models.Index(fields=["account_group", "-last_message_at", "-id"], name="conversation_agroup_activity",
                         condition=models.Q(account_group__isnull=False)),
        ]
        constraints = [
            models.UniqueConstraint(fields=["record_type", "record_id"], name="conversation_once_per_record",
                                    condition=models.Q(record_id__isnull=False)),
        ]

    def __str__(self) -> str:
        return self.subject[:80] or f"#{self.pk}"


def touch(*conversation_ids: int) -> None:
    """Something people see of these conversations changed now: open pages showing them refresh."""
    Conversation.objects.filter(pk__in=conversation_ids).update(updated_at=timezone.now())
