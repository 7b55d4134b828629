"""What the pipeline remembers beyond the Message itself."""

from __future__ import annotations

from django.db import models

from buzon.crm.models import Notification
from buzon.mailboxes.models import EmailAccount


class AutoReplySent(models.Model):
    """One auto-reply per sender per account per day (RFC 3834 §2): the unique key enforces it."""

    account = models.ForeignKey(EmailAccount, on_delete=models.CASCADE, related_name="+")
    address = models.CharField(max_length=320)
    day = models.DateField()
    message_id = models.BigIntegerField(null=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "address", "day"], name="auto_reply_once_a_day")]

    def __str__(self) -> str:
        return f"{self.address} {self.day}"


class NotificationDetail(models.Model):
    """What an in-app notification says, as data (its kind's text is in buzon.inbound.notices): the bell
    renders it in the reader's language when it is read. ``Notification.text`` keeps the text as
    first written, for notifications made before this table and for readers that only know it."""

    notification = models.OneToOneField(Notification, primary_key=True, on_delete=models.CASCADE,
                                        related_name="detail")
    params = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"{self.notification_id}: {self.params}"
