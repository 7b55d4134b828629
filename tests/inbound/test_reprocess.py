"""`buzon reprocess`, importing skipped mail later, and the unreplied-mail notification."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.utils import timezone

from buzon.crm.models import Customer, CustomerEmail, Notification, Ticket
from buzon.inbound import pipeline
from buzon.inbound.reprocess import skipped_count
from buzon.inbound.unreplied import notify_unreplied
from buzon.messages.models import Direction, Message, MessageStatus
from buzon.outbound.models import OutgoingEmail
from buzon.sync.models import RawMessage
from tests.inbound.helpers import mail, store_raw, support_account

pytestmark = pytest.mark.django_db


def _call(*args):
    out = io.StringIO()
    call_command("reprocess", *args, stdout=out)
    return out.getvalue()


def test_reprocess_message_and_account_duplicate_nothing():
    account = support_account()
    raws = [store_raw(mail(subject=f"s{i}", sender=f"c{i}@customer.test"), account) for i in range(3)]
    for raw in raws:
        pipeline.run_pipeline(raw.pk)
    message = Message.objects.first()
    assert "processed 1" in _call(str(message.pk))
    assert "processed 3" in _call("--account", str(account.pk))
    assert Message.objects.count() == Ticket.objects.count() == Customer.objects.count() == 3


def test_skipped_mail_is_counted_and_imported_when_the_sender_becomes_a_customer(
    settings, django_capture_on_commit_callbacks
):
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend",
                                    "QUEUES": settings.TASK_QUEUES}}
    account = support_account(create_customer_if_not_found=False)
    raw = store_raw(mail(), account)
    raw.from_header = "Ana Pérez <ana@customer.test>"
    raw.save()
    lookalike = store_raw(mail(sender="mariana@customer.test", subject="otra"), account)
    lookalike.from_header = "mariana@customer.test"  # contains "ana@customer.test", is someone else
    lookalike.save()
    pipeline.run_pipeline(raw.pk)
    pipeline.run_pipeline(lookalike.pk)
    assert skipped_count(account.pk) == 2
    assert "skipped 2" in _call("--skipped")
    with django_capture_on_commit_callbacks(execute=True):
        CustomerEmail.objects.create(customer=Customer.objects.create(), address="ana@customer.test")
    raw.refresh_from_db()
    lookalike.refresh_from_db()
    assert raw.status == RawMessage.Status.PROCESSED and lookalike.status == RawMessage.Status.SKIPPED
    assert skipped_count(account.pk) == 1
    assert Message.objects.get().customer.primary_email == "ana@customer.test"


def test_unreplied_mail_notifies_once_and_answered_mail_not_at_all():
    boss = User.objects.create_user("boss", email="boss@shop.test")
    account = support_account(notify_unreplied_after_minutes=30, notify_unreplied_to="boss@shop.test")
    for subject in ("sin respuesta", "respondido"):
        pipeline.run_pipeline(store_raw(mail(subject=subject, sender=f"{subject[:3]}@customer.test"), account).pk)
    answered = Message.objects.get(subject="respondido")
    # A person's reply (written by a user, ordinary mail): only that answers (buzon.messages.replies).
    reply = Message.objects.create(direction=Direction.OUTGOING, status=MessageStatus.SENT, account=account,
                                   in_reply_to=answered.message_id, subject="Re: respondido", created_by=boss)
    OutgoingEmail.objects.create(message=reply, kind="normal", next_attempt_at=timezone.now())
    assert notify_unreplied() == 0  # not overdue yet
    later = timezone.now() + dt.timedelta(minutes=31)
    assert notify_unreplied(now=later) == 1
    assert notify_unreplied(now=later + dt.timedelta(minutes=5)) == 0
    notification = Notification.objects.get(kind="unreplied")
    assert "sin respuesta" in notification.text
