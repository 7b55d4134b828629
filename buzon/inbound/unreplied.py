"""``notify_unreplied_after_minutes``: a received message still unanswered after that many minutes
notifies the account's ``notify_unreplied_to`` addresses, once (seed 000 §3.3).

"Answered" means Buzón sent something after it in the same conversation: a reply to it, or any
outgoing message on its record. Run by ``buzon notify-unreplied`` (the scheduler calls it each minute).
"""

from __future__ import annotations

import datetime as dt

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from buzon.crm.models import Notification
from buzon.crm.notifications import notify
from buzon.inbound import outbox_glue
from buzon.mailboxes.models import EmailAccount
from buzon.messages.models import Classification, Direction, Message, MessageStatus


def _answered(message: Message) -> bool:
    replies = Message.objects.filter(direction=Direction.OUTGOING, created_at__gte=message.created_at)
    same = Q(in_reply_to=message.message_id) if message.message_id else Q(pk__in=[])
    if message.record_type_id and message.record_id:
        same |= Q(record_type_id=message.record_type_id, record_id=message.record_id)
    return replies.filter(same).exists()


def _recipients(account: EmailAccount) -> list[str]:
    return [a.strip() for a in account.notify_unreplied_to.replace(";", ",").split(",") if a.strip()]


def notify_unreplied(now: dt.datetime | None = None) -> int:
    """Notify about every overdue unanswered message; returns how many messages were notified."""
    now = now or timezone.now()
    done = 0
    accounts = EmailAccount.objects.filter(notify_unreplied_after_minutes__isnull=False).exclude(notify_unreplied_to="")
    for account in accounts:
        cutoff = now - dt.timedelta(minutes=account.notify_unreplied_after_minutes or 0)
        due = Message.objects.filter(
            account=account, direction=Direction.INCOMING, status=MessageStatus.PROCESSED,
            classification=Classification.NORMAL, unreplied_notified_at__isnull=True, created_at__lte=cutoff,
        ).order_by("id")[:500]
        for message in due:
            if _answered(message):
                continue
            with transaction.atomic():
                # The conditional update is the "once": a second runner finds nothing left to claim.
                if not Message.objects.filter(pk=message.pk, unreplied_notified_at__isnull=True).update(
                        unreplied_notified_at=now):
                    continue
                _send(account, message)
            done += 1
    return done


def _send(account: EmailAccount, message: Message) -> None:
    text = _("No reply yet to the email from %(sender)s received at %(account)s: %(subject)s") % {
        "sender": message.from_address, "account": account.email_address, "subject": message.subject[:200]}
    recipients = _recipients(account)
    outbox_glue.queue(to=recipients, subject=text[:200], text=text, kind="notification")
    users = get_user_model().objects.filter(email__in=recipients)
    for user in users:
        notify(user, Notification.Kind.UNREPLIED, f"message:{message.pk}", text)
