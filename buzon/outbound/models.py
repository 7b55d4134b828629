"""The outgoing queue and what sending needs: attempts, unsubscribes, sender confirmation, templates, DKIM.

An outgoing email is a `messages.Message` (direction out); `OutgoingEmail` is its queue entry, 1:1.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from buzon.mailboxes.models import EmailAccount, EmailDomain
from buzon.messages.models import Message


class QueueState(models.TextChoices):
    PENDING = "pending", _("Waiting to be sent")
    CLAIMED = "claimed", _("Being sent")
    SENDING = "sending", _("Handed to the server")  # its SMTP transaction started; see queue.py
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed")


class OutgoingEmail(models.Model):
    """A queued email: when it may go, how often it was tried, and the exact bytes once composed."""

    message = models.OneToOneField(Message, primary_key=True, on_delete=models.CASCADE, related_name="outgoing")
    kind = models.CharField(_("kind"), max_length=16, default="normal")
    priority = models.IntegerField(_("priority"), default=100)
    send_at = models.DateTimeField(_("send at"), null=True, blank=True)
    next_attempt_at = models.DateTimeField(_("next attempt"), db_index=True)
    state = models.CharField(_("queue state"), max_length=8, choices=QueueState.choices,
                             default=QueueState.PENDING, db_index=True)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    max_attempts = models.PositiveIntegerField(_("maximum attempts"), default=8)
    claimed_at = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(max_length=64, blank=True)
    html_source = models.TextField(blank=True, help_text=_("The HTML as written; Message.html is the sanitised copy."))
    headers = models.JSONField(default=dict, blank=True)
    # Composed once, then resent byte for byte (same Message-ID, same DKIM signature) on every retry.
    mime = models.BinaryField(null=True, blank=True)
    last_code = models.IntegerField(null=True, blank=True)
    last_reply = models.TextField(_("server reply"), blank=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    opened_at = models.DateTimeField(_("opened at"), null=True, blank=True)
    open_count = models.PositiveIntegerField(default=0)
    appended_to_sent = models.BooleanField(default=False)
    # The address the request that queued it came to, for its links while BUZON_BASE_URL is unset
    # (buzon/core/public_url.py); "" when queued outside a request.
    base_url = models.CharField(max_length=300, blank=True, default="")

    class Meta:
        verbose_name = _("outgoing email")
        verbose_name_plural = _("outgoing emails")
        indexes = [models.Index(fields=["state", "-priority", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.message_id} ({self.state})"


class OutgoingAttachment(models.Model):
    outgoing = models.ForeignKey(OutgoingEmail, on_delete=models.CASCADE, related_name="attachments")
    filename = models.CharField(_("file name"), max_length=255)
    mimetype = models.CharField(max_length=255, default="application/octet-stream")
    content = models.BinaryField()

    def __str__(self) -> str:
        return self.filename


class AttemptOutcome(models.TextChoices):
    SENT = "sent", _("Sent")
    RETRY = "retry", _("Will retry")
    UNKNOWN = "unknown", _("Maybe sent")  # the worker died while the server had it (queue.py)
    FAILED = "failed", _("Failed")


class DeliveryAttempt(models.Model):
    """One try at handing the message to the SMTP server, with the server's answer."""

    outgoing = models.ForeignKey(OutgoingEmail, on_delete=models.CASCADE, related_name="log")
    number = models.PositiveIntegerField(_("attempt"))
    at = models.DateTimeField(_("attempted at"), auto_now_add=True)
    outcome = models.CharField(_("outcome"), max_length=8, choices=AttemptOutcome.choices)
    code = models.IntegerField(_("reply code"), null=True, blank=True)
    reply = models.TextField(_("server reply"), blank=True)
    server = models.CharField(_("server"), max_length=300, blank=True)

    class Meta:
        ordering = ["outgoing", "number"]
        verbose_name = _("delivery attempt")
        verbose_name_plural = _("delivery attempts")

    def __str__(self) -> str:
        return f"#{self.number} {self.outcome} {self.code or ''}"


class Unsubscribe(models.Model):
    """An address that asked to get no more bulk mail from one account (RFC 8058 or the body link)."""

    account = models.ForeignKey(EmailAccount, on_delete=models.CASCADE, related_name="unsubscribes")
    address = models.CharField(_("address"), max_length=320)
    created_at = models.DateTimeField(auto_now_add=True)
    message = models.ForeignKey(Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "address"], name="unique_unsubscribe")]
        verbose_name = _("unsubscribed address")
        verbose_name_plural = _("unsubscribed addresses")

    def __str__(self) -> str:
        return f"{self.address} from {self.account_id}"


class SenderConfirmation(models.Model):
    """Seed 002: an account outside the known providers confirms its address before sending."""

    account = models.OneToOneField(EmailAccount, on_delete=models.CASCADE, related_name="sender_confirmation")
    code_hash = models.CharField(max_length=128, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    confirmed_at = models.DateTimeField(_("confirmed at"), null=True, blank=True)
    failed_tries = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("sender confirmation")
        verbose_name_plural = _("sender confirmations")

    def __str__(self) -> str:
        return f"{self.account_id}: {'confirmed' if self.confirmed_at else 'pending'}"


class EmailTemplate(models.Model):
    """Subject and body with {{ placeholders }} from the record and customer, per language."""

    key = models.SlugField(_("key"), max_length=64, help_text=_("Notifications find their template by this key."))
    language = models.CharField(_("language"), max_length=5, choices=[("es", _("Spanish")), ("en", _("English"))])
    name = models.CharField(_("name"), max_length=200)
    subject = models.CharField(_("subject"), max_length=500)
    body = models.TextField(_("body"), help_text=_("Plain text with {{ placeholders }}."))
    body_html = models.TextField(_("HTML body"), blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key", "language"]
        constraints = [models.UniqueConstraint(fields=["key", "language"], name="unique_template_language")]
        verbose_name = _("email template")
        verbose_name_plural = _("email templates")

    def __str__(self) -> str:
        return f"{self.name} ({self.language})"


class DkimKey(models.Model):
    """The domain's DKIM key pair; the private half is encrypted at rest with core.crypto."""

    domain = models.OneToOneField(EmailDomain, on_delete=models.CASCADE, related_name="dkim_key")
    selector = models.CharField(_("selector"), max_length=63, default="buzon")
    private_key_encrypted = models.TextField(editable=False)
    public_key = models.TextField(_("public key"), help_text=_("Base64 DER, as published in DNS."))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("DKIM key")
        verbose_name_plural = _("DKIM keys")

    def __str__(self) -> str:
        return f"{self.selector}._domainkey.{self.domain.domain_name}"
